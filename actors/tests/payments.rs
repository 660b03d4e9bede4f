//! Telegram Stars top-ups through the poller and the real database: the
//! invoice, the pre-checkout (answered at once even while the chat is busy),
//! each charge credited once, refunds taken back once and never below zero,
//! reconciliation of lost payments. The ledger balances after every test.

mod common;

use std::time::Duration;

use aisha_actors::clients::telegram_bot;
use aisha_actors::payments::operator;
use aisha_actors::payments::Debited;
use aisha_actors::poller::TelegramPoller;
use aisha_actors::services::Services;
use aisha_testkit::telegram::Failure;
use aisha_testkit::{eventually, FakeTelegram, TestServices};
use ractor::Actor;

const TOKEN: &str = "434343:STARS-test-token-abc";
const WAIT: Duration = Duration::from_secs(15);

struct Rig {
    telegram: FakeTelegram,
    services: Services,
    test: TestServices,
}

async fn rig(name: &str, tweak: impl FnOnce(&mut aisha_actors::settings::Settings)) -> Rig {
    let telegram = FakeTelegram::start(TOKEN).await;
    let url = telegram.url();
    let (test, services) = common::services(name, |s| {
        common::use_telegram(s, TOKEN, url);
        tweak(s);
    })
    .await;
    Actor::spawn(None, TelegramPoller, services.clone()).await.unwrap();
    Rig { telegram, services, test }
}

impl Rig {
    async fn started(&self, user: i64) {
        self.telegram.push_text(user, "en", "/start");
        eventually("welcome", WAIT, || !self.telegram.sent_texts(user).is_empty()).await;
    }

    async fn balance(&self, user: i64) -> i64 {
        let client = self.services.db.client().await.unwrap();
        client.query_one("SELECT balance FROM users WHERE telegram_id = $1", &[&user]).await.unwrap().get(0)
    }

    /// `/topup`, the first package: the invoice's payload and price.
    async fn invoice(&self, user: i64) -> (String, i64) {
        let before = self.telegram.calls("sendInvoice").len();
        self.telegram.push_callback(user, "en", "topup:0", 1);
        eventually("invoice", WAIT, || self.telegram.calls("sendInvoice").len() > before).await;
        let invoice = self.telegram.calls("sendInvoice")[before].params.clone();
        (invoice["payload"].as_str().unwrap().to_owned(), invoice["prices"][0]["amount"].as_i64().unwrap())
    }

    async fn checkout(&self, user: i64, payload: &str, stars: i64) -> (bool, Option<String>, Duration) {
        let id = self.telegram.push_pre_checkout(user, "en", payload, stars);
        eventually("pre-checkout answered", WAIT, || self.telegram.pre_checkout(&id).and_then(|q| q.answer).is_some())
            .await;
        self.telegram.pre_checkout(&id).unwrap().answer.unwrap()
    }

    fn texts_with(&self, user: i64, needle: &str) -> usize {
        self.telegram.sent_texts(user).iter().filter(|t| t.contains(needle)).count()
    }
}

