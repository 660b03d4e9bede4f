//! `transcript.translate`: a transcript into another language through the
//! chat completions API, in pieces that keep their order. With timings it
//! goes cue by cue (each cue's text translated, its times and speaker
//! kept), so the translation has subtitles of its own; without, the text in
//! pieces cut at boundaries. Kept beside the transcript before it is sent:
//! a retry after an outage sends what was paid for instead of asking again.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use teloxide::types::ChatId;
use teloxide::RequestError;

use super::kinds::{Translate, TRANSCRIPT_TRANSLATE};
use super::shared::Transcriber;
use super::timeline::Cue;
use crate::blob::{Blob, BlobError};
use crate::chat::keyboards::translation_keyboard;
use crate::chat::reply::{send_long, split_message};
use crate::chat::{texts, Lang};
use crate::clients::TgBot;
use crate::jobs::{Job, JobError};
use crate::keep;
use crate::pool::{BoxFuture, DeadReason, JobContext, JobHandler};
use crate::store::transcripts::Transcript;

/// The most characters sent in one call.
const PIECE_CHARS: usize = 4000;
/// Calls of one translation in flight at once.
const PIECES_AT_ONCE: usize = 3;

pub(super) struct Translation(pub Transcriber);

impl JobHandler for Translation {
    fn run(&self, job: Job, ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        let t = self.0.clone();
        Box::pin(async move { translate(&t, job, ctx).await })
    }

    fn on_dead(&self, job: Job, reason: DeadReason) -> BoxFuture<()> {
        let t = self.0.clone();
        Box::pin(async move { t.tell_dead(job, reason).await })
    }
}

/// Where a translation is kept: its text, and its cues when timed.
pub struct Kept {
    pub text: String,
    pub cues: String,
}

impl Kept {
    pub fn of(user_id: i64, transcript_id: i64, code: &str) -> Self {
        let prefix = format!("transcripts/{user_id}/{transcript_id}/translations/{code}");
        Kept { text: format!("{prefix}.txt"), cues: format!("{prefix}.json") }
    }

    /// The translation made before, if it was.
    pub async fn read(&self, blob: &Blob) -> Result<Option<Translated>, BlobError> {
        let Some(text) = blob.get_if_any(&self.text).await? else { return Ok(None) };
        let timed = blob.get_if_any(&self.cues).await?.is_some();
        Ok(Some(Translated { text: String::from_utf8_lossy(&text).into_owned(), timed }))
    }
}

/// A translation made: its text, and whether it kept the transcript's timings.
pub struct Translated {
    pub text: String,
    pub timed: bool,
}

/// The translation of `transcript_id` into `code` as the user gets it: the
/// text (a document when long), its files and its digests in that language.
pub async fn send(
    bot: &TgBot,
    chat: ChatId,
    lang: Lang,
    transcript_id: i64,
    code: &str,
    translated: &Translated,
    max_messages: usize,
) -> Result<(), RequestError> {
    let intro = texts::translation_intro(lang, code);
    let keyboard = translation_keyboard(lang, transcript_id, code, translated.timed);
    let file_name = format!("translation_{code}.txt");
    send_long(bot, chat, &intro, &translated.text, Some(keyboard), max_messages, &file_name).await
}

async fn translate(t: &Transcriber, job: Job, ctx: JobContext) -> Result<Value, JobError> {
    let Translate { transcript_id, target, chat_id, language } = TRANSCRIPT_TRANSLATE.payload(&job)?;
    let lang = Lang::from_code(Some(&language));
    let user_id = job.user_id.ok_or_else(|| JobError::Broken("a translation job without a user".into()))?;
    let transcript = t
        .services
        .db
        .transcript_of(user_id, transcript_id)
        .await?
        .filter(|tr| tr.text_key.is_some())
        .ok_or_else(|| JobError::Refused(texts::transcript_gone(lang).to_owned()))?;
    let kept = Kept::of(user_id, transcript_id, &target);
    let translated = match kept.read(&t.services.blob).await? {
        Some(translated) => translated,
        None => {
            let (text, cues) = made(t, &transcript, &target, lang).await?;
            keep_translation(t, job.id, &kept, &text, cues.as_deref()).await?;
            Translated { text, timed: cues.is_some() }
        }
    };
    ctx.hold(&job).await?;
    let max = t.services.settings.transcription.max_messages;
    send(&t.bot, ChatId(chat_id), lang, transcript_id, &target, &translated, max).await?;
    let Translated { text, timed } = translated;
    Ok(json!({ "transcript_id": transcript_id, "target": target, "chars": text.chars().count(), "timed": timed }))
}

/// The translation: its text, and its cues when the transcript is timed.
async fn made(
    t: &Transcriber,
    transcript: &Transcript,
    target: &str,
    lang: Lang,
) -> Result<(String, Option<Vec<Cue>>), JobError> {
    let blob = &t.services.blob;
    let cues: Vec<Cue> = match &transcript.segments_key {
        Some(key) => serde_json::from_slice(&blob.get(key).await?).map_err(JobError::broken)?,
        None => Vec::new(),
    };
    let language = format!("{} ({target})", texts::spoken_language_name(lang, target));
    if !cues.is_empty() {
        let translated = translate_cues(t, &cues, &language).await?;
        let text = translated.iter().map(Cue::said).collect::<Vec<_>>().join("\n");
        return Ok((text, Some(translated)));
    }
    let key = transcript.text_key.as_deref().unwrap_or_default();
    let text = String::from_utf8_lossy(&blob.get(key).await?).into_owned();
    let system = text_prompt(&language);
    let pieces: Vec<String> = futures::stream::iter(split_message(&text, PIECE_CHARS))
        .map(|piece| {
            let system = &system;
            async move { t.openai.chat(system, &piece).await.map_err(JobError::from) }
        })
        .buffered(PIECES_AT_ONCE)
        .try_collect()
        .await?;
    Ok((pieces.join("\n\n"), None))
}

