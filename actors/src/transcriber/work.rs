//! One `transcribe` job as named steps, resumable at every one: the audio
//! is kept in S3 after the first download, the chunk plan and each finished
//! chunk are kept in PostgreSQL, and the transcript is sent only once.
//!
//! fetch → measure, and settle the price on it → plan → transcribe the
//! chunks (never more audio than was measured) → store (the charge now
//! stands) → check what the API heard → deliver.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{ChatAction, MessageId};

use super::audio::{self, Chunk, Spent};
use super::draft::{Draft, Drafts};
use super::kinds::{Source, TelegramFile};
use super::measure::{self, MeasureError, Measured};
use super::paid::Taken;
use super::shared::Transcriber;
use super::timeline::{self, ChunkText};
use super::turn::{Recording, Turn, WorkDir};
use super::{chunk, settle};
use crate::chat::keyboards::transcript_keyboard;
use crate::chat::reply::send_long;
use crate::chat::texts;
use crate::clients::bot_api::is_undeliverable;
use crate::clients::openai::{Ask, Transcription};
use crate::clients::{fetch_telegram_file, DownloadError, Patiently};
use crate::jobs::{Job, JobError};
use crate::keep;
use crate::pool::JobContext;
use crate::store::transcripts::{Finished, SavedChunk, Transcript, TranscriptField};

/// Where the chunks are cut from, and whether the recording goes as it is.
pub(super) struct Chunking<'a> {
    pub recording: &'a Recording,
    pub work: &'a WorkDir,
    pub as_is: bool,
}

/// Chunks finished of `total`, shown by editing `status` (when there is one)
/// and as drafts of the text so far (when they are on); and the chunks this
/// attempt kept, while they are all the transcript has.
pub(super) struct Progress<'a> {
    finished: AtomicUsize,
    total: usize,
    status: Option<MessageId>,
    drafts: Option<&'a Drafts>,
    kept_here: Mutex<Option<Vec<SavedChunk>>>,
}

impl Progress<'_> {
    /// A chunk done: `Some` when this attempt's write kept it. One kept by
    /// another caller means the chunks are read back once all are done.
    fn kept(&self, chunk: Option<SavedChunk>) {
        let mut here = self.kept_here.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match (here.as_mut(), chunk) {
            (Some(parts), Some(chunk)) => parts.push(chunk),
            _ => *here = None,
        }
    }

    /// Every chunk of the plan, in order, when this attempt kept them all.
    fn all_kept_here(self, planned: usize) -> Option<Vec<SavedChunk>> {
        let mut parts = self.kept_here.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())?;
        parts.sort_by_key(|chunk| chunk.idx);
        (parts.len() == planned).then_some(parts)
    }
}

/// How a recording's progress is shown while its chunks are transcribed.
pub(super) struct Shown<'a> {
    pub status: Option<MessageId>,
    pub drafts: Option<&'a Drafts>,
}

/// What the chunks came to: how long their audio took to prepare, and every
/// chunk when this attempt kept them all (else they are read back).
pub(super) struct Transcribed {
    spent: Spent,
    parts: Option<Vec<SavedChunk>>,
}

/// The transcript made and kept: what goes to the user.
pub(super) struct Made {
    pub text: String,
    pub timed: bool,
    /// The chunks the API made it from (none for a repeat).
    pub parts: Vec<SavedChunk>,
}

