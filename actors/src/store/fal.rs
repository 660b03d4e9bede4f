//! FAL requests and their callbacks, as rows. What recording one sets in
//! motion (queueing delivery or a poll, refunds) is `fal_job::requests`' business.

use serde_json::Value;

use super::db::Db;
use super::error::{text_column, text_enum, StoreError};
use deadpool_postgres::GenericClient;

text_enum! {
    /// What a FAL request makes (`fal_requests.kind`).
    pub enum FalKind {
        Imagine = "imagine",
        Generate = "generate",
        Train = "train",
    }
}

text_enum! {
    /// Where a FAL request stands (`fal_requests.state`).
    pub enum FalState {
        /// At FAL, its result still to come.
        Submitted = "submitted",
        /// Its result stored (and sent, or being sent).
        Delivered = "delivered",
        /// No result will come; refunded.
        Failed = "failed",
        /// Called off by the user; refunded.
        Cancelled = "cancelled",
        /// Its user asked to be forgotten: a result that comes is dropped.
        Forgotten = "forgotten",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FalRequest {
    pub request_id: String,
    pub job_id: i64,
    pub user_id: i64,
    pub chat_id: i64,
    pub kind: FalKind,
    pub model: String,
    pub status_url: String,
    pub response_url: String,
    pub cancel_url: String,
    pub avatar_id: Option<i64>,
    pub prompt: Option<String>,
    pub aspect_ratio: Option<String>,
    pub language: Option<String>,
    pub state: FalState,
    pub age_seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub status: String,
    pub body: Value,
    pub source: String,
}

const COLUMNS: &str = "request_id, job_id, user_id, chat_id, kind, model, status_url, response_url, cancel_url, \
                       avatar_id, prompt, aspect_ratio, language, state, \
                       extract(epoch FROM now() - created_at)::float8 AS age_seconds";

fn request(row: &tokio_postgres::Row) -> Result<FalRequest, StoreError> {
    Ok(FalRequest {
        request_id: row.get("request_id"),
        job_id: row.get("job_id"),
        user_id: row.get("user_id"),
        chat_id: row.get("chat_id"),
        kind: text_column(row, "kind", FalKind::parse)?,
        model: row.get("model"),
        status_url: row.get("status_url"),
        response_url: row.get("response_url"),
        cancel_url: row.get("cancel_url"),
        avatar_id: row.get("avatar_id"),
        prompt: row.get("prompt"),
        aspect_ratio: row.get("aspect_ratio"),
        language: row.get("language"),
        state: text_column(row, "state", FalState::parse)?,
        age_seconds: row.get("age_seconds"),
    })
}

/// Adds a submission, unless that request id is already recorded.
pub async fn insert_request(tx: &impl GenericClient, r: &FalRequest) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO fal_requests (request_id, job_id, user_id, chat_id, kind, model, status_url, response_url,
                                   cancel_url, avatar_id, prompt, aspect_ratio, language)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (request_id) DO NOTHING",
        &[
            &r.request_id,
            &r.job_id,
            &r.user_id,
            &r.chat_id,
            &r.kind.as_str(),
            &r.model,
            &r.status_url,
            &r.response_url,
            &r.cancel_url,
            &r.avatar_id,
            &r.prompt,
            &r.aspect_ratio,
            &r.language,
        ],
    )
    .await?;
    Ok(())
}

/// Adds a callback; false when one was already recorded for that request.
pub async fn insert_callback(
    tx: &impl GenericClient,
    request_id: &str,
    status: &str,
    body: &Value,
    source: &str,
) -> Result<bool, StoreError> {
    let inserted = tx
        .execute(
            "INSERT INTO fal_callbacks (request_id, status, body, source) VALUES ($1, $2, $3, $4)
             ON CONFLICT (request_id) DO NOTHING",
            &[&request_id, &status, body, &source],
        )
        .await?;
    Ok(inserted == 1)
}

pub async fn request_exists(client: &impl GenericClient, request_id: &str) -> Result<bool, StoreError> {
    Ok(client.query_opt("SELECT 1 FROM fal_requests WHERE request_id = $1", &[&request_id]).await?.is_some())
}

pub async fn callback_exists(client: &impl GenericClient, request_id: &str) -> Result<bool, StoreError> {
    Ok(client.query_opt("SELECT 1 FROM fal_callbacks WHERE request_id = $1", &[&request_id]).await?.is_some())
}

/// Moves a submitted request to `state`, returning it; `None` if it had already left `submitted`.
pub async fn finish_request(
    client: &impl GenericClient,
    request_id: &str,
    state: FalState,
) -> Result<Option<FalRequest>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "UPDATE fal_requests SET state = $2, finished_at = now() WHERE request_id = $1 AND state = 'submitted'
                 RETURNING {COLUMNS}"
            ),
            &[&request_id, &state.as_str()],
        )
        .await?;
    row.as_ref().map(request).transpose()
}

impl Db {
    pub async fn fal_request(&self, request_id: &str) -> Result<Option<FalRequest>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {COLUMNS} FROM fal_requests WHERE request_id = $1"), &[&request_id])
            .await?;
        row.as_ref().map(request).transpose()
    }

    /// The request a submit job made, if it made one (at most one: `job_id` is unique).
    pub async fn fal_request_for_job(&self, job_id: i64) -> Result<Option<FalRequest>, StoreError> {
        let client = self.client().await?;
        let row =
            client.query_opt(&format!("SELECT {COLUMNS} FROM fal_requests WHERE job_id = $1"), &[&job_id]).await?;
        row.as_ref().map(request).transpose()
    }

    /// This user's requests of `kind` still being made at FAL.
    pub async fn fal_requests_submitted(&self, user_id: i64, kind: FalKind) -> Result<Vec<FalRequest>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM fal_requests WHERE user_id = $1 AND kind = $2 AND state = 'submitted'"),
                &[&user_id, &kind.as_str()],
            )
            .await?;
        rows.iter().map(request).collect()
    }

    /// Requests of this user still being made at FAL.
    pub async fn fal_requests_in_flight(&self, user_id: i64) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT count(*) FROM fal_requests WHERE user_id = $1 AND state = 'submitted'", &[&user_id])
            .await?;
        Ok(row.get(0))
    }

    pub async fn fal_request_for_avatar(&self, avatar_id: i64) -> Result<Option<FalRequest>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM fal_requests WHERE avatar_id = $1 AND kind = 'train' ORDER BY created_at DESC LIMIT 1"),
                &[&avatar_id],
            )
            .await?;
        row.as_ref().map(request).transpose()
    }

    pub async fn fal_callback(&self, request_id: &str) -> Result<Option<Callback>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT status, body, source FROM fal_callbacks WHERE request_id = $1", &[&request_id])
            .await?;
        Ok(row.map(|r| Callback { status: r.get(0), body: r.get(1), source: r.get(2) }))
    }

    /// Moves a submitted request to `state`; false if it had already left `submitted`.
    pub async fn finish_fal_request(&self, request_id: &str, state: FalState) -> Result<bool, StoreError> {
        Ok(finish_request(&self.client().await?, request_id, state).await?.is_some())
    }
}
