//! A transcription chunk's paid call while it is in flight (migration
//! 0013): who makes it, kept alive while they do. A worker that takes a job
//! over waits for a call still alive rather than paying for the chunk again.

use std::time::Duration;

use super::{Db, StoreError};

/// Who takes a chunk's call, and when another's counts as gone.
pub struct Caller<'a> {
    /// This claim of the job: `{instance}#{incarnation}/{attempt}`.
    pub worker: &'a str,
    /// Its pool's presence lock key, and that lock's namespace.
    pub presence: &'a str,
    pub presence_namespace: i32,
    /// A call kept alive longer ago than this is gone, whatever else.
    pub stale: Duration,
    /// One kept alive longer ago than this is gone if its process is.
    pub gone: Duration,
}

/// A new incarnation of a pool (same instance, same presence lock) drops the
/// calls its predecessors left: their process is gone, and so are the calls.
pub async fn drop_predecessors_calls(
    client: &tokio_postgres::Client,
    presence: &str,
    incarnation: &str,
) -> Result<u64, StoreError> {
    Ok(client
        .execute(
            "DELETE FROM transcript_chunk_calls WHERE presence = $1 AND worker NOT LIKE $2 || '/%'",
            &[&presence, &incarnation],
        )
        .await?)
}

impl Db {
    /// Takes the call for chunk `idx` for `caller`, unless another caller's
    /// call for that chunk is alive: kept alive within `stale`, and, past
    /// `gone`, its process still holding its presence lock (a process that
    /// died drops the lock with its session at once; one cut off from the
    /// database by an outage keeps its call alive again as soon as it is back).
    pub async fn take_chunk_call(&self, transcript_id: i64, idx: i32, caller: &Caller<'_>) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let taken = client
            .query_opt(
                "INSERT INTO transcript_chunk_calls (transcript_id, idx, worker, presence) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (transcript_id, idx) DO UPDATE
                   SET worker = EXCLUDED.worker, presence = EXCLUDED.presence, alive_at = now()
                  WHERE transcript_chunk_calls.worker = EXCLUDED.worker
                     OR transcript_chunk_calls.alive_at < now() - make_interval(secs => $5)
                     OR (transcript_chunk_calls.alive_at < now() - make_interval(secs => $6)
                         AND NOT EXISTS (
                           SELECT 1 FROM pg_locks
                            WHERE locktype = 'advisory' AND granted AND objsubid = 2
                              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                              AND classid::int8 = $7
                              AND objid::int8 = (hashtext(transcript_chunk_calls.presence)::int8 & 4294967295)))
                 RETURNING 1",
                &[
                    &transcript_id,
                    &idx,
                    &caller.worker,
                    &caller.presence,
                    &caller.stale.as_secs_f64(),
                    &caller.gone.as_secs_f64(),
                    &i64::from(caller.presence_namespace),
                ],
            )
            .await?;
        Ok(taken.is_some())
    }

    /// `worker`'s call for the chunk is still in flight.
    pub async fn keep_chunk_call(&self, transcript_id: i64, idx: i32, worker: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE transcript_chunk_calls SET alive_at = now()
                  WHERE transcript_id = $1 AND idx = $2 AND worker = $3",
                &[&transcript_id, &idx, &worker],
            )
            .await?;
        Ok(())
    }

    /// `worker` makes no call for the chunk after all (it failed before or
    /// without a result): the next attempt need not wait for it.
    pub async fn drop_chunk_call(&self, transcript_id: i64, idx: i32, worker: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM transcript_chunk_calls WHERE transcript_id = $1 AND idx = $2 AND worker = $3",
                &[&transcript_id, &idx, &worker],
            )
            .await?;
        Ok(())
    }

    /// Whether chunk `idx` of the transcript is kept (done, by anyone).
    pub async fn chunk_kept(&self, transcript_id: i64, idx: i32) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT 1 FROM transcript_chunks WHERE transcript_id = $1 AND idx = $2", &[&transcript_id, &idx])
            .await?;
        Ok(row.is_some())
    }
}
