//! JobPool: claims jobs of the kinds it has handlers for and runs each in a
//! JobRunner actor it supervises. Woken by NOTIFY, by a slow poll as a
//! safety net, and whenever a runner ends; renews its leases on a heartbeat.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::handler::{Completions, DeadReason, Handover, JobContext, JobHandler};
use super::runner::{retry_delay, JobRunner, RunnerArgs};
use super::upkeep;
use crate::backoff::Backoff;
use crate::jobs::queue::{self, Failed};
use crate::jobs::{Job, JobError};
use crate::ledger;
use crate::services::Services;
use crate::store::wake::LocalWakes;

pub struct JobPool;

pub struct JobPoolArgs {
    pub services: Services,
    /// kind → handler; the pool claims only these kinds.
    pub handlers: BTreeMap<String, Arc<dyn JobHandler>>,
}

pub enum PoolMsg {
    /// A job of this kind (or, with `None`, of any kind) may be waiting.
    Wake(Option<String>),
    /// The periodic safety net: claim, reap exhausted jobs, update gauges.
    Tick,
    Heartbeat,
    /// How many jobs run now (for tests and shutdown logs).
    InFlight(ractor::RpcReplyPort<usize>),
}

struct Running {
    job: Job,
    cell: ActorCell,
    cancel: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    started: Instant,
    /// Its work is done; its result waits in line to be sent.
    handing_over: Arc<AtomicBool>,
}

pub struct PoolState {
    services: Services,
    /// This incarnation's lease holder name: `{instance_id}#{random}`.
    worker: String,
    handlers: BTreeMap<String, Arc<dyn JobHandler>>,
    running: HashMap<ActorId, Running>,
    /// Jobs claimed while a runner of this pool still had them, by id.
    claimed_again: HashMap<i64, Job>,
    retry: Backoff,
    tasks: Vec<JoinHandle<()>>,
    /// Holds this instance's presence lock; stopped last, once the jobs in
    /// hand are done (see `post_stop`).
    presence: JoinHandle<()>,
    /// That lock's key, which each job's context carries.
    presence_key: String,
    /// When old updates and callbacks were last deleted.
    swept: Option<Instant>,
    /// Kinds whose depth this pool reports: its own, and every kind it has
    /// seen waiting in the queue (so a kind no worker takes shows its
    /// backlog, and one that empties reads 0, not its last count).
    depth_kinds: BTreeSet<String>,
    completions: Completions,
    /// Wakeups from this process, taken without waiting for its NOTIFY.
    _local_wakes: LocalWakes,
}

/// How often a pool deletes what retention no longer keeps, and checks
/// that every balance is the sum of its ledger entries.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Jobs handing their results over may wait in the send budget's line
/// beside those working, up to this many for each of a kind's slots: a
/// burst's replies wait there, not in the queue, while the work goes on.
const HANDING_OVER_PER_SLOT: usize = 8;

impl PoolState {
    /// How many more jobs of `kind` this pool may start: a slot for each
    /// working job, and room in line for those handing over.
    fn free_slots(&self, kind: &str, workers: usize) -> usize {
        let of_kind = || self.running.values().filter(|r| r.job.kind == kind);
        let working = of_kind().filter(|r| !r.handing_over.load(Ordering::Acquire)).count();
        let in_line = of_kind().count() - working;
        workers.saturating_sub(working).min((workers * HANDING_OVER_PER_SLOT).saturating_sub(in_line))
    }
}

impl Actor for JobPool {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = JobPoolArgs;

