//! The coin ledger against real PostgreSQL: nothing charged twice, nothing
//! refunded twice, no balance below zero, balance = sum of entries.

mod common;

use aisha_actors::jobs::{queue, NewJob};
use aisha_actors::ledger::{self, Charged};
use aisha_actors::services::Services;

fn priced(key: &str, cost: i64) -> NewJob {
    NewJob { cost, ..NewJob::new("transcribe", key, serde_json::json!({})) }
}

/// A job charged `cost` for `user` and claimed by worker `w#1`.
async fn charged_and_claimed(services: &Services, user: i64, key: &str, cost: i64) -> aisha_actors::jobs::Job {
    let job = NewJob { max_attempts: 1, ..priced(key, cost) };
    ledger::charge_and_enqueue(&services.db, user, job).await.unwrap();
    queue::claim(&services.db, "transcribe", 1, 10, "w#1", std::time::Duration::from_secs(30)).await.unwrap().remove(0)
}

async fn sum_of_entries(services: &Services, user_id: i64) -> i64 {
    let client = services.db.client().await.unwrap();
    client
        .query_one("SELECT COALESCE(sum(delta), 0)::bigint FROM ledger_entries WHERE user_id = $1", &[&user_id])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn fifty_concurrent_starts_credit_one_welcome_bonus() {
    let (_t, services) = common::services("welcome_once", |_| {}).await;
    let user = common::user(&services, 1001).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let db = services.db.clone();
            tokio::spawn(async move { ledger::welcome_bonus(&db, user, 100).await.unwrap() })
        })
        .collect();
    let mut credited = 0;
    for task in tasks {
        credited += task.await.unwrap() as i32;
    }
    assert_eq!(credited, 1);
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 100);
    assert_eq!(sum_of_entries(&services, user).await, 100);
}

#[tokio::test]
async fn concurrent_charges_never_drive_a_balance_negative() {
    let (_t, services) = common::services("no_negative", |_| {}).await;
    let user = common::user(&services, 1002).await;
    ledger::welcome_bonus(&services.db, user, 100).await.unwrap();
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let db = services.db.clone();
            tokio::spawn(
                async move { ledger::charge_and_enqueue(&db, user, priced(&format!("k{i}"), 10)).await.unwrap() },
            )
        })
        .collect();
    let (mut queued, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Charged::Queued { balance, .. } => {
                assert!(balance >= 0);
                queued += 1
            }
            Charged::InsufficientBalance { price, balance } => {
                assert_eq!(price, 10);
                assert!(balance < 10);
                refused += 1
            }
            Charged::Duplicate(_) => panic!("keys are distinct"),
            Charged::TooManyInFlight { .. } => panic!("no cap on work in flight here"),
        }
    }
    assert_eq!((queued, refused), (10, 20));
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 0);
    assert_eq!(sum_of_entries(&services, user).await, 0);
    let jobs: i64 =
        services.db.client().await.unwrap().query_one("SELECT count(*) FROM jobs", &[]).await.unwrap().get(0);
    assert_eq!(jobs, 10, "a refused charge queues nothing");
}

#[tokio::test]
async fn the_same_request_twice_is_charged_once() {
    let (_t, services) = common::services("charge_dedupe", |_| {}).await;
    let user = common::user(&services, 1003).await;
    ledger::welcome_bonus(&services.db, user, 100).await.unwrap();
    let first = ledger::charge_and_enqueue(&services.db, user, priced("tg:update:77", 7)).await.unwrap();
    let second = ledger::charge_and_enqueue(&services.db, user, priced("tg:update:77", 7)).await.unwrap();
    let Charged::Queued { job, balance } = first else { panic!("{first:?}") };
    assert_eq!(balance, 93);
    assert_eq!(second, Charged::Duplicate(job));
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 93);
}

#[tokio::test]
async fn a_cancelled_job_is_refunded_exactly_once() {
    let (_t, services) = common::services("refund_once", |_| {}).await;
    let user = common::user(&services, 1004).await;
    ledger::welcome_bonus(&services.db, user, 50).await.unwrap();
    let Charged::Queued { job, .. } = ledger::charge_and_enqueue(&services.db, user, priced("c1", 20)).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 30);
    assert!(ledger::cancel_job(&services.db, job.id, "user cancelled").await.unwrap().is_some());
    assert!(ledger::cancel_job(&services.db, job.id, "user cancelled").await.unwrap().is_none(), "already cancelled");
    // A refund attempted again directly still moves nothing.
    let client = services.db.client().await.unwrap();
    assert!(!ledger::refund_job(&client, &job).await.unwrap());
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 50);
    assert_eq!(sum_of_entries(&services, user).await, 50);
}

