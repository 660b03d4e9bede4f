//! A kind of work, declared once beside its worker (as sqlxmq's jobs are):
//! the name the `jobs` table and the `jobs.kinds.<name>` settings use, the
//! type of its payload, the attempts it gets, and what a user calls it. The
//! queue knows a kind by its name only; what it means is its worker's.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Job, JobError, NewJob};

/// What a user calls a kind of work, in the bot's two languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Title {
    pub ru: &'static str,
    pub en: &'static str,
}

/// A kind of work whose jobs carry a `P`.
pub struct JobKind<P> {
    pub name: &'static str,
    pub title: Title,
    /// Attempts before a job is dead (its user told, refunded), unless
    /// `jobs.kinds.<name>.max_attempts` says otherwise.
    pub max_attempts: i32,
    payload: PhantomData<fn() -> P>,
}

impl<P> JobKind<P> {
    pub const fn new(name: &'static str, title: Title, max_attempts: i32) -> Self {
        Self { name, title, max_attempts, payload: PhantomData }
    }

    /// Whether `job` is of this kind.
    pub fn is(&self, job: &Job) -> bool {
        job.kind == self.name
    }
}

impl<P: Serialize> JobKind<P> {
    /// A job of this kind carrying `payload`; a second one with the same
    /// `key` is the first (see `queue::enqueue`).
    pub fn job(&self, key: impl Into<String>, payload: &P) -> NewJob {
        let payload = serde_json::to_value(payload).expect("job payloads serialise");
        NewJob { max_attempts: self.max_attempts, ..NewJob::new(self.name, key, payload) }
    }
}

impl<P: DeserializeOwned> JobKind<P> {
    /// The job's payload; one that does not fit is a bug no retry fixes.
    pub fn payload(&self, job: &Job) -> Result<P, JobError> {
        job.payload_as()
    }
}

/// A kind whatever its payload: what lists of kinds hold.
pub trait Declared: Sync {
    fn name(&self) -> &'static str;
    fn title(&self) -> Title;
}

impl<P> Declared for JobKind<P> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn title(&self) -> Title {
        self.title
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jobs::JobState;

    /// `payload` as a job of `kind` would carry it to a worker: enqueued,
    /// stored as JSON, read back.
    pub(crate) fn through_the_jobs_table<P>(kind: &JobKind<P>, payload: P)
    where
        P: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let new = kind.job("key", &payload);
        assert_eq!((new.kind.as_str(), new.max_attempts), (kind.name, kind.max_attempts));
        let job = stored(new.kind, new.payload);
        assert!(kind.is(&job));
        assert_eq!(kind.payload(&job).unwrap(), payload);
    }

    fn stored(kind: String, payload: serde_json::Value) -> Job {
        Job {
            id: 1,
            kind,
            state: JobState::Queued,
            user_id: None,
            chat_id: None,
            payload,
            idempotency_key: "k".into(),
            cost: 0,
            attempts: 0,
            max_attempts: 1,
            last_error: None,
            locked_by: None,
        }
    }

    #[test]
    fn a_payload_of_the_wrong_shape_is_a_permanent_error() {
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        struct Train {
            avatar_id: i64,
        }
        const TRAIN: JobKind<Train> = JobKind::new("train", Title { ru: "обучение", en: "training" }, 3);
        through_the_jobs_table(&TRAIN, Train { avatar_id: 4 });
        let job = stored("train".into(), serde_json::json!({ "prompt": 5 }));
        assert!(matches!(TRAIN.payload(&job), Err(JobError::Broken(_))));
    }
}