    async fn pre_start(&self, myself: ActorRef<PoolMsg>, args: JobPoolArgs) -> Result<PoolState, ActorProcessingErr> {
        for (kind, handler) in &args.handlers {
            handler.preflight().await.map_err(|e| format!("{kind} workers cannot start: {e}"))?;
        }
        let settings = &args.services.settings;
        let worker = format!("{}#{:08x}", settings.instance_id, rand::random::<u32>());
        let waker = myself.clone();
        let listener = super::listener::spawn(args.services.db.clone(), move |kind| {
            let _ = waker.cast(PoolMsg::Wake(kind));
        });
        let (waker, kinds) = (myself.clone(), args.handlers.keys().cloned().collect::<BTreeSet<_>>());
        let local_wakes = args.services.db.on_wake(move |kind| {
            if kinds.contains(kind) {
                let _ = waker.cast(PoolMsg::Wake(Some(kind.to_owned())));
            }
        });
        let waker = myself.clone();
        let me = super::presence::Presence {
            instance: settings.instance_id.clone(),
            worker: worker.clone(),
            kinds: args.handlers.keys().cloned().collect(),
        };
        let presence_key = me.key();
        let presence = super::presence::spawn(settings.database.url.clone(), me, move |released| {
            if released > 0 {
                tracing::info!(released, "took back the jobs a previous run of this instance held");
                metrics::counter!("aishad_jobs_taken_back_total").increment(released);
                let _ = waker.cast(PoolMsg::Wake(None));
            }
        });
        for kind in args.handlers.keys() {
            metrics::gauge!("aishad_pool_workers", "kind" => kind.clone()).set(1.0);
            // At 0 from the start, so the first of each is an increase Prometheus sees.
            for counter in ["aishad_jobs_dead_total", "aishad_job_retries_total", "aishad_job_crashes_total"] {
                metrics::counter!(counter, "kind" => kind.clone()).increment(0);
            }
        }
        let ticker = myself.send_interval(settings.jobs.poll_interval, || PoolMsg::Tick);
        let heart = myself.send_interval(settings.jobs.lease / 3, || PoolMsg::Heartbeat);
        myself.cast(PoolMsg::Tick)?;
        let completions = super::handler::completions(args.services.db.clone());
        Ok(PoolState {
            retry: Backoff::new(settings.jobs.retry_min, settings.jobs.retry_max),
            services: args.services,
            worker,
            running: HashMap::new(),
            claimed_again: HashMap::new(),
            tasks: vec![listener, ticker, heart],
            presence,
            presence_key,
            swept: None,
            depth_kinds: args.handlers.keys().cloned().collect(),
            handlers: args.handlers,
            completions,
            _local_wakes: local_wakes,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<PoolMsg>,
        msg: PoolMsg,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::Wake(kind) => {
                let kinds: Vec<String> = match kind {
                    Some(kind) if state.handlers.contains_key(&kind) => vec![kind],
                    Some(_) => return Ok(()),
                    None => state.handlers.keys().cloned().collect(),
                };
                for kind in kinds {
                    claim_and_run(&myself, state, &kind).await;
                }
            }
            PoolMsg::Tick => {
                for kind in state.handlers.keys().cloned().collect::<Vec<_>>() {
                    upkeep::reap(&state.services, state.handlers.get(&kind), &kind).await;
                    claim_and_run(&myself, state, &kind).await;
                }
                upkeep::report_depth(&state.services.db, &mut state.depth_kinds).await;
                if state.swept.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                    state.swept = Some(Instant::now());
                    upkeep::sweep(&state.services).await;
                }
            }
            PoolMsg::Heartbeat => heartbeat(state).await,
            PoolMsg::InFlight(reply) => {
                let _ = reply.send(state.running.len());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<PoolMsg>,
        event: SupervisionEvent,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, crash) = match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            SupervisionEvent::ActorFailed(cell, error) => (cell, Some(error.to_string())),
            _ => return Ok(()),
        };
        let Some(done) = state.running.remove(&cell.get_id()) else { return Ok(()) };
        let (job_id, kind) = (done.job.id, done.job.kind.clone());
        if let Some(error) = crash {
            record_crash(state, done, &error).await;
        }
        runner_ended(&myself, state, job_id).await;
        // A slot of its kind is free: look for more work of that kind only.
        // Slots are per kind, and what the job queued woke its own kind; a
        // claim of every kind here cost a burst more claims than jobs.
        myself.cast(PoolMsg::Wake(Some(kind)))?;
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<PoolMsg>, state: &mut PoolState) -> Result<(), ActorProcessingErr> {
        for task in state.tasks.drain(..) {
            task.abort();
        }
        for kind in state.handlers.keys() {
            metrics::gauge!("aishad_pool_workers", "kind" => kind.clone()).set(0.0);
        }
        if !state.running.is_empty() {
            tracing::info!(in_flight = state.running.len(), "job pool draining");
        }
        // Jobs that can stop between paid steps do, and are handed back.
        for running in state.running.values() {
            let _ = running.stop.send(true);
        }
        // Bounded by the supervisor's grace period: it kills us when that
        // runs out. Until then the jobs in hand stay ours: their leases are
        // renewed, and the presence lock is held, so a new incarnation of
        // this instance (a rolling update starts it before this one stops)
        // does not take them back and run them a second time.
        let cells: Vec<ActorCell> = state.running.values().map(|r| r.cell.clone()).collect();
        let drained = futures::future::join_all(cells.iter().map(|cell| cell.wait(None)));
        tokio::pin!(drained);
        let every = state.services.settings.jobs.lease / 3;
        loop {
            tokio::select! {
                _ = &mut drained => break,
                () = tokio::time::sleep(every) => heartbeat(state).await,
            }
        }
        state.presence.abort();
        Ok(())
    }
}

