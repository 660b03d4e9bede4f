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
