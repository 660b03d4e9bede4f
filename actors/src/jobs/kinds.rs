//! Every kind of job and the payload it carries, typed: whoever enqueues
//! builds the struct, whoever handles reads it back with `Job::payload_as`.
//! The kind names are what the `jobs` table and `jobs.kinds.<kind>` settings use.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A voice note, audio, video note or audio document to text: [`Transcribe`].
    Transcribe,
    /// Summary, action items or minutes of a transcript: [`Digest`].
    TranscriptDigest,
    /// Text to image on FAL: [`ImageRequest`].
    FalImagine,
    /// An image from the user's main avatar: [`ImageRequest`].
    FalGenerate,
    /// An avatar's LoRA training: [`Train`].
    FalTrain,
    /// Copy a finished FAL request's files to S3 and send them: [`FalRequestRef`].
    FalDeliver,
    /// Look after a FAL request whose callback does not come: [`FalRequestRef`].
    FalPoll,
    /// Read what a link holds and tell its price, free: [`LinkProbe`].
    LinkProbe,
    /// A link's recording to text, paid: [`Transcribe`] with its `link`.
    LinkTranscribe,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Transcribe,
        Kind::TranscriptDigest,
        Kind::FalImagine,
        Kind::FalGenerate,
        Kind::FalTrain,
        Kind::FalDeliver,
        Kind::FalPoll,
        Kind::LinkProbe,
        Kind::LinkTranscribe,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Transcribe => "transcribe",
            Kind::TranscriptDigest => "transcript.digest",
            Kind::FalImagine => "fal.imagine",
            Kind::FalGenerate => "fal.generate",
            Kind::FalTrain => "fal.train",
            Kind::FalDeliver => "fal.deliver",
            Kind::FalPoll => "fal.poll",
            Kind::LinkProbe => "link.probe",
            Kind::LinkTranscribe => "link.transcribe",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `transcribe`: what the dispatcher knew of the media when it queued it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcribe {
    pub chat_id: i64,
    pub message_id: i32,
    /// `voice`, `audio`, `video_note` or `document`.
    pub media: String,
    pub file_id: String,
    pub file_unique_id: String,
    pub file_size: Option<u64>,
    /// Seconds, as Telegram declared them; `None` for documents.
    pub duration: Option<u32>,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    /// The language the bot speaks to the user in (`ru`, `en`).
    pub language: String,
    /// The language of the recording, sent as the API's `language`;
    /// `None` lets the API detect it (the user's `/settings`: auto).
    #[serde(default)]
    pub spoken_language: Option<String>,
    /// In a group: the voice message the transcript answers.
    #[serde(default)]
    pub reply_to: Option<i32>,
    /// In a group: the payer's private chat, where what they are charged is
    /// said (never in the group).
    #[serde(default)]
    pub payer_chat_id: Option<i64>,
    /// In a group: the member who sent the voice note (the payer paid for
    /// it), whose `/deletemydata` removes its transcript too.
    #[serde(default)]
    pub sender_telegram_id: Option<i64>,
    /// Who said what: the diarizing model, at its own price per minute.
    #[serde(default)]
    pub speakers: bool,
    /// A recording from a link (`link.transcribe`), not from Telegram.
    #[serde(default)]
    pub link: Option<LinkSource>,
}

/// Where a `link.transcribe` recording comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSource {
    pub link_id: i64,
    pub url: String,
    /// The audio fetched while the link was read (S3), when there is one.
    pub audio_key: Option<String>,
}

/// `link.probe`: the link to read, and where to tell what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkProbe {
    pub link_id: i64,
    pub chat_id: i64,
    pub language: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestKind {
    Summary,
    Actions,
    Minutes,
}

impl DigestKind {
    pub const ALL: [DigestKind; 3] = [DigestKind::Summary, DigestKind::Actions, DigestKind::Minutes];

    pub fn as_str(self) -> &'static str {
        match self {
            DigestKind::Summary => "summary",
            DigestKind::Actions => "actions",
            DigestKind::Minutes => "minutes",
        }
    }

    pub fn parse(name: &str) -> Option<DigestKind> {
        DigestKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// `transcript.digest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub transcript_id: i64,
    pub kind: DigestKind,
    pub chat_id: i64,
    pub language: String,
}

/// `fal.imagine` and `fal.generate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRequest {
    pub prompt: String,
    pub chat_id: i64,
    pub language: String,
}

/// `fal.train`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Train {
    pub avatar_id: i64,
    pub chat_id: i64,
    pub language: String,
}

/// `fal.deliver` and `fal.poll`: the FAL request they look after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FalRequestRef {
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{Job, JobState, NewJob};

    fn round_trip<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(kind: Kind, payload: T) {
        let new = NewJob::of(kind, "key", &payload);
        assert_eq!(new.kind, kind.as_str());
        let job = Job {
            id: 1,
            kind: new.kind,
            state: JobState::Queued,
            user_id: None,
            chat_id: None,
            payload: new.payload,
            idempotency_key: new.idempotency_key,
            cost: 0,
            attempts: 0,
            max_attempts: 1,
            last_error: None,
            locked_by: None,
        };
        assert_eq!(job.payload_as::<T>().unwrap(), payload);
    }

    #[test]
    fn every_payload_survives_the_jobs_table() {
        round_trip(
            Kind::Transcribe,
            Transcribe {
                chat_id: 1,
                message_id: 2,
                media: "voice".into(),
                file_id: "f".into(),
                file_unique_id: "u".into(),
                file_size: Some(10),
                duration: Some(3),
                mime_type: Some("audio/ogg".into()),
                file_name: None,
                language: "en".into(),
                spoken_language: Some("kk".into()),
                reply_to: Some(9),
                payer_chat_id: Some(4),
                sender_telegram_id: Some(5),
                speakers: true,
                link: Some(LinkSource { link_id: 3, url: "https://example.com/a.mp3".into(), audio_key: None }),
            },
        );
        round_trip(
            Kind::TranscriptDigest,
            Digest { transcript_id: 7, kind: DigestKind::Minutes, chat_id: 1, language: "ru".into() },
        );
        round_trip(Kind::FalImagine, ImageRequest { prompt: "a fox".into(), chat_id: 1, language: "en".into() });
        round_trip(Kind::FalTrain, Train { avatar_id: 3, chat_id: 1, language: "en".into() });
        round_trip(Kind::FalDeliver, FalRequestRef { request_id: "r".into() });
    }

    #[test]
    fn kind_names_are_the_tables_and_settings_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::TranscriptDigest.as_str(), "transcript.digest");
        assert_eq!(Kind::parse("noop"), None);
    }

    #[test]
    fn a_payload_of_the_wrong_shape_is_a_permanent_error() {
        let job = Job {
            id: 1,
            kind: "fal.train".into(),
            state: JobState::Queued,
            user_id: None,
            chat_id: None,
            payload: serde_json::json!({ "prompt": 5 }),
            idempotency_key: "k".into(),
            cost: 0,
            attempts: 0,
            max_attempts: 1,
            last_error: None,
            locked_by: None,
        };
        assert!(matches!(job.payload_as::<Train>(), Err(crate::jobs::JobError::Broken(_))));
    }
}