/// Each cue's text translated, its times and speaker kept, in order.
async fn translate_cues(t: &Transcriber, cues: &[Cue], language: &str) -> Result<Vec<Cue>, JobError> {
    let system = lines_prompt(language);
    // Owned pieces: a stream of borrowed slices makes a future no `Send` bound can name.
    let pieces: Vec<Vec<Cue>> = pieces_of(cues, PIECE_CHARS).into_iter().map(<[Cue]>::to_vec).collect();
    let texts: Vec<Vec<String>> = futures::stream::iter(pieces)
        .map(|piece| {
            let system = &system;
            async move {
                let answer = t.openai.chat(system, &numbered(&piece)).await?;
                read_numbered(&answer, piece.len())
                    .ok_or_else(|| JobError::Retry("the model's translation lost or added lines".into()))
            }
        })
        .buffered(PIECES_AT_ONCE)
        .try_collect()
        .await?;
    Ok(cues.iter().zip(texts.into_iter().flatten()).map(|(cue, text)| Cue { text, ..cue.clone() }).collect())
}

async fn keep_translation(
    t: &Transcriber,
    job_id: i64,
    kept: &Kept,
    text: &str,
    cues: Option<&[Cue]>,
) -> Result<(), JobError> {
    let blob = &t.services.blob;
    // The cues first: a kept text is what says the translation is made.
    if let Some(cues) = cues {
        let body = Bytes::from(serde_json::to_vec(cues).map_err(JobError::broken)?);
        keep::until_kept("a translation's cues", job_id, || blob.put(&kept.cues, body.clone(), "application/json"))
            .await?;
    }
    let body = Bytes::from(text.to_owned());
    keep::until_kept("a translation", job_id, || blob.put(&kept.text, body.clone(), "text/plain; charset=utf-8"))
        .await?;
    Ok(())
}

fn text_prompt(language: &str) -> String {
    format!(
        "Translate the user's text into {language}. Keep its meaning, names, numbers and paragraphs. \
         Answer with the translation only."
    )
}

fn lines_prompt(language: &str) -> String {
    format!(
        "Translate each numbered line of the user's text into {language}. Answer with exactly the same \
         numbered lines, `N|translation`, one per line, in the same order, and nothing else. Keep names and numbers."
    )
}

/// Cues in runs of at most `max` characters of text (one longer cue alone).
fn pieces_of(cues: &[Cue], max: usize) -> Vec<&[Cue]> {
    let mut pieces = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, cue) in cues.iter().enumerate() {
        let len = cue.text.chars().count() + 8;
        if size + len > max && i > start {
            pieces.push(&cues[start..i]);
            (start, size) = (i, 0);
        }
        size += len;
    }
    if start < cues.len() {
        pieces.push(&cues[start..]);
    }
    pieces
}

/// `1|text` per cue, a cue's line breaks folded.
fn numbered(cues: &[Cue]) -> String {
    let lines = cues.iter().enumerate().map(|(i, cue)| format!("{}|{}", i + 1, cue.text.replace('\n', " ")));
    lines.collect::<Vec<_>>().join("\n")
}

/// The model's `N|text` lines in order; `None` unless exactly `1..=count` came back.
fn read_numbered(answer: &str, count: usize) -> Option<Vec<String>> {
    let mut lines = vec![None; count];
    for line in answer.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (n, text) = line.split_once('|')?;
        let slot = lines.get_mut(n.trim().parse::<usize>().ok()?.checked_sub(1)?)?;
        if slot.replace(text.trim().to_owned()).is_some() {
            return None;
        }
    }
    lines.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(text: &str) -> Cue {
        Cue { start: 0.0, end: 1.0, text: text.to_owned(), speaker: None }
    }

    #[test]
    fn numbered_lines_come_back_in_order_or_not_at_all() {
        assert_eq!(read_numbered("2|zwei\n1|eins\n", 2), Some(vec!["eins".into(), "zwei".into()]));
        assert_eq!(read_numbered("1|eins", 2), None, "a line lost");
        assert_eq!(read_numbered("1|eins\n2|zwei\n3|drei", 2), None, "a line added");
        assert_eq!(read_numbered("1|eins\n1|noch", 1), None, "a line twice");
        assert_eq!(read_numbered("Here you go:\n1|eins", 1), None, "chatter is no line");
    }

    #[test]
    fn cues_are_cut_into_pieces_that_keep_every_cue_once_in_order() {
        let cues: Vec<Cue> = (0..10).map(|i| cue(&format!("cue number {i} with some words"))).collect();
        let pieces = pieces_of(&cues, 100);
        assert!(pieces.len() > 1);
        let joined: Vec<&Cue> = pieces.iter().flat_map(|p| p.iter()).collect();
        assert_eq!(joined.len(), 10);
        assert!(pieces_of(&[cue(&"x".repeat(500))], 100).len() == 1, "a long cue goes alone");
        assert_eq!(numbered(&[cue("a\nb"), cue("c")]), "1|a b\n2|c");
    }
}
