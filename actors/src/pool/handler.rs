//! What a kind of work's handler is given and gives back: its context,
//! why a job died, the `JobHandler` trait, and the shared writer that marks
//! finished jobs done.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::jobs::{queue, Job, JobError};
use crate::store::Db;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Finished jobs are marked done together: one commit for those that end at once.
pub type Completions =
    crate::batch::GroupCommit<crate::jobs::queue::Completion, Result<bool, crate::store::StoreError>>;

/// Completions that end together share a commit, at most this many.
const COMPLETION_BATCH: usize = 256;

pub(crate) fn completions(db: crate::store::Db) -> Completions {
    crate::batch::GroupCommit::start("job_completions", COMPLETION_BATCH, 2, move |done| {
        let db = db.clone();
        async move { crate::jobs::queue::complete_many(&db, done).await }
    })
}

/// Context a handler gets with its job.
#[derive(Clone)]
pub struct JobContext {
    /// Who holds the job's lease: `{instance_id}#{pool incarnation}`.
    pub worker: String,
    /// Becomes true when the job was cancelled or its lease lost: stop early.
    pub cancelled: tokio::sync::watch::Receiver<bool>,
    /// Becomes true when the worker stops (SIGTERM, a scale-in, a rolling
    /// update): start nothing new that costs money, finish what is in
    /// flight, keep it, and hand the job back (`JobError::Yield`).
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The pool's presence lock key (`presence::key`): held while its process lives.
    pub presence: String,
    db: Db,
    lease: Duration,
    /// Frees the job's slot in its pool while its delivery waits in line.
    handover: Handover,
}

/// A job's slot, given back to its pool when its result waits to be sent.
#[derive(Clone)]
pub(crate) struct Handover {
    pub handing_over: Arc<AtomicBool>,
    /// Wakes the pool to claim the next job.
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

impl JobContext {
    pub(crate) fn new(
        worker: String,
        cancelled: tokio::sync::watch::Receiver<bool>,
        stopping: tokio::sync::watch::Receiver<bool>,
        presence: String,
        db: Db,
        lease: Duration,
        handover: Handover,
    ) -> Self {
        Self { worker, cancelled, stopping, presence, db, lease, handover }
    }

    /// Delivers `job`'s result with `sends`. Should a message of them wait
    /// in line for the bot's send budget, the job stops holding its slot
    /// (here and in its kind's concurrency) and the pool starts the next
    /// one: the work is done, and a worker whose every slot waited to send
    /// would leave the budget idle between deliveries. The lease is kept,
    /// so the result still goes out once.
    pub async fn deliver<F: Future>(&self, job: &Job, sends: F) -> F::Output {
        let (handover, db, worker, id) = (self.handover.clone(), self.db.clone(), self.worker.clone(), job.id);
        let before_waiting = Arc::new(move || {
            if handover.handing_over.load(Ordering::Acquire) {
                return;
            }
            let (handover, db, worker) = (handover.clone(), db.clone(), worker.clone());
            tokio::spawn(async move {
                match queue::hand_over(&db, id, &worker).await {
                    Ok(true) if !handover.handing_over.swap(true, Ordering::AcqRel) => (handover.wake)(),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(job_id = id, error = %e, "could not hand the slot over; it stays held"),
                }
            });
        });
        crate::clients::flood::while_waiting(before_waiting, sends).await
    }

    /// Checks the lease (renewing it when little is left), or fails when this worker lost it (the job was
    /// cancelled or claimed elsewhere): call it right before anything the
    /// user sees or pays for, so a worker that lost its job cannot deliver.
    pub async fn hold(&self, job: &Job) -> Result<(), JobError> {
        // A lease with a third of its time left outlasts the send: a read,
        // not a write (a commit) on every delivery. Shorter, or on a server
        // that turned read-only (where a send could not be recorded, and its
        // retry would send again), renew it first: that write fails there.
        let lost = || JobError::Retry("lost the job's lease before delivering".into());
        match queue::lease_left(&self.db, job.id, &self.worker, self.lease / 3).await? {
            Some(true) => Ok(()),
            Some(false) => {
                let held = queue::heartbeat(&self.db, &[job.id], &self.worker, self.lease).await?;
                if held.is_empty() {
                    Err(lost())
                } else {
                    Ok(())
                }
            }
            None => Err(lost()),
        }
    }
}

/// Job kind → handler, as a pool is given them.
pub type Handlers = Vec<(&'static str, std::sync::Arc<dyn JobHandler>)>;

/// Why a job died; it has been refunded either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadReason {
    /// [`JobError::Refused`]: its text is the user's.
    Refused(String),
    /// [`JobError::RefusedAndTold`]: the user knows why already.
    Told,
    /// [`JobError::Broken`]: an operator's error, for logs only.
    Broken(String),
    /// Out of attempts (or the worker kept dying): the last error, for logs.
    Exhausted(String),
}

impl DeadReason {
    pub fn of(error: JobError) -> Self {
        match error {
            JobError::Refused(text) => DeadReason::Refused(text),
            JobError::RefusedAndTold => DeadReason::Told,
            JobError::Broken(error) => DeadReason::Broken(error),
            other => DeadReason::Exhausted(other.to_string()),
        }
    }

    /// What to tell the user: a refusal's own text, nothing more when they
    /// were told already, else `unavailable` (never an operator's error).
    pub fn for_user<'a>(&'a self, unavailable: &'a str) -> &'a str {
        match self {
            DeadReason::Refused(text) => text,
            DeadReason::Told => "",
            DeadReason::Broken(_) | DeadReason::Exhausted(_) => unavailable,
        }
    }
}

/// The work of one job kind. `run` may be called again for the same job
/// (retries, a lapsed lease), so it must be idempotent.
pub trait JobHandler: Send + Sync + 'static {
    fn run(&self, job: Job, ctx: JobContext) -> BoxFuture<Result<Value, JobError>>;

    /// Once, after a job died and was refunded: tell the user.
    fn on_dead(&self, _job: Job, _reason: DeadReason) -> BoxFuture<()> {
        Box::pin(async {})
    }

    /// Checked when the pool starts; an error fails the start (and so the
    /// supervisor retries it), e.g. when ffmpeg is missing.
    fn preflight(&self) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}
