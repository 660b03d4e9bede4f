//! The Transcriber: `transcribe` jobs turn a voice message, audio, video
//! note or audio file into text; `transcript.digest` jobs turn a stored
//! transcript into a summary, action items or minutes.

pub mod audio;
mod digest;
mod work;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use teloxide::Bot;

use crate::bot::texts::{self, Lang};
use crate::clients::openai::OpenAi;
use crate::clients::{telegram_bot, ClientError};
use crate::bot::tell_failed;
use crate::jobs::{BoxFuture, DeadReason, Handlers, Job, JobContext, JobError, JobHandler};
use crate::services::Services;

pub const KIND: &str = "transcribe";
pub const DIGEST_KIND: &str = "transcript.digest";

/// What the dispatcher put in a `transcribe` job.
#[derive(Debug, Clone, Deserialize)]
pub struct TranscribePayload {
    pub chat_id: i64,
    pub media: String,
    pub file_id: String,
    pub file_unique_id: String,
    pub duration: Option<u32>,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    pub language: Option<String>,
}

#[derive(Clone)]
pub struct Transcriber {
    services: Services,
    bot: Bot,
    openai: OpenAi,
}

impl Transcriber {
    pub fn new(services: Services) -> Result<Self, ClientError> {
        let bot = telegram_bot(&services.settings.telegram)?;
        let openai = OpenAi::new(&services.settings.openai)?;
        Ok(Self { services, bot, openai })
    }

    /// The handlers a worker runs for transcription, by job kind.
    pub fn handlers(services: Services) -> Result<Handlers, ClientError> {
        let transcriber = Self::new(services)?;
        Ok(vec![(KIND, Arc::new(transcriber.clone())), (DIGEST_KIND, Arc::new(digest::Digest(transcriber)))])
    }
}

/// Summary / Action items / Minutes under a transcript.
pub fn digest_keyboard(lang: Lang, transcript_id: i64) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([texts::digest_buttons(lang)
        .into_iter()
        .map(|(kind, label)| InlineKeyboardButton::callback(label, format!("digest:{kind}:{transcript_id}")))
        .collect::<Vec<_>>()])
}

impl JobHandler for Transcriber {
    fn run(&self, job: Job, ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        let this = self.clone();
        Box::pin(async move { work::transcribe(&this, job, ctx).await })
    }

    fn on_dead(&self, job: Job, reason: DeadReason) -> BoxFuture<()> {
        let bot = self.bot.clone();
        Box::pin(async move {
            let language = job.payload["language"].as_str().map(str::to_owned);
            let lang = Lang::from_code(language.as_deref());
            tell_failed(&bot, &job, reason, texts::transcription_unavailable(lang), lang).await
        })
    }

    fn preflight(&self) -> BoxFuture<Result<(), String>> {
        let temp = self.services.settings.transcription.temp_dir.clone();
        Box::pin(async move {
            audio::check_tools().await?;
            tokio::fs::create_dir_all(&temp).await.map_err(|e| format!("cannot create transcription.temp_dir {temp}: {e}"))
        })
    }
}
