//! Repeats: audio whose file was transcribed before (forwarded or sent
//! again, by anyone), asked for the same way, reuses that transcript: no
//! download, no API call. A repeat is free: what it cost up front comes
//! back, with its own ledger entry (DESIGN, "Repeats"). Its text is copied
//! into the repeat's own objects, so either user's /deletemydata leaves the
//! other's transcript whole.

use bytes::Bytes;
use teloxide::prelude::Requester;

use super::kinds::Source;
use super::turn::Turn;
use super::work::Made;
use crate::chat::texts;
use crate::clients::Patiently;
use crate::jobs::JobError;
use crate::ledger::{self, LedgerError, Settled};
use crate::store::transcripts::{Asked, Finished, Transcript};

impl Turn<'_> {
    /// The model this request is transcribed by: the diarizing one for speakers.
    pub(super) fn model(&self) -> &str {
        let openai = &self.worker.openai;
        if self.request.speakers {
            &openai.diarization_model
        } else {
            &openai.transcription_model
        }
    }

    /// What makes this request's text what it is (the model, the spoken
    /// language, the payer's glossary). A link's audio is fetched
    /// anew each time, so it is never asked for as a repeat.
    pub(super) fn asked<'a>(&'a self, file_unique_id: &'a str) -> Asked<'a> {
        let spoken_language = match &self.request.source {
            Source::Telegram(_) => Some(self.request.spoken_language.as_deref().unwrap_or("auto")),
            Source::Link(_) => None,
        };
        Asked { file_unique_id, model: self.model(), spoken_language, glossary: self.glossary_key.as_deref() }
    }

    /// The transcript made again from an earlier one of the same audio, kept
    /// and settled; `None` when there is none to reuse. With its length.
    pub(super) async fn repeat(&self, transcript: &Transcript) -> Result<Option<(Made, f64)>, JobError> {
        let made = match (transcript.repeat_of, &transcript.text_key) {
            // An earlier attempt copied it; only settling or sending was left.
            (Some(_), Some(key)) => self.own_copy(transcript, key).await?,
            _ => match self.copy_earlier(transcript).await? {
                Some(made) => made,
                None => return Ok(None),
            },
        };
        self.settle_repeat().await?;
        metrics::counter!("aishad_transcription_repeats_total").increment(1);
        Ok(Some(made))
    }

    async fn copy_earlier(&self, transcript: &Transcript) -> Result<Option<(Made, f64)>, JobError> {
        if !self.worker.services.settings.transcription.cache_by_file {
            return Ok(None);
        }
        let (db, blob) = (&self.worker.services.db, &self.worker.services.blob);
        let unique_id = self.request.unique_id();
        let asked = self.asked(&unique_id);
        if asked.spoken_language.is_none() {
            return Ok(None);
        }
        let Some(earlier) = db.earlier_transcript(&asked, transcript.id).await? else { return Ok(None) };
        let Some(text_key) = &earlier.text_key else { return Ok(None) };
        // Gone since it was found (its owner's /deletemydata): transcribed as new.
        let Some(text) = blob.get_if_any(text_key).await? else { return Ok(None) };
        let segments = match &earlier.segments_key {
            Some(key) => blob.get_if_any(key).await?,
            None => None,
        };
        let text = String::from_utf8(text.to_vec()).map_err(JobError::broken)?;
        let prefix = format!("transcripts/{}/{}", self.user_id, transcript.id);
        let own = Finished {
            text_key: format!("{prefix}/transcript.txt"),
            segments_key: segments.as_ref().map(|_| format!("{prefix}/segments.json")),
            chars: text.chars().count() as i32,
            preview: text.chars().take(80).collect(),
            duration_seconds: earlier.duration_seconds.unwrap_or_default(),
            chunk_count: earlier.chunk_count.unwrap_or(1),
            language: None,
            repeat_of: Some(earlier.id),
            audio_key: None,
        };
        blob.put(&own.text_key, Bytes::from(text.clone()), "text/plain; charset=utf-8").await?;
        if let (Some(key), Some(segments)) = (&own.segments_key, segments) {
            blob.put(key, segments, "application/json").await?;
        }
        db.finish_transcript(transcript.id, &own).await?;
        tracing::info!(
            job_id = self.job.id,
            user_id = self.user_id,
            repeat_of = earlier.id,
            "a repeat: transcript reused"
        );
        let made = Made { text, timed: own.segments_key.is_some(), parts: Vec::new() };
        Ok(Some((made, own.duration_seconds)))
    }

    async fn own_copy(&self, transcript: &Transcript, key: &str) -> Result<(Made, f64), JobError> {
        let text = self.worker.services.blob.get(key).await?;
        let text = String::from_utf8(text.to_vec()).map_err(JobError::broken)?;
        let made = Made { text, timed: transcript.segments_key.is_some(), parts: Vec::new() };
        Ok((made, transcript.duration_seconds.unwrap_or_default()))
    }

    /// What was charged up front comes back, once, and the payer is told.
    async fn settle_repeat(&self) -> Result<(), JobError> {
        let told = match ledger::settle_repeat(&self.worker.services.db, self.job, &self.ctx.worker).await {
            Ok(Settled::Refunded { amount, balance }) => texts::repeat_refunded(self.lang, amount, balance),
            Ok(_) => return Ok(()),
            Err(LedgerError::NotHeld(_)) => {
                return Err(JobError::Retry("lost the job before settling a repeat".into()))
            }
            Err(e) => return Err(JobError::retry(e)),
        };
        let _ = self.worker.bot.send_message(self.money_chat, told).patiently().await;
        Ok(())
    }
}
