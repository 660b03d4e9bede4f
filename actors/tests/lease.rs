//! The poller lease against real Redis: one holder, renewals only by the
//! holder, release only by the holder, expiry hands it over.

mod common;

use std::time::Duration;

use aisha_actors::lease::Lease;

#[tokio::test]
async fn only_one_replica_holds_the_lease_and_only_it_renews_or_releases() {
    let (_t, services) = common::services("lease_one", |_| {}).await;
    let ttl = Duration::from_secs(5);
    let mut a = Lease::new(services.redis.clone(), "poller:lease", "a", ttl);
    let mut b = Lease::new(services.redis.clone(), "poller:lease", "b", ttl);
    assert!(a.acquire_or_renew().await.unwrap());
    assert!(!b.acquire_or_renew().await.unwrap());
    assert!(a.acquire_or_renew().await.unwrap(), "the holder renews");
    assert!(a.remaining() > Duration::from_secs(4) && a.remaining() <= ttl);
    assert!(!b.release().await.unwrap(), "a non-holder cannot release");
    assert_eq!(a.holder().await.unwrap().as_deref(), Some(a.token()));
    assert!(a.release().await.unwrap());
    assert!(b.acquire_or_renew().await.unwrap(), "released: the standby takes it");
}

#[tokio::test]
async fn an_expired_lease_passes_on_and_the_old_holder_cannot_renew_it() {
    let (_t, services) = common::services("lease_expiry", |_| {}).await;
    let ttl = Duration::from_millis(300);
    let mut a = Lease::new(services.redis.clone(), "poller:lease", "a", ttl);
    let mut b = Lease::new(services.redis.clone(), "poller:lease", "b", ttl);
    assert!(a.acquire_or_renew().await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!a.held(), "the holder knows its lease ran out");
    assert!(b.acquire_or_renew().await.unwrap());
    assert!(!a.acquire_or_renew().await.unwrap(), "the old holder's renewal finds someone else's token");
}
