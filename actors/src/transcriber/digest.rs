//! `transcript.digest`: a summary, action items or minutes of a transcript,
//! from the chat completions API, in the user's language.

use serde_json::{json, Value};
use teloxide::types::ChatId;

use super::Transcriber;
use crate::bot::tell_failed;
use crate::bot::reply::send_long;
use crate::bot::texts::{self, Lang};
use crate::jobs::{BoxFuture, DeadReason, Job, JobContext, JobError, JobHandler};

/// Longer transcripts are cut to this many characters for the prompt.
const MAX_INPUT_CHARS: usize = 120_000;

pub(super) struct Digest(pub Transcriber);

impl JobHandler for Digest {
    fn run(&self, job: Job, _ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        let t = self.0.clone();
        Box::pin(async move { digest(&t, job).await })
    }

    fn on_dead(&self, job: Job, reason: DeadReason) -> BoxFuture<()> {
        let bot = self.0.bot.clone();
        Box::pin(async move {
            let lang = Lang::from_code(job.payload["language"].as_str());
            tell_failed(&bot, &job, reason, texts::transcription_unavailable(lang), lang).await
        })
    }
}

async fn digest(t: &Transcriber, job: Job) -> Result<Value, JobError> {
    let lang = Lang::from_code(job.payload["language"].as_str());
    let kind = job.payload["kind"].as_str().unwrap_or("summary").to_owned();
    let transcript_id = job.payload["transcript_id"].as_i64().ok_or_else(|| JobError::Permanent("no transcript id".into()))?;
    let user_id = job.user_id.ok_or_else(|| JobError::Permanent("no user".into()))?;
    let chat = ChatId(job.chat_id.ok_or_else(|| JobError::Permanent("no chat".into()))?);
    let transcript = t
        .services
        .db
        .transcript_of(user_id, transcript_id)
        .await
        .map_err(JobError::retry)?
        .and_then(|tr| tr.text_key)
        .ok_or_else(|| JobError::Permanent(texts::transcript_gone(lang).to_owned()))?;
    let bytes = t.services.blob.get(&transcript).await.map_err(JobError::retry)?;
    let text: String = String::from_utf8_lossy(&bytes).chars().take(MAX_INPUT_CHARS).collect();
    let answer = t.openai.chat(&texts::digest_prompt(lang, &kind), &text).await.map_err(|e| {
        if e.needs_operator() {
            tracing::error!(alert = e.alert_kind(), error = %e, "OpenAI needs an operator");
            metrics::counter!("aishad_alerts_total", "alert" => e.alert_kind()).increment(1);
        }
        JobError::from(e)
    })?;
    let title = texts::digest_title(lang, &kind);
    let max = t.services.settings.transcription.max_messages;
    send_long(&t.bot, chat, title, &answer, None, max, &format!("{kind}.txt"))
        .await
        .map_err(JobError::retry)?;
    Ok(json!({ "transcript_id": transcript_id, "kind": kind, "chars": answer.chars().count() }))
}
