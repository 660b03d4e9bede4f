//! Every kind of work is declared once beside its worker (its name, payload,
//! attempts and what a user calls it), and the two lists agree: a kind that
//! is declared but handled by no worker, or handled but not declared (and so
//! named to no user), fails here by name.

mod common;

use aisha_actors::fal_job::FalJobs;
use aisha_actors::transcriber::Transcriber;

#[tokio::test]
async fn every_declared_kind_has_a_worker_and_every_worker_kind_is_declared() {
    let (_test, services) = common::services("kinds", |s| s.links.enabled = true).await;
    let mut handled: Vec<&str> = Transcriber::handlers(services.clone()).unwrap().into_iter().map(|(k, _)| k).collect();
    handled.extend(FalJobs::handlers(services).unwrap().into_iter().map(|(k, _)| k));
    let declared: Vec<&str> = aisha_actors::kinds::all().map(|kind| kind.name()).collect();
    for name in &declared {
        assert!(handled.contains(name), "{name} is declared, but no worker handles it");
    }
    for name in &handled {
        assert!(declared.contains(name), "{name} is handled, but not declared (a user would see its raw name)");
    }
    assert_eq!(handled.len(), declared.len(), "each kind handled once: {handled:?}");
}
