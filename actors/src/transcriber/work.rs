//! One `transcribe` job, resumable at every step: the audio is kept in S3
//! after the first download, the chunk plan and each finished chunk are kept
//! in PostgreSQL, and the transcript is sent only once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{ChatAction, ChatId, MessageId};

use super::audio::{self, AudioError, Chunk, Spent};
use super::timeline::{self, ChunkText};
use super::{job_error, Transcriber};
use crate::clients::bot_api::is_undeliverable;
use crate::clients::Patiently;
use crate::chat::keyboards::{top_up, transcript_keyboard};
use crate::chat::reply::{send_long, Target};
use crate::chat::money_texts;
use crate::chat::texts::{self, Lang};
use crate::clients::openai::{OpenAiError, Transcription};
use crate::clients::{fetch_telegram_file, DownloadError};
use crate::jobs::kinds::Transcribe;
use crate::jobs::{Job, JobError};
use crate::ledger::{self, Settled};
use crate::pool::JobContext;
use crate::store::transcripts::{Finished, SavedChunk, TranscriptField};

/// A job's scratch directory, removed however the job ends.
struct WorkDir(PathBuf);

impl WorkDir {
    async fn create(root: &str, job_id: i64) -> Result<Self, JobError> {
        let path = Path::new(root).join(format!("job-{job_id}-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::create_dir_all(&path).await.map_err(|e| JobError::retry(format!("cannot create {}: {e}", path.display())))?;
        Ok(Self(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn extension(p: &Transcribe) -> &'static str {
    match (p.media.as_str(), p.mime_type.as_deref().unwrap_or_default()) {
        ("voice", _) => "ogg",
        ("video_note", _) => "mp4",
        (_, m) if m.contains("ogg") || m.contains("opus") => "ogg",
        (_, m) if m.contains("mpeg") || m.contains("mp3") => "mp3",
        (_, m) if m.contains("mp4") || m.contains("m4a") || m.contains("aac") => "m4a",
        (_, m) if m.contains("wav") => "wav",
        (_, m) if m.contains("flac") => "flac",
        (_, m) if m.contains("webm") => "webm",
        _ => "bin",
    }
}

/// Where the recording is kept, for resuming and for `/history`.
fn audio_key(user_id: i64, transcript_id: i64, ext: &str) -> String {
    format!("audio/{user_id}/{transcript_id}/original.{ext}")
}

pub(super) async fn transcribe(t: &Transcriber, job: Job, ctx: JobContext) -> Result<Value, JobError> {
    let p: Transcribe = job.payload_as()?;
    let lang = Lang::from_code(Some(&p.language));
    let user_id = job.user_id.ok_or_else(|| JobError::Permanent("job has no user".into()))?;
    let chat = ChatId(p.chat_id);
    // In a group the transcript answers the voice message, and what the
    // payer is charged is said in their private chat, never in the group.
    let target = Target { chat, reply_to: p.reply_to.map(MessageId) };
    let money_chat = ChatId(p.payer_chat_id.unwrap_or(p.chat_id));
    let (db, blob, settings) = (&t.services.db, &t.services.blob, &t.services.settings);
    let limits = &settings.transcription;

    let transcript = db
        .start_transcript(job.id, user_id, p.chat_id, &p.file_unique_id, &t.openai.transcription_model)
        .await
        .map_err(JobError::retry)?;
    if transcript.delivered {
        return Ok(json!({ "transcript_id": transcript.id, "already_delivered": true }));
    }
    // "Typing…" while it works; nothing waits for it.
    let typing = t.bot.clone();
    tokio::spawn(async move {
        let _ = typing.send_chat_action(chat, ChatAction::Typing).patiently().await;
    });

    // The audio, streamed to disk (with a local Bot API server it may be
    // 2000 MB): from S3 when an earlier attempt stored it, else from Telegram.
    let work = WorkDir::create(&limits.temp_dir, job.id).await?;
    let ext = extension(&p);
    let original = work.0.join(format!("original.{ext}"));
    let (size, fresh) = match &transcript.audio_key {
        Some(key) => (blob.get_file(key, &original).await.map_err(JobError::retry)?, false),
        None => {
            let max = settings.telegram.max_download();
            let size = fetch_telegram_file(&t.bot, &settings.telegram, &p.file_id, max, &original).await.map_err(|e| match e {
                DownloadError::TooBig(size) => JobError::Permanent(texts::too_big(lang, size, max)),
                DownloadError::Telegram(e) => e.into(),
                other => JobError::retry(other),
            })?;
            (size, true)
        }
    };
    // Kept in S3 while the API works on it (a failure before then only means a second download).
    let keep_original = async {
        if fresh {
            let key = audio_key(user_id, transcript.id, ext);
            let mime = p.mime_type.clone().unwrap_or_else(|| "application/octet-stream".into());
            blob.put_file(&key, &original, &mime).await.map_err(JobError::retry)?;
            db.update_transcript(transcript.id, TranscriptField::AudioKey, &key).await.map_err(JobError::retry)?;
        }
        Ok::<_, JobError>(())
    };

    let mut spent = Spent::default();
    // A voice note is measured in-process; anything else by ffprobe.
    let probe = match audio::probe_ogg_opus(&original).await {
        Some(probe) => probe,
        None => audio::probe(&original, &mut spent).await.map_err(|e| match e {
            AudioError::Spawn { .. } => JobError::retry(e),
            _ => JobError::Permanent(texts::unreadable_audio(lang).to_owned()),
        })?,
    };
    settle_measured_price(t, &job, &ctx, lang, money_chat, probe.duration, size).await?;

    let plan: Vec<Chunk> = match transcript.plan.clone().and_then(|v| serde_json::from_value(v).ok()) {
        Some(plan) => plan,
        None => {
            let fits = probe.duration <= limits.chunk_length.as_secs_f64() && size <= limits.max_upload.0;
            let silences = if fits { Vec::new() } else { audio::silences(&original, Duration::from_millis(400), &mut spent).await.map_err(JobError::retry)? };
            let plan = audio::plan(probe.duration, &silences, limits.chunk_length, limits.silence_window, limits.overlap);
            // One chunk is planned again in no time; many are kept, so another worker resumes them.
            if plan.len() > 1 {
                let value = serde_json::to_value(&plan).unwrap_or_default();
                db.update_transcript(transcript.id, TranscriptField::Plan, &value).await.map_err(JobError::retry)?;
            }
            plan
        }
    };
    let total = plan.len();
    // Progress ("3/12", edited as chunks finish) only for what takes a while.
    let status = match (total, transcript.status_message_id) {
        (1, _) => None,
        (_, Some(id)) => Some(MessageId(id)),
        (_, None) => {
            let mut request = t.bot.send_message(chat, texts::transcribing(lang, 0, total));
            if let Some(reply) = target.reply_parameters() {
                request = request.reply_parameters(reply);
            }
            let sent = request.patiently().await.map_err(JobError::from)?;
            db.update_transcript(transcript.id, TranscriptField::StatusMessage, &sent.id.0).await.map_err(JobError::retry)?;
            Some(sent.id)
        }
    };
    let done: HashSet<i32> = db.transcript_chunks(transcript.id).await.map_err(JobError::retry)?.into_iter().map(|c| c.idx).collect();
    if !done.is_empty() {
        tracing::info!(done = done.len(), total, "resuming a transcription");
    }
    // A voice note that fits goes as it is; everything else is cut and re-encoded as OGG/Opus.
    let as_is = total == 1 && probe.is_ogg_opus() && size <= limits.max_upload.0;
    let spoken = p.spoken_language.as_deref().filter(|l| *l != "auto");
    let finished = AtomicUsize::new(done.len());
    let api_started = Instant::now();
    let chunks = futures::stream::iter(plan.iter().copied().enumerate().filter(|(i, _)| !done.contains(&(*i as i32))))
        .map(|(i, chunk)| {
            let (original, work, finished, ctx) = (&original, &work, &finished, &ctx);
            async move {
                if *ctx.cancelled.borrow() {
                    return Err(JobError::Retry("the job was cancelled or its lease lost".into()));
                }
                let mut spent = Spent::default();
                let (name, data) = if as_is {
                    ("voice.ogg".to_owned(), Bytes::from(tokio::fs::read(original).await.map_err(JobError::retry)?))
                } else {
                    let out = work.0.join(format!("chunk_{i}.ogg"));
                    audio::encode(original, (total > 1).then_some(chunk), &out, &mut spent).await.map_err(JobError::retry)?;
                    (format!("chunk_{i}.ogg"), Bytes::from(tokio::fs::read(&out).await.map_err(JobError::retry)?))
                };
                let heard = transcribe_chunk(t, &name, data, spoken).await?;
                let saved = SavedChunk {
                    idx: i as i32,
                    start: chunk.start,
                    end: chunk.end,
                    text: heard.text,
                    segments: heard.segments.and_then(|s| serde_json::to_value(s).ok()),
                };
                t.services.db.save_chunk(transcript.id, &saved).await.map_err(JobError::retry)?;
                let n = finished.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(status) = status {
                    let _ = t.bot.edit_message_text(chat, status, texts::transcribing(lang, n, total)).patiently().await;
                }
                Ok::<_, JobError>(spent)
            }
        })
        .buffer_unordered(limits.parallel_chunks.max(1))
        .try_collect::<Vec<Spent>>();
    let ((), chunk_spent) = futures::future::try_join(keep_original, chunks).await?;
    let encoding: Duration = chunk_spent.iter().map(|s| s.0).sum();

    let parts = db.transcript_chunks(transcript.id).await.map_err(JobError::retry)?;
    let chunks: Vec<ChunkText> = parts
        .into_iter()
        .map(|c| ChunkText { start: c.start, end: c.end, text: c.text, segments: c.segments.and_then(|v| serde_json::from_value(v).ok()) })
        .collect();
    let timeline::Timeline { text, cues } = timeline::merge(&chunks);
    if text.is_empty() {
        return Err(JobError::Permanent(texts::no_speech(lang).to_owned()));
    }
    let text_key = format!("transcripts/{user_id}/{}/transcript.txt", transcript.id);
    let segments_key = (!cues.is_empty()).then(|| format!("transcripts/{user_id}/{}/segments.json", transcript.id));
    let keep_text = blob.put(&text_key, Bytes::from(text.clone()), "text/plain; charset=utf-8");
    let keep_cues = async {
        match &segments_key {
            Some(key) => blob.put(key, Bytes::from(serde_json::to_vec(&cues).unwrap_or_default()), "application/json").await,
            None => Ok(()),
        }
    };
    futures::future::try_join(keep_text, keep_cues).await.map_err(JobError::retry)?;
    let preview: String = text.chars().take(80).collect();
    let summary = Finished {
        segments_key: segments_key.clone(),
        text_key,
        chars: text.chars().count() as i32,
        preview,
        duration_seconds: probe.duration,
        chunk_count: total as i32,
        language: None,
    };
    db.finish_transcript(transcript.id, &summary).await.map_err(JobError::retry)?;

    // Only the worker still holding the job may send the result.
    ctx.hold(&job).await?;
    let intro = texts::transcript_intro(lang, probe.duration);
    let keyboard = transcript_keyboard(lang, transcript.id, segments_key.is_some());
    let sent = send_long(&t.bot, target, &intro, &text, Some(keyboard), limits.max_messages, "transcript.txt").await;
    match sent {
        Ok(()) => {}
        Err(e) if is_undeliverable(&e) => {
            // The transcript exists: it stays in /history, and the charge stands.
            tracing::warn!(job_id = job.id, user_id, error = %e, "transcript made but undeliverable");
            db.mark_transcript_delivered(transcript.id).await.map_err(JobError::retry)?;
            return Ok(json!({ "transcript_id": transcript.id, "outcome": "undeliverable" }));
        }
        Err(e) => return Err(e.into()),
    }
    db.mark_transcript_delivered(transcript.id).await.map_err(JobError::retry)?;
    if let Some(status) = status {
        let _ = t.bot.edit_message_text(chat, status, texts::transcribed(lang)).patiently().await;
    }
    metrics::histogram!("aishad_transcribed_audio_seconds").record(probe.duration);
    Ok(json!({
        "transcript_id": transcript.id, "chunks": total, "duration": probe.duration,
        // probe and silence detection run one after another; chunk encodes run in parallel
        "ffmpeg_prepare_ms": spent.0.as_millis() as u64, "ffmpeg_encode_ms": encoding.as_millis() as u64,
        "chunks_ms": api_started.elapsed().as_millis() as u64,
    }))
}

/// One chunk through the API, with a few quick retries for what passes
/// (429 with its Retry-After, 5xx, timeouts) before the job-level retry.
async fn transcribe_chunk(t: &Transcriber, name: &str, data: Bytes, language: Option<&str>) -> Result<Transcription, JobError> {
    const TRIES: u32 = 4;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match t.openai.transcribe(name, data.clone(), language).await {
            Ok(text) => return Ok(text),
            Err(e) if e.needs_operator() => return Err(job_error(e)),
            Err(OpenAiError::RateLimited { retry_after }) if attempt < TRIES => {
                let wait = retry_after.unwrap_or(Duration::from_secs(2 << attempt)).min(Duration::from_secs(60));
                tracing::warn!(?wait, attempt, "OpenAI rate limit; waiting");
                tokio::time::sleep(wait).await;
            }
            Err(e @ (OpenAiError::Server { .. } | OpenAiError::Network(_))) if attempt < TRIES => {
                tracing::warn!(error = %e, attempt, "OpenAI call failed; retrying");
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
            Err(e) => return Err(job_error(e)),
        }
    }
}

/// Below this many bits a second, a length is not believable for its bytes
/// (an Ogg whose last page claims 2^52 samples).
const MIN_PLAUSIBLE_BITRATE: f64 = 2_000.0;

/// The measured length sets the price: refused (and so refunded) when it is
/// absurd or over `transcription.max_duration`, before any API call; else
/// the difference from what was charged up front is charged or refunded,
/// and the user told. Runs before the recording is planned into chunks.
async fn settle_measured_price(t: &Transcriber, job: &Job, ctx: &JobContext, lang: Lang, chat: ChatId, seconds: f64, bytes: u64) -> Result<(), JobError> {
    let settings = &t.services.settings;
    let max = settings.transcription.max_duration;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(JobError::Permanent(texts::unreadable_audio(lang).to_owned()));
    }
    if seconds > max.as_secs_f64() {
        return Err(JobError::Permanent(money_texts::too_long(lang, seconds, max)));
    }
    if bytes as f64 * 8.0 / seconds < MIN_PLAUSIBLE_BITRATE {
        return Err(JobError::Permanent(money_texts::implausible_length(lang).to_owned()));
    }
    let price = ledger::transcription_price(seconds, settings.pricing.transcription_per_minute)
        .ok_or_else(|| JobError::Permanent(money_texts::implausible_length(lang).to_owned()))?;
    if price == job.cost {
        // What was charged up front stands (an earlier attempt that settled
        // a difference would have left a cost other than this price).
        return Ok(());
    }
    let told = match ledger::settle_price(&t.services.db, job, &ctx.worker, price).await {
        Ok(Settled::Unchanged) => return Ok(()),
        Ok(Settled::Charged { extra, balance }) => money_texts::measured_more(lang, seconds, extra, balance),
        Ok(Settled::Refunded { amount, balance }) => money_texts::measured_less(lang, seconds, amount, balance),
        Ok(Settled::CannotPay { price, balance }) => {
            // Said here, with the Top up button; the failure notice that follows gives the refund.
            let refusal = t.bot.send_message(chat, texts::insufficient(lang, price, balance));
            let _ = refusal.reply_markup(top_up(lang)).patiently().await;
            return Err(JobError::Permanent(String::new()));
        }
        Err(ledger::LedgerError::NotHeld(_)) => return Err(JobError::Retry("lost the job before settling its price".into())),
        Err(e) => return Err(JobError::retry(e)),
    };
    tracing::info!(job_id = job.id, price, seconds, "price settled on the measured length");
    let _ = t.bot.send_message(chat, told).patiently().await;
    Ok(())
}
