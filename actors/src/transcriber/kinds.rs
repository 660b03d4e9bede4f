//! The kinds of work transcription workers do, each declared once: its
//! name, its payload, its attempts and what a user calls it. Enqueued as
//! `KIND.job(key, &payload)`, read back as `KIND.payload(&job)`.

use serde::{Deserialize, Serialize};

use crate::chat::callback::DigestKind;
use crate::jobs::kind::{Declared, JobKind, Title};

/// A voice note, audio, video note or audio document to text.
pub const TRANSCRIBE: JobKind<Transcribe> =
    JobKind::new("transcribe", Title { ru: "расшифровка", en: "transcription" }, 5);
/// A link's recording to text, paid; only where yt-dlp runs.
pub const LINK_TRANSCRIBE: JobKind<Transcribe> =
    JobKind::new("link.transcribe", Title { ru: "расшифровка записи по ссылке", en: "transcription of a link" }, 5);
/// What a link holds, read and priced for free; only where yt-dlp runs.
pub const LINK_PROBE: JobKind<LinkProbe> =
    JobKind::new("link.probe", Title { ru: "чтение ссылки", en: "reading a link" }, 5);
/// Summary, action items or minutes of a transcript.
pub const TRANSCRIPT_DIGEST: JobKind<Digest> =
    JobKind::new("transcript.digest", Title { ru: "обработка расшифровки", en: "transcript digest" }, 5);

/// A transcript in another language, with its timings.
pub const TRANSCRIPT_TRANSLATE: JobKind<Translate> =
    JobKind::new("transcript.translate", Title { ru: "перевод расшифровки", en: "transcript translation" }, 5);

/// Every kind a transcription worker may take.
pub const ALL: [&dyn Declared; 5] =
    [&TRANSCRIBE, &LINK_TRANSCRIBE, &LINK_PROBE, &TRANSCRIPT_DIGEST, &TRANSCRIPT_TRANSLATE];

/// What a user calls a transcription worker's job of kind `name`.
pub fn title_of(name: &str) -> Title {
    ALL.iter().find(|kind| kind.name() == name).map_or(TRANSCRIBE.title, |kind| kind.title())
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
    /// Asked for as a guest in another chat: the transcript is that guest
    /// answer, edited in; `chat_id` is then the caller's private chat.
    pub guest: Option<GuestAnswer>,
}

/// The guest answer a transcript goes into (guest mode, `bot::guest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestAnswer {
    /// The "⏳" placeholder the bot answered the guest query with.
    pub inline_message_id: String,
    /// Our @username, for the link to the whole text in the private chat.
    pub bot_username: String,
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
    pub fn kind(&self) -> &'static JobKind<Transcribe> {
        match self.source {
            Source::Telegram(_) => &TRANSCRIBE,
            Source::Link(_) => &LINK_TRANSCRIBE,
        }
    }
}

/// The payload as the `jobs` table holds it: flat, as it always was (a
/// link's with `media: "link"`, an empty `file_id` and `message_id` 0), so
/// rows queued by the version before read here, and rows queued here read
/// there, while a rolling upgrade runs both.
mod wire {
    use serde::{Deserialize, Serialize};

    use super::{GuestAnswer, LinkSource, Source, TelegramFile};

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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        guest: Option<GuestAnswer>,
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
                guest: w.guest,
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
                guest: t.guest,
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

/// `transcript.digest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub transcript_id: i64,
    pub kind: DigestKind,
    pub chat_id: i64,
    pub language: String,
    /// The language to write it in (a translation's), when not the user's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_in: Option<String>,
}

/// `transcript.translate`: a transcript into `target` (an ISO-639-1 code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translate {
    pub transcript_id: i64,
    pub target: String,
    pub chat_id: i64,
    pub language: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::kind::tests::through_the_jobs_table as round_trip;

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
            guest: None,
        };
        round_trip(&TRANSCRIBE, voice.clone());
        let answer = GuestAnswer { inline_message_id: "AgAAA".into(), bot_username: "aisha_bot".into() };
        round_trip(&TRANSCRIBE, Transcribe { guest: Some(answer), ..voice.clone() });
        let link = LinkSource { link_id: 3, url: "https://example.com/a.mp3".into(), audio_key: None };
        round_trip(&LINK_TRANSCRIBE, Transcribe { source: Source::Link(link), ..voice });
        round_trip(
            &TRANSCRIPT_DIGEST,
            Digest { transcript_id: 7, kind: DigestKind::Minutes, chat_id: 1, language: "ru".into(), written_in: None },
        );
        round_trip(
            &TRANSCRIPT_DIGEST,
            Digest {
                transcript_id: 7,
                kind: DigestKind::Summary,
                chat_id: 1,
                language: "ru".into(),
                written_in: Some("de".into()),
            },
        );
        round_trip(
            &TRANSCRIPT_TRANSLATE,
            Translate { transcript_id: 7, target: "de".into(), chat_id: 1, language: "en".into() },
        );
        round_trip(&LINK_PROBE, LinkProbe { link_id: 3, chat_id: 1, language: "en".into() });
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
        assert_eq!((read.spoken_language.as_deref(), read.speakers, read.kind().name), (None, false, "transcribe"));

        let link = serde_json::json!({
            "chat_id": 7, "message_id": 0, "media": "link", "file_id": "", "file_unique_id": "link:9",
            "file_size": null, "duration": 65, "mime_type": null, "file_name": "Podcast 7", "language": "en",
            "spoken_language": "auto", "reply_to": null, "payer_chat_id": null, "sender_telegram_id": null,
            "speakers": false, "link": { "link_id": 9, "url": "https://example.com/p", "audio_key": null }
        });
        let read: Transcribe = serde_json::from_value(link.clone()).unwrap();
        assert!(matches!(&read.source, Source::Link(l) if l.link_id == 9), "{read:?}");
        assert_eq!((read.unique_id().as_str(), read.kind().name), ("link:9", "link.transcribe"));
        assert_eq!(serde_json::to_value(&read).unwrap(), link, "written as the version before reads it");
    }
}