pub(super) async fn transcribe(worker: &Transcriber, job: Job, ctx: JobContext) -> Result<Value, JobError> {
    let mut turn = Turn::new(worker, &job, &ctx)?;
    turn.read_glossary().await?;
    let transcript = turn.start().await?;
    if transcript.delivered {
        return Ok(json!({ "transcript_id": transcript.id, "already_delivered": true }));
    }
    if let Some((made, seconds)) = turn.repeat(&transcript).await? {
        let outcome = turn.deliver(&transcript, &made, seconds, None).await?;
        return Ok(json!({ "transcript_id": transcript.id, "repeat": true, "outcome": outcome }));
    }
    turn.show_typing();
    let work = WorkDir::create(&worker.services.settings.transcription.temp_dir, job.id).await?;
    let recording = turn.fetch(&transcript, &work).await?;
    let mut spent = Spent::default();
    let measured = turn.measure(&recording, &mut spent).await?;
    settle::measured_price(&turn, measured.seconds).await?;
    let plan = turn.plan(&transcript, &recording, &measured, &mut spent).await?;
    let status = turn.progress_message(&transcript, plan.len()).await?;
    let drafts = turn.drafts(&transcript, plan.len());
    let api_started = Instant::now();
    let shown = Shown { status, drafts: drafts.as_ref() };
    let chunks = turn.transcribe_chunks(&transcript, &recording, &measured, &plan, shown, &work);
    // Both run to the end: a failure to keep the original must not drop a
    // chunk's call in flight, which is paid for whatever happens to it.
    let (original, chunks) = futures::future::join(turn.put_original(&transcript, &recording), chunks).await;
    let (original, chunks) = match (original, chunks) {
        (original, Err(e)) => {
            turn.record_original(&transcript, original).await;
            return Err(e);
        }
        (original, Ok(chunks)) => (original?, chunks),
    };
    let made = turn.store(&transcript, chunks.parts, original, measured.seconds, plan.len()).await?;
    settle::heard(&turn, measured.seconds, &made.parts).await;
    if let Some(drafts) = drafts {
        drafts.finish().await;
    }
    let outcome = turn.deliver(&transcript, &made, measured.seconds, status).await?;
    Ok(json!({
        "transcript_id": transcript.id, "chunks": plan.len(), "duration": measured.seconds, "outcome": outcome,
        // measuring and silence detection run one after another; chunk encodes run in parallel
        "ffmpeg_prepare_ms": spent.0.as_millis() as u64, "ffmpeg_encode_ms": chunks.spent.0.as_millis() as u64,
        "chunks_ms": api_started.elapsed().as_millis() as u64,
    }))
}

