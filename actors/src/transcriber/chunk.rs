//! One chunk of a recording: made ready for the API (the counted voice note
//! as it is, anything else cut to the chunk and re-encoded) and sent, with a
//! few quick retries before the job-level ones.

use std::time::Duration;

use bytes::Bytes;

use super::audio::{self, Chunk, Spent};
use super::turn::{Recording, Turn, WorkDir};
use super::{ogg, Transcriber};
use crate::clients::openai::{Ask, Transcription};
use crate::clients::{ApiError, Failure};
use crate::jobs::JobError;

/// What goes to the API for one chunk.
pub(super) struct Upload {
    /// The file name the API is told (its extension names the format).
    pub name: String,
    pub data: Bytes,
}

/// The chunk ready for the API, and the time ffmpeg took; `None` when it
/// holds no audio (a part of the plan past the end of a file whose
/// timestamps said less than its samples): nothing to send, nothing heard.
pub(super) async fn prepare(
    turn: &Turn<'_>,
    recording: &Recording,
    piece: Chunk,
    index: usize,
    as_is: bool,
    work: &WorkDir,
) -> Result<(Option<Upload>, Spent), JobError> {
    if *turn.ctx.cancelled.borrow() {
        return Err(JobError::Retry("the job was cancelled or its lease lost".into()));
    }
    let mut spent = Spent::default();
    if as_is {
        let data = tokio::fs::read(&recording.path).await?;
        return Ok((Some(Upload { name: "voice.ogg".to_owned(), data: Bytes::from(data) }), spent));
    }
    let name = format!("chunk_{index}.ogg");
    let out = work.path(&name);
    audio::encode(&recording.path, piece, &out, &mut spent).await?;
    let data = tokio::fs::read(&out).await?;
    // Our own encoding: its packets tell exactly how much the API would hear.
    let heard = ogg::walk(&data[..]).map_or(0.0, |counted| counted.heard);
    if heard < MIN_AUDIBLE {
        tracing::info!(job_id = turn.job.id, chunk = index, "a chunk with no audio in it; not sent");
        return Ok((None, spent));
    }
    Ok((Some(Upload { name, data: Bytes::from(data) }), spent))
}

/// Shorter than this, a chunk holds no audio worth an API call.
const MIN_AUDIBLE: f64 = 0.05;

/// One chunk through the API, with a few quick retries for what passes
/// (429 with its Retry-After, 5xx, timeouts) before the job-level retry.
pub(super) async fn transcribe(
    worker: &Transcriber,
    name: &str,
    data: Bytes,
    language: Option<&str>,
    ask: Ask<'_>,
) -> Result<Transcription, JobError> {
    const TRIES: u32 = 4;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match worker.openai.transcribe(name, data.clone(), language, ask).await {
            Ok(text) => return Ok(text),
            Err(e) if attempt >= TRIES => return Err(e.into()),
            Err(e) => match e.failure() {
                Failure::RetryAfter(retry_after) => {
                    let wait = retry_after.unwrap_or(Duration::from_secs(2 << attempt)).min(Duration::from_secs(60));
                    tracing::warn!(?wait, attempt, "OpenAI rate limit; waiting");
                    tokio::time::sleep(wait).await;
                }
                Failure::Passing => {
                    tracing::warn!(error = %e, attempt, "OpenAI call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
                Failure::Refused | Failure::NeedsOperator => return Err(e.into()),
            },
        }
    }
}
