//! ffmpeg and ffprobe: measure a recording, find its silences, and cut it
//! into chunks small enough for the transcription API. A user's file is
//! untrusted input: it is opened as a local file in an audio container only
//! (no playlists, no network, no other protocol), with stdin closed, and
//! every run has a time limit, after which the process is killed.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("could not run {program}: {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Failed { program: &'static str, status: String, stderr: String },
    #[error("no audio stream could be read from the file")]
    NoAudio,
    #[error("{program} ran over its {limit:?} limit and was killed")]
    TimedOut { program: &'static str, limit: Duration },
}

/// The containers audio arrives in (Telegram voice notes, audio files,
/// video notes, and MPEG-TS: an HLS stream from a link, its segments joined
/// as they came): what ffmpeg may open. An HLS playlist or concat list named
/// `.mp3` is refused instead of followed.
const INPUT_FORMATS: &str = "ogg,matroska,webm,mov,mp4,m4a,mp3,aac,wav,w64,flac,amr,caf,mpegts";
/// Options that go before every `-i` (and ffprobe's input).
const INPUT_GUARD: [&str; 4] = ["-protocol_whitelist", "file", "-format_whitelist", INPUT_FORMATS];
/// ffmpeg's, when it decodes: and a stream whose sample rate or channels
/// change midway is an error, not a new filter graph, which would restart
/// every count and cap in it (`asetpts=N`, `atrim`): a file switching every
/// second would measure as its last second and pass a chunk uncapped.
const DECODE_GUARD: [&str; 6] =
    ["-protocol_whitelist", "file", "-format_whitelist", INPUT_FORMATS, "-reinit_filter", "0"];
/// Reading the header of a file takes milliseconds; this is for the pathological.
const PROBE_LIMIT: Duration = Duration::from_secs(30);
/// Decoding an hour of audio takes well under a minute.
const WORK_LIMIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub duration: f64,
    pub format: String,
    pub codec: Option<String>,
}

impl Probe {
    /// OGG/Opus (Telegram voice notes) goes to the API as it is.
    pub fn is_ogg_opus(&self) -> bool {
        self.format.split(',').any(|f| f == "ogg") && self.codec.as_deref() == Some("opus")
    }
}

/// One piece of the recording, in seconds from its start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub start: f64,
    pub end: f64,
}

/// Time spent in ffmpeg/ffprobe, for metrics and the benchmark.
#[derive(Debug, Default, Clone, Copy)]
pub struct Spent(pub Duration);

async fn run(
    program: &'static str,
    args: &[&str],
    limit: Duration,
    spent: &mut Spent,
) -> Result<(Vec<u8>, String), AudioError> {
    let started = Instant::now();
    let running = tokio::process::Command::new(program).args(args).stdin(Stdio::null()).kill_on_drop(true).output();
    let output = tokio::time::timeout(limit, running)
        .await
        .map_err(|_| AudioError::TimedOut { program, limit })?
        .map_err(|source| AudioError::Spawn { program, source })?;
    spent.0 += started.elapsed();
    metrics::histogram!("aishad_ffmpeg_seconds", "program" => program).record(started.elapsed().as_secs_f64());
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        let tail: String =
            stderr.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" | ");
        return Err(AudioError::Failed { program, status: output.status.to_string(), stderr: tail });
    }
    Ok((output.stdout, stderr))
}

fn arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

pub async fn probe(path: &Path, spent: &mut Spent) -> Result<Probe, AudioError> {
    let path = arg(path);
    let [p, protocols, f, formats] = INPUT_GUARD;
    let args = [
        "-v",
        "error",
        p,
        protocols,
        f,
        formats,
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        "-select_streams",
        "a",
        &path,
    ];
    let (stdout, _) = run("ffprobe", &args, PROBE_LIMIT, spent).await?;
    let json: serde_json::Value = serde_json::from_slice(&stdout).unwrap_or_default();
    let stream = json["streams"].as_array().and_then(|s| s.first()).ok_or(AudioError::NoAudio)?;
    let duration = json["format"]["duration"]
        .as_str()
        .or_else(|| stream["duration"].as_str())
        .and_then(|d| d.parse::<f64>().ok())
        .ok_or(AudioError::NoAudio)?;
    Ok(Probe {
        duration,
        format: json["format"]["format_name"].as_str().unwrap_or_default().to_owned(),
        codec: stream["codec_name"].as_str().map(str::to_owned),
    })
}