impl Turn<'_> {
    async fn start(&mut self) -> Result<Transcript, JobError> {
        let r = &self.request;
        let unique_id = r.unique_id();
        let db = &self.worker.services.db;
        let started = db
            .start_transcript(self.job.id, self.user_id, r.chat_id, &self.asked(&unique_id), r.sender_telegram_id)
            .await?;
        self.fresh = started.fresh;
        Ok(started.transcript)
    }

    /// "Typing…" while it works (not for a guest: the chat is not ours);
    /// nothing waits for it.
    fn show_typing(&self) {
        if self.request.guest.is_some() {
            return;
        }
        let (bot, chat) = (self.worker.bot.clone(), self.target.chat);
        tokio::spawn(async move {
            let _ = bot.send_chat_action(chat, ChatAction::Typing).patiently().await;
        });
    }

    /// The audio, streamed to disk (with a local Bot API server it may be
    /// 2000 MB): from S3 when an earlier attempt kept it, else from Telegram.
    async fn fetch(&self, transcript: &Transcript, work: &WorkDir) -> Result<Recording, JobError> {
        let settings = &self.worker.services.settings;
        let file = match &self.request.source {
            Source::Link(link) => return self.fetch_link(link, transcript, work).await,
            Source::Telegram(file) => file,
        };
        let ext = extension(file);
        let path = work.path(&format!("original.{ext}"));
        if let Some(key) = &transcript.audio_key {
            let size = self.worker.services.blob.get_file(key, &path).await?;
            return Ok(Recording { path, size, ext, keep: false });
        }
        let max = settings.telegram.max_download();
        let size = fetch_telegram_file(&self.worker.bot, &settings.telegram, &file.file_id, max, &path).await.map_err(
            |e| match e {
                DownloadError::TooBig(size) => JobError::Refused(texts::too_big(self.lang, size, max)),
                DownloadError::Telegram(e) => e.into(),
                other => JobError::retry(other),
            },
        )?;
        Ok(Recording { path, size, ext, keep: !settings.telegram.local_api })
    }

    /// What the recording really holds (see `measure`); the user's file
    /// refused with a reason they can act on.
    async fn measure(&self, recording: &Recording, spent: &mut Spent) -> Result<Measured, JobError> {
        let max = self.worker.services.settings.transcription.max_duration;
        measure::measure(&recording.path, recording.size, max, spent).await.map_err(|e| match e {
            MeasureError::Tools(e) => JobError::retry(e),
            MeasureError::Unreadable => JobError::Refused(texts::unreadable_audio(self.lang).to_owned()),
            MeasureError::ClaimsTooLong(seconds) => JobError::Refused(texts::too_long(self.lang, seconds, max)),
            MeasureError::Implausible { seconds, bytes } => {
                tracing::warn!(
                    job_id = self.job.id,
                    seconds,
                    bytes,
                    "a recording whose length cannot be true for its size"
                );
                JobError::Refused(texts::implausible_length(self.lang).to_owned())
            }
        })
    }

    /// The chunks, cut in silences where there are any; kept when there are
    /// several, so another worker resumes them.
    async fn plan(
        &self,
        transcript: &Transcript,
        recording: &Recording,
        measured: &Measured,
        spent: &mut Spent,
    ) -> Result<Vec<Chunk>, JobError> {
        if let Some(plan) = transcript.plan.clone().and_then(|v| serde_json::from_value::<Vec<Chunk>>(v).ok()) {
            return Ok(plan);
        }
        let limits = &self.worker.services.settings.transcription;
        let silences = match &measured.silences {
            Some(found) => found.clone(),
            None if measure::needs_cutting(measured, recording.size, limits.chunk_length, limits.max_upload.0) => {
                audio::scan(&recording.path, measure::MIN_SILENCE, spent).await?.silences
            }
            None => Vec::new(),
        };
        let plan = audio::plan(measured.seconds, &silences, limits.chunk_length, limits.silence_window, limits.overlap);
        if plan.len() > 1 {
            let value = serde_json::to_value(&plan).map_err(JobError::broken)?;
            self.worker.services.db.update_transcript(transcript.id, TranscriptField::Plan, &value).await?;
        }
        Ok(plan)
    }

    /// Drafts of the text so far: in a private chat, for a recording of
    /// several chunks, unless turned off.
    fn drafts(&self, transcript: &Transcript, chunks: usize) -> Option<Drafts> {
        let private = self.request.reply_to.is_none() && self.request.guest.is_none() && self.target.chat.is_user();
        let on = self.worker.services.settings.transcription.stream_drafts;
        (on && private && chunks > 1).then(|| {
            Drafts::start(Draft {
                bot: self.worker.bot.clone(),
                db: self.worker.services.db.clone(),
                chat: self.target.chat.0,
                transcript_id: transcript.id,
                chunks,
            })
        })
    }

    /// Progress ("3/12", edited as chunks finish) only for what takes a while.
    async fn progress_message(&self, transcript: &Transcript, total: usize) -> Result<Option<MessageId>, JobError> {
        match (total, transcript.status_message_id) {
            // A guest's answer says "⏳" until the text replaces it.
            _ if self.request.guest.is_some() => Ok(None),
            (1, _) => Ok(None),
            (_, Some(id)) => Ok(Some(MessageId(id))),
            (_, None) => {
                let mut request =
                    self.worker.bot.send_message(self.target.chat, texts::transcribing(self.lang, 0, total));
                if let Some(reply) = self.target.reply_parameters() {
                    request = request.reply_parameters(reply);
                }
                let sent = request.patiently().await.map_err(JobError::from)?;
                let db = &self.worker.services.db;
                db.update_transcript(transcript.id, TranscriptField::StatusMessage, &sent.id.0).await?;
                Ok(Some(sent.id))
            }
        }
    }

    /// The chunks not yet done, through the API a few at once, each kept as
    /// it finishes. A voice note whose every packet was counted goes as it
    /// is; everything else is cut to its chunk and re-encoded. With
    /// speakers, the first chunk goes alone first: its voices are the
    /// references the others are labelled by.
    async fn transcribe_chunks(
        &self,
        transcript: &Transcript,
        recording: &Recording,
        measured: &Measured,
        plan: &[Chunk],
        shown: Shown<'_>,
        work: &WorkDir,
    ) -> Result<Transcribed, JobError> {
        let db = &self.worker.services.db;
        let limits = &self.worker.services.settings.transcription;
        let done: HashSet<i32> = match self.fresh {
            true => HashSet::new(),
            false => db.transcript_chunks(transcript.id).await?.into_iter().map(|c| c.idx).collect(),
        };
        if !done.is_empty() {
            tracing::info!(done = done.len(), total = plan.len(), "resuming a transcription");
        }
        let progress = Progress {
            finished: AtomicUsize::new(done.len()),
            total: plan.len(),
            status: shown.status,
            drafts: shown.drafts,
            kept_here: Mutex::new(self.fresh.then(Vec::new)),
        };
        let chunking = Chunking {
            recording,
            work,
            as_is: plan.len() == 1 && measured.countable && recording.size <= limits.max_upload.0,
        };
        let mut pending: Vec<(usize, Chunk)> =
            plan.iter().copied().enumerate().filter(|(i, _)| !done.contains(&(*i as i32))).collect();
        let (known, spent) = match self.request.speakers && plan.len() > 1 {
            true => self.first_voices(transcript, &chunking, plan[0], &mut pending, &progress).await?,
            false => (Vec::new(), Spent::default()),
        };
        let prompt = self.glossary.prompt();
        let ask = if self.request.speakers { Ask::Speakers(&known) } else { Ask::Text { prompt: prompt.as_deref() } };
        // A chunk that fails stops the ones not yet started, never the ones in
        // flight: their calls are paid for, so they finish and are kept. So
        // does a worker that stops, which then hands the job back.
        let failed = AtomicBool::new(false);
        let stopped = AtomicBool::new(false);
        let results: Vec<Result<Option<Spent>, JobError>> = futures::stream::iter(pending)
            .map(|(i, piece)| {
                let (failed, stopped, progress, chunking) = (&failed, &stopped, &progress, &chunking);
                async move {
                    if failed.load(Ordering::SeqCst) {
                        return Ok(None);
                    }
                    if *self.ctx.stopping.borrow() {
                        stopped.store(true, Ordering::SeqCst);
                        return Ok(None);
                    }
                    let result = self.transcribe_chunk(transcript, chunking, i, piece, ask, progress).await;
                    failed.fetch_or(result.is_err(), Ordering::SeqCst);
                    result.map(Some)
                }
            })
            .buffer_unordered(limits.parallel_chunks.max(1))
            .collect()
            .await;
        let mut total = spent.0;
        for result in results {
            total += result?.map_or(std::time::Duration::ZERO, |s| s.0);
        }
        if stopped.load(Ordering::SeqCst) {
            return Err(JobError::Yield);
        }
        Ok(Transcribed { spent: Spent(total), parts: progress.all_kept_here(plan.len()) })
    }

    /// One chunk: its call taken (or another worker's awaited), cut, sent,
    /// kept (paid.rs: never paid twice), and the progress message moved on.
    pub(super) async fn transcribe_chunk(
        &self,
        transcript: &Transcript,
        chunking: &Chunking<'_>,
        i: usize,
        piece: Chunk,
        ask: Ask<'_>,
        progress: &Progress<'_>,
    ) -> Result<Spent, JobError> {
        let idx = i as i32;
        if let Taken::KeptElsewhere = self.take_call(transcript.id, idx).await? {
            progress.kept(None);
            self.advance(progress).await;
            return Ok(Spent::default());
        }
        let made = async {
            let (upload, spent) =
                chunk::prepare(self, chunking.recording, piece, i, chunking.as_is, chunking.work).await?;
            self.kept_alive(transcript.id, idx, async {
                let heard = match upload {
                    Some(upload) => {
                        let sent = upload.seconds;
                        let heard =
                            chunk::transcribe(self.worker, &upload.name, upload.data, self.spoken_language(), ask)
                                .await?;
                        // Where the API reports no duration, what was sent is what it heard.
                        Transcription { duration: heard.duration.or(Some(sent)), ..heard }
                    }
                    None => self.nothing_heard(),
                };
                let saved = SavedChunk {
                    idx,
                    start: piece.start,
                    end: piece.end,
                    text: heard.text,
                    segments: heard.segments.map(serde_json::to_value).transpose().map_err(JobError::broken)?,
                    heard_seconds: heard.duration,
                };
                let ours = self.keep_paid(transcript.id, &saved).await?;
                progress.kept(ours.then_some(saved));
                Ok::<_, JobError>(())
            })
            .await?;
            Ok::<_, JobError>(spent)
        };
        let spent = match made.await {
            Ok(spent) => spent,
            Err(e) => {
                self.give_up_call(transcript.id, idx).await;
                return Err(e);
            }
        };
        self.advance(progress).await;
        Ok(spent)
    }

    /// One more chunk done: the progress message says so.
    async fn advance(&self, progress: &Progress<'_>) {
        let n = progress.finished.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(drafts) = progress.drafts {
            drafts.chunk_done();
        }
        if let Some(status) = progress.status {
            let edit = self.worker.bot.edit_message_text(
                self.target.chat,
                status,
                texts::transcribing(self.lang, n, progress.total),
            );
            let _ = edit.patiently().await;
        }
    }

    /// What a chunk with no audio in it says, timed like the model's answers.
    fn nothing_heard(&self) -> Transcription {
        let segments = (self.worker.openai.gives_segments() || self.request.speakers).then(Vec::new);
        Transcription { text: String::new(), segments, language: None, duration: Some(0.0) }
    }

    fn spoken_language(&self) -> Option<&str> {
        self.request.spoken_language.as_deref().filter(|l| *l != "auto")
    }

    /// The chunks joined, kept in S3 and recorded (with the original's key
    /// when this attempt put it): from here on the transcript exists and its
    /// charge stands.
    async fn store(
        &self,
        transcript: &Transcript,
        parts: Option<Vec<SavedChunk>>,
        audio_key: Option<String>,
        seconds: f64,
        total: usize,
    ) -> Result<Made, JobError> {
        let (db, blob) = (&self.worker.services.db, &self.worker.services.blob);
        let parts = match parts {
            Some(parts) => parts,
            None => db.transcript_chunks(transcript.id).await?,
        };
        let chunks = parts.iter().map(ChunkText::of).collect::<Result<Vec<_>, _>>().map_err(JobError::broken)?;
        let timeline::Timeline { text, mut cues } = timeline::merge(&chunks);
        let text = self.glossary.apply(&text);
        for cue in &mut cues {
            cue.text = self.glossary.apply(&cue.text);
        }
        if text.is_empty() {
            return Err(JobError::Refused(texts::no_speech(self.lang).to_owned()));
        }
        let prefix = format!("transcripts/{}/{}", self.user_id, transcript.id);
        let text_key = format!("{prefix}/transcript.txt");
        let segments_key = (!cues.is_empty()).then(|| format!("{prefix}/segments.json"));
        let keep_text = blob.put(&text_key, Bytes::from(text.clone()), "text/plain; charset=utf-8");
        let keep_cues = async {
            match &segments_key {
                Some(key) => blob
                    .put(key, Bytes::from(serde_json::to_vec(&cues).map_err(JobError::broken)?), "application/json")
                    .await
                    .map_err(JobError::from),
                None => Ok(()),
            }
        };
        futures::future::try_join(async { Ok::<_, JobError>(keep_text.await?) }, keep_cues).await?;
        let summary = Finished {
            segments_key: segments_key.clone(),
            text_key,
            chars: text.chars().count() as i32,
            preview: text.chars().take(80).collect(),
            duration_seconds: seconds,
            chunk_count: total as i32,
            language: None,
            repeat_of: None,
            audio_key,
        };
        db.finish_transcript(transcript.id, &summary).await?;
        Ok(Made { text, timed: segments_key.is_some(), parts })
    }

    /// Sent by the worker still holding the job, once. A user who cannot be
    /// reached keeps the transcript in /history, and the charge stands.
    async fn deliver(
        &self,
        transcript: &Transcript,
        made: &Made,
        seconds: f64,
        status: Option<MessageId>,
    ) -> Result<&'static str, JobError> {
        let (bot, db) = (&self.worker.bot, &self.worker.services.db);
        self.ctx.hold(self.job).await?;
        let intro = texts::transcript_intro(self.lang, seconds);
        let sends = async {
            match &self.request.guest {
                Some(guest) => self.answer_guest(guest, &intro, &made.text).await,
                None => self.send_transcript(transcript, made, &intro).await,
            }
        };
        let outcome = self.ctx.deliver(self.job, sends).await?;
        // Sent: recorded however long the database is slow or away, or the
        // next attempt would send it again.
        keep::until_kept("a transcript's delivery", self.job.id, || db.mark_transcript_delivered(transcript.id))
            .await?;
        if let (Some(status), "delivered") = (status, outcome) {
            let _ = bot.edit_message_text(self.target.chat, status, texts::transcribed(self.lang)).patiently().await;
        }
        metrics::histogram!("aishad_transcribed_audio_seconds").record(seconds);
        Ok(outcome)
    }

    /// The transcript as messages (or a document) with its buttons.
    async fn send_transcript(
        &self,
        transcript: &Transcript,
        made: &Made,
        intro: &str,
    ) -> Result<&'static str, JobError> {
        let keyboard = transcript_keyboard(self.lang, transcript.id, made.timed, self.request.speakers);
        let max_messages = self.worker.services.settings.transcription.max_messages;
        let sent =
            send_long(&self.worker.bot, self.target, intro, &made.text, Some(keyboard), max_messages, "transcript.txt")
                .await;
        match sent {
            Ok(()) => Ok("delivered"),
            Err(e) if is_undeliverable(&e) => {
                tracing::warn!(job_id = self.job.id, user_id = self.user_id, error = %e, "transcript made but undeliverable");
                Ok("undeliverable")
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn extension(file: &TelegramFile) -> &'static str {
    match (file.media.as_str(), file.mime_type.as_deref().unwrap_or_default()) {
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