#[tokio::test]
async fn a_dead_job_is_refunded() {
    let (_t, services) = common::services("dead_refund", |_| {}).await;
    let user = common::user(&services, 1005).await;
    ledger::welcome_bonus(&services.db, user, 50).await.unwrap();
    let job = NewJob { max_attempts: 1, ..priced("d1", 15) };
    ledger::charge_and_enqueue(&services.db, user, job).await.unwrap();
    let claimed =
        queue::claim(&services.db, "transcribe", 1, 10, "w1", std::time::Duration::from_secs(30)).await.unwrap();
    let failed =
        ledger::fail_job(&services.db, claimed[0].id, "w1", "boom", Some(std::time::Duration::ZERO)).await.unwrap();
    assert!(matches!(failed, queue::Failed::Dead(_)), "{failed:?}");
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 50);
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_can_neither_charge_nor_refund() {
    let (_t, services) = common::services("fenced_money", |_| {}).await;
    let user = common::user(&services, 1006).await;
    ledger::welcome_bonus(&services.db, user, 50).await.unwrap();
    let job = NewJob { user_id: Some(user), ..NewJob::new("transcribe", "fenced-1", serde_json::json!({})) };
    let client = services.db.client().await.unwrap();
    queue::enqueue(&client, &job).await.unwrap();
    let lease = std::time::Duration::from_millis(200);
    let stale = queue::claim(&services.db, "transcribe", 1, 10, "worker-a#1", lease).await.unwrap().remove(0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let fresh = queue::claim(&services.db, "transcribe", 1, 10, "worker-b#1", std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(fresh.len(), 1, "the lapsed job was claimed again");

    let refused = ledger::settle_price(&services.db, &stale, "worker-a#1", 10).await;
    assert!(matches!(refused, Err(ledger::LedgerError::NotHeld(_))), "{refused:?}");
    let failed = ledger::fail_job(&services.db, stale.id, "worker-a#1", "late", None).await.unwrap();
    assert_eq!(failed, queue::Failed::NotHeld);
    assert!(!queue::complete(&services.db, stale.id, "worker-a#1", &serde_json::json!({})).await.unwrap());
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 50, "nothing moved");

    let settled = ledger::settle_price(&services.db, &fresh[0], "worker-b#1", 10).await.unwrap();
    assert_eq!(settled, ledger::Settled::Charged { extra: 10, balance: 40 }, "the holder charges");
    assert_eq!(sum_of_entries(&services, user).await, 40);
}

#[tokio::test]
async fn the_measured_price_settles_once_up_or_down_and_a_later_refund_returns_the_net() {
    let (_t, services) = common::services("settle_price", |_| {}).await;
    let user = common::user(&services, 1007).await;
    ledger::welcome_bonus(&services.db, user, 50).await.unwrap();
    let claim = |key: &'static str, cost: i64| charged_and_claimed(&services, user, key, cost);
    // Declared 2 minutes, measured 5: three more.
    let longer = claim("settle-up", 2).await;
    assert_eq!(
        ledger::settle_price(&services.db, &longer, "w#1", 5).await.unwrap(),
        ledger::Settled::Charged { extra: 3, balance: 45 }
    );
    assert_eq!(
        ledger::settle_price(&services.db, &longer, "w#1", 5).await.unwrap(),
        ledger::Settled::Unchanged,
        "a retry moves nothing"
    );
    // It fails for good: the whole 5 comes back.
    ledger::fail_job(&services.db, longer.id, "w#1", "boom", None).await.unwrap();
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 50);
    // Declared 4 minutes, measured 1: three back.
    let shorter = claim("settle-down", 4).await;
    assert_eq!(
        ledger::settle_price(&services.db, &shorter, "w#1", 1).await.unwrap(),
        ledger::Settled::Refunded { amount: 3, balance: 49 }
    );
    // More than the balance can cover: nothing moves.
    let huge = claim("settle-huge", 1).await;
    assert_eq!(
        ledger::settle_price(&services.db, &huge, "w#1", 500).await.unwrap(),
        ledger::Settled::CannotPay { price: 500, balance: 48 }
    );
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 48);
    assert_eq!(sum_of_entries(&services, user).await, 48);
}

