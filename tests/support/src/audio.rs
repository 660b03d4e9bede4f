//! Real audio for tests, made with espeak-ng and ffmpeg and encoded the way
//! Telegram encodes voice notes (OGG/Opus, mono, 48 kHz).

use std::process::Command;

use bytes::Bytes;

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap_or_else(|e| panic!("{program} not runnable: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("aisha-test-{}-{name}", uuid::Uuid::new_v4().simple()))
}

/// Speech saying `text`, as a Telegram voice note.
pub fn voice_note(text: &str) -> Bytes {
    let (wav, ogg) = (temp("speech.wav"), temp("speech.ogg"));
    run("espeak-ng", &["-w", wav.to_str().unwrap(), text]);
    run(
        "ffmpeg",
        &[
            "-loglevel",
            "error",
            "-y",
            "-i",
            wav.to_str().unwrap(),
            "-c:a",
            "libopus",
            "-b:a",
            "24k",
            "-ac",
            "1",
            "-ar",
            "48000",
            ogg.to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(&ogg).unwrap();
    let _ = (std::fs::remove_file(wav), std::fs::remove_file(ogg));
    bytes.into()
}

/// Speech saying `text` as an audio file of another kind (`mp3`, `m4a`,
/// `wav`…, by extension): what a user sends as music or a recording.
pub fn speech_file(text: &str, ext: &str) -> Bytes {
    let (wav, out) = (temp("speech.wav"), temp(&format!("speech.{ext}")));
    run("espeak-ng", &["-w", wav.to_str().unwrap(), text]);
    run("ffmpeg", &["-loglevel", "error", "-y", "-i", wav.to_str().unwrap(), "-ac", "1", out.to_str().unwrap()]);
    let bytes = std::fs::read(&out).unwrap();
    let _ = (std::fs::remove_file(wav), std::fs::remove_file(out));
    bytes.into()
}

/// `audio` (any file ffmpeg reads) as an HLS stream of AAC in MPEG-TS, as
/// podcast and radio sites serve it: `index.m3u8` and its `seg{n}.ts`
/// files, by name.
pub fn hls_of(audio: &[u8]) -> Vec<(String, Bytes)> {
    let (input, dir) = (temp("hls-input"), temp("hls"));
    std::fs::write(&input, audio).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let segments = dir.join("seg%d.ts");
    let index = dir.join("index.m3u8");
    let encode = ["-i", input.to_str().unwrap(), "-vn", "-c:a", "aac", "-f", "hls", "-hls_time", "2"];
    let vod =
        ["-hls_playlist_type", "vod", "-hls_segment_filename", segments.to_str().unwrap(), index.to_str().unwrap()];
    run("ffmpeg", &[&["-loglevel", "error", "-y"][..], &encode, &vod].concat());
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap().into())
        })
        .collect();
    let _ = (std::fs::remove_file(input), std::fs::remove_dir_all(dir));
    files
}

/// `seconds` of a tone, one MP3 per second alternating 48 and 44.1 kHz,
/// joined frame by frame, in Matroska with its timestamps divided by 200:
/// every second the decoder's format changes, and the container says the
/// whole file lasts a fraction of a second.
pub fn switching_formats(seconds: u32) -> Bytes {
    let mut joined = Vec::new();
    for i in 0..seconds {
        let (part, rate) = (temp("part.mp3"), if i % 2 == 0 { 48_000 } else { 44_100 });
        let source = format!("sine=f=440:r={rate}:d=1");
        let encode = ["-f", "lavfi", "-i", &source, "-c:a", "libmp3lame", "-b:a", "64k", part.to_str().unwrap()];
        run("ffmpeg", &[&["-loglevel", "error", "-y"][..], &encode].concat());
        joined.extend(std::fs::read(&part).unwrap());
        let _ = std::fs::remove_file(part);
    }
    let (mp3, mkv) = (temp("switching.mp3"), temp("switching.mkv"));
    std::fs::write(&mp3, joined).unwrap();
    let squeeze = ["-i", mp3.to_str().unwrap(), "-c", "copy", "-bsf:a", "setts=ts=TS/200", mkv.to_str().unwrap()];
    run("ffmpeg", &[&["-loglevel", "error", "-y"][..], &squeeze].concat());
    let bytes = std::fs::read(&mkv).unwrap();
    let _ = (std::fs::remove_file(mp3), std::fs::remove_file(mkv));
    bytes.into()
}

/// About `seconds` (whole cycles) of a 440 Hz tone that pauses for `pause`
/// seconds after every `tone` seconds: a long recording with silences to cut
/// at. One cycle is encoded and looped by stream copy, so even an hour takes
/// well under a second to make.
pub fn tone_with_pauses(seconds: u32, tone: u32, pause: u32) -> Bytes {
    let length = tone + pause;
    looped(f64::from(tone), f64::from(length), (seconds / length).max(1))
}

/// About `seconds` of beeps of `beep_ms` with `gap_ms` of silence between:
/// "words" at known times (every `beep_ms + gap_ms`, from 0), with pauses
/// too short for the worker to cut at, so a long one is cut at fixed points
/// with an overlap.
pub fn beeps(seconds: u32, beep_ms: u32, gap_ms: u32) -> Bytes {
    let length_ms = beep_ms + gap_ms;
    looped(f64::from(beep_ms) / 1000.0, f64::from(length_ms) / 1000.0, (seconds * 1000 / length_ms).max(1))
}

