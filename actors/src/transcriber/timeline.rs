//! One recording's transcript from its chunks: each chunk's segments moved
//! to the recording's clock, the words heard twice where fixed cuts overlap
//! said once, and the result as plain text, `.srt`, `.vtt` or a `.txt` with
//! timestamps. With speakers, the text goes by turns (`A: …` a paragraph)
//! and every format names who speaks (`<v A>` in WebVTT).

use serde::{Deserialize, Serialize};

use crate::clients::openai::Segment;
use crate::store::transcripts::SavedChunk;

/// One finished chunk: where it lies in the recording, what the API said.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkText {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Seconds from the chunk's start; `None` when the model gives no timing.
    pub segments: Option<Vec<Segment>>,
}

impl ChunkText {
    /// A chunk as it was kept (its segments as JSON).
    pub fn of(part: &SavedChunk) -> Result<Self, serde_json::Error> {
        let segments = part.segments.clone().map(serde_json::from_value).transpose()?;
        Ok(ChunkText { start: part.start, end: part.end, text: part.text.clone(), segments })
    }
}

/// A line of the transcript, in seconds from the recording's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

impl Cue {
    /// `A: text` with a speaker, the text alone without.
    pub fn said(&self) -> String {
        match &self.speaker {
            Some(speaker) => format!("{speaker}: {}", self.text),
            None => self.text.clone(),
        }
    }
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
                    kept.push(Cue {
                        start,
                        end: end.min(chunk.end.max(start)),
                        text: s.text.trim().to_owned(),
                        speaker: s.speaker.clone(),
                    });
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
    if timed && cues.iter().any(|c| c.speaker.is_some()) {
        return Timeline { text: turns(&cues), cues: monotonic(cues) };
    }
    Timeline { text: paragraphs.join("\n\n"), cues: if timed { monotonic(cues) } else { Vec::new() } }
}

/// A paragraph per turn: one speaker's cues in a row, `A: …`. A long reply
/// is split between paragraphs, so at a change of speaker.
fn turns(cues: &[Cue]) -> String {
    let mut paragraphs: Vec<Cue> = Vec::new();
    for cue in cues {
        match paragraphs.last_mut() {
            Some(turn) if turn.speaker == cue.speaker => {
                turn.text.push(' ');
                turn.text.push_str(&cue.text);
            }
            _ => paragraphs.push(cue.clone()),
        }
    }
    paragraphs.iter().map(Cue::said).collect::<Vec<_>>().join("\n\n")
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
        .map(|(i, c)| format!("{}\n{} --> {}\n{}\n", i + 1, clock(c.start, ','), clock(c.end, ','), c.said()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn vtt(cues: &[Cue]) -> String {
    let voiced = |c: &Cue| match &c.speaker {
        Some(speaker) => format!("<v {}>{}", speaker.replace(['<', '>', '&'], ""), c.text),
        None => c.text.clone(),
    };
    let body: Vec<String> =
        cues.iter().map(|c| format!("{} --> {}\n{}\n", clock(c.start, '.'), clock(c.end, '.'), voiced(c))).collect();
    format!("WEBVTT\n\n{}", body.join("\n"))
}

/// `[HH:MM:SS] text` a line, or the plain text when there is no timing.
pub fn timestamped_text(cues: &[Cue], plain: &str) -> String {
    if cues.is_empty() {
        return plain.to_owned();
    }
    cues.iter().map(|c| format!("[{}] {}", &clock(c.start, '.')[..8], c.said())).collect::<Vec<_>>().join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: f64, end: f64, text: &str) -> Segment {
        Segment { start, end, text: text.into(), speaker: None }
    }

    fn said(start: f64, end: f64, speaker: &str, text: &str) -> Segment {
        Segment { speaker: Some(speaker.into()), ..seg(start, end, text) }
    }

    #[test]
    fn with_speakers_the_text_goes_by_turns_and_every_format_names_them() {
        let chunks = [
            ChunkText {
                start: 0.0,
                end: 600.0,
                text: String::new(),
                segments: Some(vec![said(0.0, 2.0, "A", "Hello."), said(2.0, 4.0, "A", "How are you?")]),
            },
            ChunkText {
                start: 600.0,
                end: 700.0,
                text: String::new(),
                segments: Some(vec![said(0.0, 3.0, "B", "Fine."), said(3.0, 5.0, "A", "Good.")]),
            },
        ];
        let timeline = merge(&chunks);
        assert_eq!(timeline.text, "A: Hello. How are you?\n\nB: Fine.\n\nA: Good.");
        assert!(srt(&timeline.cues).contains("00:10:00,000 --> 00:10:03,000\nB: Fine.\n"), "{}", srt(&timeline.cues));
        assert!(vtt(&timeline.cues).contains("00:10:00.000 --> 00:10:03.000\n<v B>Fine.\n"), "{}", vtt(&timeline.cues));
        assert!(timestamped_text(&timeline.cues, "").contains("[00:10:03] A: Good."));
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
            Cue { start: 1.5, end: 3.25, text: "Hello".into(), speaker: None },
            Cue { start: 3661.0, end: 3662.0, text: "later".into(), speaker: None },
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
