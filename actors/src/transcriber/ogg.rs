//! Ogg/Opus (Telegram's voice notes) measured in-process, packet by packet:
//! the samples a decoder plays, counted from each Opus packet's TOC byte
//! (RFC 6716 §3.1), not read from the last page's granule position, which
//! a client can set to anything (a 20-minute note whose last page claims
//! 60 s). Anything the walk is not sure of (another codec, a second logical
//! stream, bytes between or after pages, a page cut short or with a bad
//! checksum, an empty packet) gives `None`, and ffmpeg decodes the file.

use std::io::Read;
use std::path::Path;

/// Opus always counts time at 48 kHz, whatever the input rate was.
const OPUS_RATE: f64 = 48_000.0;
/// The longest Opus packet: 120 ms.
const MAX_PACKET_SAMPLES: u64 = 5_760;
/// Larger files are decoded by ffmpeg instead (a voice note is tens of
/// kilobytes a minute); the walk holds one page in memory at a time.
const MAX_WALKED_BYTES: u64 = 64 * 1024 * 1024;
/// An Opus packet is at most 48 frames of 1,275 bytes; a "packet" that
/// runs on past this over many pages is not Opus.
const MAX_PACKET_BYTES: usize = 128 * 1024;

/// What an Ogg/Opus file holds, by its packets, and what its last page says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OggOpus {
    /// Seconds a decoder plays: every packet's samples, less the pre-skip.
    pub heard: f64,
    /// Seconds the last page's granule position claims.
    pub claimed: f64,
}

/// The file at `path` walked page by page; `None` when it is not a plain
/// Ogg/Opus stream the walk can vouch for.
pub async fn measure(path: &Path) -> Option<OggOpus> {
    let path = path.to_owned();
    let walked = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).ok()?;
        if file.metadata().ok()?.len() > MAX_WALKED_BYTES {
            return None;
        }
        walk(std::io::BufReader::new(file))
    });
    walked.await.ok().flatten()
}

/// One logical Opus stream, every byte inside a page, every page in sequence.
pub fn walk(mut input: impl Read) -> Option<OggOpus> {
    let mut stream = Stream::default();
    let mut page = Vec::new();
    while read_page(&mut input, &mut page)? {
        if stream.ended {
            return None; // bytes after the end of the stream: a chained file
        }
        stream.page(&page)?;
    }
    stream.finish()
}

/// The next page into `page`: `Some(false)` at the end of the input,
/// `None` when it ends inside a page.
fn read_page(input: &mut impl Read, page: &mut Vec<u8>) -> Option<bool> {
    page.clear();
    page.resize(27, 0);
    match read_full(input, page)? {
        0 => return Some(false),
        27 => {}
        _ => return None,
    }
    let segments = usize::from(page[26]);
    page.resize(27 + segments, 0);
    input.read_exact(&mut page[27..]).ok()?;
    let body: usize = page[27..].iter().map(|&l| usize::from(l)).sum();
    let start = page.len();
    page.resize(start + body, 0);
    input.read_exact(&mut page[start..]).ok()?;
    Some(true)
}

/// Fills `buffer` unless the input ends first; how much it read.
fn read_full(input: &mut impl Read, buffer: &mut [u8]) -> Option<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(filled)
}

#[derive(Default)]
struct Stream {
    serial: Option<u32>,
    next_sequence: u32,
    partial: Vec<u8>,
    packets: u64,
    pre_skip: u64,
    samples: u64,
    last_granule: Option<i64>,
    ended: bool,
}

