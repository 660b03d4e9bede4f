//! A transcription chunk's paid call while it is in flight (migration
//! 0013): who makes it, kept alive while they do. A worker that takes a job
//! over waits for a call still alive rather than paying for the chunk again.

use std::time::Duration;

use super::{Db, StoreError};

impl Db {
    /// Takes the call for chunk `idx` for `worker`, unless another worker
    /// kept its call for that chunk alive within `stale`: true when ours.
    pub async fn take_chunk_call(
        &self,
        transcript_id: i64,
        idx: i32,
        worker: &str,
        stale: Duration,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let taken = client
            .query_opt(
                "INSERT INTO transcript_chunk_calls (transcript_id, idx, worker) VALUES ($1, $2, $3)
                 ON CONFLICT (transcript_id, idx) DO UPDATE SET worker = EXCLUDED.worker, alive_at = now()
                  WHERE transcript_chunk_calls.worker = EXCLUDED.worker
                     OR transcript_chunk_calls.alive_at < now() - make_interval(secs => $4)
                 RETURNING 1",
                &[&transcript_id, &idx, &worker, &stale.as_secs_f64()],
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
