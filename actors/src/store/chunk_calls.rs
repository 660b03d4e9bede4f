//! A transcription chunk's paid call while it is in flight (migration
//! 0013): who makes it, kept alive while they do. A worker that takes a job
//! over waits for a call still alive rather than paying for the chunk again.

use std::time::Duration;

use super::db::{Db, Prepared};
use super::error::StoreError;

/// Whether another caller's call (row `c`) is gone: not kept alive within
/// `$5`, or not within `$6` while its process holds no presence lock.
const GONE: &str = "(c.alive_at < now() - make_interval(secs => $5)
    OR (c.alive_at < now() - make_interval(secs => $6)
        AND NOT EXISTS (
          SELECT 1 FROM pg_locks
           WHERE locktype = 'advisory' AND granted AND objsubid = 2
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND classid::int8 = $7 AND objid::int8 = (hashtext(c.presence)::int8 & 4294967295))))";

/// Whether a chunk's call is ours to make.
pub enum Take {
    Ours,
    /// Another caller has it; `gone` when it looks gone (see `GONE`).
    Busy {
        gone: bool,
    },
}

/// Who takes a chunk's call, and when another's counts as gone.
pub struct Caller<'a> {
    /// This claim of the job: `{instance}#{incarnation}/{attempt}`.
    pub worker: String,
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
    /// Takes the call for chunk `idx` for `caller` when nobody has it, or
    /// when `take_over` and another caller's call is gone: not kept alive
    /// within `stale`, or, past `gone`, its process holding no presence lock
    /// (a process that died drops it with its session at once).
    pub async fn take_chunk_call(
        &self,
        transcript_id: i64,
        idx: i32,
        caller: &Caller<'_>,
        take_over: bool,
    ) -> Result<Take, StoreError> {
        let client = self.client().await?;
        // One statement: the outer SELECT sees the row as it was before the
        // INSERT's CTE touched it, so `gone` describes the call we did not take.
        // Never a chunk already kept: its caller's write deletes the call row,
        // and a row that is not there would otherwise be taken.
        let row = client
            .query_one_prepared(
                &format!(
                    "WITH taken AS (
                       INSERT INTO transcript_chunk_calls AS c (transcript_id, idx, worker, presence)
                       SELECT $1, $2, $3, $4
                        WHERE NOT EXISTS (SELECT 1 FROM transcript_chunks k WHERE k.transcript_id = $1 AND k.idx = $2)
                       ON CONFLICT (transcript_id, idx) DO UPDATE
                         SET worker = EXCLUDED.worker, presence = EXCLUDED.presence, alive_at = now()
                        WHERE c.worker = EXCLUDED.worker OR ($8 AND {GONE})
                       RETURNING 1)
                     SELECT EXISTS (SELECT 1 FROM taken),
                            COALESCE((SELECT {GONE} FROM transcript_chunk_calls AS c
                                       WHERE c.transcript_id = $1 AND c.idx = $2), false)"
                ),
                &[
                    &transcript_id,
                    &idx,
                    &caller.worker,
                    &caller.presence,
                    &caller.stale.as_secs_f64(),
                    &caller.gone.as_secs_f64(),
                    &i64::from(caller.presence_namespace),
                    &take_over,
                ],
            )
            .await?;
        Ok(if row.get(0) { Take::Ours } else { Take::Busy { gone: row.get(1) } })
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
            .query_opt_prepared(
                "SELECT 1 FROM transcript_chunks WHERE transcript_id = $1 AND idx = $2",
                &[&transcript_id, &idx],
            )
            .await?;
        Ok(row.is_some())
    }
}
