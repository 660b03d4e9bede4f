//! A chunk's call to the transcription API is paid once, however the
//! database and the job's lease fare while it runs:
//! - it is taken in PostgreSQL before it is made, so a worker that took the
//!   job over (its lease lapsed while the database was away) waits for a call
//!   still in flight elsewhere instead of making it again;
//! - the caller keeps it alive while it runs, so only a call whose worker is
//!   gone is made again (no sign of life for a lease while its process holds
//!   no presence lock, or for ten leases whatever else);
//! - its result is kept by the caller until the database takes it: the write
//!   is retried through an outage, never the call.

use std::future::Future;
use std::time::{Duration, Instant};

use super::turn::Turn;
use crate::jobs::JobError;
use crate::keep;
use crate::pool::PRESENCE_LOCK_NAMESPACE;
use crate::store::chunk_calls::{Caller, Take};
use crate::store::transcripts::SavedChunk;

/// How a chunk's text came to be kept.
pub(super) enum Taken {
    /// The call is ours to make.
    Ours,
    /// Another worker's call kept it while this one waited: nothing to pay.
    KeptElsewhere,
}

/// How often a wait looks again for the other worker's result.
const LOOK_AGAIN: Duration = Duration::from_millis(500);
/// How long after an outage this process takes a call that looks gone
/// only once it has looked so for a while.
const RECENT_OUTAGE: Duration = Duration::from_secs(120);

impl Turn<'_> {
    /// This claim as the caller of a chunk's call, and when another's is gone:
    /// kept alive (every lease/3) longer ago than a lease while its process is
    /// gone (no presence lock), or than ten leases whatever else.
    fn as_caller(&self) -> Caller<'_> {
        let lease = self.worker.services.settings.jobs.lease;
        Caller {
            worker: self.caller(),
            presence: &self.ctx.presence,
            presence_namespace: PRESENCE_LOCK_NAMESPACE,
            stale: lease * 10,
            gone: lease,
        }
    }

    /// Who makes the call: this claim of the job (a pool that claims its own
    /// lapsed job again runs it under a new attempt, a caller of its own).
    fn caller(&self) -> String {
        format!("{}/{}", self.ctx.worker, self.job.attempts)
    }

    /// Takes chunk `idx`'s call, or waits while another worker's is alive.
    /// A call that looks gone is taken over at once, except soon after this
    /// process saw the database away: then every call looks gone for a
    /// while, and only one that still looks so after a keep-alive's interval
    /// and a second more is (a worker still holding its call shows it alive,
    /// or writes its result, within that time).
    pub(super) async fn take_call(&self, transcript_id: i64, idx: i32) -> Result<Taken, JobError> {
        let db = &self.worker.services.db;
        let confirm = keep::holder_grace(self.worker.services.settings.jobs.lease);
        let me = self.as_caller();
        let mut gone_since: Option<Instant> = None;
        let mut told = false;
        loop {
            let outage = db.unreachable_within(RECENT_OUTAGE);
            let take_over = gone_since.is_some_and(|since| !outage || since.elapsed() >= confirm);
            match db.take_chunk_call(transcript_id, idx, &me, take_over).await? {
                Take::Kept => return Ok(Taken::KeptElsewhere),
                Take::Ours => return Ok(Taken::Ours),
                Take::Busy { gone: true } => {
                    gone_since.get_or_insert_with(Instant::now);
                }
                Take::Busy { gone: false } => gone_since = None,
            }
            if *self.ctx.cancelled.borrow() {
                return Err(JobError::Retry("the job was cancelled or its lease lost".into()));
            }
            if !told {
                tracing::info!(
                    job_id = self.job.id,
                    chunk = idx,
                    "this chunk's call is in flight elsewhere; waiting for it"
                );
                told = true;
            }
            tokio::time::sleep(LOOK_AGAIN).await;
        }
    }

    /// Runs `call` (the API call and the write of its result), keeping the
    /// chunk's call alive in the database meanwhile. Each sign of life is
    /// sent on its own, with a deadline: one the database does not take
    /// (it is away) never holds up the call.
    pub(super) async fn kept_alive<T>(&self, transcript_id: i64, idx: i32, call: impl Future<Output = T>) -> T {
        let every = self.worker.services.settings.jobs.lease / 3;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tokio::pin!(call);
        loop {
            tokio::select! {
                out = &mut call => return out,
                _ = tick.tick() => {
                    let (db, worker) = (self.worker.services.db.clone(), self.caller());
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(every, db.keep_chunk_call(transcript_id, idx, &worker)).await;
                    });
                }
            }
        }
    }

    /// The call was not made, or failed with nothing to keep: give it up at
    /// once, so a retry does not wait for it (when the database is away, it
    /// lapses in ten leases instead).
    pub(super) async fn give_up_call(&self, transcript_id: i64, idx: i32) {
        let _ = self.worker.services.db.drop_chunk_call(transcript_id, idx, &self.caller()).await;
    }

    /// Writes a chunk that was paid for, again while the database is away
    /// (`keep`): the result is never thrown away for an outage, so the call
    /// is never made twice for one. True when this write kept it.
    pub(super) async fn keep_paid(&self, transcript_id: i64, chunk: &SavedChunk) -> Result<bool, JobError> {
        let db = &self.worker.services.db;
        Ok(keep::until_kept("a paid chunk", self.job.id, || db.save_chunk(transcript_id, chunk)).await?)
    }
}
