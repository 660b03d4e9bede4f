//! Intake: what happens to updates once they arrive, whichever way they came
//! (the poller's getUpdates or Telegram's push to the webhook). One path:
//! room is checked first (backpressure), each update is recorded in
//! PostgreSQL once, claimed by the same statement (see `dispatcher::CLAIM`),
//! and only then handed to the dispatcher, or marked unparseable. An update
//! seen before (a new leader re-reading the old one's last batch, Telegram
//! resending) is recorded once and handled once.

use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use serde_json::Value;

use crate::bot::BotHandler;
use crate::clients::parse_update;
use crate::dispatcher::{DispatchMsg, Dispatcher, DispatcherArgs, Recorded, CLAIM};
use crate::services::Services;
use crate::settings::IntakeSettings;
use crate::store::{Db, StoreError};

/// Why no more updates are taken now; the sender keeps them (the poller
/// does not fetch, Telegram resends what the webhook refused).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Full {
    #[error("{0} updates wait to be handled, as many as intake.max_pending allows")]
    Pending(usize),
    /// Its supervisor restarts the owner with a new one; until then nothing is taken.
    #[error("the dispatcher does not answer")]
    DispatcherGone,
}

/// What one [`Intake::take`] came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The highest update_id among them: the poller's next offset is past it.
    pub last: Option<i64>,
    /// Recorded now for the first time (dispatched, or marked unparseable).
    pub new: usize,
    /// Recorded before: neither recorded nor handled again.
    pub seen_before: usize,
}

pub struct Intake {
    db: Db,
    instance: String,
    settings: IntakeSettings,
    dispatcher: ActorRef<DispatchMsg>,
}

impl Intake {
    /// An intake whose dispatcher is linked to `owner`: a dispatcher that
    /// fails takes its owner down, for the supervisor to restart both.
    pub async fn start(services: &Services, owner: ActorCell) -> Result<Self, ActorProcessingErr> {
        let settings = &services.settings;
        let args = DispatcherArgs {
            handler: BotHandler::new(services.clone()),
            db: services.db.clone(),
            instance: settings.instance_id.clone(),
            max_concurrent_chats: settings.intake.max_concurrent_chats,
        };
        let (dispatcher, _) = Actor::spawn_linked(None, Dispatcher, args, owner).await?;
        Ok(Intake {
            db: services.db.clone(),
            instance: settings.instance_id.clone(),
            settings: settings.intake.clone(),
            dispatcher,
        })
    }

    /// Whether more updates may be taken now.
    pub async fn room(&self) -> Result<(), Full> {
        let pending = ractor::call!(self.dispatcher, DispatchMsg::Pending).map_err(|_| Full::DispatcherGone)?;
        if pending >= self.settings.max_pending {
            return Err(Full::Pending(pending));
        }
        Ok(())
    }

    /// Records `raw` updates (each as Telegram sent it) and dispatches those
    /// recorded for the first time. An error means none was recorded: the
    /// sender must offer them again.
    pub async fn take(&self, raw: Vec<Value>) -> Result<Taken, StoreError> {
        let id_of = |v: &Value| v["update_id"].as_i64();
        let last = raw.iter().filter_map(id_of).max();
        let (mut parsed, mut rows) = (Vec::with_capacity(raw.len()), Vec::with_capacity(raw.len()));
        for value in raw {
            let Some(id) = id_of(&value) else { continue };
            let update = parse_update(&value)
                .map_err(|e| tracing::warn!(update_id = id, error = %e, "an update teloxide cannot parse; recorded, not handled"))
                .ok();
            rows.push((id, update.as_ref().and_then(|u| u.chat()).map(|c| c.id.0), value));
            parsed.push((id, update));
        }
        if rows.is_empty() {
            return Ok(Taken { last, ..Taken::default() });
        }
        let recorded_at = Instant::now();
        let new = self.db.record_updates(&rows, &self.instance, CLAIM).await?;
        metrics::counter!("aishad_updates_received_total").increment(rows.len() as u64);
        if new.len() < rows.len() {
            tracing::info!(seen_before = rows.len() - new.len(), "skipping updates already recorded");
        }
        let mut fresh = Vec::with_capacity(new.len());
        for (update_id, update) in parsed.into_iter().filter(|(id, _)| new.binary_search(id).is_ok()) {
            match update {
                Some(update) => fresh.push(Recorded { update_id, update, recorded_at: Some(recorded_at) }),
                None => self.db.mark_update_handled(update_id, Some("unparseable update")).await?,
            }
        }
        self.dispatch(fresh);
        Ok(Taken { last, new: new.len(), seen_before: rows.len() - new.len() })
    }

    /// Dispatches recorded updates nobody handles or claims (their handler
    /// died), recorded at least `age` ago; returns how many. The
    /// dispatcher's claim makes a second dispatch of one update harmless.
    pub async fn recover(&self, age: Duration) -> Result<usize, StoreError> {
        let unhandled = self.db.unhandled_updates(self.settings.max_pending as i64, age).await?;
        let recovered: Vec<Recorded> = unhandled
            .into_iter()
            .filter_map(|(update_id, payload)| {
                parse_update(&payload).ok().map(|update| Recorded { update_id, update, recorded_at: None })
            })
            .collect();
        let count = recovered.len();
        self.dispatch(recovered);
        Ok(count)
    }

    /// Lets the updates being handled finish; the next owner re-handles
    /// what is recorded but not handled.
    pub async fn drain(&self) {
        let _ = self.dispatcher.stop_and_wait(None, None).await;
    }

    fn dispatch(&self, updates: Vec<Recorded>) {
        if updates.is_empty() {
            return;
        }
        // A dispatcher gone mid-cast loses nothing: the updates are
        // recorded, and `recover` finds them once their claim lapses.
        if let Err(e) = self.dispatcher.cast(DispatchMsg::Dispatch(updates)) {
            tracing::warn!(error = %e, "the dispatcher is gone; recorded updates wait for recovery");
        }
    }
}
