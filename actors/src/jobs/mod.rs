//! Jobs: the rows of the durable queue in PostgreSQL, how a kind of work is
//! declared (`kind`: each worker declares its own), and the queue's state
//! machine (`queue`). The queue knows kinds by name and payloads as JSON:
//! nothing of Telegram, transcription or FAL. What a failure costs or
//! refunds is the ledger's business; who runs jobs, the pool's.

pub mod kind;
pub mod queue;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::clients::{ApiError, Failure};
use crate::store::text_enum;

text_enum! {
    /// Where a job stands (`jobs.state`).
    pub enum JobState {
        Queued = "queued",
        Running = "running",
        Done = "done",
        Dead = "dead",
        Cancelled = "cancelled",
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

impl Job {
    /// The typed payload; a payload that does not fit its kind is a bug no retry fixes.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.payload.clone())
            .map_err(|e| JobError::Broken(format!("malformed {} job: {e}", self.kind)))
    }

    /// The user's language for messages about this job (every payload for a
    /// chat carries it).
    pub fn language(&self) -> Option<&str> {
        self.payload["language"].as_str()
    }
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

/// How a job attempt failed, which decides what happens next, and whose
/// words its text is: only [`JobError::Refused`] carries text for the
/// user's chat; everything else is for the operator's logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// May pass (a 5xx, a timeout): retried with backoff while attempts remain.
    #[error("{0}")]
    Retry(String),
    /// The other side asked for a pause (429 `Retry-After`).
    #[error("{reason} (retry after {after:?})")]
    RetryAfter { after: Duration, reason: String },
    /// The request cannot be done for a reason the user should know (too
    /// long, unreadable, no avatar): dead at once, refunded, and this text
    /// (from `chat::texts`, in their language) tells them why.
    #[error("refused: {0}")]
    Refused(String),
    /// As `Refused`, but the user was told why already (with a button).
    #[error("refused; the user was told")]
    RefusedAndTold,
    /// Ours to fix (a revoked key, a malformed job): dead at once, refunded;
    /// the user hears only that the service is unavailable.
    #[error("{0}")]
    Broken(String),
    /// Handed back by a worker that is stopping, once what it had paid for
    /// is kept: queued again at once for another worker, the attempt not
    /// counted against the job.
    #[error("handed back by a stopping worker")]
    Yield,
    /// The database refused a write (it turned read-only: a failover under
    /// way): handed back as `Yield` is, the attempt not counted, for a
    /// connection to the new primary to take up.
    #[error("the database turned read-only under the job: {0}")]
    DatabaseMoved(String),
}

impl JobError {
    /// A failure that may pass, from anything that says what happened.
    pub fn retry(e: impl std::fmt::Display) -> Self {
        JobError::Retry(e.to_string())
    }

    /// A final failure that is ours to fix, from anything that says what happened.
    pub fn broken(e: impl std::fmt::Display) -> Self {
        JobError::Broken(e.to_string())
    }

    /// Whether retrying cannot help: the job dies at once.
    pub fn is_final(&self) -> bool {
        matches!(self, JobError::Refused(_) | JobError::RefusedAndTold | JobError::Broken(_))
    }
}

/// Our own services failing (PostgreSQL, S3, the disk) may pass: a restart,
/// a failover, space freed. Retried with backoff like any other passing failure.
macro_rules! passing_failure {
    ($($source:ty),*) => {$(
        impl From<$source> for JobError {
            fn from(e: $source) -> Self {
                JobError::Retry(crate::error::chain(&e))
            }
        }
    )*};
}
passing_failure!(crate::blob::BlobError, std::io::Error);

impl From<crate::store::StoreError> for JobError {
    fn from(e: crate::store::StoreError) -> Self {
        match e.is_read_only() {
            true => JobError::DatabaseMoved(crate::error::chain(&e)),
            false => JobError::Retry(crate::error::chain(&e)),
        }
    }
}

/// What an OpenAI or FAL failure means for the job (see `clients::Failure`):
/// wait when asked, retry what may pass, give up on the rest, and alert an
/// operator when it is theirs to fix (the user hears only "unavailable").
impl<E: ApiError> From<E> for JobError {
    fn from(e: E) -> Self {
        match e.failure() {
            Failure::RetryAfter(after) => {
                JobError::RetryAfter { after: after.unwrap_or(DEFAULT_RETRY_AFTER), reason: e.to_string() }
            }
            Failure::Passing => JobError::Retry(e.to_string()),
            Failure::Refused => JobError::Broken(e.to_string()),
            Failure::NeedsOperator => {
                tracing::error!(alert = e.alert(), error = %e, "an outside API needs an operator: failing the job");
                metrics::counter!("aishad_alerts_total", "alert" => e.alert()).increment(1);
                JobError::Broken(e.to_string())
            }
        }
    }
}

/// How long to wait on a 429 that does not say.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(20);

/// Telegram's 429 carries how long to wait; everything else may pass too.
impl From<teloxide::RequestError> for JobError {
    fn from(e: teloxide::RequestError) -> Self {
        match e {
            teloxide::RequestError::RetryAfter(s) => {
                JobError::RetryAfter { after: s.duration(), reason: "Telegram 429".into() }
            }
            other => JobError::Retry(format!("Telegram: {other}")),
        }
    }
}
