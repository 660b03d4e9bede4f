//! The root supervisor: OTP-style restarts on top of ractor's supervision
//! events (ractor itself has no restart policy).
//!
//! - a failed child is restarted after an exponential, jittered backoff;
//!   a `Permanent` child is restarted after a clean stop too;
//! - more than `max_restarts` restarts within `period` stops the whole tree
//!   with [`Outcome::RestartIntensityExceeded`] (the process exits 70 and the
//!   container runtime starts it afresh);
//! - [`SupervisorMsg::Shutdown`] stops the children in reverse start order,
//!   each given what is left of the grace period to finish in-flight work.

mod child;

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aisha_actors::backoff::Backoff;
use aisha_actors::settings::SupervisorSettings;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

pub use child::{ChildSpec, Restart};

use crate::health::Health;

/// Exit code for a tree that gave up (EX_SOFTWARE).
pub const EXIT_RESTART_INTENSITY: i32 = 70;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stopped on request (SIGTERM/SIGINT) after draining.
    Shutdown,
    /// A child kept crashing; the last one to fail is named.
    RestartIntensityExceeded { child: &'static str },
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Shutdown => 0,
            Outcome::RestartIntensityExceeded { .. } => EXIT_RESTART_INTENSITY,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_restarts: u32,
    pub period: Duration,
    pub backoff: Backoff,
    pub shutdown_grace: Duration,
}

impl From<&SupervisorSettings> for Policy {
    fn from(s: &SupervisorSettings) -> Self {
        Self {
            max_restarts: s.max_restarts,
            period: s.period,
            backoff: Backoff::new(s.backoff_min, s.backoff_max),
            shutdown_grace: s.shutdown_grace,
        }
    }
}

pub struct SupervisorArgs {
    pub children: Vec<ChildSpec>,
    pub policy: Policy,
    pub health: Arc<Health>,
    /// Set once, when the tree stops; read by `main` for the exit code.
    pub outcome: Arc<OnceLock<Outcome>>,
}

pub enum SupervisorMsg {
    Restart(usize),
    Shutdown(Option<RpcReplyPort<()>>),
}

struct Slot {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    /// Consecutive failures, for the backoff; reset once a child stays up a period.
    failures: u32,
    started_at: Instant,
}

pub struct SupervisorState {
    slots: Vec<Slot>,
    restarts: VecDeque<Instant>,
    policy: Policy,
    health: Arc<Health>,
    outcome: Arc<OnceLock<Outcome>>,
    stopping: bool,
}

pub struct RootSupervisor;

impl Actor for RootSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let slots = args
            .children
            .into_iter()
            .map(|spec| {
                args.health.register(spec.name);
                Slot { spec, cell: None, failures: 0, started_at: Instant::now() }
            })
            .collect();
        let mut state = SupervisorState {
            slots,
            restarts: VecDeque::new(),
            policy: args.policy,
            health: args.health,
            outcome: args.outcome,
            stopping: false,
        };
        for index in 0..state.slots.len() {
            if let Err(e) = start_child(&myself, &mut state, index).await {
                tracing::error!(child = state.slots[index].spec.name, error = %e, "child failed to start");
                on_child_exit(&myself, &mut state, index, true).await;
            }
        }
        state.health.set_tree_started(true);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Restart(index) => {
                if state.stopping || state.slots[index].cell.is_some() {
                    return Ok(());
                }
                match start_child(&myself, state, index).await {
                    Ok(()) => {
                        let slot = &state.slots[index];
                        state.health.restarted(slot.spec.name);
                        tracing::info!(child = slot.spec.name, failures = slot.failures, "child restarted");
                    }
                    Err(e) => {
                        tracing::error!(child = state.slots[index].spec.name, error = %e, "child failed to restart");
                        on_child_exit(&myself, state, index, true).await;
                    }
                }
            }
            SupervisorMsg::Shutdown(reply) => {
                tracing::info!(grace = ?state.policy.shutdown_grace, "shutting down: stopping children");
                stop_children(state).await;
                let _ = state.outcome.set(Outcome::Shutdown);
                myself.stop(Some("shutdown".into()));
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failed) = match &event {
            SupervisionEvent::ActorFailed(cell, error) => {
                if let Some(i) = slot_of(state, cell) {
                    tracing::error!(child = state.slots[i].spec.name, error = %error, "child failed");
                }
                (cell, true)
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(i) = slot_of(state, cell) {
                    tracing::info!(child = state.slots[i].spec.name, reason = ?reason, "child stopped");
                }
                (cell, false)
            }
            _ => return Ok(()),
        };
        if let Some(index) = slot_of(state, cell) {
            on_child_exit(&myself, state, index, failed).await;
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.health.set_tree_started(false);
        Ok(())
    }
}

fn slot_of(state: &SupervisorState, cell: &ActorCell) -> Option<usize> {
    state.slots.iter().position(|s| s.cell.as_ref().is_some_and(|c| c.get_id() == cell.get_id()))
}

async fn start_child(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    index: usize,
) -> Result<(), ractor::SpawnErr> {
    let slot = &mut state.slots[index];
    let cell = slot.spec.start(myself.get_cell()).await?;
    slot.cell = Some(cell);
    slot.started_at = Instant::now();
    state.health.set_running(slot.spec.name, true);
    Ok(())
}

async fn on_child_exit(myself: &ActorRef<SupervisorMsg>, state: &mut SupervisorState, index: usize, failed: bool) {
    let name = state.slots[index].spec.name;
    state.slots[index].cell = None;
    state.health.set_running(name, false);
    if state.stopping {
        return;
    }
    if !failed && state.slots[index].spec.restart == Restart::Transient {
        tracing::info!(child = name, "transient child finished; not restarted");
        return;
    }

    let now = Instant::now();
    state.restarts.push_back(now);
    while state.restarts.front().is_some_and(|t| now.duration_since(*t) > state.policy.period) {
        state.restarts.pop_front();
    }
    if state.restarts.len() > state.policy.max_restarts as usize {
        tracing::error!(
            child = name,
            max_restarts = state.policy.max_restarts,
            period = ?state.policy.period,
            "restart intensity exceeded: stopping the tree"
        );
        metrics::counter!("aishad_restart_intensity_exceeded_total").increment(1);
        stop_children(state).await;
        let _ = state.outcome.set(Outcome::RestartIntensityExceeded { child: name });
        myself.stop(Some("restart intensity exceeded".into()));
        return;
    }

    let slot = &mut state.slots[index];
    if slot.started_at.elapsed() >= state.policy.period {
        slot.failures = 0;
    }
    let delay = state.policy.backoff.delay(slot.failures);
    slot.failures = slot.failures.saturating_add(1);
    tracing::warn!(child = name, retry_in = ?delay, failures = slot.failures, "restarting child after backoff");
    myself.send_after(delay, move || SupervisorMsg::Restart(index));
}

/// Stops the children last-started first, sharing one grace period; a child
/// still busy when it runs out is killed.
async fn stop_children(state: &mut SupervisorState) {
    state.stopping = true;
    let deadline = Instant::now() + state.policy.shutdown_grace;
    for slot in state.slots.iter_mut().rev() {
        let Some(cell) = slot.cell.take() else { continue };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if cell.stop_and_wait(Some("shutdown".into()), Some(remaining)).await.is_err() {
            tracing::warn!(child = slot.spec.name, "child did not stop within the grace period; killing it");
            cell.kill();
        }
        state.health.set_running(slot.spec.name, false);
    }
}
