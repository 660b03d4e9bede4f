//! One chunk of a recording: made ready for the API (the counted voice note
//! as it is, anything else cut to the chunk and re-encoded) and sent, with a
//! few quick retries before the job-level ones.

use std::time::Duration;

use bytes::Bytes;

use super::audio::{self, Chunk, Spent};
use super::ogg;
use super::shared::Transcriber;
use super::turn::{Recording, Turn, WorkDir};
use crate::chat::texts;
use crate::clients::openai::{Ask, Transcription};
use crate::clients::{ApiError, Failure};
use crate::jobs::JobError;

/// What goes to the API for one chunk.
pub(super) struct Upload {
    /// The file name the API is told (its extension names the format).
    pub name: String,
    pub data: Bytes,
    /// What the API will hear, counted on the packets sent: the check of
    /// what it heard where it reports no duration (models billed by tokens).
    pub seconds: f64,
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
    let (name, data) = if as_is {
        ("voice.ogg".to_owned(), tokio::fs::read(&recording.path).await?)
    } else {
        let name = format!("chunk_{index}.ogg");
        let out = work.path(&name);
        audio::encode(&recording.path, piece, &out, &mut spent).await?;
        (name, tokio::fs::read(&out).await?)
    };
    let seconds = match heard_in(&data, piece.end - piece.start) {
        Ok(Some(seconds)) => seconds,
        Ok(None) => {
            tracing::info!(job_id = turn.job.id, chunk = index, "a chunk with no audio in it; not sent");
            return Ok((None, spent));
        }
        Err(seconds) => {
            // Never sent: more than was measured is more than was paid for.
            let planned = piece.end - piece.start;
            tracing::error!(
                job_id = turn.job.id,
                chunk = index,
                planned,
                seconds,
                "a chunk longer than planned: more audio than was measured"
            );
            metrics::counter!("aishad_alerts_total", "alert" => "transcription_chunk_longer").increment(1);
            return Err(JobError::Refused(texts::unreadable_audio(turn.lang).to_owned()));
        }
    };
    Ok((Some(Upload { name, data: Bytes::from(data), seconds }), spent))
}

/// Shorter than this, a chunk holds no audio worth an API call.
const MIN_AUDIBLE: f64 = 0.05;

/// Seconds the API would hear of `data`, Ogg Opus either way (a counted
/// voice note, or our own encoding), whose packets tell exactly; `None`
/// when nothing audible. More than a chunk of `planned` seconds may hold
/// is `Err(seconds)`: the encoder's cap did not hold.
fn heard_in(data: &[u8], planned: f64) -> Result<Option<f64>, f64> {
    let seconds = ogg::walk(data).map_or(0.0, |counted| counted.heard);
    if seconds < MIN_AUDIBLE {
        Ok(None)
    } else if seconds > audio::most_heard(planned) {
        Err(seconds)
    } else {
        Ok(Some(seconds))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_sent_only_within_what_was_planned() {
        let path = std::env::temp_dir().join(format!("aisha-chunk-{}.ogg", std::process::id()));
        let status = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:r=16000:d=3", "-c:a", "libopus"])
            .arg(&path)
            .status();
        assert!(status.unwrap().success());
        let data = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let heard = heard_in(&data, 3.0).unwrap().unwrap();
        assert!((heard - 3.0).abs() < 0.05, "{heard}");
        assert_eq!(heard_in(&data, 2.4), Ok(Some(heard)), "within the encoder's cap and a packet's padding");
        assert_eq!(heard_in(&data, 1.0), Err(heard), "three seconds for one planned");
        assert_eq!(heard_in(b"not ogg", 1.0), Ok(None));
    }
}