#[tokio::test]
async fn the_measured_and_the_heard_price_settle_each_once_by_their_own_reason() {
    let (_t, services) = common::services("settle_heard", |_| {}).await;
    let user = common::user(&services, 1008).await;
    ledger::welcome_bonus(&services.db, user, 50).await.unwrap();
    let job = charged_and_claimed(&services, user, "heard", 5).await;
    // Declared 5 minutes, measured 1: four back.
    assert_eq!(
        ledger::settle_price(&services.db, &job, "w#1", 1).await.unwrap(),
        ledger::Settled::Refunded { amount: 4, balance: 49 }
    );
    // The API heard 3 minutes: two more, although the price was settled once already.
    assert_eq!(
        ledger::settle_heard(&services.db, &job, "w#1", 3).await.unwrap(),
        ledger::Settled::Charged { extra: 2, balance: 47 }
    );
    // A retry settles neither again: the measured price does not refund the heard charge.
    assert_eq!(ledger::settle_price(&services.db, &job, "w#1", 1).await.unwrap(), ledger::Settled::Unchanged);
    assert_eq!(ledger::settle_heard(&services.db, &job, "w#1", 3).await.unwrap(), ledger::Settled::Unchanged);
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 47);
    assert_eq!(sum_of_entries(&services, user).await, 47);
}

#[tokio::test]
async fn a_retry_after_a_heard_charge_keeps_it_when_the_measured_price_stood() {
    let (_t, services) = common::services("settle_heard_retry", |_| {}).await;
    let user = common::user(&services, 1009).await;
    ledger::welcome_bonus(&services.db, user, 50).await.unwrap();
    let job = charged_and_claimed(&services, user, "heard-retry", 1).await;
    // Measured as charged (nothing moves, no entry), then the API heard 3 minutes.
    assert_eq!(ledger::settle_price(&services.db, &job, "w#1", 1).await.unwrap(), ledger::Settled::Unchanged);
    assert_eq!(
        ledger::settle_heard(&services.db, &job, "w#1", 3).await.unwrap(),
        ledger::Settled::Charged { extra: 2, balance: 47 }
    );
    // The retry measures the same again: before, it refunded what was heard.
    assert_eq!(ledger::settle_price(&services.db, &job, "w#1", 1).await.unwrap(), ledger::Settled::Unchanged);
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 47);
    assert_eq!(sum_of_entries(&services, user).await, 47);
}

#[tokio::test]
async fn admin_credit_adds_an_entry_and_refuses_unknown_users() {
    let (_t, services) = common::services("admin_credit", |_| {}).await;
    let user = common::user(&services, 1006).await;
    assert_eq!(ledger::admin_credit(&services.db, 1006, 40, "support ticket 12").await.unwrap(), 40);
    assert_eq!(sum_of_entries(&services, user).await, 40);
    assert!(matches!(
        ledger::admin_credit(&services.db, 999_999, 5, "x").await,
        Err(ledger::LedgerError::UnknownUser(999_999))
    ));
    let entries = ledger::recent_entries(&services.db, user, 5).await.unwrap();
    assert_eq!(entries[0].reason, ledger::REASON_ADMIN);
}

#[tokio::test]
async fn cancel_racing_a_worker_claim_either_cancels_and_refunds_or_leaves_it_to_run() {
    let (_t, services) = common::services("cancel_vs_claim", |_| {}).await;
    let user = common::user(&services, 1008).await;
    ledger::welcome_bonus(&services.db, user, 100).await.unwrap();
    for i in 0..20 {
        let key = format!("race-{i}");
        let Charged::Queued { job, .. } =
            ledger::charge_and_enqueue(&services.db, user, priced(&key, 2)).await.unwrap()
        else {
            panic!()
        };
        let (cancelled, claimed) = tokio::join!(
            ledger::cancel_job(&services.db, job.id, "user"),
            queue::claim(&services.db, "transcribe", 1, 100, "w#race", std::time::Duration::from_secs(30)),
        );
        let (cancelled, claimed) = (cancelled.unwrap().is_some(), !claimed.unwrap().is_empty());
        assert!(cancelled != claimed, "job {i}: cancelled {cancelled}, claimed {claimed}: exactly one");
        if claimed {
            queue::complete(&services.db, job.id, "w#race", &serde_json::json!({})).await.unwrap();
        }
    }
    let refunds: i64 = services
        .db
        .client()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM ledger_entries WHERE reason = 'refund'", &[])
        .await
        .unwrap()
        .get(0);
    let done: i64 = services
        .db
        .client()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM jobs WHERE state = 'done'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(refunds + done, 20);
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 100 - 2 * done);
    assert_eq!(sum_of_entries(&services, user).await, 100 - 2 * done);
}