impl Stream {
    /// Takes in one whole page (its header, lacing values and body).
    fn page(&mut self, page: &[u8]) -> Option<()> {
        let header = page.get(..27)?;
        if &header[0..4] != b"OggS" || header[4] != 0 {
            return None;
        }
        let flags = header[5];
        let granule = i64::from_le_bytes(header[6..14].try_into().ok()?);
        let serial = u32::from_le_bytes(header[14..18].try_into().ok()?);
        let sequence = u32::from_le_bytes(header[18..22].try_into().ok()?);
        let lacing = page.get(27..27 + usize::from(header[26]))?;
        let body_start = 27 + lacing.len();
        if page_crc(page) != u32::from_le_bytes(header[22..26].try_into().ok()?) {
            return None;
        }
        let first = self.serial.is_none();
        let begins = flags & 0x02 != 0;
        if first != begins || self.serial.is_some_and(|s| s != serial) || sequence != self.next_sequence {
            return None;
        }
        // A continued packet on a page that does not say so, or the reverse.
        if (flags & 0x01 != 0) == self.partial.is_empty() {
            return None;
        }
        self.serial = Some(serial);
        self.next_sequence = sequence.checked_add(1)?;
        let mut offset = body_start;
        for &length in lacing {
            self.partial.extend_from_slice(page.get(offset..offset + usize::from(length))?);
            offset += usize::from(length);
            if self.partial.len() > MAX_PACKET_BYTES {
                return None;
            }
            if length < 255 {
                let packet = std::mem::take(&mut self.partial);
                self.packet(&packet)?;
            }
        }
        if granule != -1 {
            self.last_granule = Some(granule);
        }
        self.ended = flags & 0x04 != 0;
        Some(())
    }

    fn packet(&mut self, packet: &[u8]) -> Option<()> {
        self.packets += 1;
        match self.packets {
            1 => {
                if !packet.starts_with(b"OpusHead") {
                    return None;
                }
                self.pre_skip = u64::from(u16::from_le_bytes([*packet.get(10)?, *packet.get(11)?]));
            }
            2 if !packet.starts_with(b"OpusTags") => return None,
            2 => {}
            _ => self.samples = self.samples.checked_add(opus_packet_samples(packet)?)?,
        }
        Some(())
    }

    fn finish(self) -> Option<OggOpus> {
        if !self.ended || !self.partial.is_empty() || self.packets < 3 {
            return None;
        }
        let heard = self.samples.checked_sub(self.pre_skip)? as f64 / OPUS_RATE;
        let claimed = self.last_granule.unwrap_or(0).saturating_sub(self.pre_skip as i64).max(0) as f64 / OPUS_RATE;
        Some(OggOpus { heard, claimed })
    }
}

/// Samples (at 48 kHz) one Opus packet decodes to, from its TOC byte and,
/// for code 3, its frame count; `None` for an empty or malformed packet.
fn opus_packet_samples(packet: &[u8]) -> Option<u64> {
    let toc = *packet.first()?;
    let config = usize::from(toc >> 3);
    let per_frame: u64 = match config {
        0..=11 => [480, 960, 1920, 2880][config % 4],
        12..=15 => [480, 960][config % 2],
        _ => [120, 240, 480, 960][config % 4],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(*packet.get(1)? & 0x3F),
    };
    let samples = per_frame * frames;
    (frames > 0 && samples <= MAX_PACKET_SAMPLES).then_some(samples)
}

/// Ogg's page checksum: CRC-32, polynomial 0x04c11db7, unreflected, zero
/// start, computed with the checksum field as zeros.
fn page_crc(page: &[u8]) -> u32 {
    page.iter().enumerate().fold(0u32, |crc, (i, &byte)| {
        let byte = if (22..26).contains(&i) { 0 } else { byte };
        (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ byte)]
    })
}

