//! The intake both the poller and the webhook use, on its own: room first,
//! each update recorded once, handled once, an unparseable one marked.

mod common;

use std::time::Duration;

use aisha_actors::intake::{Full, Intake, Taken};
use aisha_actors::services::Services;
use aisha_testkit::{eventually, FakeTelegram};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::json;

const TOKEN: &str = "5151:INTAKE-test-token-abc";

/// Owns the intake's dispatcher, as the poller or the listener does.
struct Owner;

impl Actor for Owner {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, (): ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

async fn intake(name: &str, max_pending: usize) -> (FakeTelegram, Services, Intake) {
    let telegram = FakeTelegram::start(TOKEN).await;
    let url = telegram.url();
    let (_test, services) = common::services(name, |s| {
        common::use_telegram(s, TOKEN, url);
        s.intake.max_pending = max_pending;
    })
    .await;
    let (owner, _) = Actor::spawn(None, Owner, ()).await.unwrap();
    let intake = Intake::start(&services, owner.get_cell()).await.unwrap();
    (telegram, services, intake)
}

async fn handled_error(services: &Services, update_id: i64) -> Option<Option<String>> {
    let client = services.db.client().await.unwrap();
    let row = client
        .query_opt("SELECT handled_at IS NOT NULL, error FROM telegram_updates WHERE update_id = $1", &[&update_id])
        .await
        .unwrap()?;
    row.get::<_, bool>(0).then(|| row.get(1))
}

#[tokio::test]
async fn an_update_taken_twice_is_recorded_and_handled_once() {
    let (telegram, services, intake) = intake("intake_once", 100).await;
    let update = json!({ "update_id": 71, "message": telegram.user_message(7101, "en", json!({ "text": "/help" })) });
    let first = intake.take(vec![update.clone()]).await.unwrap();
    assert_eq!(first, Taken { last: Some(71), new: 1, seen_before: 0 });
    let again = intake.take(vec![update]).await.unwrap();
    assert_eq!(again, Taken { last: Some(71), new: 0, seen_before: 1 });
    eventually("the reply", Duration::from_secs(10), || telegram.sent_texts(7101).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(telegram.sent_texts(7101).len(), 1, "handled once");
    common::assert_ledger(&services).await;
}

#[tokio::test]
async fn an_update_nobody_can_parse_is_recorded_and_marked_not_handled() {
    let (_telegram, services, intake) = intake("intake_unparseable", 100).await;
    // teloxide reads update ids as u32: this one it cannot read at all.
    let odd_id = i64::from(u32::MAX) + 72;
    let odd = json!({ "update_id": odd_id, "message": { "message_id": 1 } });
    assert_eq!(intake.take(vec![odd]).await.unwrap().new, 1);
    assert_eq!(handled_error(&services, odd_id).await, Some(Some("unparseable update".to_owned())));
}

#[tokio::test]
async fn a_full_dispatcher_takes_no_more() {
    let (_telegram, _services, intake) = intake("intake_full", 0).await;
    assert_eq!(intake.room().await, Err(Full::Pending(0)));
}

#[tokio::test]
async fn a_dispatcher_that_is_gone_is_not_room() {
    let (_telegram, _services, intake) = intake("intake_gone", 100).await;
    assert_eq!(intake.room().await, Ok(()));
    intake.drain().await;
    assert_eq!(intake.room().await, Err(Full::DispatcherGone), "not read as nothing pending");
}
