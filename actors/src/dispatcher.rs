//! Dispatcher: handles recorded updates, one chat's strictly in order,
//! different chats concurrently, at most `max_concurrent_chats` at once.
//! A chat with more waiting goes to the back of the line after each update,
//! so one busy chat cannot starve the others.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use teloxide::types::{Update, UpdateKind};
use tokio::task::JoinHandle;

use crate::batch::GroupCommit;
use crate::bot::BotHandler;
use crate::store::{Db, SharedAnswer, StoreError};

/// How long a handler holds an update before another replica may handle it
/// again (its process having died mid-handling): longer than a handler
/// takes (a reply, a download of at most 20 MB), short enough that such an
/// update is answered within half a minute.
pub const CLAIM: Duration = Duration::from_secs(15);
/// An update handled this soon after it was recorded runs on the claim taken
/// with its recording (at least 12 of CLAIM's 15 s left): no claim of its own.
const RECORDED_CLAIM_SUFFICES: Duration = Duration::from_secs(3);

pub struct Dispatcher;

/// Claims and "handled" marks of updates handled at the same time share a
/// commit each: a getUpdates batch costs two commits, not two per update.
#[derive(Clone)]
struct Books {
    claims: GroupCommit<i64, Result<bool, StoreError>>,
    handled: GroupCommit<(i64, Option<String>), Result<(), StoreError>>,
}

impl Books {
    fn start(db: &Db, instance: &str) -> Self {
        let (for_claims, for_marks, instance) = (db.clone(), db.clone(), instance.to_owned());
        let claims = GroupCommit::start("update_claims", 256, 2, move |ids: Vec<i64>| {
            let (db, instance) = (for_claims.clone(), instance.clone());
            async move { db.claim_updates(&ids, CLAIM, &instance).await }
        });
        let handled = GroupCommit::start("updates_handled", 256, 1, move |done: Vec<(i64, Option<String>)>| {
            let db = for_marks.clone();
            async move { db.mark_updates_handled(&done).await }
        });
        Books { claims, handled }
    }
}

pub struct DispatcherArgs {
    pub handler: BotHandler,
    pub db: Db,
    /// This replica's `instance_id`: whose recording claims are ours.
    pub instance: String,
    pub max_concurrent_chats: usize,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub update_id: i64,
    pub update: Update,
    /// When we recorded it, claiming it (see `Db::record_updates`); `None`
    /// for an update found unhandled later, which needs a claim of its own.
    pub recorded_at: Option<Instant>,
}

impl Recorded {
    /// A pre-checkout must be answered within 10 s whatever its chat is
    /// doing: it skips the lanes and the concurrency bound (its handler is
    /// one read and one answer).
    fn urgent(&self) -> bool {
        matches!(self.update.kind, UpdateKind::PreCheckoutQuery(_))
    }

    /// Updates with no chat (rare kinds) share one lane; a guest message
    /// (a kind teloxide keeps raw) goes in its caller's.
    fn lane(&self) -> i64 {
        let caller = || match &self.update.kind {
            UpdateKind::Error(raw) => raw["guest_message"]["from"]["id"].as_i64(),
            _ => None,
        };
        self.update.chat().map(|c| c.id.0).or_else(caller).unwrap_or(0)
    }
}

pub enum DispatchMsg {
    Dispatch(Vec<Recorded>),
    Done {
        lane: i64,
        update_id: i64,
    },
    /// Updates received but not yet handled.
    Pending(RpcReplyPort<usize>),
}

pub struct DispatcherState {
    args: DispatcherArgs,
    queues: HashMap<i64, VecDeque<Recorded>>,
    active: HashMap<i64, JoinHandle<()>>,
    waiting: VecDeque<i64>,
    queued_lanes: HashSet<i64>,
    pending: usize,
    books: Books,
}

impl Actor for Dispatcher {
    type Msg = DispatchMsg;
    type State = DispatcherState;
    type Arguments = DispatcherArgs;

