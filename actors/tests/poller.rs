//! TelegramPoller with real actors against the fake Bot API and real
//! PostgreSQL and Redis: one poller at a time, takeover within the lease,
//! nothing lost or handled twice, 409/429/5xx survived, the chat surface.

mod common;

use std::time::{Duration, Instant};

use aisha_actors::dispatcher::CLAIM;
use aisha_actors::poller::{PollerMsg, TelegramPoller};
use aisha_actors::services::Services;
use aisha_testkit::telegram::Failure;
use aisha_testkit::{eventually, FakeTelegram};
use ractor::{Actor, ActorRef};
use serde_json::json;

const TOKEN: &str = "424242:POLLER-test-token-abc";
const LEASE_TTL: Duration = Duration::from_secs(3);

async fn setup(name: &str) -> (FakeTelegram, Services) {
    let telegram = FakeTelegram::start(TOKEN).await;
    let url = telegram.url();
    let (_test, services) = common::services(name, |s| {
        common::use_telegram(s, TOKEN, url);
        s.telegram.lease_ttl = LEASE_TTL;
    })
    .await;
    (telegram, services)
}

async fn poller(services: &Services, instance: &str) -> ActorRef<PollerMsg> {
    let (poller, _) = Actor::spawn(None, TelegramPoller, common::as_instance(services, instance)).await.unwrap();
    poller
}

