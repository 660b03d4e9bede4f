//! `/settings`: the aspect ratio of images, the language recordings are in,
//! and who said what; each changed by its button.

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::{BotHandler, HandleError, Turn};
use crate::chat::callback::{button, Callback};
use crate::chat::texts;
use crate::clients::Patiently;

impl BotHandler {
    /// The aspect ratio of images, then the language of recordings.
    pub(super) async fn settings(&self, turn: Turn) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let aspect = self.services.db.aspect_ratio(user_id).await?;
        let spoken = self.services.db.transcription_language(user_id).await?;
        let marked = |on: bool, label: &str| if on { format!("• {label}") } else { label.to_owned() };
        let aspects = texts::aspect_buttons()
            .into_iter()
            .map(|(key, label)| button(marked(key == aspect, label), Callback::Aspect(key)))
            .collect::<Vec<_>>();
        let mut rows = vec![aspects];
        let languages: Vec<InlineKeyboardButton> = texts::SPOKEN_LANGUAGES
            .into_iter()
            .map(|(code, name)| button(marked(code == spoken, name), Callback::Spoken(code)))
            .collect();
        rows.extend(languages.chunks(3).map(<[_]>::to_vec));
        let speakers = self.services.db.speakers(user_id).await?;
        rows.push(vec![button(texts::speakers_toggle(lang, speakers), Callback::Speakers(!speakers))]);
        let per_minute = self.services.settings.pricing.transcription_rate(true);
        let text = format!(
            "{}\n{}\n{}",
            texts::settings(lang, &aspect),
            texts::spoken_language_line(lang, &spoken),
            texts::speakers_line(lang, speakers, per_minute)
        );
        self.bot.send_message(chat, text).reply_markup(InlineKeyboardMarkup::new(rows)).patiently().await?;
        Ok(())
    }

    pub(super) async fn set_spoken_language(&self, turn: Turn, code: &str) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        if !texts::SPOKEN_LANGUAGES.iter().any(|(c, _)| *c == code) {
            return self.say(chat, texts::unknown_command(lang)).await;
        }
        self.services.db.set_transcription_language(user_id, code).await?;
        self.say(chat, texts::spoken_language_set(lang, code)).await
    }

    /// Who said what in every recording, on or off; the price is said either way.
    pub(super) async fn set_speakers(&self, turn: Turn, on: bool) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        self.services.db.set_speakers(user_id, on).await?;
        let per_minute = self.services.settings.pricing.transcription_rate(true);
        self.say(chat, texts::speakers_set(lang, on, per_minute)).await
    }

    pub(super) async fn set_aspect(&self, turn: Turn, aspect: &str) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let Some((key, label)) = texts::aspect_buttons().into_iter().find(|(k, _)| *k == aspect) else {
            return self.say(chat, texts::unknown_command(lang)).await;
        };
        self.services.db.set_aspect_ratio(user_id, key).await?;
        self.say(chat, texts::aspect_set(lang, label)).await
    }
}
