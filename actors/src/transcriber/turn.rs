//! The transcription job in hand, as the steps of `work` share it: who
//! asked, where the answer and the money talk go, the recording on disk
//! and the scratch directory it lives in.

use std::path::{Path, PathBuf};

use teloxide::types::{ChatId, MessageId};

use super::glossary::Glossary;
use super::kinds::Transcribe;
use super::shared::Transcriber;
use crate::chat::reply::Target;
use crate::chat::Lang;
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

/// A job directory nothing was written to for this long belongs to a
/// process that died (a drop never ran): a job writes into its directory
/// as it goes, chunk by chunk.
pub(super) const STALE_WORK: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes the job directories under `root` left by a process that died
/// (a kill, an out-of-memory, a power cut); how many. Another live process
/// sharing `root` keeps its own: they are younger than `older_than`.
pub(super) async fn sweep_stale(root: &str, older_than: std::time::Duration) -> usize {
    let Ok(mut entries) = tokio::fs::read_dir(root).await else { return 0 };
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let is_job = entry.file_name().to_string_lossy().starts_with("job-");
        let age = entry.metadata().await.ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if is_job && age.is_some_and(|age| age > older_than) && tokio::fs::remove_dir_all(entry.path()).await.is_ok() {
            removed += 1;
        }
    }
    removed
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
    /// The payer's names and terms (read once the job starts), and what
    /// they add to the transcript's key for repeats.
    pub glossary: Glossary,
    pub glossary_key: Option<String>,
    /// The transcript was made by this attempt (`start`): no chunk of it
    /// exists yet, so none is looked up.
    pub fresh: bool,
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
            glossary: Glossary::default(),
            glossary_key: None,
            fresh: false,
        })
    }

    /// The payer's glossary, as it stands now.
    pub(super) async fn read_glossary(&mut self) -> Result<(), JobError> {
        let kept = self.worker.services.db.glossary(self.user_id).await?;
        self.glossary = serde_json::from_value(kept).unwrap_or_default();
        self.glossary_key = self.glossary.key();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn job_directories_a_dead_process_left_are_swept_and_live_ones_kept() {
        let root = std::env::temp_dir().join(format!("aisha-sweep-{}", uuid::Uuid::new_v4().simple()));
        for name in ["job-1-dead", "job-2-live", "not-a-job"] {
            std::fs::create_dir_all(root.join(name)).unwrap();
        }
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for name in ["job-1-dead", "not-a-job"] {
            std::fs::File::open(root.join(name)).unwrap().set_modified(two_hours_ago).unwrap();
        }
        assert_eq!(sweep_stale(root.to_str().unwrap(), STALE_WORK).await, 1);
        assert!(!root.join("job-1-dead").exists(), "the dead process's job directory is gone");
        assert!(root.join("job-2-live").exists(), "a live job's directory stays");
        assert!(root.join("not-a-job").exists(), "only job directories are ours to sweep");
        std::fs::remove_dir_all(root).unwrap();
    }
}