#[tokio::test]
async fn charges_made_together_are_charged_in_order_as_if_one_after_another() {
    let (_t, services) = common::services("charge_many", |_| {}).await;
    let (rich, poor) = (common::user(&services, 1101).await, common::user(&services, 1102).await);
    ledger::welcome_bonus(&services.db, rich, 100).await.unwrap();
    ledger::welcome_bonus(&services.db, poor, 10).await.unwrap();
    let seen_before = ledger::charge_and_enqueue(&services.db, rich, priced("seen", 5)).await.unwrap();
    let Charged::Queued { job: seen, .. } = seen_before else { panic!("{seen_before:?}") };
    let outcomes = ledger::charge_many(
        &services.db,
        vec![
            (poor, priced("p1", 6)),
            (rich, priced("r1", 30)),
            (poor, priced("p2", 6)), // 4 left: refused
            (poor, priced("p3", 4)), // but this fits
            (rich, priced("seen", 5)),
            (rich, priced("r1", 30)), // twice in one batch: charged once
            (poor, priced("free", 0)),
        ],
        None,
    )
    .await;
    let outcomes: Vec<Charged> = outcomes.into_iter().map(Result::unwrap).collect();
    let balance_after = |o: &Charged| match o {
        Charged::Queued { balance, .. } => Some(*balance),
        _ => None,
    };
    assert_eq!(balance_after(&outcomes[0]), Some(4));
    assert_eq!(balance_after(&outcomes[1]), Some(65));
    assert_eq!(outcomes[2], Charged::InsufficientBalance { price: 6, balance: 4 });
    assert_eq!(balance_after(&outcomes[3]), Some(0));
    assert_eq!(outcomes[4], Charged::Duplicate(seen));
    let Charged::Queued { job: r1, .. } = &outcomes[1] else { unreachable!() };
    assert_eq!(outcomes[5], Charged::Duplicate(r1.clone()));
    assert_eq!(balance_after(&outcomes[6]), Some(0), "free work is queued at any balance");
    assert_eq!(ledger::balance(&services.db, rich).await.unwrap(), 65);
    assert_eq!(ledger::balance(&services.db, poor).await.unwrap(), 0);
    let client = services.db.client().await.unwrap();
    let keys: Vec<String> = client
        .query("SELECT idempotency_key FROM jobs ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys, ["seen", "p1", "r1", "p3", "free"], "a refused charge queues nothing");
    common::assert_ledger(&services).await;
}

#[tokio::test]
async fn a_bad_request_among_charges_made_together_fails_only_itself() {
    let (_t, services) = common::services("charge_many_bad", |_| {}).await;
    let user = common::user(&services, 1103).await;
    ledger::welcome_bonus(&services.db, user, 50).await.unwrap();
    let nobody = 987_654_321; // no such users row: the insert breaks the shared transaction
    let outcomes = ledger::charge_many(
        &services.db,
        vec![(user, priced("a", 10)), (nobody, priced("b", 10)), (user, priced("c", 10))],
        None,
    )
    .await;
    assert!(matches!(outcomes[0], Ok(Charged::Queued { balance: 40, .. })), "{:?}", outcomes[0]);
    assert!(outcomes[1].is_err(), "{:?}", outcomes[1]);
    assert!(matches!(outcomes[2], Ok(Charged::Queued { balance: 30, .. })), "{:?}", outcomes[2]);
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 30);
    assert_eq!(sum_of_entries(&services, user).await, 30);
    common::assert_ledger(&services).await;
}

#[tokio::test]
async fn concurrent_batches_of_charges_never_drive_a_balance_negative() {
    let (_t, services) = common::services("charge_many_racing", |_| {}).await;
    let users = [common::user(&services, 1104).await, common::user(&services, 1105).await];
    for user in users {
        ledger::welcome_bonus(&services.db, user, 100).await.unwrap();
    }
    // Eight batches at once, each charging both users in a different order.
    let batches: Vec<_> = (0..8)
        .map(|b| {
            let db = services.db.clone();
            let requests: Vec<_> = (0..6).map(|i| (users[(b + i) % 2], priced(&format!("b{b}:{i}"), 10))).collect();
            tokio::spawn(async move { ledger::charge_many(&db, requests, None).await })
        })
        .collect();
    let mut queued = 0;
    for batch in batches {
        for outcome in batch.await.unwrap() {
            match outcome.unwrap() {
                Charged::Queued { balance, .. } => {
                    assert!(balance >= 0);
                    queued += 1;
                }
                Charged::InsufficientBalance { balance, .. } => assert!(balance < 10),
                Charged::Duplicate(job) => panic!("keys are distinct: {job:?}"),
                Charged::TooManyInFlight { .. } => panic!("no cap on work in flight here"),
            }
        }
    }
    assert_eq!(queued, 20, "ten charges of 10 fit in each balance of 100");
    for user in users {
        assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 0);
    }
    common::assert_ledger(&services).await;
}

