//! One recording's transcript from its chunks: each chunk's segments moved
//! to the recording's clock, the words heard twice where fixed cuts overlap
//! said once, and the result as plain text, `.srt`, `.vtt` or a `.txt` with
//! timestamps.

use serde::{Deserialize, Serialize};

use crate::clients::openai::Segment;

/// One finished chunk: where it lies in the recording, what the API said.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkText {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Seconds from the chunk's start; `None` when the model gives no timing.
    pub segments: Option<Vec<Segment>>,
}

/// A line of the transcript, in seconds from the recording's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timeline {
    pub text: String,
    /// Empty when any chunk came without timing: subtitles need all of them.
    pub cues: Vec<Cue>,
}

/// The most words a seam can repeat: a second of overlap holds a few words,
/// and a longer match is more likely the speaker repeating themselves.
const MAX_SEAM_WORDS: usize = 12;

/// A cue is at least this long, so every cue starts strictly after the one before.
const MIN_CUE: f64 = 0.05;

/// Joins `chunks` (in recording order) into one transcript.
pub fn merge(chunks: &[ChunkText]) -> Timeline {
    let timed = chunks.iter().all(|c| c.segments.is_some());
    let mut cues: Vec<Cue> = Vec::new();
    let mut paragraphs: Vec<String> = Vec::new();
    let mut previous_end: Option<f64> = None;
    for chunk in chunks {
        // Where this chunk starts before the last one ended, those seconds were heard already.
        let heard_until = previous_end.filter(|end| *end > chunk.start);
        let mut text = match (&chunk.segments, timed) {
            (Some(segments), true) => {
                let mut kept = Vec::new();
                for s in segments {
                    let (start, end) = (chunk.start + s.start.max(0.0), chunk.start + s.end.max(s.start).max(0.0));
                    if heard_until.is_some_and(|until| end <= until + MIN_CUE || (start + end) / 2.0 < until)
                        && kept.is_empty()
                    {
                        continue;
                    }
                    kept.push(Cue { start, end: end.min(chunk.end.max(start)), text: s.text.trim().to_owned() });
                }
                if let (Some(first), Some(last)) = (kept.first_mut(), cues.last()) {
                    first.text = drop_repeated_words(&last.text, &first.text);
                }
                kept.retain(|c| !c.text.is_empty());
                let joined = kept.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join(" ");
                cues.extend(kept);
                joined
            }
            _ => chunk.text.trim().to_owned(),
        };
        if let (Some(_), Some(last)) = (heard_until, paragraphs.last()) {
            if !timed {
                text = drop_repeated_words(last, &text);
            }
        }
        if !text.is_empty() {
            paragraphs.push(text);
        }
        previous_end = Some(chunk.end);
    }
    Timeline { text: paragraphs.join("\n\n"), cues: if timed { monotonic(cues) } else { Vec::new() } }
}

/// Cue times strictly increasing and never overlapping.
fn monotonic(cues: Vec<Cue>) -> Vec<Cue> {
    let mut out: Vec<Cue> = Vec::with_capacity(cues.len());
    for mut cue in cues {
        if let Some(last) = out.last() {
            cue.start = cue.start.max(last.end);
        }
        cue.end = cue.end.max(cue.start + MIN_CUE);
        out.push(cue);
    }
    out
}