async fn claim_and_run(myself: &ActorRef<PoolMsg>, state: &mut PoolState, kind: &str) {
    let settings = state.services.settings.clone();
    let rules = settings.jobs.kind(kind);
    let free = state.free_slots(kind, rules.workers);
    if free == 0 {
        return;
    }
    let claimed =
        match queue::claim(&state.services.db, kind, free, rules.concurrency, &state.worker, settings.jobs.lease).await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(kind, error = %crate::error::chain(&e), "claiming jobs failed");
                return;
            }
        };
    for job in claimed {
        // A runner of this pool still has it. Either its lease lapsed while the
        // runner works (the database was away longer than a lease), and the
        // claim renewed the lease for that runner, where a second runner would
        // deliver it twice; or the runner ended it and it was queued again
        // before the pool heard of that end, and nobody runs this attempt.
        // Which of the two is known once that runner ends (`runner_ended`).
        if state.running.values().any(|r| r.job.id == job.id) {
            tracing::info!(job_id = job.id, "claimed a job this pool still runs; decided when its runner ends");
            state.claimed_again.insert(job.id, job);
            continue;
        }
        start_runner(myself, state, job).await;
    }
}

async fn start_runner(myself: &ActorRef<PoolMsg>, state: &mut PoolState, job: Job) {
    let Some(handler) = state.handlers.get(&job.kind).cloned() else { return };
    let settings = &state.services.settings;
    let (cancel, cancelled) = watch::channel(false);
    let (stop, stopping) = watch::channel(false);
    let handing_over = Arc::new(AtomicBool::new(false));
    let waker = myself.clone();
    let kind_woken = job.kind.clone();
    let handover = Handover {
        handing_over: handing_over.clone(),
        wake: Arc::new(move || {
            let _ = waker.cast(PoolMsg::Wake(Some(kind_woken.clone())));
        }),
    };
    let args = RunnerArgs {
        job: job.clone(),
        handler,
        db: state.services.db.clone(),
        context: JobContext::new(
            state.worker.clone(),
            cancelled,
            stopping,
            state.presence_key.clone(),
            state.services.db.clone(),
            settings.jobs.lease,
            handover,
        ),
        retry: state.retry,
        completions: state.completions.clone(),
    };
    match Actor::spawn_linked(None, JobRunner, args, myself.get_cell()).await {
        Ok((runner, _)) => {
            tracing::debug!(job_id = job.id, kind = %job.kind, attempt = job.attempts, "job claimed");
            let cell = runner.get_cell();
            state
                .running
                .insert(cell.get_id(), Running { job, cell, cancel, stop, started: Instant::now(), handing_over });
        }
        Err(e) => {
            // The lease lapses and another claim picks it up.
            tracing::error!(job_id = job.id, error = %e, "could not start a job runner");
        }
    }
}

/// A runner ended whose job was claimed again meanwhile (`claim_and_run`):
/// if that claim still holds it, the runner had ended it before the claim,
/// and the claimed attempt is run now rather than left held until its lease
/// lapses. If the runner ended it after the claim, nothing is left to run.
async fn runner_ended(myself: &ActorRef<PoolMsg>, state: &mut PoolState, job_id: i64) {
    let Some(job) = state.claimed_again.remove(&job_id) else { return };
    match queue::lease_left(&state.services.db, job.id, &state.worker, std::time::Duration::ZERO).await {
        Ok(Some(_)) => start_runner(myself, state, job).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(job_id, error = %e, "could not check a job claimed again; its lease will lapse"),
    }
}

async fn record_crash(state: &PoolState, done: Running, error: &str) {
    let job = done.job;
    tracing::error!(job_id = job.id, kind = %job.kind, error, elapsed = ?done.started.elapsed(), "job runner crashed");
    metrics::counter!("aishad_job_crashes_total", "kind" => job.kind.clone()).increment(1);
    let reason = format!("worker crashed: {error}");
    let delay = retry_delay(&JobError::Retry(reason.clone()), &state.retry, job.attempts);
    match ledger::fail_job(&state.services.db, job.id, &state.worker, &reason, delay).await {
        Ok(Failed::Dead(dead)) => {
            if let Some(handler) = state.handlers.get(&job.kind) {
                handler.on_dead(dead, DeadReason::Exhausted(reason)).await;
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(job_id = job.id, error = %e, "could not record the crash; the lease will lapse"),
    }
}

async fn heartbeat(state: &mut PoolState) {
    if state.running.is_empty() {
        return;
    }
    let settings = &state.services.settings;
    let ids: Vec<i64> = state.running.values().map(|r| r.job.id).collect();
    match queue::heartbeat(&state.services.db, &ids, &state.worker, settings.jobs.lease).await {
        Ok(renewed) => {
            for running in state.running.values().filter(|r| !renewed.contains(&r.job.id)) {
                tracing::warn!(
                    job_id = running.job.id,
                    "lease lost (cancelled or claimed elsewhere); stopping the job"
                );
                let _ = running.cancel.send(true);
            }
        }
        Err(e) => tracing::warn!(error = %e, "lease heartbeat failed"),
    }
}