#[tokio::test]
async fn topup_sends_an_invoice_answers_the_checkout_and_credits_the_package_once() {
    let rig = rig("stars_topup", |_| {}).await;
    rig.started(9001).await;
    rig.telegram.push_text(9001, "en", "/balance");
    eventually("balance", WAIT, || rig.telegram.sent_texts(9001).len() == 2).await;
    let balance_reply = rig.telegram.calls("sendMessage").pop().unwrap();
    assert_eq!(
        balance_reply.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"], "menu:topup",
        "a Top up button under the balance"
    );

    let (payload, stars) = rig.invoice(9001).await;
    let invoice = &rig.telegram.calls("sendInvoice")[0].params;
    assert_eq!((invoice["currency"].as_str(), stars), (Some("XTR"), 100));
    assert!(invoice["provider_token"].is_null());
    let (ok, _, after) = rig.checkout(9001, &payload, stars).await;
    assert!(ok);
    assert!(after < Duration::from_secs(5), "answered {after:?} after the query (Telegram allows 10 s)");

    rig.telegram.pay(9001, "en", &payload, stars, "charge-1", false);
    eventually("credited", WAIT, || rig.texts_with(9001, "+250 coins") == 1).await;
    assert_eq!(rig.balance(9001).await, 350);
    // The same payment message again (a redelivered update): credited once.
    rig.telegram.pay(9001, "en", &payload, stars, "charge-1", false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.balance(9001).await, 350);
    // A second payment of the same order (real Stars, a new charge id): credited too.
    rig.telegram.pay(9001, "en", &payload, stars, "charge-2", false);
    eventually("second credit", WAIT, || rig.texts_with(9001, "+250 coins") == 2).await;
    assert_eq!(rig.balance(9001).await, 600);
    rig.test.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_checkout_for_a_wrong_amount_an_unknown_or_paid_order_or_another_users_is_refused() {
    let rig = rig("stars_refusals", |_| {}).await;
    rig.started(9101).await;
    rig.started(9102).await;
    let (payload, stars) = rig.invoice(9101).await;
    let refusals = [
        rig.checkout(9101, &payload, stars + 1).await,
        rig.checkout(9101, "order:999999", stars).await,
        rig.checkout(9101, "junk", stars).await,
        rig.checkout(9102, &payload, stars).await,
    ];
    for (ok, message, _) in &refusals {
        assert!(!ok);
        assert!(message.as_deref().is_some_and(|m| !m.is_empty()), "a reason for the payer");
    }
    assert!(rig.checkout(9101, &payload, stars).await.0, "the right one passes");
    assert!(rig.checkout(9101, &payload, stars).await.0, "and again while still pending");
    rig.telegram.pay(9101, "en", &payload, stars, "charge-9", false);
    eventually("credited", WAIT, || rig.texts_with(9101, "+250") == 1).await;
    assert!(!rig.checkout(9101, &payload, stars).await.0, "a paid order is not paid again by the same invoice");
    rig.test.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_checkout_is_answered_at_once_while_that_chat_is_busy() {
    let rig = rig("stars_busy_chat", |s| s.intake.max_concurrent_chats = 1).await;
    rig.started(9201).await;
    let (payload, stars) = rig.invoice(9201).await;
    // The chat's next handler hangs for 8 s on the Bot API; the dispatcher's only slot is taken.
    rig.telegram.fail_next("sendMessage", Failure::Delay(Duration::from_secs(8)));
    rig.telegram.push_text(9201, "en", "/help");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, _, after) = rig.checkout(9201, &payload, stars).await;
    assert!(ok);
    // The chat's handler holds the only slot for 8 s: answered long before it frees.
    assert!(after < Duration::from_secs(5), "answered {after:?} after the query, with the chat busy");
}

#[tokio::test]
async fn a_refund_takes_the_coins_back_once_and_never_below_zero() {
    let rig = rig("stars_refund", |_| {}).await;
    rig.started(9301).await;
    let (payload, stars) = rig.invoice(9301).await;
    rig.checkout(9301, &payload, stars).await;
    rig.telegram.pay(9301, "en", &payload, stars, "charge-r", false);
    eventually("credited", WAIT, || rig.texts_with(9301, "+250") == 1).await;
    assert_eq!(rig.balance(9301).await, 350);
    // 300 of them spent.
    let user = rig
        .services
        .db
        .client()
        .await
        .unwrap()
        .query_one("SELECT id FROM users WHERE telegram_id = 9301", &[])
        .await
        .unwrap()
        .get(0);
    let job = aisha_actors::jobs::NewJob {
        cost: 300,
        ..aisha_actors::jobs::NewJob::new("transcribe", "spent-300", serde_json::json!({}))
    };
    aisha_actors::ledger::charge_and_enqueue(&rig.services.db, user, job).await.unwrap();
    assert_eq!(rig.balance(9301).await, 50);

    let bot = telegram_bot(&rig.services.settings.telegram).unwrap();
    let refunded = operator::refund(&rig.services.db, &bot, "charge-r").await.unwrap();
    assert_eq!(refunded, Debited::Debited { user_id: user, coins: 50, balance: 0 }, "what is left, not below zero");
    // Telegram's refunded_payment message arrives too: nothing more is taken.
    eventually("refund message handled", WAIT, || {
        rig.telegram.all_calls().iter().filter(|c| c.method == "getUpdates").count() > 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        operator::refund(&rig.services.db, &bot, "charge-r").await.unwrap(),
        Debited::AlreadyRefunded,
        "CHARGE_ALREADY_REFUNDED counts as done"
    );
    assert_eq!(rig.balance(9301).await, 0);
    rig.test.assert_ledger_balanced().await;
}

#[tokio::test]
async fn reconcile_credits_a_payment_whose_message_was_lost_and_only_once() {
    let rig = rig("stars_reconcile", |_| {}).await;
    rig.started(9401).await;
    let (payload, stars) = rig.invoice(9401).await;
    rig.checkout(9401, &payload, stars).await;
    rig.telegram.pay(9401, "en", &payload, stars, "charge-lost", true);
    rig.telegram.pay(9401, "en", &payload, stars, "charge-seen", false);
    eventually("the seen one credited", WAIT, || rig.texts_with(9401, "+250") == 1).await;
    let bot = telegram_bot(&rig.services.settings.telegram).unwrap();
    let first = operator::reconcile(&rig.services.db, &bot, &rig.services.settings.payments.packages).await.unwrap();
    assert_eq!((first.seen, first.credited), (2, 1));
    let again = operator::reconcile(&rig.services.db, &bot, &rig.services.settings.payments.packages).await.unwrap();
    assert_eq!(again.credited, 0);
    assert_eq!(rig.balance(9401).await, 600);
    rig.test.assert_ledger_balanced().await;
}

#[tokio::test]
async fn paid_requests_over_the_per_minute_limit_are_refused_with_a_wait_and_not_charged() {
    let rig = rig("limits_per_minute", |s| {
        s.limits.paid_per_minute = 3;
        s.limits.jobs_in_flight = 100;
    })
    .await;
    rig.started(9501).await;
    // The limit counts in fixed one-minute windows: four requests that straddle
    // a minute's end fall into two windows, so start them well inside one.
    let second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 60;
    if second >= 50 {
        tokio::time::sleep(Duration::from_secs(61 - second)).await;
    }
    for i in 0..4 {
        rig.telegram.push_text(9501, "en", &format!("/imagine fox number {i}"));
    }
    eventually("four answers", WAIT, || rig.telegram.sent_texts(9501).len() >= 5).await;
    assert_eq!(rig.texts_with(9501, "Try again in"), 1, "{:?}", rig.telegram.sent_texts(9501));
    assert_eq!(rig.balance(9501).await, 100 - 3 * 5, "three charged, the fourth not");
    rig.test.assert_ledger_balanced().await;
}

#[tokio::test]
async fn paid_requests_counted_together_count_in_order_and_every_window_ends() {
    use aisha_actors::limits::{paid_requests, Verdict};
    use fred::prelude::KeysInterface;
    let (_t, services) = common::services("limits_together", |_| {}).await;
    let verdicts = paid_requests(&services.redis, &[7, 8, 7, 7], 2).await.unwrap();
    assert_eq!(verdicts[..3], [Verdict::Allowed, Verdict::Allowed, Verdict::Allowed]);
    assert!(
        matches!(verdicts[3], Verdict::RetryIn(wait) if wait <= Duration::from_secs(60)),
        "user 7's third this minute: {verdicts:?}"
    );
    let minute = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 60;
    for user in [7, 8] {
        // The window the counts went to: this minute's, or the last one's if the minute turned since.
        let mut ttl: i64 = -2;
        for m in [minute, minute - 1] {
            let key = services.redis.key(&format!("limits:paid:{user}:{m}"));
            ttl = services.redis.client().ttl(&key).await.unwrap();
            if ttl != -2 {
                break;
            }
        }
        assert!((1..=61).contains(&ttl), "user {user}'s window ends within a minute: ttl {ttl}");
    }
}

#[tokio::test]
async fn more_jobs_in_flight_than_the_limit_are_refused_and_not_charged() {
    let rig = rig("limits_in_flight", |s| {
        s.limits.jobs_in_flight = 2;
        s.limits.paid_per_minute = 100;
    })
    .await;
    rig.started(9601).await;
    for i in 0..3 {
        rig.telegram.push_text(9601, "en", &format!("/imagine owl number {i}"));
    }
    eventually("three answers", WAIT, || rig.telegram.sent_texts(9601).len() >= 4).await;
    assert_eq!(rig.texts_with(9601, "jobs in progress"), 1, "{:?}", rig.telegram.sent_texts(9601));
    assert_eq!(rig.balance(9601).await, 100 - 2 * 5);
    rig.test.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_new_user_is_told_what_an_avatar_costs_before_sending_any_photo() {
    let rig = rig("avatar_price_up_front", |_| {}).await;
    rig.started(9701).await;
    rig.telegram.push_callback(9701, "en", "avatar:new", 1);
    eventually("answer", WAIT, || rig.telegram.sent_texts(9701).len() == 2).await;
    let refusal = rig.telegram.calls("sendMessage").pop().unwrap();
    let text = refusal.params["text"].as_str().unwrap();
    assert!(text.contains("costs 150") && text.contains("balance is 100"), "{text}");
    assert_eq!(refusal.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"], "menu:topup");
    assert!(aisha_actors::dialogue::get(&rig.services.redis, 1).await.unwrap().is_none(), "no dialogue started");
}

const GROUP: i64 = -100_9501;

#[tokio::test]
async fn a_top_up_button_in_a_group_sends_packages_and_invoice_to_the_private_chat() {
    let rig = rig("stars_group_button", |_| {}).await;
    rig.started(9501).await;
    rig.telegram.push_group_callback(GROUP, 9501, "en", "topup:0", 7);
    eventually("invoice", WAIT, || !rig.telegram.calls("sendInvoice").is_empty()).await;
    let invoice = &rig.telegram.calls("sendInvoice")[0].params;
    assert_eq!(invoice["chat_id"].as_i64(), Some(9501), "the invoice goes to the payer, never into the group");
    eventually("the group is told", WAIT, || rig.telegram.sent_texts(GROUP).iter().any(|t| t.contains("private chat")))
        .await;
    rig.telegram.push_group_callback(GROUP, 9501, "en", "menu:topup", 7);
    eventually("packages privately", WAIT, || rig.texts_with(9501, "Top up") + rig.texts_with(9501, "package") >= 1)
        .await;
    assert!(rig
        .telegram
        .calls("sendMessage")
        .iter()
        .all(|c| c.params["chat_id"].as_i64() != Some(GROUP) || c.params["reply_markup"].is_null()));
    rig.test.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_payment_and_its_refund_arriving_in_a_group_are_credited_and_taken_back_once() {
    let rig = rig("stars_group_payment", |_| {}).await;
    rig.started(9502).await;
    let (payload, stars) = rig.invoice(9502).await;
    rig.checkout(9502, &payload, stars).await;
    // An invoice sent into a group by an older version: the payment message lands there.
    rig.telegram.pay_in_group(GROUP, 9502, &payload, stars, "charge-in-group");
    eventually("credited", WAIT, || rig.texts_with(9502, "+250") == 1).await;
    assert_eq!(rig.balance(9502).await, 350);
    assert!(rig.telegram.sent_texts(GROUP).iter().all(|t| !t.contains("350")), "no balance said in the group");
    rig.telegram.refunded_in_group(GROUP, 9502, "charge-in-group");
    eventually("taken back", WAIT, || rig.texts_with(9502, "refunded") == 1).await;
    assert_eq!(rig.balance(9502).await, 100);
    rig.telegram.refunded_in_group(GROUP, 9502, "charge-in-group");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.balance(9502).await, 100, "once");
    rig.test.assert_ledger_balanced().await;
}

#[tokio::test]
async fn reconcile_leaves_a_charge_refunded_elsewhere_uncredited() {
    let rig = rig("stars_reconcile_refunded", |_| {}).await;
    rig.started(9503).await;
    let (payload, stars) = rig.invoice(9503).await;
    rig.checkout(9503, &payload, stars).await;
    rig.telegram.pay(9503, "en", &payload, stars, "charge-gone", true);
    rig.telegram.refund_elsewhere("charge-gone");
    let bot = telegram_bot(&rig.services.settings.telegram).unwrap();
    let done = operator::reconcile(&rig.services.db, &bot, &rig.services.settings.payments.packages).await.unwrap();
    assert_eq!((done.seen, done.credited, done.refunded), (1, 0, 1));
    assert_eq!(rig.balance(9503).await, 100, "Stars returned: no coins");
    rig.test.assert_ledger_balanced().await;
}