fn normalised(word: &str) -> String {
    word.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// `next` without its first words where they repeat the last words of
/// `previous` (case and punctuation aside): what two overlapping chunks both heard.
pub fn drop_repeated_words(previous: &str, next: &str) -> String {
    let tail: Vec<String> = previous
        .split_whitespace()
        .rev()
        .take(MAX_SEAM_WORDS)
        .map(normalised)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let head: Vec<&str> = next.split_whitespace().collect();
    let head_norm: Vec<String> = head.iter().take(MAX_SEAM_WORDS).map(|w| normalised(w)).collect();
    let longest = (1..=tail.len().min(head_norm.len()))
        .rev()
        .find(|&n| tail[tail.len() - n..] == head_norm[..n] && head_norm[..n].iter().any(|w| !w.is_empty()));
    match longest {
        Some(n) => head[n..].join(" "),
        None => next.trim().to_owned(),
    }
}

/// `HH:MM:SS` then `sep` and milliseconds: `,` for SRT, `.` for WebVTT.
fn clock(seconds: f64, sep: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}{sep}{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

pub fn srt(cues: &[Cue]) -> String {
    cues.iter()
        .enumerate()
        .map(|(i, c)| format!("{}\n{} --> {}\n{}\n", i + 1, clock(c.start, ','), clock(c.end, ','), c.text))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn vtt(cues: &[Cue]) -> String {
    let body: Vec<String> =
        cues.iter().map(|c| format!("{} --> {}\n{}\n", clock(c.start, '.'), clock(c.end, '.'), c.text)).collect();
    format!("WEBVTT\n\n{}", body.join("\n"))
}

/// `[HH:MM:SS] text` a line, or the plain text when there is no timing.
pub fn timestamped_text(cues: &[Cue], plain: &str) -> String {
    if cues.is_empty() {
        return plain.to_owned();
    }
    cues.iter().map(|c| format!("[{}] {}", &clock(c.start, '.')[..8], c.text)).collect::<Vec<_>>().join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: f64, end: f64, text: &str) -> Segment {
        Segment { start, end, text: text.into() }
    }

    #[test]
    fn offsets_move_segments_to_the_recording_clock() {
        let chunks = [
            ChunkText {
                start: 0.0,
                end: 600.0,
                text: "a b".into(),
                segments: Some(vec![seg(0.5, 3.0, "a"), seg(590.0, 599.5, "b")]),
            },
            ChunkText { start: 600.0, end: 900.0, text: "c".into(), segments: Some(vec![seg(1.0, 4.0, "c")]) },
        ];
        let timeline = merge(&chunks);
        let starts: Vec<f64> = timeline.cues.iter().map(|c| c.start).collect();
        assert_eq!(starts, vec![0.5, 590.0, 601.0]);
        assert_eq!(timeline.text, "a b\n\nc");
    }

    #[test]
    fn the_overlap_of_fixed_cuts_is_said_once_with_segments() {
        // Chunk 2 starts 1 s before chunk 1 ended: "the end" was heard by both.
        let chunks = [
            ChunkText {
                start: 0.0,
                end: 500.0,
                text: String::new(),
                segments: Some(vec![seg(490.0, 500.0, "this is the end")]),
            },
            ChunkText {
                start: 499.0,
                end: 1000.0,
                text: String::new(),
                segments: Some(vec![
                    seg(0.0, 0.9, "end"),
                    seg(0.9, 6.0, "The end. Of the first part"),
                    seg(6.0, 9.0, "next"),
                ]),
            },
        ];
        let timeline = merge(&chunks);
        assert_eq!(timeline.text, "this is the end\n\nOf the first part next");
        assert_eq!(timeline.cues.len(), 3);
        assert!(
            timeline.cues.windows(2).all(|w| w[1].start > w[0].start && w[1].start >= w[0].end),
            "{:?}",
            timeline.cues
        );
    }

    #[test]
    fn the_overlap_of_fixed_cuts_is_said_once_in_plain_text() {
        let chunks = [
            ChunkText { start: 0.0, end: 500.0, text: "we met on Monday, and".into(), segments: None },
            ChunkText { start: 499.0, end: 1000.0, text: "Monday and decided to ship".into(), segments: None },
        ];
        assert_eq!(merge(&chunks).text, "we met on Monday, and\n\ndecided to ship");
        assert!(merge(&chunks).cues.is_empty(), "no timing, no subtitles");
    }

    #[test]
    fn chunks_cut_at_silence_keep_every_word() {
        // No overlap (the second starts where the first ended): a repeated word is the speaker's.
        let chunks = [
            ChunkText { start: 0.0, end: 500.0, text: "yes".into(), segments: None },
            ChunkText { start: 500.0, end: 900.0, text: "yes indeed".into(), segments: None },
        ];
        assert_eq!(merge(&chunks).text, "yes\n\nyes indeed");
    }

    #[test]
    fn subtitle_formats() {
        let cues = vec![
            Cue { start: 1.5, end: 3.25, text: "Hello".into() },
            Cue { start: 3661.0, end: 3662.0, text: "later".into() },
        ];
        assert_eq!(srt(&cues), "1\n00:00:01,500 --> 00:00:03,250\nHello\n\n2\n01:01:01,000 --> 01:01:02,000\nlater\n");
        assert_eq!(
            vtt(&cues),
            "WEBVTT\n\n00:00:01.500 --> 00:00:03.250\nHello\n\n01:01:01.000 --> 01:01:02.000\nlater\n"
        );
        assert_eq!(timestamped_text(&cues, "x"), "[00:00:01] Hello\n[01:01:01] later\n");
        assert_eq!(timestamped_text(&[], "plain"), "plain");
    }
}
