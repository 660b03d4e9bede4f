//! A transcription chunk's paid call while it is in flight (migration
//! 0013): who makes it, kept alive while they do. A worker that takes a job
//! over waits for a call still alive rather than paying for the chunk again.

use std::time::Duration;

use super::db::{cached, Db, Prepared};
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

/// Whether a chunk is kept (done, by anyone).
const KEPT: &str = "SELECT 1 FROM transcript_chunks WHERE transcript_id = $1 AND idx = $2";

/// Takes a chunk's call in one statement: the outer SELECT sees the row as
/// it was before the INSERT's CTE touched it, so `gone` describes the call
/// not taken. Never a chunk already kept: its caller's write deletes the
/// call row, and a row that is not there would otherwise be taken.
static TAKE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH kept AS (
           SELECT EXISTS (SELECT 1 FROM transcript_chunks k WHERE k.transcript_id = $1 AND k.idx = $2) AS kept),
         taken AS (
           INSERT INTO transcript_chunk_calls AS c (transcript_id, idx, worker, presence)
           SELECT $1, $2, $3, $4 FROM kept WHERE NOT kept.kept
           ON CONFLICT (transcript_id, idx) DO UPDATE
             SET worker = EXCLUDED.worker, presence = EXCLUDED.presence, alive_at = now()
            WHERE c.worker = EXCLUDED.worker OR ($8 AND {GONE})
           RETURNING 1)
         SELECT (SELECT kept FROM kept), EXISTS (SELECT 1 FROM taken),
                COALESCE((SELECT {GONE} FROM transcript_chunk_calls AS c
                           WHERE c.transcript_id = $1 AND c.idx = $2), false)"
    )
});

/// Whether a chunk's call is ours to make.
pub enum Take {
    Ours,
    /// The chunk is kept already: nobody's call to make (one taken while
    /// its keeper's write committed is given back).
    Kept,
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
        let (stale, gone) = (caller.stale.as_secs_f64(), caller.gone.as_secs_f64());
        let namespace = i64::from(caller.presence_namespace);
        let take_params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
            [&transcript_id, &idx, &caller.worker, &caller.presence, &stale, &gone, &namespace, &take_over];
        let kept_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&transcript_id, &idx];
        // Sent with the take, run after it: a keeper's write that committed
        // while the take ran deleted the call row the take would have met, and
        // the take's snapshot did not see the chunk it kept. Only this second
        // look, in a snapshot of its own, does.
        // Prepared first, so the two are sent in this order (`join` polls in order).
        let (take, kept) = (cached(&client, &TAKE).await?, cached(&client, KEPT).await?);
        let (taken, kept_since) =
            futures::future::join(client.query_one(&take, &take_params), client.query_opt(&kept, &kept_params)).await;
        let row = taken?;
        if row.get(0) {
            return Ok(Take::Kept);
        }
        if !row.get::<_, bool>(1) {
            return Ok(Take::Busy { gone: row.get(2) });
        }
        if kept_since?.is_some() {
            // Best effort: a call row left behind is never waited for, the chunk being kept.
            let _ = self.drop_chunk_call(transcript_id, idx, &caller.worker).await;
            return Ok(Take::Kept);
        }
        Ok(Take::Ours)
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
        Ok(client.query_opt_prepared(KEPT, &[&transcript_id, &idx]).await?.is_some())
    }
}
