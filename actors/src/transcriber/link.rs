//! Recordings from a link, on workers where yt-dlp runs. `link.probe` reads
//! what a link holds and tells its price, free: where the site states the
//! length nothing is downloaded; where it does not, the audio is fetched
//! (at most `links.max_bytes`), measured and kept for the transcription.
//! `link.transcribe` is a transcription whose recording comes from the link
//! (see `work::fetch`); a link that gives nothing is refused, and refunded.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, InlineKeyboardMarkup};

use super::audio::Spent;
use super::kinds::{LinkProbe, LinkSource, LINK_PROBE};
use super::measure::{self, MeasureError};
use super::shared::Transcriber;
use super::turn::{Recording, Turn, WorkDir};
use crate::chat::callback::{button, Callback};
use crate::chat::notices::tell_failed;
use crate::chat::{texts, Lang};
use crate::clients::links::{Guard, LinkError, YtDlp};
use crate::clients::Patiently;
use crate::jobs::{Job, JobError};
use crate::pool::{BoxFuture, DeadReason, JobContext, JobHandler};
use crate::settings::Settings;
use crate::store::transcripts::Transcript;

/// yt-dlp as the settings say, with the guard they allow.
pub(super) fn ytdlp(settings: &Settings) -> YtDlp {
    let links = &settings.links;
    YtDlp {
        program: links.ytdlp.clone(),
        // The ranges were checked when the settings were loaded.
        guard: Guard::new(&links.allow_ranges).unwrap_or_default(),
        max_bytes: links.max_bytes.0,
        max_memory: links.max_memory.0,
        probe_limit: links.probe_timeout,
        download_limit: links.download_timeout,
    }
}

/// yt-dlp for a free reading: what it may bring in is smaller, as no price
/// is agreed yet.
fn reader(settings: &Settings) -> YtDlp {
    YtDlp { max_bytes: settings.links.probe_max_bytes.0, ..ytdlp(settings) }
}

/// A link's failure for a job: the link's fault is told the user (and a
/// paid job refunded); what may pass is retried.
pub(super) fn job_error(lang: Lang, e: LinkError) -> JobError {
    if e.may_pass() {
        JobError::Retry(e.to_string())
    } else {
        JobError::Refused(texts::link_failed(lang, &e))
    }
}

/// A free reading's failure: too big is too big to price for free.
fn reading_failed(lang: Lang, e: LinkError) -> JobError {
    match e {
        LinkError::TooBig(cap) => JobError::Refused(texts::link_too_big_to_price(lang, cap)),
        e => job_error(lang, e),
    }
}

/// The audio a link leads to, fetched into `work`: its path and size; a
/// failure as `failed` says.
async fn download(
    ytdlp: &YtDlp,
    url: &str,
    work: &WorkDir,
    failed: impl FnOnce(LinkError) -> JobError,
) -> Result<(PathBuf, u64), JobError> {
    let path = ytdlp.download(url, work.dir()).await.map_err(failed)?;
    let size = tokio::fs::metadata(&path).await?.len();
    Ok((path, size))
}

/// The extension of a file yt-dlp wrote, for the name the API is told.
pub(super) fn extension_of(path: &Path) -> &'static str {
    known_extension(path.extension().and_then(|e| e.to_str()).unwrap_or_default())
}

/// An audio file's extension as one we name, `bin` for the rest.
pub(super) fn known_extension(ext: &str) -> &'static str {
    match ext {
        "m4a" | "mp4" | "aac" => "m4a",
        "mp3" => "mp3",
        "ogg" | "opus" | "oga" => "ogg",
        "webm" => "webm",
        "wav" => "wav",
        "flac" => "flac",
        _ => "bin",
    }
}

pub(super) struct Probe(pub Transcriber);

impl JobHandler for Probe {
    fn run(&self, job: Job, _ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        let t = self.0.clone();
        Box::pin(async move { probe(&t, job).await })
    }

    fn on_dead(&self, job: Job, reason: DeadReason) -> BoxFuture<()> {
        let t = self.0.clone();
        Box::pin(async move {
            let lang = Lang::from_code(job.language());
            let why = texts::link_failed(lang, &LinkError::Failed(String::new()));
            tell_failed(&t.bot, &job, LINK_PROBE.title, reason.for_user(&why), lang).await
        })
    }
}

