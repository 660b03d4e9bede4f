//! What a pool does on its slow tick besides claiming: reaps jobs whose
//! worker died on their last attempt, sweeps what retention no longer keeps,
//! and reports the queue's depth.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::handler::{DeadReason, JobHandler};
use crate::jobs::queue;
use crate::jobs::JobState;
use crate::ledger;
use crate::services::Services;
use crate::store::Db;

/// Jobs that lost their worker on their last attempt: dead, refunded, and
/// their handler told.
pub(super) async fn reap(services: &Services, handler: Option<&Arc<dyn JobHandler>>, kind: &str) {
    match ledger::reap_exhausted(&services.db, kind).await {
        Ok(dead) => {
            for job in dead {
                tracing::error!(job_id = job.id, kind, "job lost its worker on its last attempt; dead and refunded");
                metrics::counter!("aishad_jobs_dead_total", "kind" => kind.to_owned()).increment(1);
                if let Some(handler) = handler {
                    let reason = DeadReason::Exhausted(job.last_error.clone().unwrap_or_default());
                    handler.on_dead(job, reason).await;
                }
            }
        }
        Err(e) => tracing::warn!(kind, error = %e, "reaping exhausted jobs failed"),
    }
}

/// Deletes what retention no longer keeps, and checks that every balance is
/// the sum of its ledger entries.
pub(super) async fn sweep(services: &Services) {
    match services.db.sweep(&services.settings.retention).await {
        Ok(swept) => {
            tracing::debug!(?swept, "retention sweep");
            metrics::counter!("aishad_retention_deleted_total", "what" => "updates").increment(swept.updates);
            metrics::counter!("aishad_retention_deleted_total", "what" => "fal_callbacks")
                .increment(swept.callbacks + swept.orphans);
            metrics::counter!("aishad_retention_deleted_total", "what" => "jobs").increment(swept.jobs);
        }
        Err(e) => tracing::warn!(error = %e, "retention sweep failed; trying again later"),
    }
    match services.db.ledger_check().await {
        Ok(None) => {}
        Ok(Some(check)) => {
            if check.drifted > 0 || check.negative > 0 {
                tracing::error!(
                    drifted = check.drifted,
                    negative = check.negative,
                    "the ledger check found balances that do not add up"
                );
            }
            metrics::gauge!("aishad_ledger_drift_users").set(check.drifted as f64);
            metrics::gauge!("aishad_ledger_negative_balances").set(check.negative as f64);
        }
        Err(e) => tracing::warn!(error = %e, "ledger check failed; trying again later"),
    }
}

/// The queue's depth by kind and state, for every kind in `kinds`, which
/// gains each kind seen waiting (so one that empties reads 0, not its last count).
pub(super) async fn report_depth(db: &Db, kinds: &mut BTreeSet<String>) {
    let depth = match queue::depth(db).await {
        Ok(depth) => depth,
        Err(e) => return tracing::debug!(error = %e, "could not read the queue's depth"),
    };
    kinds.extend(depth.iter().map(|d| d.kind.clone()));
    for kind in kinds.iter() {
        for job_state in [JobState::Queued, JobState::Running] {
            let found = depth.iter().find(|d| d.kind == *kind && d.state == job_state);
            metrics::gauge!("aishad_jobs", "kind" => kind.clone(), "state" => job_state.as_str())
                .set(found.map_or(0, |d| d.count) as f64);
            if job_state == JobState::Queued {
                let oldest = found.map_or(0.0, |d| d.oldest_seconds);
                metrics::gauge!("aishad_job_oldest_queued_seconds", "kind" => kind.clone()).set(oldest);
            }
        }
    }
}
