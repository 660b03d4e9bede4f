//! Two `aishad` processes in polling mode, as two containers would run:
//! exactly one polls; SIGKILL the leader and the other takes over within the
//! lease TTL, with nothing lost and nothing handled twice.

use std::path::Path;
use std::time::{Duration, Instant};

use aisha_testkit::{eventually, Daemon, FakeTelegram, TestServices};

const TOKEN: &str = "31337:FAILOVER-token-abcdef";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");

fn start(services: &TestServices, telegram: &FakeTelegram, instance: &str) -> Daemon {
    let mut env = services.env();
    env.extend(
        [
            ("TELEGRAM_BOT_TOKEN", TOKEN.to_owned()),
            ("TELEGRAM_API_URL", telegram.url()),
            ("BOT_MODE", "polling".to_owned()),
            ("INSTANCE_ID", instance.to_owned()),
            ("AISHA_TELEGRAM__LEASE_TTL", "3s".to_owned()),
            ("AISHA_TELEGRAM__POLL_TIMEOUT", "1s".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    Daemon::start(Path::new(BIN), &["run"], &env)
}

#[tokio::test]
async fn one_of_two_processes_polls_and_the_other_takes_over_after_a_sigkill() {
    let services = TestServices::new("failover_procs").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let mut first = start(&services, &telegram, "bot-primary");
    let mut second = start(&services, &telegram, "bot-standby");

    for i in 0..10 {
        telegram.push_text(2000 + i, "en", "/help");
    }
    eventually("all answered", Duration::from_secs(30), || (0..10).all(|i| telegram.sent_texts(2000 + i).len() == 1))
        .await;
    assert_eq!(telegram.max_polls_in_flight(), 1, "never two getUpdates at once");
    assert_eq!(telegram.conflicts(), 0);

    let leader_line = |d: &Daemon| d.logs().iter().any(|l| l.contains("took the poller lease"));
    let (leader, standby) = if leader_line(&first) { (&mut first, &mut second) } else { (&mut second, &mut first) };
    leader.signal("KILL");
    let killed_at = Instant::now();
    leader.wait(Duration::from_secs(5)).await;
    let polls_before = telegram.calls("getUpdates").len();

    for i in 10..20 {
        telegram.push_text(2000 + i, "en", "/help");
    }
    eventually("standby answers", Duration::from_secs(30), || {
        (10..20).all(|i| telegram.sent_texts(2000 + i).len() == 1)
    })
    .await;
    let takeover = telegram.calls("getUpdates")[polls_before..][0].at.saturating_duration_since(killed_at);
    assert!(takeover <= Duration::from_secs(4), "standby polled {takeover:?} after the kill (TTL 3 s)");
    for i in 0..20 {
        assert_eq!(telegram.sent_texts(2000 + i).len(), 1, "chat {} answered exactly once", 2000 + i);
    }
    assert!(leader_line(standby));

    standby.signal("TERM");
    assert_eq!(standby.wait(Duration::from_secs(20)).await, 0);
}
