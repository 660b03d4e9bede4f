//! The durable job queue in PostgreSQL and the worker pool that drains it.

pub mod listener;
pub mod pool;
pub mod queue;
mod runner;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;

use crate::store::StoreError;

pub use pool::{JobPool, JobPoolArgs, PoolMsg};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Dead,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            _ => JobState::Cancelled,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub state: JobState,
    pub user_id: Option<i64>,
    pub chat_id: Option<i64>,
    pub payload: Value,
    pub idempotency_key: String,
    pub cost: i64,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub locked_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub user_id: Option<i64>,
    pub chat_id: Option<i64>,
    pub payload: Value,
    pub idempotency_key: String,
    pub cost: i64,
    pub max_attempts: i32,
    /// Run no earlier than this from now.
    pub delay: Duration,
}

impl NewJob {
    pub fn new(kind: &str, idempotency_key: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            user_id: None,
            chat_id: None,
            payload,
            idempotency_key: idempotency_key.into(),
            cost: 0,
            max_attempts: 5,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job queue query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
}

/// How a job attempt failed, which decides what happens next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// May pass (a 5xx, a timeout): retried with backoff while attempts remain.
    #[error("{0}")]
    Retry(String),
    /// The other side asked for a pause (429 `Retry-After`).
    #[error("{reason} (retry after {after:?})")]
    RetryAfter { after: Duration, reason: String },
    /// Won't pass by retrying (bad input, no quota): dead at once, refunded.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    /// A failure that may pass, from anything that says what happened.
    pub fn retry(e: impl std::fmt::Display) -> Self {
        JobError::Retry(e.to_string())
    }
}

/// Telegram's 429 carries how long to wait; everything else may pass too.
impl From<teloxide::RequestError> for JobError {
    fn from(e: teloxide::RequestError) -> Self {
        match e {
            teloxide::RequestError::RetryAfter(s) => JobError::RetryAfter { after: s.duration(), reason: "Telegram 429".into() },
            other => JobError::Retry(format!("Telegram: {other}")),
        }
    }
}

/// Context a handler gets with its job.
#[derive(Clone)]
pub struct JobContext {
    pub instance_id: String,
    /// Becomes true when the job was cancelled or its lease lost: stop early.
    pub cancelled: tokio::sync::watch::Receiver<bool>,
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Job kind → handler, as a pool is given them.
pub type Handlers = Vec<(&'static str, std::sync::Arc<dyn JobHandler>)>;

/// Why a job died; it has been refunded either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadReason {
    /// A [`JobError::Permanent`]: its text is meant for the user.
    Permanent(String),
    /// Out of attempts (or the worker kept dying): the last error, for logs.
    Exhausted(String),
}

/// The work of one job kind. `run` may be called again for the same job
/// (retries, a lapsed lease), so it must be idempotent.
pub trait JobHandler: Send + Sync + 'static {
    fn run(&self, job: Job, ctx: JobContext) -> BoxFuture<Result<Value, JobError>>;

    /// Once, after a job died and was refunded: tell the user.
    fn on_dead(&self, _job: Job, _reason: DeadReason) -> BoxFuture<()> {
        Box::pin(async {})
    }

    /// Checked when the pool starts; an error fails the start (and so the
    /// supervisor retries it), e.g. when ffmpeg is missing.
    fn preflight(&self) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}
