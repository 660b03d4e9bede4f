//! Deleting raw inputs and finished work once they are no longer needed
//! (see `RetentionSettings`); never a money row. Idempotent: every worker
//! may run it.

use std::time::Duration;

use super::db::Db;
use super::error::StoreError;
use crate::settings::RetentionSettings;

/// Rows deleted by one sweep.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub updates: u64,
    pub callbacks: u64,
    pub orphans: u64,
    pub jobs: u64,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Db {
    pub async fn sweep(&self, keep: &RetentionSettings) -> Result<Swept, StoreError> {
        let client = self.client().await?;
        // The newest update stays whatever its age: the getUpdates offset is derived from it.
        let updates = client
            .execute(
                "DELETE FROM telegram_updates
                 WHERE handled_at IS NOT NULL AND received_at < now() - make_interval(secs => $1)
                   AND update_id < (SELECT max(update_id) FROM telegram_updates)",
                &[&secs(keep.updates)],
            )
            .await?;
        let callbacks = client
            .execute(
                "DELETE FROM fal_callbacks c USING fal_requests r
                 WHERE c.request_id = r.request_id AND r.state <> 'submitted'
                   AND c.received_at < now() - make_interval(secs => $1)",
                &[&secs(keep.fal_callbacks)],
            )
            .await?;
        let orphans = client
            .execute(
                "DELETE FROM fal_callbacks c
                 WHERE c.received_at < now() - make_interval(secs => $1)
                   AND NOT EXISTS (SELECT 1 FROM fal_requests r WHERE r.request_id = c.request_id)",
                &[&secs(keep.orphan_callbacks)],
            )
            .await?;
        // Never a job a money row, a transcript or a FAL request points at:
        // the ledger is kept whole, and what it points to with it.
        let jobs = client
            .execute(
                "DELETE FROM jobs j
                 WHERE j.state IN ('done', 'dead', 'cancelled')
                   AND j.updated_at < now() - make_interval(secs => $1)
                   AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.job_id = j.id)
                   AND NOT EXISTS (SELECT 1 FROM transcripts t WHERE t.job_id = j.id)
                   AND NOT EXISTS (SELECT 1 FROM fal_requests r WHERE r.job_id = j.id)",
                &[&secs(keep.jobs)],
            )
            .await?;
        Ok(Swept { updates, callbacks, orphans, jobs })
    }
}