/// Reads the link and offers its transcription at its price.
async fn probe(t: &Transcriber, job: Job) -> Result<Value, JobError> {
    let request: LinkProbe = job.payload_as()?;
    let (lang, chat) = (Lang::from_code(Some(&request.language)), ChatId(request.chat_id));
    let user_id = job.user_id.ok_or_else(|| JobError::Broken("a link without a user".into()))?;
    let db = &t.services.db;
    let Some(link) = db.link_of(user_id, request.link_id).await? else {
        return Ok(json!({ "outcome": "forgotten" }));
    };
    let settings = &t.services.settings;
    let found = reader(settings).probe(&link.url).await.map_err(|e| reading_failed(lang, e))?;
    let max = settings.transcription.max_duration;
    let (seconds, audio_key) = match found.duration {
        Some(seconds) => (seconds, None),
        None => fetch_and_measure(t, &job, user_id, &link.url, lang).await?,
    };
    if seconds > max.as_secs_f64() {
        return Err(JobError::Refused(texts::too_long(lang, seconds, max)));
    }
    db.link_read(link.id, &found.title, seconds, audio_key.as_deref()).await?;
    let rate = settings.pricing.transcription_rate(db.speakers(user_id).await?);
    let price = crate::ledger::transcription_price(seconds, rate)
        .ok_or_else(|| JobError::Refused(texts::implausible_length(lang).to_owned()))?;
    let yes = [[button(texts::link_confirm(lang, price), Callback::Link(link.id))]];
    let offer = t.bot.send_message(chat, texts::link_offer(lang, &found.title, seconds, price));
    offer.reply_markup(InlineKeyboardMarkup::new(yes)).patiently().await?;
    tracing::info!(job_id = job.id, user_id, link_id = link.id, seconds, price, "link read; its price offered");
    Ok(json!({ "outcome": "offered", "seconds": seconds, "price": price, "fetched": audio_key.is_some() }))
}

/// A link whose site states no length: its audio fetched, measured, kept.
async fn fetch_and_measure(
    t: &Transcriber,
    job: &Job,
    user_id: i64,
    url: &str,
    lang: Lang,
) -> Result<(f64, Option<String>), JobError> {
    let settings = &t.services.settings;
    let work = WorkDir::create(&settings.transcription.temp_dir, job.id).await?;
    let (path, size) = download(&reader(settings), url, &work, |e| reading_failed(lang, e)).await?;
    let max = settings.transcription.max_duration;
    let measured = measure::measure(&path, size, max, &mut Spent::default()).await.map_err(|e| match e {
        MeasureError::Tools(e) => JobError::retry(e),
        MeasureError::Unreadable | MeasureError::Implausible { .. } => {
            JobError::Refused(texts::unreadable_audio(lang).to_owned())
        }
        MeasureError::ClaimsTooLong(seconds) => JobError::Refused(texts::too_long(lang, seconds, max)),
    })?;
    let key = format!("audio/{user_id}/link-{}/original.{}", job.id, extension_of(&path));
    t.services.blob.put_file(&key, &path, "application/octet-stream").await?;
    Ok((measured.seconds, Some(key)))
}

impl Turn<'_> {
    /// A link's recording: fetched while the link was read, kept by an
    /// earlier attempt, or fetched now through yt-dlp and kept at once.
    pub(super) async fn fetch_link(
        &self,
        link: &LinkSource,
        transcript: &Transcript,
        work: &WorkDir,
    ) -> Result<Recording, JobError> {
        let blob = &self.worker.services.blob;
        if let Some(key) = link.audio_key.as_ref().or(transcript.audio_key.as_ref()) {
            let ext = key.rsplit('.').next().filter(|e| e.len() <= 4).map_or("bin", known_extension);
            let path = work.path(&format!("original.{ext}"));
            let size = blob.get_file(key, &path).await?;
            return Ok(Recording { path, size, ext, keep: false });
        }
        let ytdlp = ytdlp(&self.worker.services.settings);
        let (path, size) = download(&ytdlp, &link.url, work, |e| job_error(self.lang, e)).await?;
        // A site may serve a retry something else (4 hours where it served 5
        // minutes): kept now, before its price is settled, so every attempt
        // transcribes exactly what was paid for.
        let recording = Recording { ext: extension_of(&path), path, size, keep: true };
        self.keep_original(transcript, &recording).await?;
        Ok(Recording { keep: false, ..recording })
    }
}
