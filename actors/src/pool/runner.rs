//! One actor per in-flight job, linked to its pool: a panic in a handler is
//! a supervision event like any other, and the pool records it as a failed
//! attempt. The runner writes its own outcome, so a pool that is draining
//! need not be answering messages for its jobs to finish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::Instrument;

use super::handler::{Completions, DeadReason, JobContext, JobHandler};
use crate::backoff::Backoff;
use crate::jobs::queue::{self, Completion, Failed};
use crate::jobs::{Job, JobError};
use crate::ledger;
use crate::store::Db;

pub(super) struct JobRunner;

pub(super) struct RunnerArgs {
    pub job: Job,
    pub handler: Arc<dyn JobHandler>,
    pub db: Db,
    pub context: JobContext,
    pub retry: Backoff,
    pub completions: Completions,
}

pub(super) enum RunnerMsg {
    Run,
}

impl Actor for JobRunner {
    type Msg = RunnerMsg;
    type State = Option<RunnerArgs>;
    type Arguments = RunnerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RunnerMsg>,
        args: RunnerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_message(RunnerMsg::Run)?;
        Ok(Some(args))
    }

    async fn handle(
        &self,
        myself: ActorRef<RunnerMsg>,
        RunnerMsg::Run: RunnerMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some(args) = state.take() else { return Ok(()) };
        let job = &args.job;
        let span = tracing::info_span!("job", job_id = job.id, kind = %job.kind, attempt = job.attempts, user_id = ?job.user_id);
        run(args).instrument(span).await?;
        myself.stop(None);
        Ok(())
    }
}

async fn run(args: RunnerArgs) -> Result<(), ActorProcessingErr> {
    let job = args.job.clone();
    let started = Instant::now();
    let result = args.handler.run(job.clone(), args.context.clone()).await;
    let instance = &args.context.worker;
    let outcome = match result {
        Ok(value) => {
            let done = Completion { id: job.id, worker: instance.clone(), result: value };
            let marked = args.completions.submit(done).await.map_err(|e| e.to_string())?;
            if marked? {
                tracing::info!(elapsed = ?started.elapsed(), "job done");
                "done"
            } else {
                tracing::warn!("job finished after its lease was lost; the result is discarded");
                "lost"
            }
        }
        Err(handed @ (JobError::Yield | JobError::DatabaseMoved(_))) => {
            match queue::give_back(&args.db, job.id, instance).await? {
                true => {
                    tracing::info!(reason = %handed, "handed back to the queue; what it paid for is kept");
                    "yielded"
                }
                false => "lost",
            }
        }
        Err(error) => {
            let retry_after = retry_delay(&error, &args.retry, job.attempts);
            match ledger::fail_job(&args.db, job.id, instance, &error.to_string(), retry_after).await? {
                Failed::Retrying { delay } => {
                    tracing::warn!(error = %error, retry_in = ?delay, "job attempt failed; will retry");
                    metrics::counter!("aishad_job_retries_total", "kind" => job.kind.clone()).increment(1);
                    "retry"
                }
                Failed::Dead(dead) => {
                    tracing::error!(error = %error, "job is dead; refunded");
                    metrics::counter!("aishad_jobs_dead_total", "kind" => job.kind.clone()).increment(1);
                    args.handler.on_dead(dead, DeadReason::of(error)).await;
                    "dead"
                }
                Failed::NotHeld => "lost",
            }
        }
    };
    metrics::histogram!("aishad_job_seconds", "kind" => job.kind.clone(), "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    Ok(())
}

/// `None` means: don't retry.
pub(super) fn retry_delay(error: &JobError, retry: &Backoff, attempts: i32) -> Option<Duration> {
    let backoff = retry.delay(attempts.saturating_sub(1).max(0) as u32);
    match error {
        JobError::Retry(_) => Some(backoff),
        JobError::Yield | JobError::DatabaseMoved(_) => Some(Duration::ZERO),
        JobError::RetryAfter { after, .. } => Some((*after).max(Duration::from_millis(1))),
        JobError::Refused(_) | JobError::RefusedAndTold | JobError::Broken(_) => None,
    }
}
