//! Redis moving under the daemon, for real: a master, a replica and three
//! Sentinels of the test's own (testkit's `redis_ha`). Through Sentinel's
//! URL the daemon follows the new master; on a plain URL, a node that turns
//! into a replica is noticed, never a silent stop.

use std::path::Path;
use std::time::{Duration, Instant};

use aisha_testkit::daemon::all_mode_env;
use aisha_testkit::redis_ha::RedisHa;
use aisha_testkit::telegram::FloodLimits;
use aisha_testkit::{eventually, first_after, Daemon, FakeOpenAi, FakeTelegram, TestServices};

const TOKEN: &str = "70707:REDIS-failover-token";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");

fn start(services: &TestServices, redis_url: &str, telegram: &FakeTelegram, openai: &FakeOpenAi) -> Daemon {
    let mut env: Vec<(String, String)> = services.env().into_iter().filter(|(k, _)| k != "REDIS_URL").collect();
    env.push(("REDIS_URL".into(), redis_url.to_owned()));
    env.extend(all_mode_env(telegram, openai));
    env.push(("AISHA_TELEGRAM__LEASE_TTL".into(), "6s".into()));
    // Telegram's own per-chat limit (the test profile allows more, for speed).
    env.push(("AISHA_TELEGRAM__SEND_PER_CHAT_SECOND".into(), "1".into()));
    Daemon::start(Path::new(BIN), &["run"], &env)
}

fn balances(telegram: &FakeTelegram, user: i64) -> usize {
    telegram.sent_texts(user).iter().filter(|t| t.contains("Balance") || t.contains("Баланс")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_sentinel_a_killed_master_is_followed_and_nothing_is_lost_or_handled_twice() {
    let services = TestServices::new("redis_sentinel").await;
    let mut ha = RedisHa::start("sentinel").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    telegram.enforce_flood_limits(FloodLimits::default());
    let openai = FakeOpenAi::start("sk-redis-failover").await;
    let mut daemon = start(&services, &ha.sentinel_url(), &telegram, &openai);
    let users: Vec<i64> = (7100..7130).collect();
    for &user in &users[..10] {
        telegram.push_text(user, "en", "/balance");
    }
    eventually("answered before", Duration::from_secs(30), || users[..10].iter().all(|&u| balances(&telegram, u) == 1))
        .await;

    let old = ha.master().expect("a master");
    ha.kill(old);
    let killed = Instant::now();
    let sender = {
        let telegram = telegram.clone();
        let users = users[10..].to_vec();
        tokio::spawn(async move {
            for user in users {
                telegram.push_text(user, "en", "/balance");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let promotion = ha.promoted(old, Duration::from_secs(30)).await;
    let promoted = Instant::now();
    sender.await.unwrap();
    eventually("every update answered", Duration::from_secs(40), || users.iter().all(|&u| balances(&telegram, u) >= 1))
        .await;
    let polled_again = first_after(telegram.polls().iter().map(|p| p.started), promoted);
    println!(
        "redis failover figure: Sentinel promoted the replica {:.1} s after the kill; getUpdates again {:.1} s after the promotion",
        promotion.as_secs_f64(),
        polled_again.as_secs_f64()
    );
    assert!(polled_again <= Duration::from_secs(10), "polling back within 10 s of the promotion: {polled_again:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for &user in &users {
        assert_eq!(balances(&telegram, user), 1, "user {user}: answered once");
    }
    assert_eq!(telegram.max_polls_in_flight(), 1, "never two getUpdates at once");
    // The send budget lives in Redis: on the new master it still paces a
    // burst over Telegram's 30 a second.
    let burst: Vec<i64> = (7140..7200).collect();
    for &user in &burst {
        telegram.push_text(user, "en", "/balance");
    }
    eventually("the burst answered", Duration::from_secs(40), || burst.iter().all(|&u| balances(&telegram, u) == 1))
        .await;
    assert_eq!(telegram.flood_refusals(), 0, "no message over Telegram's limits, before or after the failover");
    assert_eq!(telegram.pending_updates(), 0, "every update acknowledged");
    assert!(killed.elapsed() < Duration::from_secs(60));
    services.assert_ledger_balanced().await;
    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(30)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_plain_url_a_master_turned_replica_is_noticed_logged_counted_and_not_ready() {
    let services = TestServices::new("redis_demoted").await;
    let ha = RedisHa::start("demoted").await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let openai = FakeOpenAi::start("sk-redis-failover").await;
    let [first, second] = ha.ports;
    let mut daemon = start(&services, &ha.url_of(first), &telegram, &openai);
    let telemetry = daemon.telemetry_addr().await;
    telegram.push_text(7201, "en", "/balance");
    eventually("answered", Duration::from_secs(30), || balances(&telegram, 7201) == 1).await;

    // What Sentinel does to an old master that returns: it becomes the new one's replica.
    ha.demote(first, second);
    let readiness = || async {
        let response = reqwest::get(format!("http://{telemetry}/readyz")).await.unwrap();
        (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let (status, body) = readiness().await;
        if status != 200 || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, 503, "not ready against a replica: {body}");
    assert_ne!(body["redis"], "ok", "/readyz names Redis: {body}");
    daemon.wait_for_log("could not take or renew the poller lease", Duration::from_secs(20)).await;
    let metrics = reqwest::get(format!("http://{telemetry}/metrics")).await.unwrap().text().await.unwrap();
    let errors: f64 = metrics
        .lines()
        .find(|l| l.starts_with("aishad_poller_lease_errors_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "each failed attempt counted: {errors}");
    assert!(metrics.contains("aishad_poller_leader 0"), "and nobody claims to poll");
    daemon.signal("TERM");
    assert_eq!(daemon.wait(Duration::from_secs(30)).await, 0);
}