/// The recording decoded to the end: how long it really is, and its
/// silences. The length counts decoded samples (`asetpts=N/SR/TB` gives
/// every sample a clock of its own), so neither the container's header nor
/// its timestamps, which a client writes, can make it shorter. Silences are
/// on the container's clock, the one `encode` seeks on.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    pub seconds: f64,
    /// `(start, end)` of every silence of at least the asked length at `-35 dB` or quieter.
    pub silences: Vec<(f64, f64)>,
}

/// Decodes the first audio stream of `path` (the one `encode` reads) to its end.
pub async fn scan(path: &Path, min_silence: Duration, spent: &mut Spent) -> Result<Scan, AudioError> {
    let path = arg(path);
    let graph = format!(
        "[0:a:0]asplit=2[counted][heard];[counted]{SAMPLE_CLOCK}[samples];[heard]silencedetect=noise=-35dB:d={:.2},anullsink",
        min_silence.as_secs_f64()
    );
    let [p, protocols, f, formats, r, once] = DECODE_GUARD;
    let args = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        p,
        protocols,
        f,
        formats,
        r,
        once,
        "-i",
        &path,
        "-filter_complex",
        &graph,
        "-map",
        "[samples]",
        "-c:a",
        "pcm_s16le",
        "-f",
        "null",
        "-progress",
        "pipe:1",
        "-",
    ];
    let (stdout, stderr) = run("ffmpeg", &args, WORK_LIMIT, spent).await?;
    let seconds = decoded_seconds(&String::from_utf8_lossy(&stdout)).ok_or(AudioError::NoAudio)?;
    Ok(Scan { seconds, silences: parse_silences(&stderr) })
}

/// Counts decoded samples as time, from 0: see [`Scan`].
const SAMPLE_CLOCK: &str = "asetpts=N/SR/TB";

/// How long a chunk of `span` seconds may come out of the encoder: a file
/// joined from pieces by stream copy (each with its own pre-skip) plays a
/// little longer than its timestamps say; a lying container much longer,
/// and is cut here.
fn encoder_cap(span: f64) -> f64 {
    span.max(0.0) * 1.02 + 0.5
}

/// The most a chunk of `span` seconds may be heard: the encoder's cap, the
/// last Opus packet's padding and the API's rounding. More is audio that
/// was never measured, so never paid for.
pub fn most_heard(span: f64) -> f64 {
    encoder_cap(span) + 0.1
}

/// The last `out_time_us` of ffmpeg's `-progress` report: the output's length.
fn decoded_seconds(progress: &str) -> Option<f64> {
    let micros = progress
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("out_time_us="))
        .and_then(|v| v.trim().parse::<i64>().ok())?;
    (micros > 0).then(|| micros as f64 / 1e6)
}

fn parse_silences(stderr: &str) -> Vec<(f64, f64)> {
    let mut found = Vec::new();
    let mut start = None;
    for line in stderr.lines() {
        let value = |key: &str| {
            line.split(key).nth(1).and_then(|rest| rest.split_whitespace().next()).and_then(|v| v.parse::<f64>().ok())
        };
        if let Some(s) = value("silence_start: ") {
            start = Some(s.max(0.0));
        } else if let (Some(e), Some(s)) = (value("silence_end: "), start) {
            found.push((s, e));
            start = None;
        }
    }
    found
}

/// Cuts `duration` seconds into chunks of at most `length`: each cut goes in
/// the middle of the silence nearest the ideal point, if one lies within
/// `window`; otherwise at the ideal point, with the next chunk starting
/// `overlap` earlier so no word is lost at the seam. Ideal points are spaced
/// so that even two cuts moved a full window apart stay within `length`.
pub fn plan(
    duration: f64,
    silences: &[(f64, f64)],
    length: Duration,
    window: Duration,
    overlap: Duration,
) -> Vec<Chunk> {
    let length = length.as_secs_f64().max(1.0);
    if duration <= length {
        return vec![Chunk { start: 0.0, end: duration }];
    }
    let window = Duration::from_secs_f64(window.as_secs_f64().min(length / 4.0));
    let room = length - 2.0 * window.as_secs_f64() - overlap.as_secs_f64();
    let count = (duration / room).ceil() as usize;
    let step = duration / count as f64;
    let mut chunks = Vec::with_capacity(count);
    let mut start = 0.0;
    for i in 1..count {
        let ideal = step * i as f64;
        let nearest = silences
            .iter()
            .map(|(s, e)| (s + e) / 2.0)
            .filter(|mid| (mid - ideal).abs() <= window.as_secs_f64() && *mid > start + 1.0)
            .min_by(|a, b| (a - ideal).abs().total_cmp(&(b - ideal).abs()));
        match nearest {
            Some(cut) => {
                chunks.push(Chunk { start, end: cut });
                start = cut;
            }
            None => {
                chunks.push(Chunk { start, end: ideal });
                start = (ideal - overlap.as_secs_f64()).max(0.0);
            }
        }
    }
    chunks.push(Chunk { start, end: duration });
    chunks
}