    async fn pre_start(
        &self,
        _: ActorRef<DispatchMsg>,
        args: DispatcherArgs,
    ) -> Result<DispatcherState, ActorProcessingErr> {
        Ok(DispatcherState {
            books: Books::start(&args.db, &args.instance),
            args,
            queues: HashMap::new(),
            active: HashMap::new(),
            waiting: VecDeque::new(),
            queued_lanes: HashSet::new(),
            pending: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<DispatchMsg>,
        msg: DispatchMsg,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DispatchMsg::Dispatch(updates) => {
                for recorded in updates {
                    if recorded.urgent() {
                        tokio::spawn(handle_one(state.args.handler.clone(), state.books.clone(), recorded));
                        continue;
                    }
                    let lane = recorded.lane();
                    state.pending += 1;
                    state.queues.entry(lane).or_default().push_back(recorded);
                    if !state.active.contains_key(&lane) && state.queued_lanes.insert(lane) {
                        state.waiting.push_back(lane);
                    }
                }
            }
            DispatchMsg::Done { lane, update_id } => {
                tracing::debug!(update_id, lane, "update handled");
                state.active.remove(&lane);
                state.pending = state.pending.saturating_sub(1);
                metrics::counter!("aishad_updates_handled_total").increment(1);
                if state.queues.get(&lane).is_some_and(|q| !q.is_empty()) {
                    if state.queued_lanes.insert(lane) {
                        state.waiting.push_back(lane);
                    }
                } else {
                    state.queues.remove(&lane);
                }
            }
            DispatchMsg::Pending(reply) => {
                let _ = reply.send(state.pending);
            }
        }
        pump(&myself, state);
        metrics::gauge!("aishad_updates_pending").set(state.pending as f64);
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<DispatchMsg>, state: &mut DispatcherState) -> Result<(), ActorProcessingErr> {
        // Finish what is in hand; what is only queued (or still in the
        // mailbox) stays unhandled in the database and the next leader
        // handles it, at once: the claims taken on recording it are given up.
        for (_, task) in state.active.drain() {
            let _ = task.await;
        }
        match state.args.db.release_recorded_claims(&state.args.instance).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "left updates not yet handled to the next leader"),
            Err(e) => {
                tracing::warn!(error = %e, "could not give up the claims of queued updates; the next leader waits them out")
            }
        }
        Ok(())
    }
}

fn pump(myself: &ActorRef<DispatchMsg>, state: &mut DispatcherState) {
    while state.active.len() < state.args.max_concurrent_chats.max(1) {
        let Some(lane) = state.waiting.pop_front() else { return };
        state.queued_lanes.remove(&lane);
        let Some(recorded) = state.queues.get_mut(&lane).and_then(VecDeque::pop_front) else { continue };
        let handler = state.args.handler.clone();
        let books = state.books.clone();
        let me = myself.clone();
        let task = tokio::spawn(async move {
            let update_id = recorded.update_id;
            handle_one(handler, books, recorded).await;
            let _ = me.cast(DispatchMsg::Done { lane, update_id });
        });
        state.active.insert(lane, task);
    }
}

/// Handles one update and marks it handled, whatever happened: a handler
/// that fails (or panics) answers the user with an apology, and the update is
/// not retried, so one poisonous update cannot stall its chat.
async fn handle_one(handler: BotHandler, books: Books, recorded: Recorded) {
    let Recorded { update_id, update, recorded_at } = recorded;
    let claimed = if recorded_at.is_some_and(|at| at.elapsed() < RECORDED_CLAIM_SUFFICES) {
        Ok(true)
    } else {
        books.claims.submit(update_id).await.or_stopped()
    };
    match claimed {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(update_id, "handled already, or another replica is handling it");
            return;
        }
        // Better to answer than to drop it: the handler itself may well fail too.
        Err(e) => tracing::warn!(update_id, error = %e, "could not claim the update; handling it anyway"),
    }
    let chat_id = update.chat().map(|c| c.id.0);
    let user_id = update.from().map(|u| u.id.0);
    let inner = {
        let handler = handler.clone();
        let update = update.clone();
        tokio::spawn(async move { handler.handle(&update).await })
    };
    let failure = match inner.await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some((e.cause(), e.to_string(), e.worth_an_apology())),
        Err(join) => Some(("panic", format!("handler panicked: {join}"), true)),
    };
    if let Some((cause, error, apologise)) = &failure {
        tracing::error!(update_id, ?chat_id, ?user_id, cause, error, "handling an update failed");
        metrics::counter!("aishad_update_failures_total", "cause" => *cause).increment(1);
        if *apologise {
            handler.apologise(&update).await;
        }
    }
    let error = failure.map(|(_, error, _)| error);
    let marked: Result<(), StoreError> = books.handled.submit((update_id, error)).await.or_stopped();
    if let Err(e) = marked {
        tracing::warn!(update_id, error = %e, "could not mark the update handled; it may be handled again after a restart");
    }
}
