//! `transcript.digest`: a summary, action items or minutes of a transcript,
//! from the chat completions API, in the user's language.

use bytes::Bytes;
use serde_json::{json, Value};
use teloxide::types::ChatId;

use super::kinds::Digest as DigestPayload;
use super::shared::Transcriber;
use crate::chat::reply::send_long;
use crate::chat::{texts, Lang};
use crate::jobs::{Job, JobError};
use crate::keep;
use crate::pool::{BoxFuture, DeadReason, JobContext, JobHandler};

/// Longer transcripts are cut to this many characters for the prompt.
const MAX_INPUT_CHARS: usize = 120_000;

pub(super) struct Digest(pub Transcriber);

impl JobHandler for Digest {
    fn run(&self, job: Job, ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        let t = self.0.clone();
        Box::pin(async move { digest(&t, job, ctx).await })
    }

    fn on_dead(&self, job: Job, reason: DeadReason) -> BoxFuture<()> {
        let t = self.0.clone();
        Box::pin(async move { t.tell_dead(job, reason).await })
    }
}

async fn digest(t: &Transcriber, job: Job, ctx: JobContext) -> Result<Value, JobError> {
    let DigestPayload { transcript_id, kind, chat_id, language, written_in } = job.payload_as()?;
    let lang = Lang::from_code(Some(&language));
    let user_id = job.user_id.ok_or_else(|| JobError::Broken("a digest job without a user".into()))?;
    let chat = ChatId(chat_id);
    let transcript = t
        .services
        .db
        .transcript_of(user_id, transcript_id)
        .await?
        .and_then(|tr| tr.text_key)
        .ok_or_else(|| JobError::Refused(texts::transcript_gone(lang).to_owned()))?;
    let bytes = t.services.blob.get(&transcript).await?;
    let text: String = String::from_utf8_lossy(&bytes).chars().take(MAX_INPUT_CHARS).collect();
    // Beside the transcript (so /deletemydata takes it too): a retry after
    // an outage sends what was paid for instead of asking again.
    let written = written_in.as_deref().unwrap_or(lang.code());
    let kept = format!("transcripts/{user_id}/{transcript_id}/digest-{}-{written}.txt", kind.as_str());
    let answer = match t.services.blob.get_if_any(&kept).await? {
        Some(answer) => String::from_utf8_lossy(&answer).into_owned(),
        None => {
            let answer = t.openai.chat(&texts::digest_prompt(lang, kind, written_in.as_deref()), &text).await?;
            let body = Bytes::from(answer.clone());
            keep::until_kept("a chat completion", job.id, || {
                t.services.blob.put(&kept, body.clone(), "text/plain; charset=utf-8")
            })
            .await?;
            answer
        }
    };
    let title = texts::digest_button(lang, kind);
    let max = t.services.settings.transcription.max_messages;
    ctx.hold(&job).await?;
    send_long(&t.bot, chat, title, &answer, None, max, &format!("{}.txt", kind.as_str())).await?;
    Ok(json!({ "transcript_id": transcript_id, "kind": kind.as_str(), "chars": answer.chars().count() }))
}
