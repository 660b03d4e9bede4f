//! The transcription job in hand, as the steps of `work` share it: who
//! asked, where the answer and the money talk go, the recording on disk
//! and the scratch directory it lives in.

use std::path::{Path, PathBuf};

use teloxide::types::{ChatId, MessageId};

use super::Transcriber;
use crate::chat::reply::Target;
use crate::chat::texts::Lang;
use crate::jobs::kinds::Transcribe;
use crate::jobs::{Job, JobError};
use crate::pool::JobContext;

/// A job's scratch directory, removed however the job ends.
pub(super) struct WorkDir(PathBuf);

impl WorkDir {
    pub(super) async fn create(root: &str, job_id: i64) -> Result<Self, JobError> {
        let path = Path::new(root).join(format!("job-{job_id}-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::create_dir_all(&path)
            .await
            .map_err(|e| JobError::retry(format!("cannot create {}: {e}", path.display())))?;
        Ok(Self(path))
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub(super) fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The job in hand: who asked, where the answer and the money talk go.
pub(super) struct Turn<'a> {
    pub worker: &'a Transcriber,
    pub job: &'a Job,
    pub ctx: &'a JobContext,
    pub request: Transcribe,
    pub user_id: i64,
    pub lang: Lang,
    /// In a group the transcript answers the voice message…
    pub target: Target,
    /// …and what the payer is charged is said in their private chat.
    pub money_chat: ChatId,
}

/// The recording on local disk.
pub(super) struct Recording {
    pub path: PathBuf,
    pub size: u64,
    pub ext: &'static str,
    /// To be kept in S3 for a retry: downloaded over HTTP by this attempt.
    /// A local Bot API server's file (up to 2000 MB) lies on a shared
    /// volume and is read from there again instead of copied.
    pub keep: bool,
}

impl<'a> Turn<'a> {
    pub(super) fn new(worker: &'a Transcriber, job: &'a Job, ctx: &'a JobContext) -> Result<Self, JobError> {
        let request: Transcribe = job.payload_as()?;
        let user_id = job.user_id.ok_or_else(|| JobError::Broken("a transcription job without a user".into()))?;
        let chat = ChatId(request.chat_id);
        Ok(Turn {
            worker,
            job,
            ctx,
            lang: Lang::from_code(Some(&request.language)),
            target: Target { chat, reply_to: request.reply_to.map(MessageId) },
            money_chat: ChatId(request.payer_chat_id.unwrap_or(request.chat_id)),
            user_id,
            request,
        })
    }
}
