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

/// `transcribe` and `link.transcribe`: a recording to text, where it comes
/// from, and for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::Transcribe", into = "wire::Transcribe")]
pub struct Transcribe {
    pub chat_id: i64,
    pub source: Source,
    /// Seconds, as Telegram declared them or the link's reading found;
    /// `None` for documents.
    pub duration: Option<u32>,
    /// The file's name, or the link's title.
    pub file_name: Option<String>,
    /// The language the bot speaks to the user in (`ru`, `en`).
    pub language: String,
    /// The language of the recording, sent as the API's `language`;
    /// `None` lets the API detect it (the user's `/settings`: auto).
    pub spoken_language: Option<String>,
    /// In a group: the voice message the transcript answers.
    pub reply_to: Option<i32>,
    /// In a group: the payer's private chat, where what they are charged is
    /// said (never in the group).
    pub payer_chat_id: Option<i64>,
    /// In a group: the member who sent the voice note (the payer paid for
    /// it), whose `/deletemydata` removes its transcript too.
    pub sender_telegram_id: Option<i64>,
    /// Who said what: the diarizing model, at its own price per minute.
    pub speakers: bool,
}

/// Where a recording comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file sent to the bot: a voice note, audio, video note or document.
    Telegram(TelegramFile),
    /// A link's recording, read and priced before (`link.transcribe`).
    Link(LinkSource),
}

/// A file sent to the bot, as the update described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramFile {
    pub message_id: i32,
    /// `voice`, `audio`, `video_note` or `document`.
    pub media: String,
    pub file_id: String,
    pub file_unique_id: String,
    pub file_size: Option<u64>,
    pub mime_type: Option<String>,
}

impl Transcribe {
    /// What names the recording itself: the same file sent again, or the same link read.
    pub fn unique_id(&self) -> String {
        match &self.source {
            Source::Telegram(file) => file.file_unique_id.clone(),
            Source::Link(link) => format!("link:{}", link.link_id),
        }
    }

    /// The kind of job that transcribes it: a link's runs where yt-dlp does.
    pub fn kind(&self) -> Kind {
        match self.source {
            Source::Telegram(_) => Kind::Transcribe,
            Source::Link(_) => Kind::LinkTranscribe,
        }
    }
}

/// The payload as the `jobs` table holds it: flat, as it always was (a
/// link's with `media: "link"`, an empty `file_id` and `message_id` 0), so
/// rows queued by the version before read here, and rows queued here read
/// there, while a rolling upgrade runs both.
mod wire {
    use serde::{Deserialize, Serialize};

    use super::{LinkSource, Source, TelegramFile};

    #[derive(Serialize, Deserialize)]
    pub(super) struct Transcribe {
        chat_id: i64,
        message_id: i32,
        media: String,
        file_id: String,
        file_unique_id: String,
        file_size: Option<u64>,
        duration: Option<u32>,
        mime_type: Option<String>,
        file_name: Option<String>,
        language: String,
        #[serde(default)]
        spoken_language: Option<String>,
        #[serde(default)]
        reply_to: Option<i32>,
        #[serde(default)]
        payer_chat_id: Option<i64>,
        #[serde(default)]
        sender_telegram_id: Option<i64>,
        #[serde(default)]
        speakers: bool,
        #[serde(default)]
        link: Option<LinkSource>,
    }

    impl From<Transcribe> for super::Transcribe {
        fn from(w: Transcribe) -> Self {
            let source = match w.link {
                Some(link) => Source::Link(link),
                None => Source::Telegram(TelegramFile {
                    message_id: w.message_id,
                    media: w.media,
                    file_id: w.file_id,
                    file_unique_id: w.file_unique_id,
                    file_size: w.file_size,
                    mime_type: w.mime_type,
                }),
            };
            super::Transcribe {
                chat_id: w.chat_id,
                source,
                duration: w.duration,
                file_name: w.file_name,
                language: w.language,
                spoken_language: w.spoken_language,
                reply_to: w.reply_to,
                payer_chat_id: w.payer_chat_id,
                sender_telegram_id: w.sender_telegram_id,
                speakers: w.speakers,
            }
        }
    }

