//! The original recording, kept in S3 so that a retry needs neither
//! Telegram nor the site again. A Telegram file's key is recorded with the
//! finished transcript (one write fewer a note), or at once when the chunks
//! fail; a link's at once, since a site may serve a retry something other
//! than what was paid for.

use super::kinds::{Source, TelegramFile};
use super::turn::{Recording, Turn};
use crate::jobs::JobError;
use crate::store::transcripts::{Transcript, TranscriptField};

impl Turn<'_> {
    /// Put in S3 while the API works on it; its key is recorded with the
    /// finished transcript, or at once when the chunks fail (so a retry
    /// reads it from there). A worker that dies before either only costs its
    /// successor a second download of the same file.
    pub(super) async fn put_original(
        &self,
        transcript: &Transcript,
        recording: &Recording,
    ) -> Result<Option<String>, JobError> {
        if !recording.keep {
            return Ok(None);
        }
        let key = format!("audio/{}/{}/original.{}", self.user_id, transcript.id, recording.ext);
        let mime = match &self.request.source {
            Source::Telegram(TelegramFile { mime_type: Some(mime), .. }) => mime.as_str(),
            _ => "application/octet-stream",
        };
        self.worker.services.blob.put_file(&key, &recording.path, mime).await?;
        Ok(Some(key))
    }

    /// Put in S3 and its key recorded before anything else happens to it.
    pub(super) async fn keep_original(&self, transcript: &Transcript, recording: &Recording) -> Result<(), JobError> {
        let Some(key) = self.put_original(transcript, recording).await? else { return Ok(()) };
        let db = &self.worker.services.db;
        Ok(db.update_transcript(transcript.id, TranscriptField::AudioKey, &key).await?)
    }

    /// The original's key for the next attempt, when the chunks failed after
    /// it was put; without it that attempt only downloads the file again.
    pub(super) async fn record_original(&self, transcript: &Transcript, original: Result<Option<String>, JobError>) {
        let Ok(Some(key)) = original else { return };
        let db = &self.worker.services.db;
        if let Err(e) = db.update_transcript(transcript.id, TranscriptField::AudioKey, &key).await {
            tracing::warn!(job_id = self.job.id, error = %e, "could not record the kept original; a retry downloads it again");
        }
    }
}