/// `cycles` of one cycle of `length` seconds, a 440 Hz tone for its first
/// `sound` seconds and silence after: the cycle encoded once (Opus, 12
/// kbit/s, mono) and repeated by stream copy.
fn looped(sound: f64, length: f64, cycles: u32) -> Bytes {
    let (cycle, long) = (temp("cycle.ogg"), temp("long.ogg"));
    let source = format!("sine=f=440:r=16000:d={length:.3}");
    let gate = format!("volume=enable='gte(t,{sound:.3})':volume=0");
    let encode = ["-f", "lavfi", "-i", &source, "-af", &gate, "-c:a", "libopus", "-b:a", "12k", "-ac", "1"];
    run("ffmpeg", &[&["-loglevel", "error", "-y"][..], &encode, &[cycle.to_str().unwrap()]].concat());
    let repeat = (cycles - 1).to_string();
    let copy = ["-stream_loop", &repeat, "-i", cycle.to_str().unwrap(), "-c", "copy", long.to_str().unwrap()];
    run("ffmpeg", &[&["-loglevel", "error", "-y"][..], &copy].concat());
    let bytes = std::fs::read(&long).unwrap();
    let _ = (std::fs::remove_file(cycle), std::fs::remove_file(long));
    bytes.into()
}

/// `(start, end)` of every stretch of sound between pauses of 0.1 s or
/// more, measured with ffmpeg: where the "words" of a recording really are.
pub fn sounds(audio: &[u8]) -> Vec<(f64, f64)> {
    let path = temp("sounds.ogg");
    std::fs::write(&path, audio).unwrap();
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(&path)
        .output();
    let duration: f64 = probe.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(0.0);
    let detect = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(&path)
        .args(["-af", "silencedetect=noise=-35dB:d=0.1", "-f", "null", "-"])
        .output();
    let _ = std::fs::remove_file(&path);
    let stderr = detect.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
    let value = |line: &str, key: &str| {
        line.split(key).nth(1).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse::<f64>().ok())
    };
    let mut found = Vec::new();
    let mut sound_from = 0.0;
    for line in stderr.lines() {
        if let Some(silence) = value(line, "silence_start: ") {
            if silence - sound_from > 0.05 {
                found.push((sound_from, silence.max(0.0)));
            }
        } else if let Some(end) = value(line, "silence_end: ") {
            sound_from = end;
        }
    }
    if duration - sound_from > 0.05 {
        found.push((sound_from, duration));
    }
    found
}

/// A voice note whose last Ogg page claims 2^52 samples (about 3,000 years
/// at 48 kHz), its checksum fixed so demuxers believe it: what a client
/// can send to make a recording look absurdly long.
pub fn absurdly_long_voice_note(text: &str) -> Bytes {
    claim_samples(&voice_note(text), 1 << 52)
}

/// About `seconds` of tone with pauses as a voice note whose last Ogg page
/// (and so ffprobe) claims `claimed` seconds: what a client can send to be
/// charged for a minute and have twenty heard.
pub fn voice_note_claiming(seconds: u32, claimed: u32) -> Bytes {
    claim_samples(&tone_with_pauses(seconds, 50, 3), u64::from(claimed) * 48_000 + 312)
}

/// `ogg` with its last page's granule position set to `granule`, its
/// checksum fixed.
fn claim_samples(ogg: &[u8], granule: u64) -> Bytes {
    let mut ogg = ogg.to_vec();
    let last = ogg.windows(4).rposition(|w| w == b"OggS").expect("an Ogg page");
    ogg[last + 6..last + 14].copy_from_slice(&granule.to_le_bytes());
    ogg[last + 22..last + 26].fill(0);
    let crc = ogg_crc(&ogg[last..]);
    ogg[last + 22..last + 26].copy_from_slice(&crc.to_le_bytes());
    ogg.into()
}

/// `ogg` with one byte of a page in its middle flipped: a checksum that
/// fails, which a careful reader refuses and ffmpeg skips.
pub fn with_a_damaged_page(ogg: &[u8]) -> Bytes {
    let mut ogg = ogg.to_vec();
    let middle = ogg.len() / 2;
    let page = ogg[..middle].windows(4).rposition(|w| w == b"OggS").expect("an Ogg page");
    ogg[page + 40] ^= 0x55;
    ogg.into()
}

/// Seconds of audio a decoder plays from `audio`, counted in decoded
/// samples: what an API that decodes the upload hears.
pub fn decoded_seconds(audio: &[u8]) -> f64 {
    let path = temp("decoded.bin");
    std::fs::write(&path, audio).unwrap();
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-nostats", "-i"])
        .arg(&path)
        .args(["-map", "0:a:0", "-af", "asetpts=N/SR/TB", "-f", "null", "-progress", "pipe:1", "-"])
        .output();
    let _ = std::fs::remove_file(&path);
    let stdout = output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let micros =
        stdout.lines().rev().find_map(|l| l.strip_prefix("out_time_us=")).and_then(|v| v.trim().parse::<i64>().ok());
    micros.unwrap_or(0).max(0) as f64 / 1e6
}

/// Ogg's page checksum: CRC-32, polynomial 0x04c11db7, unreflected, zero start.
fn ogg_crc(page: &[u8]) -> u32 {
    page.iter().fold(0u32, |mut crc, &byte| {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
        crc
    })
}
