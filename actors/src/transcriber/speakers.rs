//! Who said what, the same person under the same label in every chunk: the
//! diarizing model labels each request on its own (A, B, … afresh), so the
//! first chunk's speakers are cut out as reference clips and every later
//! chunk is sent with them (`known_speaker_names[]`), to be labelled alike.

use bytes::Bytes;

use super::audio::Chunk;
use super::audio::{self, Spent};
use super::turn::{Recording, Turn, WorkDir};
use super::work::{Chunking, Progress};
use crate::clients::openai::{Ask, KnownSpeaker, Segment, MAX_KNOWN_SPEAKERS};
use crate::jobs::JobError;
use crate::store::transcripts::Transcript;

/// A reference clip is 2–10 s of one speaker alone: shorter says too little
/// of a voice, and the API takes no longer.
const MIN_REFERENCE: f64 = 2.0;
const MAX_REFERENCE: f64 = 10.0;

/// A stretch of the recording where one speaker talks alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub speaker: String,
    pub start: f64,
    pub end: f64,
}

/// For each speaker of the first chunk (in the order they first speak, at
/// most [`MAX_KNOWN_SPEAKERS`]), their longest turn (their segments in a
/// row joined), cut to 10 s, in the recording's seconds (the chunk starts at
/// `offset`). A speaker who never talks 2 s in a row gives no reference: the
/// model names them afresh.
pub fn reference_spans(offset: f64, segments: &[Segment]) -> Vec<Span> {
    let mut turns: Vec<Span> = Vec::new();
    for segment in segments {
        let Some(speaker) = &segment.speaker else { continue };
        match turns.last_mut() {
            Some(turn) if &turn.speaker == speaker => turn.end = turn.end.max(segment.end),
            _ => turns.push(Span { speaker: speaker.clone(), start: segment.start, end: segment.end }),
        }
    }
    let mut chosen: Vec<Span> = Vec::new();
    for turn in turns {
        match chosen.iter_mut().find(|c| c.speaker == turn.speaker) {
            Some(best) if turn.end - turn.start > best.end - best.start => *best = turn,
            Some(_) => {}
            None => chosen.push(turn),
        }
    }
    chosen
        .into_iter()
        .filter(|span| span.end - span.start >= MIN_REFERENCE)
        .take(MAX_KNOWN_SPEAKERS)
        .map(|span| Span {
            start: offset + span.start,
            end: offset + span.start + (span.end - span.start).min(MAX_REFERENCE),
            speaker: span.speaker,
        })
        .collect()
}

/// The first chunk's voices as WAV clips cut from the recording.
pub(super) async fn references(
    recording: &Recording,
    offset: f64,
    segments: &[Segment],
    work: &WorkDir,
) -> Result<Vec<KnownSpeaker>, JobError> {
    let mut known = Vec::new();
    let mut spent = Spent::default();
    for (i, span) in reference_spans(offset, segments).into_iter().enumerate() {
        let path = work.path(&format!("speaker_{i}.wav"));
        audio::clip_wav(&recording.path, span.start, span.end, &path, &mut spent).await?;
        let wav = tokio::fs::read(&path).await?;
        known.push(KnownSpeaker { name: span.speaker, wav: Bytes::from(wav) });
    }
    Ok(known)
}

impl Turn<'_> {
    /// The voices of the first chunk, as reference clips for the others:
    /// the first chunk transcribed alone, first (taken out of `pending`),
    /// unless an earlier attempt kept it.
    pub(super) async fn first_voices(
        &self,
        transcript: &Transcript,
        chunking: &Chunking<'_>,
        first: Chunk,
        pending: &mut Vec<(usize, Chunk)>,
        progress: &Progress<'_>,
    ) -> Result<(Vec<KnownSpeaker>, Spent), JobError> {
        let mut spent = Spent::default();
        if pending.first().is_some_and(|(i, _)| *i == 0) {
            let (i, piece) = pending.remove(0);
            spent = self.transcribe_chunk(transcript, chunking, i, piece, Ask::Speakers(&[]), progress).await?;
        }
        let saved = self.worker.services.db.transcript_chunks(transcript.id).await?;
        let Some(segments) = saved.into_iter().find(|c| c.idx == 0).and_then(|c| c.segments) else {
            return Ok((Vec::new(), spent));
        };
        let segments: Vec<Segment> = serde_json::from_value(segments).map_err(JobError::broken)?;
        let known = references(chunking.recording, first.start, &segments, chunking.work).await?;
        tracing::info!(job_id = self.job.id, voices = known.len(), "the first chunk's voices label the others");
        Ok((known, spent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(start: f64, end: f64, speaker: &str) -> Segment {
        Segment { start, end, text: "…".into(), speaker: Some(speaker.into()) }
    }

    #[test]
    fn each_speakers_longest_turn_cut_to_ten_seconds_on_the_recordings_clock() {
        let segments = [
            said(0.0, 1.5, "A"),
            said(1.5, 3.0, "A"), // A's first turn: 3 s
            said(3.0, 4.0, "B"), // B: 1 s, then 25 s below
            said(4.0, 5.0, "A"),
            said(5.0, 30.0, "B"),
            said(30.0, 31.0, "C"), // C never talks 2 s: no reference
        ];
        let spans = reference_spans(600.0, &segments);
        assert_eq!(
            spans,
            vec![
                Span { speaker: "A".into(), start: 600.0, end: 603.0 },
                Span { speaker: "B".into(), start: 605.0, end: 615.0 },
            ]
        );
    }

    #[test]
    fn at_most_four_voices_and_none_without_labels() {
        let many: Vec<Segment> = ["A", "B", "C", "D", "E"]
            .iter()
            .enumerate()
            .map(|(i, s)| said(i as f64 * 3.0, i as f64 * 3.0 + 3.0, s))
            .collect();
        assert_eq!(reference_spans(0.0, &many).len(), MAX_KNOWN_SPEAKERS);
        let unlabelled = [Segment { start: 0.0, end: 5.0, text: "x".into(), speaker: None }];
        assert!(reference_spans(0.0, &unlabelled).is_empty());
    }
}
