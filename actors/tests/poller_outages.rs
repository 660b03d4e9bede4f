//! The poller when Redis loses its lease: restarted without persistence
//! while the leader has a getUpdates open and a standby waits. Never two
//! getUpdates at once, nothing lost, nothing answered twice.

mod common;

use std::time::{Duration, Instant};

use aisha_actors::poller::TelegramPoller;
use aisha_testkit::private::PrivateRedis;
use aisha_testkit::{eventually, FakeTelegram};
use ractor::Actor;

const TOKEN: &str = "727272:OUTAGE-test-token-abc";

#[tokio::test]
async fn a_redis_restart_under_an_open_poll_never_gives_two_getupdates_at_once() {
    let mut redis = PrivateRedis::start().await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let url = telegram.url();
    let redis_url = redis.url();
    let (_test, services) = common::services("poll_redis_restart", |s| {
        common::use_telegram(s, TOKEN, url);
        // As in production: long polls, a 15 s lease.
        s.telegram.poll_timeout = Duration::from_secs(10);
        s.telegram.lease_ttl = Duration::from_secs(15);
        s.redis.url = aisha_actors::secret::ConnUrl::new(&redis_url);
    })
    .await;
    let (leader, _) = Actor::spawn(None, TelegramPoller, common::as_instance(&services, "leader")).await.unwrap();
    telegram.push_text(8101, "en", "/help");
    eventually("the leader answers", Duration::from_secs(10), || telegram.sent_texts(8101).len() == 1).await;
    let (standby, _) = Actor::spawn(None, TelegramPoller, common::as_instance(&services, "standby")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await; // the leader's next poll is open

    redis.stop();
    redis.resume().await;
    let back = Instant::now();
    for i in 0..5 {
        telegram.push_text(8200 + i, "en", "/help");
    }
    eventually("all answered after the restart", Duration::from_secs(30), || {
        (0..5).all(|i| telegram.sent_texts(8200 + i).len() == 1)
    })
    .await;
    eprintln!("outage figure: Redis restart, backlog answered {:?} after Redis was back", back.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..5 {
        assert_eq!(telegram.sent_texts(8200 + i).len(), 1, "chat {} answered once", 8200 + i);
    }
    assert_eq!(telegram.max_polls_in_flight(), 1, "never two getUpdates in flight");
    assert_eq!(telegram.conflicts(), 0, "no 409");
    leader.stop(None);
    standby.stop(None);
}
