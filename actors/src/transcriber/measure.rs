//! What a recording really holds, measured before anything is settled or
//! sent: the price is set on it, and the API is never given more. A
//! container's own claim (an Ogg's last granule, an MP3 or MP4 header,
//! ffprobe's figure, all written by the client) only refuses the absurd
//! early; the length itself comes from counting Opus packets (voice notes)
//! or from decoding the file to its end with ffmpeg (everything else).

use std::path::Path;
use std::time::Duration;

use super::audio::{self, AudioError, Probe, Spent};
use super::ogg;

/// The shortest pause a cut may land in.
pub const MIN_SILENCE: Duration = Duration::from_millis(400);

/// Below this many bits a second, a length is not believable for its bytes
/// (an Ogg whose last page claims 2^52 samples).
const MIN_PLAUSIBLE_BITRATE: f64 = 2_000.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Seconds of audio a decoder plays.
    pub seconds: f64,
    /// Where the file was decoded to measure it, its silences came with it.
    pub silences: Option<Vec<(f64, f64)>>,
    /// Every packet was counted (Ogg/Opus): the file itself may go to the
    /// API, which then hears exactly what was measured.
    pub countable: bool,
}

/// Why a recording could not be measured; the first three are the user's.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("no audio could be read from the file")]
    Unreadable,
    /// The container claims more than `transcription.max_duration`.
    #[error("the file claims {0:.0} s")]
    ClaimsTooLong(f64),
    /// The claimed or measured length is impossible for the file's size.
    #[error("a length of {seconds:.1} s is implausible for {bytes} bytes")]
    Implausible { seconds: f64, bytes: u64 },
    /// ffmpeg could not be run here: the worker's problem, retried.
    #[error(transparent)]
    Tools(AudioError),
}

impl From<AudioError> for MeasureError {
    fn from(e: AudioError) -> Self {
        match e {
            AudioError::Spawn { .. } => MeasureError::Tools(e),
            _ => MeasureError::Unreadable,
        }
    }
}

/// Measures the `bytes`-long file at `path`, refusing first what its
/// container claims that cannot be true or is over `max`.
pub async fn measure(path: &Path, bytes: u64, max: Duration, spent: &mut Spent) -> Result<Measured, MeasureError> {
    if let Some(counted) = ogg::measure(path).await {
        check_claim(counted.claimed, bytes, max, OPUS_MAX_BITRATE)?;
        check_bitrate(counted.heard, bytes)?;
        return Ok(Measured { seconds: counted.heard, silences: None, countable: true });
    }
    let probe = audio::probe(path, spent).await?;
    check_claim(probe.duration, bytes, max, max_plausible_bitrate(&probe))?;
    let scan = audio::scan(path, MIN_SILENCE, spent).await?;
    check_bitrate(scan.seconds, bytes)?;
    Ok(Measured { seconds: scan.seconds, silences: Some(scan.silences), countable: false })
}

/// A container's claim refuses early what cannot be true: longer than
/// `max`, or a bitrate its codec cannot have (`ceiling`) or its bytes
/// cannot carry. A claim that passes sets nothing: the measurement does.
fn check_claim(claimed: f64, bytes: u64, max: Duration, ceiling: f64) -> Result<(), MeasureError> {
    if claimed > max.as_secs_f64() {
        return Err(MeasureError::ClaimsTooLong(claimed));
    }
    if claimed > 0.0 && bytes as f64 * 8.0 / claimed > ceiling {
        return Err(MeasureError::Implausible { seconds: claimed, bytes });
    }
    if claimed > 0.0 {
        check_bitrate(claimed, bytes)?;
    }
    Ok(())
}

/// Opus tops out at 510 kbit/s.
const OPUS_MAX_BITRATE: f64 = 520_000.0;

fn check_bitrate(seconds: f64, bytes: u64) -> Result<(), MeasureError> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(MeasureError::Unreadable);
    }
    if bytes as f64 * 8.0 / seconds < MIN_PLAUSIBLE_BITRATE {
        return Err(MeasureError::Implausible { seconds, bytes });
    }
    Ok(())
}

/// The most bits a second a file of this kind can hold for its audio: a
/// claim that implies more is a length written short. Containers that may
/// carry video (MP4, Matroska, WebM) are bounded only by PCM's worst case.
fn max_plausible_bitrate(probe: &Probe) -> f64 {
    let audio_only = probe.format.split(',').any(|f| matches!(f, "ogg" | "mp3" | "wav" | "flac"));
    match probe.codec.as_deref() {
        // Vorbis tops out near 500 kbit/s, MPEG-1 Layer III at 320.
        Some("opus" | "vorbis") if audio_only => OPUS_MAX_BITRATE,
        Some("mp3") if audio_only => 330_000.0,
        // 32-bit float, 8 channels, 192 kHz: nothing a chat upload holds is denser.
        _ => 50_000_000.0,
    }
}

/// Whether a plan cut from `measured` must look for silences first.
pub fn needs_cutting(measured: &Measured, bytes: u64, chunk_length: Duration, max_upload: u64) -> bool {
    measured.seconds > chunk_length.as_secs_f64() || bytes > max_upload
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(format: &str, codec: &str, duration: f64) -> Probe {
        Probe { duration, format: format.into(), codec: Some(codec.into()) }
    }

    #[test]
    fn a_length_claimed_short_for_its_bytes_is_implausible_in_audio_only_containers() {
        // 24 MB claiming 60 s is 3.2 Mbit/s: no Opus or MP3 is that dense.
        let bits_per_second = 24e6 * 8.0 / 60.0;
        assert!(bits_per_second > max_plausible_bitrate(&probe("ogg", "opus", 60.0)));
        assert!(bits_per_second > max_plausible_bitrate(&probe("mp3", "mp3", 60.0)));
        // A video note's bytes are mostly video.
        assert!(bits_per_second < max_plausible_bitrate(&probe("mov,mp4,m4a,3gp,3g2,mj2", "aac", 60.0)));
        assert!(bits_per_second < max_plausible_bitrate(&probe("wav", "pcm_s16le", 60.0)));
    }

    #[test]
    fn a_claim_is_refused_when_too_long_or_too_dense_or_too_thin() {
        let max = Duration::from_secs(4 * 3600);
        assert!(matches!(
            check_claim(2f64.powi(52) / 48_000.0, 20_000, max, OPUS_MAX_BITRATE),
            Err(MeasureError::ClaimsTooLong(_))
        ));
        assert!(
            matches!(check_claim(60.0, 24_000_000, max, OPUS_MAX_BITRATE), Err(MeasureError::Implausible { .. })),
            "too dense"
        );
        assert!(
            matches!(check_claim(3600.0, 200, max, OPUS_MAX_BITRATE), Err(MeasureError::Implausible { .. })),
            "too thin"
        );
        assert!(
            check_claim(60.0, 1_900_000, max, OPUS_MAX_BITRATE).is_ok(),
            "a claim that could be true passes: the measurement decides"
        );
        assert!(check_claim(0.0, 1_000, max, OPUS_MAX_BITRATE).is_ok(), "no claim");
    }

    #[test]
    fn a_length_too_long_for_its_bytes_is_implausible() {
        assert!(matches!(check_bitrate(1e9, 1_000), Err(MeasureError::Implausible { .. })));
        assert!(matches!(check_bitrate(0.0, 1_000), Err(MeasureError::Unreadable)));
        assert!(check_bitrate(10.0, 30_000).is_ok());
    }
}
