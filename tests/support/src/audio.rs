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
    run("ffmpeg", &["-loglevel", "error", "-y", "-i", wav.to_str().unwrap(), "-c:a", "libopus", "-b:a", "24k", "-ac", "1", "-ar", "48000", ogg.to_str().unwrap()]);
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

/// About `seconds` (whole cycles) of a 440 Hz tone that pauses for `pause`
/// seconds after every `tone` seconds: a long recording with silences to cut
/// at. One cycle is encoded and looped by stream copy, so even an hour takes
/// well under a second to make.
pub fn tone_with_pauses(seconds: u32, tone: u32, pause: u32) -> Bytes {
    let (cycle, long) = (temp("cycle.ogg"), temp("long.ogg"));
    let length = tone + pause;
    let source = format!("sine=f=440:r=16000:d={length}");
    let gate = format!("volume=enable='gte(t,{tone})':volume=0");
    run("ffmpeg", &["-loglevel", "error", "-y", "-f", "lavfi", "-i", &source, "-af", &gate, "-c:a", "libopus", "-b:a", "12k", "-ac", "1", cycle.to_str().unwrap()]);
    let loops = (seconds / length).max(1) - 1;
    run("ffmpeg", &["-loglevel", "error", "-y", "-stream_loop", &loops.to_string(), "-i", cycle.to_str().unwrap(), "-c", "copy", long.to_str().unwrap()]);
    let bytes = std::fs::read(&long).unwrap();
    let _ = (std::fs::remove_file(cycle), std::fs::remove_file(long));
    bytes.into()
}

/// A voice note whose last Ogg page claims 2^52 samples (about 3,000 years
/// at 48 kHz), its checksum fixed so demuxers believe it: what a client
/// can send to make a recording look absurdly long.
pub fn absurdly_long_voice_note(text: &str) -> Bytes {
    let mut ogg = voice_note(text).to_vec();
    let last = ogg.windows(4).rposition(|w| w == b"OggS").expect("an Ogg page");
    ogg[last + 6..last + 14].copy_from_slice(&(1u64 << 52).to_le_bytes());
    ogg[last + 22..last + 26].fill(0);
    let crc = ogg_crc(&ogg[last..]);
    ogg[last + 22..last + 26].copy_from_slice(&crc.to_le_bytes());
    ogg.into()
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
