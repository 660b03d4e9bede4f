//! One bot, one send budget: a poller and two workers, separate processes,
//! answer a burst of voice notes through a Bot API that enforces Telegram's
//! flood limits, and none of their messages is refused. (Each process kept
//! its own limits before, so together they sent up to three times the bot's.)

use std::path::Path;
use std::time::Duration;

use aisha_testkit::audio::voice_note;
use aisha_testkit::fleet::{transcripts, voice_notes, welcomed_users, Fleet};
use aisha_testkit::telegram::FloodLimits;
use aisha_testkit::{eventually, FakeOpenAi, FakeTelegram, TestServices};

const TOKEN: &str = "31313:SEND-BUDGET-token";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");
/// The test profile lets one chat have 50 a second, for speed; Telegram allows 1.
const REAL_LIMITS: [(&str, &str); 1] = [("AISHA_TELEGRAM__SEND_PER_CHAT_SECOND", "1")];

#[tokio::test]
async fn a_poller_and_two_workers_together_keep_the_bots_flood_limits() {
    let services = TestServices::new("send_budget_fleet").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-budget").await;
    telegram.enforce_flood_limits(FloodLimits::default());
    let mut fleet = Fleet::start(Path::new(BIN), &services, &telegram, &openai, 2, &REAL_LIMITS).await;

    let users = welcomed_users(&telegram, 8100, 60).await;
    voice_notes(&telegram, &users, Duration::from_secs(2), voice_note("One bot, one budget.")).await;
    eventually("every note answered", Duration::from_secs(60), || {
        users.iter().all(|&u| transcripts(&telegram, u) >= 1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    for &user in &users {
        assert_eq!(transcripts(&telegram, user), 1, "user {user}: one transcript");
    }
    let sends = telegram.all_calls().iter().filter(|c| c.is_message()).count();
    assert_eq!(telegram.flood_refusals(), 0, "of {sends} messages, none over a limit");
    services.assert_ledger_balanced().await;
    fleet.stop().await;
}

/// Telegram's 429 for the bot's rate stops the whole bot for its
/// `retry_after`, not only the message it refused: after one, no process
/// sends any message until the hold ends, then every message goes once.
#[tokio::test]
async fn a_refusal_for_the_bots_rate_holds_every_process_until_its_retry_after() {
    let services = TestServices::new("send_budget_hold").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-budget").await;
    let mut fleet = Fleet::start(Path::new(BIN), &services, &telegram, &openai, 1, &REAL_LIMITS).await;
    let users = welcomed_users(&telegram, 8300, 12).await;

    telegram.fail_next("sendMessage", aisha_testkit::telegram::Failure::RetryAfter(3));
    voice_notes(&telegram, &users, Duration::from_millis(500), voice_note("Held by one refusal.")).await;
    eventually("every note answered", Duration::from_secs(60), || {
        users.iter().all(|&u| transcripts(&telegram, u) >= 1)
    })
    .await;

    let calls = telegram.all_calls();
    let refused = calls.iter().find(|c| c.is_message() && c.failed).expect("the refused message").at;
    let sent_during_hold: Vec<_> = calls
        .iter()
        // A message already on its way when the 429 came back cannot be held: 100 ms for that.
        .filter(|c| {
            c.is_message()
                && c.at > refused + Duration::from_millis(100)
                && c.at < refused + Duration::from_millis(2_950)
        })
        .map(|c| (c.method.clone(), c.params["chat_id"].clone()))
        .collect();
    assert!(sent_during_hold.is_empty(), "messages inside the 3 s hold: {sent_during_hold:?}");
    for &user in &users {
        assert_eq!(transcripts(&telegram, user), 1, "user {user}: one transcript");
    }
    let holds = summed(&fleet, "aishad_telegram_send_holds_total{scope=\"bot\"}").await;
    assert_eq!(holds, 1, "one bot-wide hold, counted where it was refused");
    services.assert_ledger_balanced().await;
    fleet.stop().await;
}

/// Paid broadcasts are counted apart from the free 30 a second: a refusal
/// of a free message holds the free budget, and the messages that go paid
/// meanwhile are not held with it.
#[tokio::test]
async fn a_refusal_of_a_free_message_holds_free_messages_only_paid_ones_go_on() {
    let (services, telegram, _openai, mut fleet) =
        paid_fleet("send_budget_paid_hold", ("AISHA_TELEGRAM__PAID_BROADCAST__AFTER", "200ms")).await;

    // The day's first message, alone: free, and refused.
    telegram.fail_next("sendMessage", aisha_testkit::telegram::Failure::RetryAfter(8));
    telegram.push_text(8600, "en", "/start");
    eventually("the first welcome refused", Duration::from_secs(20), || {
        telegram.count_where(|c| c.is_message() && c.failed) == 1
    })
    .await;
    let users = welcomed_users(&telegram, 8601, 39).await;
    // The refused welcome goes again once its chat is free, a second after
    // its first try; the other welcomes do not wait for it.
    eventually("the refused welcome sent again", Duration::from_secs(20), || !telegram.sent_texts(8600).is_empty())
        .await;

    let calls = telegram.all_calls();
    let refused = calls.iter().find(|c| c.is_message() && c.failed).expect("the refused welcome");
    assert_ne!(refused.params["allow_paid_broadcast"], true, "the first message of the day went free");
    let paid_sent = |c: &&aisha_testkit::telegram::Call| c.params["allow_paid_broadcast"] == true;
    let during_hold: Vec<_> = calls
        .iter()
        .filter(|c| {
            c.is_message()
                && !c.failed
                && c.at > refused.at + Duration::from_millis(100)
                && c.at < refused.at + Duration::from_millis(7_950)
        })
        .collect();
    let free: Vec<_> = during_hold.iter().filter(|c| !paid_sent(c)).map(|c| c.params["chat_id"].clone()).collect();
    assert!(free.is_empty(), "free messages inside the 8 s hold: {free:?}");
    let last = calls.iter().filter(|c| c.is_message() && !c.failed).map(|c| c.at).max().unwrap();
    assert!(
        last < refused.at + Duration::from_millis(7_950),
        "every welcome went paid within the hold ({} inside it), none waited for its end",
        during_hold.len()
    );
    for user in std::iter::once(8600).chain(users) {
        assert_eq!(telegram.sent_texts(user).len(), 1, "user {user}: one welcome");
    }
    assert_eq!(telegram.flood_refusals(), 0, "neither rate exceeded");
    assert_eq!(summed(&fleet, "aishad_telegram_send_holds_total{scope=\"bot\"}").await, 1);
    services.assert_ledger_balanced().await;
    fleet.stop().await;
}

/// A worker whose every slot waited in the send budget's line to deliver
/// would leave the budget idle between deliveries: a job whose result waits
/// to be sent gives its slot (and its place in the kind's concurrency) to
/// the next job, and still delivers once.
#[tokio::test]
async fn a_job_whose_reply_waits_in_line_lets_the_next_job_start() {
    let services = TestServices::new("send_budget_handover").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-budget").await;
    let one_at_a_time = [
        ("AISHA_TELEGRAM__SEND_PER_SECOND", "1"),
        ("AISHA_JOBS__KINDS__TRANSCRIBE__WORKERS", "1"),
        ("AISHA_JOBS__KINDS__TRANSCRIBE__CONCURRENCY", "1"),
    ];
    let mut fleet = Fleet::start(Path::new(BIN), &services, &telegram, &openai, 1, &one_at_a_time).await;
    let users = welcomed_users(&telegram, 8400, 3).await;
    // A line of six welcomes ahead: the first transcript's turn is seconds
    // off, however slowly a busy test machine transcribes.
    for newcomer in 8410..8416 {
        telegram.push_text(newcomer, "en", "/start");
    }
    voice_notes(&telegram, &users, Duration::from_millis(200), voice_note("Waiting my turn.")).await;
    eventually("all three transcribed", Duration::from_secs(20), || openai.transcription_arrivals() >= 3).await;
    let delivered: usize = users.iter().map(|&u| transcripts(&telegram, u)).sum();
    assert_eq!(delivered, 0, "every job worked while the first replies waited for their turn (one a second)");
    eventually("every note answered", Duration::from_secs(40), || {
        users.iter().all(|&u| transcripts(&telegram, u) >= 1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for &user in &users {
        assert_eq!(transcripts(&telegram, user), 1, "user {user}: one transcript");
    }
    let done = services.scalar("SELECT count(*) FROM jobs WHERE kind = 'transcribe' AND state = 'done'").await;
    assert_eq!(done, 3);
    services.assert_ledger_balanced().await;
    fleet.stop().await;
}

/// Past the free 30 a second, an operator may pay 0.1 Star a message: a
/// burst's messages whose free slot is further off than `after` go paid, as fast as
/// the paid rate allows, until the day's ceiling is spent; then free again.
#[tokio::test]
async fn paid_broadcasts_spend_up_to_the_days_ceiling_and_no_more() {
    let (services, telegram, _openai, fleet) =
        paid_fleet("send_budget_paid", ("AISHA_TELEGRAM__PAID_BROADCAST__DAILY_STARS", "3")).await;
    let users = welcomed_users(&telegram, 8500, 120).await;

    assert_eq!(telegram.paid_broadcast_tenths_of_stars(), 30, "3 Stars: 30 messages at 0.1, the day's ceiling");
    assert_eq!(summed(&fleet, "aishad_telegram_paid_broadcast_messages_total").await, 30);
    let free = telegram.all_calls().iter().filter(|c| c.is_message() && !c.failed).count() - 30;
    assert_eq!(free, users.len() - 30, "the rest went free");
    assert_eq!(telegram.flood_refusals(), 0, "neither rate exceeded");
    services.assert_ledger_balanced().await;
    let mut fleet = fleet;
    fleet.stop().await;
}

/// A poller and one worker with paid broadcasts on (200 a second, and
/// `setting`), behind a Bot API counting Telegram's limits strictly.
async fn paid_fleet(name: &str, setting: (&str, &str)) -> (TestServices, FakeTelegram, FakeOpenAi, Fleet) {
    let services = TestServices::new(name).await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-budget").await;
    telegram.enforce_flood_limits(FloodLimits::default());
    let paid = [
        ("AISHA_TELEGRAM__SEND_PER_CHAT_SECOND", "1"),
        ("AISHA_TELEGRAM__PAID_BROADCAST__ENABLED", "true"),
        ("AISHA_TELEGRAM__PAID_BROADCAST__PER_SECOND", "200"),
        setting,
    ];
    let fleet = Fleet::start(Path::new(BIN), &services, &telegram, &openai, 1, &paid).await;
    (services, telegram, openai, fleet)
}

/// A counter's value summed over every process of the fleet.
async fn summed(fleet: &Fleet, series: &str) -> u64 {
    let mut sum = 0;
    for daemon in fleet.all() {
        let url = format!("http://{}/metrics", daemon.telemetry_addr().await);
        let metrics = reqwest::get(url).await.unwrap().text().await.unwrap();
        sum += metrics
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0, |n| n.parse::<u64>().unwrap());
    }
    sum
}
