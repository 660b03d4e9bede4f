//! The media a user sends to be transcribed, and what it costs up front.

use teloxide::types::{FileMeta, Message};

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

impl Media {
    fn new(kind: &'static str, file: &FileMeta, duration: Option<u32>, mime_type: Option<String>, file_name: Option<String>) -> Self {
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
            return Some(Media::new("audio", &a.file, Some(a.duration.seconds()), mime(&a.mime_type), a.file_name.clone()));
        }
        if let Some(n) = message.video_note() {
            return Some(Media::new("video_note", &n.file, Some(n.duration.seconds()), Some("video/mp4".into()), None));
        }
        let document = message.document()?;
        let mime_type = mime(&document.mime_type);
        let audio_like = mime_type.as_deref().is_some_and(|m| m.starts_with("audio/") || m.starts_with("video/"));
        audio_like.then(|| Media::new("document", &document.file, None, mime_type, document.file_name.clone()))
    }

    /// Coins for this recording: per started minute; 0 when the length is
    /// unknown (the worker measures it and charges then).
    pub fn price(&self, per_minute: i64) -> i64 {
        match self.duration {
            Some(seconds) => (seconds as i64 + 59).div_euclid(60).max(1) * per_minute,
            None => 0,
        }
    }
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
        assert_eq!(media(Some(0)).price(2), 2, "at least one minute");
        assert_eq!(media(Some(60)).price(2), 2);
        assert_eq!(media(Some(61)).price(2), 4);
        assert_eq!(media(Some(3600)).price(1), 60);
        assert_eq!(media(None).price(5), 0, "measured and charged by the worker");
    }
}
