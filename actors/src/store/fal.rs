//! FAL requests and callbacks. A callback is recorded once per request id,
//! and the job that delivers its result is queued in the same transaction;
//! whichever of "submission recorded" and "callback recorded" commits second
//! queues the delivery, so a callback that beats the submission is not lost.

use serde_json::{json, Value};
use tokio_postgres::GenericClient;

use super::{Db, StoreError};
use crate::jobs::{queue, NewJob, QueueError};

pub const DELIVER_KIND: &str = "fal.deliver";
pub const POLL_KIND: &str = "fal.poll";

#[derive(Debug, Clone, PartialEq)]
pub struct FalRequest {
    pub request_id: String,
    pub job_id: i64,
    pub user_id: i64,
    pub chat_id: i64,
    pub kind: String,
    pub model: String,
    pub status_url: String,
    pub response_url: String,
    pub cancel_url: String,
    pub avatar_id: Option<i64>,
    pub prompt: Option<String>,
    pub aspect_ratio: Option<String>,
    pub language: Option<String>,
    pub state: String,
    pub age_seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub status: String,
    pub body: Value,
    pub source: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FalStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("FAL store query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

const COLUMNS: &str = "request_id, job_id, user_id, chat_id, kind, model, status_url, response_url, cancel_url, \
                       avatar_id, prompt, aspect_ratio, language, state, \
                       extract(epoch FROM now() - created_at)::float8 AS age_seconds";

fn request(row: &tokio_postgres::Row) -> FalRequest {
    FalRequest {
        request_id: row.get("request_id"),
        job_id: row.get("job_id"),
        user_id: row.get("user_id"),
        chat_id: row.get("chat_id"),
        kind: row.get("kind"),
        model: row.get("model"),
        status_url: row.get("status_url"),
        response_url: row.get("response_url"),
        cancel_url: row.get("cancel_url"),
        avatar_id: row.get("avatar_id"),
        prompt: row.get("prompt"),
        aspect_ratio: row.get("aspect_ratio"),
        language: row.get("language"),
        state: row.get("state"),
        age_seconds: row.get("age_seconds"),
    }
}

async fn enqueue_delivery(tx: &impl GenericClient, request_id: &str) -> Result<(), QueueError> {
    let job = NewJob { max_attempts: 10, ..NewJob::new(DELIVER_KIND, format!("fal:deliver:{request_id}"), json!({ "request_id": request_id })) };
    queue::enqueue(tx, &job).await.map(|_| ())
}

impl Db {
    /// Records a submission and queues its safety-net poll (after
    /// `poll_after`); queues the delivery at once if its callback already came.
    pub async fn record_fal_request(&self, r: &FalRequest, poll_after: std::time::Duration) -> Result<(), FalStoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO fal_requests (request_id, job_id, user_id, chat_id, kind, model, status_url, response_url,
                                       cancel_url, avatar_id, prompt, aspect_ratio, language)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (request_id) DO NOTHING",
            &[
                &r.request_id, &r.job_id, &r.user_id, &r.chat_id, &r.kind, &r.model, &r.status_url, &r.response_url,
                &r.cancel_url, &r.avatar_id, &r.prompt, &r.aspect_ratio, &r.language,
            ],
        )
        .await?;
        let poll = NewJob {
            max_attempts: 100_000,
            delay: poll_after,
            ..NewJob::new(POLL_KIND, format!("fal:poll:{}", r.request_id), json!({ "request_id": r.request_id }))
        };
        queue::enqueue(&*tx, &poll).await?;
        let early = tx.query_opt("SELECT 1 FROM fal_callbacks WHERE request_id = $1", &[&r.request_id]).await?;
        if early.is_some() {
            enqueue_delivery(&*tx, &r.request_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a callback (or a polled result) once. Returns false for a
    /// duplicate, which changes nothing.
    pub async fn record_fal_callback(&self, request_id: &str, status: &str, body: &Value, source: &str) -> Result<bool, FalStoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .execute(
                "INSERT INTO fal_callbacks (request_id, status, body, source) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (request_id) DO NOTHING",
                &[&request_id, &status, body, &source],
            )
            .await?;
        if inserted == 0 {
            return Ok(false);
        }
        let known = tx.query_opt("SELECT 1 FROM fal_requests WHERE request_id = $1", &[&request_id]).await?;
        if known.is_some() {
            enqueue_delivery(&*tx, request_id).await?;
        } else {
            tracing::warn!(request_id, "callback for a request not recorded (yet); stored for its submission");
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn fal_request(&self, request_id: &str) -> Result<Option<FalRequest>, StoreError> {
        let client = self.client().await?;
        let row = client.query_opt(&format!("SELECT {COLUMNS} FROM fal_requests WHERE request_id = $1"), &[&request_id]).await?;
        Ok(row.as_ref().map(request))
    }

    pub async fn fal_request_for_avatar(&self, avatar_id: i64) -> Result<Option<FalRequest>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM fal_requests WHERE avatar_id = $1 AND kind = 'train' ORDER BY created_at DESC LIMIT 1"),
                &[&avatar_id],
            )
            .await?;
        Ok(row.as_ref().map(request))
    }

    pub async fn fal_callback(&self, request_id: &str) -> Result<Option<Callback>, StoreError> {
        let client = self.client().await?;
        let row = client.query_opt("SELECT status, body, source FROM fal_callbacks WHERE request_id = $1", &[&request_id]).await?;
        Ok(row.map(|r| Callback { status: r.get(0), body: r.get(1), source: r.get(2) }))
    }

    /// Moves a submitted request to `state`; false if it had already left `submitted`.
    pub async fn finish_fal_request(&self, request_id: &str, state: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE fal_requests SET state = $2, finished_at = now() WHERE request_id = $1 AND state = 'submitted'",
                &[&request_id, &state],
            )
            .await?;
        Ok(n == 1)
    }

    /// Refunds the job that paid for a request; true when coins moved.
    pub async fn refund_fal_request(&self, r: &FalRequest) -> Result<bool, FalStoreError> {
        let Some(job) = queue::get(self, r.job_id).await? else { return Ok(false) };
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let refunded = crate::ledger::refund_job(&*tx, &job).await?;
        tx.commit().await?;
        Ok(refunded)
    }
}
