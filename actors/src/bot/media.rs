//! The media a user sends to be transcribed, and what it costs up front.

use teloxide::types::{FileMeta, Message};

use crate::chat::Lang;
use crate::jobs::NewJob;
use crate::store::users::User;
use crate::transcriber::kinds::{GuestAnswer, Source, TelegramFile, Transcribe};

/// A recording or audio file the user wants as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: &'static str,
    pub file_id: String,
    pub file_unique_id: String,
    /// `None` when Telegram did not say.
    pub size: Option<u64>,
    pub duration: Option<u32>,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
}

/// A group's transcript: a reply to the voice note, the charge told to the
/// payer in their private chat (when they have one with the bot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupReply {
    pub payer_chat_id: Option<i64>,
}

/// Bits a second assumed for a file of unknown length (a typical MP3).
pub const ESTIMATE_BITRATE: f64 = 128_000.0;

impl Media {
    fn new(
        kind: &'static str,
        file: &FileMeta,
        duration: Option<u32>,
        mime_type: Option<String>,
        file_name: Option<String>,
    ) -> Self {
        Media {
            kind,
            file_id: file.id.0.clone(),
            file_unique_id: file.unique_id.0.clone(),
            // Telegram may omit the size; teloxide then says u32::MAX.
            size: (file.size != u32::MAX).then_some(file.size as u64),
            duration,
            mime_type,
            file_name,
        }
    }

    pub fn of(message: &Message) -> Option<Media> {
        let mime = |m: &Option<mime::Mime>| m.as_ref().map(|m| m.to_string());
        if let Some(v) = message.voice() {
            return Some(Media::new("voice", &v.file, Some(v.duration.seconds()), mime(&v.mime_type), None));
        }
        if let Some(a) = message.audio() {
            return Some(Media::new(
                "audio",
                &a.file,
                Some(a.duration.seconds()),
                mime(&a.mime_type),
                a.file_name.clone(),
            ));
        }
        if let Some(n) = message.video_note() {
            return Some(Media::new("video_note", &n.file, Some(n.duration.seconds()), Some("video/mp4".into()), None));
        }
        let document = message.document()?;
        let mime_type = mime(&document.mime_type);
        let audio_like = mime_type.as_deref().is_some_and(|m| m.starts_with("audio/") || m.starts_with("video/"));
        audio_like.then(|| Media::new("document", &document.file, None, mime_type, document.file_name.clone()))
    }

    /// The `transcribe` job for this media sent as `message`, keyed by the
    /// message (a redelivered update is the same job). `spoken`: the
    /// recording's language from the payer's settings; `speakers`: who said
    /// what; `group`: set when the transcript answers a voice note in a group.
    pub fn transcribe_job(
        self,
        message: &Message,
        lang: Lang,
        spoken: String,
        speakers: bool,
        group: Option<GroupReply>,
    ) -> NewJob {
        let chat = message.chat.id.0;
        let key = format!("tg:{chat}:{}:transcribe:{}", message.id.0, self.file_unique_id);
        let mut payload = self.request(message.id.0, chat, lang, spoken, speakers);
        payload.reply_to = group.map(|_| message.id.0);
        payload.payer_chat_id = group.and_then(|g| g.payer_chat_id);
        payload.sender_telegram_id = group.and(message.from.as_ref()).map(|u| u.id.0 as i64);
        payload.kind().job(key, &payload)
    }

    /// The `transcribe` job for this media (the message `message_id` in a
    /// chat the bot may not be in) asked for as the guest query `query_id`
    /// by `caller`, with their settings: the transcript goes into `answer`,
    /// and every other word to the caller's private chat.
    pub fn guest_job(self, message_id: i32, query_id: &str, caller: &User, lang: Lang, answer: GuestAnswer) -> NewJob {
        let key = format!("tg:guest:{query_id}");
        let spoken = caller.transcription_language.clone();
        let mut payload = self.request(message_id, caller.telegram_id, lang, spoken, caller.speakers);
        payload.guest = Some(answer);
        payload.kind().job(key, &payload)
    }

    fn request(self, message_id: i32, chat_id: i64, lang: Lang, spoken: String, speakers: bool) -> Transcribe {
        let file = TelegramFile {
            message_id,
            media: self.kind.to_owned(),
            file_id: self.file_id,
            file_unique_id: self.file_unique_id,
            file_size: self.size,
            mime_type: self.mime_type,
        };
        Transcribe {
            chat_id,
            source: Source::Telegram(file),
            duration: self.duration,
            file_name: self.file_name,
            language: lang.code().to_owned(),
            spoken_language: Some(spoken),
            reply_to: None,
            payer_chat_id: None,
            sender_telegram_id: None,
            speakers,
            guest: None,
        }
    }

    /// Coins charged up front: per started minute of the declared length,
    /// or, for a file without one, of the length its size suggests at
    /// [`ESTIMATE_BITRATE`]. The worker measures the real length and settles
    /// the difference. `None` when the price would overflow.
    pub fn price(&self, per_minute: i64) -> Option<i64> {
        let seconds = match (self.duration, self.size) {
            (Some(seconds), _) => f64::from(seconds),
            (None, Some(bytes)) => bytes as f64 * 8.0 / ESTIMATE_BITRATE,
            (None, None) => 0.0,
        };
        crate::ledger::transcription_price(seconds, per_minute)
    }
}

/// A photo or an image sent as a document: (file id, size if known).
pub(super) fn image_of(message: &Message) -> Option<(String, Option<u64>)> {
    if let Some(largest) = message.photo().and_then(|sizes| sizes.last()) {
        return Some((largest.file.id.0.clone(), Some(largest.file.size as u64)));
    }
    let document = message.document()?;
    let is_image = document.mime_type.as_ref().is_some_and(|m| m.type_() == mime::IMAGE);
    is_image
        .then(|| (document.file.id.0.clone(), (document.file.size != u32::MAX).then_some(document.file.size as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_is_per_started_minute() {
        let media = |duration| Media {
            kind: "voice",
            file_id: String::new(),
            file_unique_id: String::new(),
            size: None,
            duration,
            mime_type: None,
            file_name: None,
        };
        assert_eq!(media(Some(0)).price(2), Some(2), "at least one minute");
        assert_eq!(media(Some(60)).price(2), Some(2));
        assert_eq!(media(Some(61)).price(2), Some(4));
        assert_eq!(media(Some(3600)).price(1), Some(60));
        assert_eq!(media(None).price(5), Some(5), "nothing known: a minute up front, settled by the worker");
        let document = Media { size: Some(2_400_000), ..media(None) };
        assert_eq!(document.price(1), Some(3), "2.4 MB at 128 kbit/s is 150 s: three minutes up front");
    }
}