#[tokio::test]
async fn a_job_that_was_claimed_once_is_not_cancelled_when_it_waits_for_a_retry() {
    let (_t, services) = common::services("cancel_claimed_once", |_| {}).await;
    let user = common::user(&services, 1011).await;
    ledger::welcome_bonus(&services.db, user, 50).await.unwrap();
    ledger::charge_and_enqueue(&services.db, user, priced("r1", 10)).await.unwrap();
    let claimed =
        queue::claim(&services.db, "transcribe", 1, 10, "w1", std::time::Duration::from_secs(30)).await.unwrap();
    // Its transcript made (the API paid), the send failed for a moment: queued again for a retry.
    let retry =
        ledger::fail_job(&services.db, claimed[0].id, "w1", "Telegram 502", Some(std::time::Duration::from_secs(60)))
            .await
            .unwrap();
    assert!(matches!(retry, queue::Failed::Retrying { .. }), "{retry:?}");
    assert!(
        ledger::cancel_job(&services.db, claimed[0].id, "user cancelled").await.unwrap().is_none(),
        "only never-claimed work is cancelled"
    );
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 40, "the charge stands");
    assert_eq!(sum_of_entries(&services, user).await, 40);
}

#[tokio::test]
async fn a_job_whose_transcript_exists_keeps_its_charge_when_it_dies() {
    let (_t, services) = common::services("kept_result", |_| {}).await;
    let user = common::user(&services, 1012).await;
    ledger::welcome_bonus(&services.db, user, 50).await.unwrap();
    ledger::charge_and_enqueue(&services.db, user, NewJob { max_attempts: 1, ..priced("k1", 15) }).await.unwrap();
    let claimed =
        queue::claim(&services.db, "transcribe", 1, 10, "w1", std::time::Duration::from_secs(30)).await.unwrap();
    let transcript =
        services.db.start_transcript(claimed[0].id, user, 1012, &common::asked("f"), None).await.unwrap().transcript;
    let made =
        aisha_actors::store::transcripts::Finished { text_key: "t".into(), chunk_count: 1, ..Default::default() };
    services.db.finish_transcript(transcript.id, &made).await.unwrap();
    let failed = ledger::fail_job(&services.db, claimed[0].id, "w1", "could never send it", None).await.unwrap();
    assert!(matches!(failed, queue::Failed::Dead(_)), "{failed:?}");
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 35, "made, so paid: no refund");
    assert_eq!(sum_of_entries(&services, user).await, 35);
}

#[tokio::test]
async fn admin_credit_past_the_largest_balance_is_refused_not_wrapped() {
    let (_t, services) = common::services("admin_credit_overflow", |_| {}).await;
    let user = common::user(&services, 1013).await;
    ledger::admin_credit(&services.db, 1013, 10, "start").await.unwrap();
    assert!(matches!(
        ledger::admin_credit(&services.db, 1013, i64::MAX, "too much").await,
        Err(ledger::LedgerError::Overflow)
    ));
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 10);
    assert_eq!(sum_of_entries(&services, user).await, 10);
}

#[tokio::test]
async fn charges_from_several_chats_at_once_cannot_pass_the_cap_on_work_in_flight() {
    // A payer of several groups: notes arriving in each at once are charged
    // in separate transactions, and the cap holds across them.
    let (_t, services) = common::services("in_flight_cap", |_| {}).await;
    let user = common::user(&services, 1014).await;
    ledger::welcome_bonus(&services.db, user, 1000).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let db = services.db.clone();
            tokio::spawn(async move {
                ledger::charge_many(&db, vec![(user, priced(&format!("group{i}"), 1))], Some(5)).await
            })
        })
        .collect();
    let (mut queued, mut capped) = (0, 0);
    for task in tasks {
        match task.await.unwrap().pop().unwrap().unwrap() {
            Charged::Queued { .. } => queued += 1,
            Charged::TooManyInFlight { limit } => {
                assert_eq!(limit, 5);
                capped += 1
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((queued, capped), (5, 15));
    assert_eq!(ledger::balance(&services.db, user).await.unwrap(), 995, "only what was queued was charged");
    assert_eq!(sum_of_entries(&services, user).await, 995);
    let jobs: i64 =
        services.db.client().await.unwrap().query_one("SELECT count(*) FROM jobs", &[]).await.unwrap().get(0);
    assert_eq!(jobs, 5, "nothing refused was queued");
}
