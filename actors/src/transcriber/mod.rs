//! The Transcriber: `transcribe` jobs turn a voice message, audio, video
//! note or audio file into text; `transcript.digest` jobs turn a stored
//! transcript into a summary, action items or minutes.

pub mod audio;
mod chunk;
mod digest;
mod draft;
pub mod glossary;
mod guest;
pub mod kinds;
mod link;
pub mod measure;
pub mod ogg;
mod original;
mod paid;
mod repeat;
pub mod settle;
mod shared;
pub mod speakers;
pub mod timeline;
pub mod translate;
mod turn;
mod work;

use std::sync::Arc;

use serde_json::Value;

use crate::chat::notices::{failed_text, tell_failed};
use crate::chat::{texts, Lang};
use crate::clients::links::YtDlp;
use crate::clients::ClientError;
use crate::jobs::{Job, JobError};
use crate::pool::{BoxFuture, DeadReason, Handlers, JobContext, JobHandler};
use crate::services::Services;
use kinds::{LINK_PROBE, LINK_TRANSCRIBE, TRANSCRIBE, TRANSCRIPT_DIGEST, TRANSCRIPT_TRANSLATE};
pub use shared::Transcriber;

impl Transcriber {
    /// The handlers a worker runs for transcription, by job kind.
    pub fn handlers(services: Services) -> Result<Handlers, ClientError> {
        let links = &services.settings.links;
        let fetches_links = links.enabled && YtDlp::available(&links.ytdlp);
        if links.enabled && !fetches_links {
            tracing::info!(ytdlp = links.ytdlp, "yt-dlp does not run here: this worker takes no link jobs");
        }
        let transcriber = Self::new(services)?;
        let mut handlers: Handlers = vec![
            (TRANSCRIBE.name, Arc::new(transcriber.clone())),
            (TRANSCRIPT_DIGEST.name, Arc::new(digest::Digest(transcriber.clone()))),
            (TRANSCRIPT_TRANSLATE.name, Arc::new(translate::Translation(transcriber.clone()))),
        ];
        if fetches_links {
            handlers.push((LINK_PROBE.name, Arc::new(link::Probe(transcriber.clone()))));
            handlers.push((LINK_TRANSCRIBE.name, Arc::new(transcriber)));
        }
        Ok(handlers)
    }

    /// Tells the user a job of theirs died and was refunded, and deletes
    /// the recording it kept: a failed job keeps no user audio. A job that
    /// died after its transcript was made (only its sending kept failing)
    /// was not refunded: the transcript and its audio stay, in /history.
    async fn tell_dead(&self, job: Job, reason: DeadReason) {
        if let Ok(Some(transcript)) = self.services.db.transcript_for_job(job.id).await {
            if transcript.text_key.is_some() {
                tracing::warn!(
                    job_id = job.id,
                    transcript_id = transcript.id,
                    "transcript made but never sent; it stays in /history"
                );
                return;
            }
            // By prefix: the upload runs beside the API call, so the object may
            // exist before (or without) its key being recorded.
            let prefix = format!("audio/{}/{}/", transcript.user_id, transcript.id);
            if let Err(e) = self.services.blob.delete_prefix(&prefix).await {
                tracing::warn!(job_id = job.id, prefix, error = %e, "could not delete a failed job's audio");
            }
        }
        let lang = Lang::from_code(job.language());
        let title = kinds::title_of(&job.kind);
        let why = reason.for_user(texts::transcription_unavailable(lang));
        match TRANSCRIBE.payload(&job).ok().and_then(|request| request.guest) {
            Some(answer) => guest::tell_failed(&self.bot, &answer, job.id, failed_text(&job, title, why, lang)).await,
            None => tell_failed(&self.bot, &job, title, why, lang).await,
        }
    }
}

impl JobHandler for Transcriber {
    fn run(&self, job: Job, ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        let this = self.clone();
        Box::pin(async move { work::transcribe(&this, job, ctx).await })
    }

    fn on_dead(&self, job: Job, reason: DeadReason) -> BoxFuture<()> {
        let this = self.clone();
        Box::pin(async move { this.tell_dead(job, reason).await })
    }

    fn preflight(&self) -> BoxFuture<Result<(), String>> {
        let temp = self.services.settings.transcription.temp_dir.clone();
        Box::pin(async move {
            audio::check_tools().await?;
            tokio::fs::create_dir_all(&temp)
                .await
                .map_err(|e| format!("cannot create transcription.temp_dir {temp}: {e}"))?;
            let swept = turn::sweep_stale(&temp, turn::STALE_WORK).await;
            if swept > 0 {
                tracing::info!(swept, temp_dir = %temp, "removed job directories a process that died left behind");
            }
            Ok(())
        })
    }
}

/// ffmpeg failing on a file it could open before may pass (memory, a full
/// disk); a file it cannot read at all is refused before this, in `measure`.
impl From<audio::AudioError> for JobError {
    fn from(e: audio::AudioError) -> Self {
        JobError::Retry(crate::error::chain(&e))
    }
}