/// Re-encodes `chunk` of `input` (on the container's clock, as `scan`'s
/// silences are, so timing stays with the words) as mono 16 kHz OGG/Opus
/// at 24 kbit/s: about 3 MB per 10 minutes, far under the API's 25 MiB.
/// The output is also capped by a count of decoded samples (atrim counts
/// them, whatever the timestamps say) at the chunk's length and a little
/// slack, so a container whose timestamps lie cannot pass the API more
/// audio than was measured and charged.
pub async fn encode(input: &Path, chunk: Chunk, output: &Path, spent: &mut Spent) -> Result<(), AudioError> {
    const RATE: f64 = 16_000.0;
    let (input, output) = (arg(input), arg(output));
    let cap = encoder_cap(chunk.end - chunk.start) * RATE;
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
        .into_iter()
        .chain(DECODE_GUARD)
        .map(String::from)
        .collect();
    if chunk.start > 0.0 {
        args.extend(["-ss".into(), format!("{:.3}", chunk.start)]);
    }
    args.extend([
        "-to".into(),
        format!("{:.3}", chunk.end),
        "-i".into(),
        input,
        "-map".into(),
        "0:a:0".into(),
        "-vn".into(),
    ]);
    args.extend([
        "-af".into(),
        format!("aresample={RATE},atrim=end_sample={}", cap.ceil() as u64),
        "-ac".into(),
        "1".into(),
    ]);
    // compression_level 5: a fifth faster than the default 10, same size, no audible loss for speech.
    args.extend([
        "-c:a".into(),
        "libopus".into(),
        "-b:a".into(),
        "24k".into(),
        "-compression_level".into(),
        "5".into(),
    ]);
    args.extend(["-f".into(), "ogg".into(), output]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("ffmpeg", &args, WORK_LIMIT, spent).await.map(|_| ())
}

/// `start`–`end` of `input` as 16 kHz mono WAV: a reference clip of a
/// speaker's voice, in a format the API takes for one.
pub async fn clip_wav(input: &Path, start: f64, end: f64, output: &Path, spent: &mut Spent) -> Result<(), AudioError> {
    let (input, output) = (arg(input), arg(output));
    let (start, end) = (format!("{start:.3}"), format!("{end:.3}"));
    let [p, protocols, f, formats, r, once] = DECODE_GUARD;
    let args = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-y",
        p,
        protocols,
        f,
        formats,
        r,
        once,
        "-ss",
        &start,
        "-to",
        &end,
        "-i",
        &input,
        "-map",
        "0:a:0",
        "-vn",
        "-af",
        "aresample=16000",
        "-ac",
        "1",
        "-c:a",
        "pcm_s16le",
        "-f",
        "wav",
        &output,
    ];
    run("ffmpeg", &args, WORK_LIMIT, spent).await.map(|_| ())
}

/// The filters, encoders and muxers measuring and cutting use: an ffmpeg built
/// without one of them (docker/Dockerfile builds a small one) would fail
/// every recording.
const FILTERS: [&str; 6] = ["anullsink", "aresample", "asetpts", "asplit", "atrim", "silencedetect"];
const ENCODERS: [&str; 2] = ["libopus", "pcm_s16le"];
const MUXERS: [&str; 2] = ["ogg", "wav"];

pub async fn check_tools() -> Result<(), String> {
    let mut spent = Spent::default();
    for program in ["ffmpeg", "ffprobe"] {
        run(program, &["-version"], PROBE_LIMIT, &mut spent).await.map_err(|e| e.to_string())?;
    }
    let mut missing: Vec<&str> = Vec::new();
    for (list, wanted) in [("-filters", &FILTERS[..]), ("-encoders", &ENCODERS[..]), ("-muxers", &MUXERS[..])] {
        let (listed, _) =
            run("ffmpeg", &["-hide_banner", list], PROBE_LIMIT, &mut spent).await.map_err(|e| e.to_string())?;
        let listed = String::from_utf8_lossy(&listed);
        let has = |name: &str| listed.lines().any(|l| l.split_whitespace().nth(1) == Some(name));
        missing.extend(wanted.iter().filter(|name| !has(name)));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("ffmpeg lacks {missing:?}"))
    }
}

#[cfg(test)]
mod tests;