/// The checksum's byte-at-a-time table.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// One page of `serial`, numbered `sequence`, holding whole `packets`.
    fn page(flags: u8, granule: i64, sequence: u32, packets: &[Vec<u8>]) -> Vec<u8> {
        let mut lacing = Vec::new();
        let mut body = Vec::new();
        for p in packets {
            lacing.extend(std::iter::repeat_n(255u8, p.len() / 255));
            lacing.push((p.len() % 255) as u8);
            body.extend_from_slice(p);
        }
        let mut page = b"OggS\0".to_vec();
        page.push(flags);
        page.extend(granule.to_le_bytes());
        page.extend(7u32.to_le_bytes());
        page.extend(sequence.to_le_bytes());
        page.extend([0; 4]);
        page.push(lacing.len() as u8);
        page.extend(lacing);
        page.extend(body);
        let crc = page_crc(&page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        page
    }

    fn head(pre_skip: u16) -> Vec<u8> {
        let mut head = b"OpusHead\x01\x01".to_vec();
        head.extend(pre_skip.to_le_bytes());
        head.extend([0x80, 0xbb, 0, 0, 0, 0, 0]);
        head
    }

    /// A 20 ms CELT frame (config 31, code 0) with a little payload.
    fn frame() -> Vec<u8> {
        vec![31 << 3, 1, 2, 3]
    }

    /// `frames` 20 ms frames, the last page claiming `claimed_samples`.
    fn stream(frames: usize, claimed_samples: i64) -> Vec<u8> {
        let mut file = page(0x02, 0, 0, &[head(312)]);
        file.extend(page(0, 0, 1, &[b"OpusTags".to_vec()]));
        let audio: Vec<Vec<u8>> = (0..frames).map(|_| frame()).collect();
        file.extend(page(0x04, claimed_samples + 312, 2, &audio));
        file
    }

    #[test]
    fn an_honest_note_is_measured_by_its_packets() {
        let measured = walk(&stream(50, 48_000)[..]).unwrap();
        assert!((measured.heard - (50.0 * 960.0 - 312.0) / 48_000.0).abs() < 1e-9, "{measured:?}");
        assert!((measured.claimed - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_last_page_that_claims_less_than_the_packets_hold_is_not_believed() {
        // 200 frames of 20 ms (4 s) whose last page claims 1 s.
        let measured = walk(&stream(200, 48_000)[..]).unwrap();
        assert!(measured.heard > 3.9, "{measured:?}");
        assert!((measured.claimed - 1.0).abs() < 1e-9);
    }

    #[test]
    fn frame_counts_follow_the_toc_byte() {
        assert_eq!(opus_packet_samples(&[31 << 3]), Some(960), "CELT 20 ms, one frame");
        assert_eq!(opus_packet_samples(&[(3 << 3) | 1]), Some(2 * 2880), "SILK 60 ms, two frames");
        assert_eq!(opus_packet_samples(&[(16 << 3) | 3, 48]), Some(48 * 120), "CELT 2.5 ms, 48 frames");
        assert_eq!(opus_packet_samples(&[(3 << 3) | 3, 3]), None, "3 × 60 ms is over Opus's 120 ms");
        assert_eq!(opus_packet_samples(&[(31 << 3) | 3, 0]), None, "no frames");
        assert_eq!(opus_packet_samples(&[]), None, "an empty packet");
    }

    #[test]
    fn what_the_walk_cannot_vouch_for_goes_to_ffmpeg() {
        let honest = stream(10, 9_600);
        let mut junk_between = honest.clone();
        junk_between.splice(100..100, [0u8; 3]);
        assert_eq!(walk(&junk_between[..]), None, "bytes outside a page");
        let mut chained = honest.clone();
        chained.extend(stream(10, 9_600));
        assert_eq!(walk(&chained[..]), None, "a second stream after the first");
        let mut bad_crc = honest.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0xff;
        assert_eq!(walk(&bad_crc[..]), None, "a page whose checksum fails");
        assert_eq!(walk(&honest[..honest.len() - 2]), None, "cut short");
        let mut no_end = honest.clone();
        let eos = no_end.windows(4).rposition(|w| w == b"OggS").unwrap() + 5;
        no_end[eos] = 0;
        assert_eq!(walk(&no_end[..]), None, "no end-of-stream page (and so a checksum that fails)");
        assert_eq!(walk(&b"ID3\x03 an mp3"[..]), None);
    }
}