async fn count(services: &Services, sql: &str) -> i64 {
    services.db.client().await.unwrap().query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn start_creates_the_user_credits_the_bonus_once_and_shows_the_menu() {
    let (telegram, services) = setup("poll_start").await;
    let p = poller(&services, "solo").await;
    telegram.push_text(501, "en", "/start");
    telegram.push_text(501, "en", "/start");
    eventually("two replies", Duration::from_secs(10), || telegram.sent_texts(501).len() == 2).await;
    let replies = telegram.calls("sendMessage");
    assert!(replies[0].params["text"].as_str().unwrap().contains("Welcome bonus: 100"), "{:?}", replies[0].params);
    assert!(!replies[1].params["text"].as_str().unwrap().contains("Welcome bonus"), "second /start: no bonus");
    assert!(replies[0].params["reply_markup"]["inline_keyboard"].is_array(), "main menu as an inline keyboard");
    assert_eq!(count(&services, "SELECT balance FROM users WHERE telegram_id = 501").await, 100);
    let languages: Vec<_> = telegram.calls("setMyCommands").iter().map(|c| c.params["language_code"].clone()).collect();
    assert!(languages.contains(&json!("ru")) && languages.contains(&json!("en")), "{languages:?}");
    p.stop(None);
    common::assert_ledger(&services).await;
}

#[tokio::test]
async fn two_pollers_never_poll_at_once() {
    let (telegram, services) = setup("poll_two").await;
    let a = poller(&services, "replica-a").await;
    let b = poller(&services, "replica-b").await;
    for i in 0..20 {
        telegram.push_text(600 + i, "ru", "/help");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("all handled", Duration::from_secs(15), || (0..20).all(|i| telegram.sent_texts(600 + i).len() == 1))
        .await;
    assert_eq!(telegram.max_polls_in_flight(), 1, "getUpdates calls never overlapped");
    assert_eq!(telegram.conflicts(), 0, "no 409");
    a.stop(None);
    b.stop(None);
}

#[tokio::test]
async fn a_killed_leaders_standby_takes_over_within_the_ttl_and_loses_nothing() {
    let (telegram, services) = setup("poll_failover").await;
    let a = poller(&services, "leader").await;
    telegram.push_text(701, "en", "/help");
    eventually("leader handles", Duration::from_secs(10), || telegram.sent_texts(701).len() == 1).await;
    let b = poller(&services, "standby").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    a.kill(); // no release: the standby must wait for the lease to expire
    let killed_at = Instant::now();
    let polls_before = telegram.calls("getUpdates").len();
    for i in 0..5 {
        telegram.push_text(702 + i, "en", "/help");
    }
    eventually("standby handles everything", Duration::from_secs(15), || {
        (0..5).all(|i| telegram.sent_texts(702 + i).len() == 1)
    })
    .await;
    let first_standby_poll = telegram.calls("getUpdates")[polls_before..].first().map(|c| c.at).unwrap();
    let takeover = first_standby_poll.saturating_duration_since(killed_at);
    assert!(takeover <= LEASE_TTL + Duration::from_secs(1), "took over in {takeover:?}");
    assert_eq!(telegram.sent_texts(701).len(), 1, "the leader's update was not handled again");
    // Each is marked handled just after its reply went out.
    let deadline = Instant::now() + Duration::from_secs(5);
    while count(&services, "SELECT count(*) FROM telegram_updates WHERE handled_at IS NULL").await > 0 {
        assert!(Instant::now() < deadline, "an update was left unhandled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.stop(None);
}

#[tokio::test]
async fn a_clean_stop_releases_the_lease_for_an_immediate_takeover() {
    let (telegram, services) = setup("poll_release").await;
    let a = poller(&services, "leader").await;
    telegram.push_text(751, "en", "/help");
    eventually("leader handles", Duration::from_secs(10), || telegram.sent_texts(751).len() == 1).await;
    let b = poller(&services, "standby").await;
    a.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    let stopped_at = Instant::now();
    telegram.push_text(752, "en", "/help");
    eventually("standby handles", Duration::from_secs(10), || telegram.sent_texts(752).len() == 1).await;
    assert!(stopped_at.elapsed() < LEASE_TTL, "no wait for expiry: {:?}", stopped_at.elapsed());
    b.stop(None);
}

#[tokio::test]
async fn recorded_but_unhandled_updates_are_handled_after_a_restart_and_the_offset_survives() {
    let (telegram, services) = setup("poll_recover").await;
    // What a leader killed between recording and handling leaves behind:
    let update_id = telegram.push_text(801, "en", "/help");
    let client = services.db.client().await.unwrap();
    let update = json!({
        "update_id": update_id,
        "message": telegram.user_message(801, "en", json!({ "text": "/help" })),
    });
    client
        .execute(
            "INSERT INTO telegram_updates (update_id, chat_id, payload, received_by) VALUES ($1, 801, $2, 'crashed')",
            &[&(update_id), &update],
        )
        .await
        .unwrap();
    let p = poller(&services, "restarted").await;
    eventually("handled once", Duration::from_secs(10), || telegram.sent_texts(801).len() == 1).await;
    // The offset came from the database: the fake's copy was acknowledged, not handled again.
    eventually("polled", Duration::from_secs(5), || !telegram.calls("getUpdates").is_empty()).await;
    let first_poll = &telegram.calls("getUpdates")[0];
    assert_eq!(first_poll.params["offset"], json!(update_id + 1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(telegram.sent_texts(801).len(), 1);
    p.stop(None);
}

#[tokio::test]
async fn recording_the_same_update_twice_keeps_one() {
    let (_telegram, services) = setup("poll_dedupe").await;
    let row = (9001, Some(1), json!({ "update_id": 9001 }));
    assert_eq!(services.db.record_updates(std::slice::from_ref(&row), "a", CLAIM).await.unwrap(), vec![9001]);
    assert!(services.db.record_updates(&[row], "b", CLAIM).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_update_is_claimed_as_it_is_recorded_and_that_claim_is_taken_over_once() {
    let (_telegram, services) = setup("poll_claim_on_record").await;
    let claim = |id: i64, who: &'static str| {
        let db = services.db.clone();
        async move { db.claim_updates(&[id], CLAIM, who).await.pop().unwrap().unwrap() }
    };
    services.db.record_updates(&[(9101, Some(1), json!({ "update_id": 9101 }))], "leader", CLAIM).await.unwrap();
    assert!(!claim(9101, "standby").await, "another replica waits for the recorder's claim to lapse");
    assert!(claim(9101, "leader").await, "the recorder's handler takes its claim over");
    assert!(!claim(9101, "leader").await, "once: a second copy of the update is not handled");
    assert!(!claim(9101, "standby").await);
    // A claim that lapsed (its recorder died) is anyone's.
    services.db.record_updates(&[(9102, Some(1), json!({ "update_id": 9102 }))], "died", Duration::ZERO).await.unwrap();
    assert!(claim(9102, "standby").await);
}

#[tokio::test]
async fn a_429_is_waited_out_for_retry_after() {
    let (telegram, services) = setup("poll_429").await;
    telegram.fail_next("getUpdates", Failure::RetryAfter(2));
    let p = poller(&services, "solo").await;
    eventually("polled again", Duration::from_secs(10), || telegram.calls("getUpdates").len() >= 2).await;
    let polls = telegram.calls("getUpdates");
    let gap = polls[1].at - polls[0].at;
    assert!(gap >= Duration::from_secs(2), "waited {gap:?}");
    p.stop(None);
}

#[tokio::test]
async fn server_errors_and_conflicts_back_off_without_crashing() {
    let (telegram, services) = setup("poll_5xx").await;
    telegram.fail_next("getUpdates", Failure::Status(502, "Bad Gateway".into()));
    telegram.fail_next(
        "getUpdates",
        Failure::Status(
            409,
            "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running".into(),
        ),
    );
    let p = poller(&services, "solo").await;
    telegram.push_text(901, "ru", "/help");
    eventually("still works", Duration::from_secs(15), || telegram.sent_texts(901).len() == 1).await;
    assert_eq!(p.get_status(), ractor::ActorStatus::Running);
    p.stop(None);
}

#[tokio::test]
async fn an_active_webhook_is_deleted_so_polling_works() {
    let (telegram, services) = setup("poll_webhook").await;
    telegram.set_webhook_active(true);
    let p = poller(&services, "solo").await;
    telegram.push_text(951, "en", "/help");
    eventually("handled", Duration::from_secs(10), || telegram.sent_texts(951).len() == 1).await;
    assert_eq!(telegram.calls("deleteWebhook").len(), 1);
    p.stop(None);
}

#[tokio::test]
async fn one_chats_updates_are_handled_in_order() {
    let (telegram, services) = setup("poll_order").await;
    let p = poller(&services, "solo").await;
    for text in ["/start", "/balance", "/help", "/settings", "/cancel"] {
        telegram.push_text(1001, "en", text);
    }
    eventually("five replies", Duration::from_secs(10), || telegram.sent_texts(1001).len() == 5).await;
    let replies = telegram.sent_texts(1001);
    assert!(replies[0].contains("Hi! I'm Aisha"), "{replies:?}");
    assert!(replies[1].contains("Balance: 100"), "{replies:?}");
    assert!(replies[2].contains("Commands:"), "{replies:?}");
    assert!(replies[3].contains("Settings"), "{replies:?}");
    assert!(replies[4].contains("Nothing to cancel"), "{replies:?}");
    p.stop(None);
    common::assert_ledger(&services).await;
}

#[tokio::test]
async fn a_voice_message_is_charged_queued_and_cancellable_with_a_refund() {
    let (telegram, services) = setup("poll_voice").await;
    let p = poller(&services, "solo").await;
    telegram.push_text(1101, "en", "/start");
    telegram.push_voice(1101, "en", 125, bytes::Bytes::from_static(b"OggS"));
    eventually("queued", Duration::from_secs(10), || telegram.sent_texts(1101).len() == 2).await;
    let queued = &telegram.sent_texts(1101)[1];
    assert!(queued.contains("Charged 3, balance 97"), "3 started minutes: {queued}");
    assert_eq!(count(&services, "SELECT count(*) FROM jobs WHERE kind = 'transcribe' AND state = 'queued'").await, 1);
    assert!(telegram.calls("sendChatAction").is_empty(), "no typing before an answer that follows at once");

    telegram.push_text(1101, "en", "/cancel");
    eventually("cancelled", Duration::from_secs(10), || telegram.sent_texts(1101).len() == 3).await;
    assert!(telegram.sent_texts(1101)[2].contains("Refunded 3"), "{:?}", telegram.sent_texts(1101));
    assert_eq!(count(&services, "SELECT balance FROM users WHERE telegram_id = 1101").await, 100);
    p.stop(None);
    common::assert_ledger(&services).await;
}

#[tokio::test]
async fn without_coins_nothing_is_charged_and_the_user_is_told_the_price() {
    let (telegram, services) = setup("poll_broke").await;
    let p = poller(&services, "solo").await;
    telegram.push_text(1201, "en", "/imagine a fox");
    eventually("answer", Duration::from_secs(10), || telegram.sent_texts(1201).len() == 1).await;
    let reply = &telegram.sent_texts(1201)[0];
    assert!(reply.contains("costs 5") && reply.contains("balance is 0"), "{reply}");
    assert_eq!(count(&services, "SELECT count(*) FROM jobs").await, 0);
    p.stop(None);
    common::assert_ledger(&services).await;
}

#[tokio::test]
async fn unsupported_input_gets_a_plain_answer_never_silence() {
    let (telegram, services) = setup("poll_unsupported").await;
    let p = poller(&services, "solo").await;
    telegram.push_update(json!({ "message": telegram.user_message(1301, "ru", json!({ "sticker": {
        "file_id": "s1", "file_unique_id": "us1", "type": "regular", "width": 512, "height": 512,
        "is_animated": false, "is_video": false } })) }));
    telegram.push_text(1301, "ru", "просто текст");
    telegram.push_text(1301, "ru", "/nonsense");
    eventually("three answers", Duration::from_secs(10), || telegram.sent_texts(1301).len() == 3).await;
    let replies = telegram.sent_texts(1301);
    assert!(replies[0].contains("не умею"), "{replies:?}");
    assert!(replies[2].contains("/help"), "{replies:?}");
    p.stop(None);
}

#[tokio::test]
async fn menu_buttons_are_answered_at_once() {
    let (telegram, services) = setup("poll_buttons").await;
    let p = poller(&services, "solo").await;
    telegram.push_callback(1401, "en", "menu:balance", 1);
    eventually("answered", Duration::from_secs(10), || telegram.sent_texts(1401).len() == 1).await;
    let calls = telegram.all_calls();
    let answered = calls.iter().position(|c| c.method == "answerCallbackQuery").expect("answered");
    let replied = calls.iter().position(|c| c.method == "sendMessage").expect("replied");
    assert!(answered < replied, "the button is answered before any work");
    p.stop(None);
    common::assert_ledger(&services).await;
}

#[tokio::test]
async fn a_file_over_twenty_megabytes_is_refused_without_a_charge() {
    let (telegram, services) = setup("poll_big").await;
    let p = poller(&services, "solo").await;
    telegram.push_text(1501, "en", "/start");
    let message = telegram.user_message(1501, "en", json!({ "audio": {
        "file_id": "big", "file_unique_id": "ubig", "duration": 3000, "file_size": 31_457_280, "mime_type": "audio/mpeg" } }));
    telegram.push_update(json!({ "message": message }));
    eventually("refused", Duration::from_secs(10), || telegram.sent_texts(1501).len() == 2).await;
    assert!(telegram.sent_texts(1501)[1].contains("20 MB"), "{:?}", telegram.sent_texts(1501));
    assert_eq!(count(&services, "SELECT count(*) FROM jobs").await, 0);
    p.stop(None);
    common::assert_ledger(&services).await;
}

#[tokio::test]
async fn a_leader_stopped_with_updates_still_queued_leaves_them_to_the_next_at_once() {
    let (telegram, services) = setup("poll_handover").await;
    let mut one_at_a_time = (*services.settings).clone();
    one_at_a_time.intake.max_concurrent_chats = 1;
    let services = Services { settings: std::sync::Arc::new(one_at_a_time), ..services };
    const SENT: usize = 300;
    for chat in 0..SENT as i64 {
        telegram.push_text(70_000 + chat, "en", "/help");
    }
    let first = poller(&services, "first").await;
    eventually("handling started", Duration::from_secs(10), || !telegram.calls("sendMessage").is_empty()).await;
    first.stop_and_wait(None, None).await.unwrap();
    let answered_by_first = telegram.count("sendMessage");
    assert!(answered_by_first < SENT, "some were still queued when it stopped: {answered_by_first}");
    let still_claimed = "SELECT count(*) FROM telegram_updates WHERE handled_at IS NULL AND handling_until > now()";
    assert_eq!(count(&services, still_claimed).await, 0, "it gave up the claims of what it had not started");

    let started = Instant::now();
    let second = poller(&services, "second").await;
    eventually("the next leader answers", Duration::from_secs(30), || {
        telegram.count("sendMessage") > answered_by_first
    })
    .await;
    // Waiting out the claims taken on recording would take 15 s and more.
    assert!(started.elapsed() < Duration::from_secs(10), "the next leader waited {:?}", started.elapsed());
    eventually("all answered", Duration::from_secs(60), || telegram.count("sendMessage") >= SENT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(telegram.count("sendMessage"), SENT, "none answered twice");
    second.stop(None);
}

#[tokio::test]
async fn a_command_menu_telegram_keeps_refusing_neither_delays_polling_nor_costs_the_lease() {
    let (telegram, services) = setup("poll_menu_refused").await;
    // setMyCommands answered 502 again and again: its retries take longer than the lease.
    for _ in 0..12 {
        telegram.fail_next("setMyCommands", Failure::Status(502, "Bad Gateway".into()));
    }
    let p = poller(&services, "solo").await;
    telegram.push_text(503, "en", "/start");
    eventually("the welcome, while the menu is still being retried", LEASE_TTL * 2, || {
        telegram.sent_texts(503).len() == 1
    })
    .await;
    tokio::time::sleep(LEASE_TTL * 3).await;
    telegram.push_text(503, "en", "/help");
    eventually("still polling", LEASE_TTL * 2, || telegram.sent_texts(503).len() == 2).await;
    assert!(telegram.count("setMyCommands") >= 1, "the menu was tried");
    p.stop(None);
    common::assert_ledger(&services).await;
}

/// The Bot API unreachable for a minute: getUpdates fails and backs off (up
/// to 30 s between tries), far past the lease, which is kept all the while
/// on its own clock. Then polling goes on at once, as the same leader.
#[tokio::test]
async fn with_the_bot_api_unreachable_for_a_minute_the_only_poller_keeps_its_lease() {
    use aisha_actors::poller::LEASE_NAME;
    use aisha_testkit::forward::{target_of, Forwarder};
    use fred::prelude::KeysInterface;

    let telegram = FakeTelegram::start(TOKEN).await;
    let api = Forwarder::start([127, 0, 0, 1].into(), target_of(&telegram.url())).await;
    let url = format!("http://{}", api.addr);
    let (_test, services) = common::services("poll_api_away", |s| {
        common::use_telegram(s, TOKEN, url);
        s.telegram.lease_ttl = LEASE_TTL;
    })
    .await;
    let p = poller(&services, "solo").await;
    telegram.push_text(504, "en", "/start");
    eventually("the welcome", LEASE_TTL * 3, || telegram.sent_texts(504).len() == 1).await;
    let key = services.redis.key(LEASE_NAME);
    let holder = || async { services.redis.client().get::<Option<String>, _>(&key).await.unwrap() };
    let ours = holder().await.expect("the lease is held");
    assert!(ours.starts_with("solo:"), "{ours}");

    api.cut();
    let away = Instant::now();
    while away.elapsed() < Duration::from_secs(60) {
        assert_eq!(holder().await.as_deref(), Some(ours.as_str()), "held throughout, after {:?}", away.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    api.restore();
    telegram.push_text(504, "en", "/help");
    eventually("polling again", Duration::from_secs(40), || telegram.sent_texts(504).len() == 2).await;
    assert_eq!(holder().await, Some(ours), "the same tenure: never lost, never retaken");
    p.stop(None);
}
