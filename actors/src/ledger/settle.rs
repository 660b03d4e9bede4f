//! The queue's unpaid endings with the refunds they owe, each in one
//! transaction: a job that dies or is cancelled gives back what it cost,
//! once, and the job's new state and the refund commit together.

use std::time::Duration;

use super::book::refund_job;
use crate::jobs::queue::{self, Failed};
use crate::jobs::Job;
use crate::store::{Db, StoreError};

/// A failed attempt: retried while attempts remain, otherwise dead and refunded.
pub async fn fail_job(
    db: &Db,
    id: i64,
    instance: &str,
    error: &str,
    retry_after: Option<Duration>,
) -> Result<Failed, StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let outcome = queue::fail(&tx, id, instance, error, retry_after).await?;
    if let Failed::Dead(job) = &outcome {
        refund_job(&tx, job).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Cancels a job no worker holds and refunds it; `None` when a worker runs
/// it or it finished (nothing cancelled, nothing refunded).
pub async fn cancel_job(db: &Db, id: i64, reason: &str) -> Result<Option<Job>, StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let cancelled = queue::cancel(&tx, id, reason).await?;
    if let Some(job) = &cancelled {
        refund_job(&tx, job).await?;
    }
    tx.commit().await?;
    Ok(cancelled)
}

/// Jobs of `kind` whose last worker died on their last attempt: dead, refunded.
pub async fn reap_exhausted(db: &Db, kind: &str) -> Result<Vec<Job>, StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let dead = queue::reap_exhausted(&tx, kind).await?;
    for job in &dead {
        refund_job(&tx, job).await?;
    }
    tx.commit().await?;
    Ok(dead)
}