    impl From<super::Transcribe> for Transcribe {
        fn from(t: super::Transcribe) -> Self {
            let file_unique_id = t.unique_id();
            let (file, link) = match t.source {
                Source::Telegram(file) => (file, None),
                Source::Link(link) => {
                    let none = TelegramFile {
                        message_id: 0,
                        media: "link".into(),
                        file_id: String::new(),
                        file_unique_id: String::new(),
                        file_size: None,
                        mime_type: None,
                    };
                    (none, Some(link))
                }
            };
            Transcribe {
                chat_id: t.chat_id,
                message_id: file.message_id,
                media: file.media,
                file_id: file.file_id,
                file_unique_id,
                file_size: file.file_size,
                duration: t.duration,
                mime_type: file.mime_type,
                file_name: t.file_name,
                language: t.language,
                spoken_language: t.spoken_language,
                reply_to: t.reply_to,
                payer_chat_id: t.payer_chat_id,
                sender_telegram_id: t.sender_telegram_id,
                speakers: t.speakers,
                link,
            }
        }
    }
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
        let telegram = TelegramFile {
            message_id: 2,
            media: "voice".into(),
            file_id: "f".into(),
            file_unique_id: "u".into(),
            file_size: Some(10),
            mime_type: Some("audio/ogg".into()),
        };
        let voice = Transcribe {
            chat_id: 1,
            source: Source::Telegram(telegram),
            duration: Some(3),
            file_name: None,
            language: "en".into(),
            spoken_language: Some("kk".into()),
            reply_to: Some(9),
            payer_chat_id: Some(4),
            sender_telegram_id: Some(5),
            speakers: true,
        };
        round_trip(Kind::Transcribe, voice.clone());
        let link = LinkSource { link_id: 3, url: "https://example.com/a.mp3".into(), audio_key: None };
        round_trip(Kind::LinkTranscribe, Transcribe { source: Source::Link(link), ..voice });
        round_trip(
            Kind::TranscriptDigest,
            Digest { transcript_id: 7, kind: DigestKind::Minutes, chat_id: 1, language: "ru".into() },
        );
        round_trip(Kind::FalImagine, ImageRequest { prompt: "a fox".into(), chat_id: 1, language: "en".into() });
        round_trip(Kind::FalTrain, Train { avatar_id: 3, chat_id: 1, language: "en".into() });
        round_trip(Kind::FalDeliver, FalRequestRef { request_id: "r".into() });
    }

    /// Payloads as the version before wrote them: a voice note, and a link's
    /// recording with the placeholders it carried where a Telegram file goes.
    #[test]
    fn payloads_queued_the_old_way_read_as_what_they_are_and_are_written_so_again() {
        let voice = serde_json::json!({
            "chat_id": 7, "message_id": 12, "media": "voice", "file_id": "AwAD", "file_unique_id": "AgAD",
            "file_size": 4096, "duration": 5, "mime_type": "audio/ogg", "file_name": null, "language": "ru"
        });
        let read: Transcribe = serde_json::from_value(voice).unwrap();
        assert!(matches!(&read.source, Source::Telegram(f) if f.file_id == "AwAD" && f.message_id == 12), "{read:?}");
        assert_eq!((read.spoken_language.as_deref(), read.speakers, read.kind()), (None, false, Kind::Transcribe));

        let link = serde_json::json!({
            "chat_id": 7, "message_id": 0, "media": "link", "file_id": "", "file_unique_id": "link:9",
            "file_size": null, "duration": 65, "mime_type": null, "file_name": "Podcast 7", "language": "en",
            "spoken_language": "auto", "reply_to": null, "payer_chat_id": null, "sender_telegram_id": null,
            "speakers": false, "link": { "link_id": 9, "url": "https://example.com/p", "audio_key": null }
        });
        let read: Transcribe = serde_json::from_value(link.clone()).unwrap();
        assert!(matches!(&read.source, Source::Link(l) if l.link_id == 9), "{read:?}");
        assert_eq!((read.unique_id().as_str(), read.kind()), ("link:9", Kind::LinkTranscribe));
        assert_eq!(serde_json::to_value(&read).unwrap(), link, "written as the version before reads it");
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
