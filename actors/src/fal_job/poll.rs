//! `fal.poll`: queued with every submission to run after `fal.poll_after`.
//! If no callback has come by then, it asks FAL for the status, backing off,
//! until the request completes (recorded as if called back) or times out.

use std::time::Duration;

use serde_json::{json, Value};

use super::kinds::FalRequestRef;
use super::requests;
use super::shared::FalJobs;
use crate::clients::fal::FalError;
use crate::jobs::{Job, JobError};
use crate::store::fal::{FalKind, FalState};

pub(super) async fn poll(f: &FalJobs, job: &Job) -> Result<Value, JobError> {
    let db = &f.services.db;
    let settings = &f.services.settings.fal;
    let FalRequestRef { request_id } = job.payload_as()?;
    let request_id = request_id.as_str();
    if db.fal_callback(request_id).await?.is_some() {
        return Ok(json!({ "outcome": "called back" }));
    }
    let Some(request) = db.fal_request(request_id).await? else {
        return Ok(json!({ "outcome": "unknown request" }));
    };
    if request.state != FalState::Submitted {
        return Ok(json!({ "outcome": request.state.as_str() }));
    }
    let timeout = if request.kind == FalKind::Train { settings.training_timeout } else { settings.image_timeout };
    if request.age_seconds > timeout.as_secs_f64() {
        let body = json!({ "request_id": request_id, "status": "ERROR", "error": format!("no result within {}", humantime::format_duration(timeout)) });
        requests::record_callback(db, request_id, "ERROR", &body, "timeout").await?;
        return Ok(json!({ "outcome": "timed out" }));
    }
    let status = f.fal.status(&request.status_url).await?;
    if status != "COMPLETED" {
        // 5 s, 10 s, 20 s … up to a minute between looks.
        let after = Duration::from_secs(5u64.saturating_mul(1 << job.attempts.clamp(0, 4)).min(60));
        return Err(JobError::RetryAfter { after, reason: format!("FAL status {status}") });
    }
    let body = match f.fal.result(&request.response_url).await {
        Ok(payload) => json!({ "request_id": request_id, "status": "OK", "payload": payload }),
        Err(FalError::Rejected { message, .. }) => {
            json!({ "request_id": request_id, "status": "ERROR", "error": message })
        }
        Err(e) => return Err(e.into()),
    };
    let status = body["status"].as_str().unwrap_or("ERROR").to_owned();
    requests::record_callback(db, request_id, &status, &body, "poll").await?;
    tracing::info!(request_id, status, "FAL result fetched by polling");
    Ok(json!({ "outcome": "polled", "status": status }))
}
