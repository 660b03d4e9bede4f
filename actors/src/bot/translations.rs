//! Translations in the chat: "🌐 Translate" under a transcript (the
//! languages offered, the price told before anything is charged),
//! `/translate <code>` as a reply to one, a translation's files, and the
//! translation sent again free when it was made before.

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{InlineKeyboardButtonKind, Message};

use super::{BotHandler, HandleError, Turn};
use crate::chat::callback::Callback;
use crate::chat::keyboards::translation_languages;
use crate::chat::texts;
use crate::clients::Patiently;
use crate::transcriber::kinds::{Translate, TRANSCRIPT_TRANSLATE};
use crate::transcriber::timeline::Cue;
use crate::transcriber::translate::{self, Kept};

/// The transcript a message of ours shows: read from the buttons under it.
pub(super) fn transcript_shown_in(message: &Message) -> Option<i64> {
    let markup = message.reply_markup()?;
    markup.inline_keyboard.iter().flatten().find_map(|button| match &button.kind {
        InlineKeyboardButtonKind::CallbackData(data) => Callback::parse(data)?.transcript(),
        _ => None,
    })
}

impl BotHandler {
    /// The languages a transcript can go into, with the price.
    pub(super) async fn translate_menu(&self, turn: Turn, id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        if self.services.db.transcript_of(user_id, id).await?.is_none() {
            return self.say(chat, texts::transcript_gone(lang)).await;
        }
        let settings = &self.services.settings;
        let menu = translation_languages(id, &settings.translation.languages);
        let text = texts::translate_menu(lang, settings.pricing.translation);
        self.bot.send_message(chat, text).reply_markup(menu).patiently().await?;
        Ok(())
    }

    /// `/translate [code]` as a reply to a transcript's message.
    pub(super) async fn translate_command(
        &self,
        turn: Turn,
        code: &str,
        sent: Option<&Message>,
    ) -> Result<(), HandleError> {
        let shown = sent.and_then(|m| Some((m, transcript_shown_in(m.reply_to_message()?)?)));
        match shown {
            None => self.say(turn.chat, texts::translate_usage(turn.lang)).await,
            Some((_, id)) if code.is_empty() => self.translate_menu(turn, id).await,
            Some((message, id)) => {
                let key = format!("tg:{}:{}:translate", turn.chat.0, message.id.0);
                self.translate(turn, key, id, code).await
            }
        }
    }

    /// The transcript `id` into `code`, charged at `pricing.translation`
    /// (`key`: the press or message that asked). One made before is sent
    /// again free; one under way is not charged twice.
    pub(super) async fn translate(&self, turn: Turn, key: String, id: i64, code: &str) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let settings = &self.services.settings;
        if !settings.translation.offers(code) {
            return self.say(chat, texts::translation_languages(lang, &settings.translation.languages)).await;
        }
        if self.services.db.transcript_of(user_id, id).await?.is_none() {
            return self.say(chat, texts::transcript_gone(lang)).await;
        }
        if let Some(made) = Kept::of(user_id, id, code).read(&self.services.blob).await? {
            translate::send(&self.bot, chat, lang, id, code, &made, settings.transcription.max_messages).await?;
            return Ok(());
        }
        if self.translation_under_way(user_id, id, code).await? {
            return self.say(chat, texts::translation_under_way(lang)).await;
        }
        let payload =
            Translate { transcript_id: id, target: code.to_owned(), chat_id: chat.0, language: lang.code().to_owned() };
        self.charge(turn, TRANSCRIPT_TRANSLATE.job(key, &payload), settings.pricing.translation).await
    }

    async fn translation_under_way(&self, user_id: i64, id: i64, code: &str) -> Result<bool, HandleError> {
        let active = crate::jobs::queue::active_for_user(&self.services.db, user_id).await?;
        let same = |t: Translate| t.transcript_id == id && t.target == code;
        Ok(active.iter().filter_map(|job| TRANSCRIPT_TRANSLATE.payload(job).ok()).any(same))
    }

    /// A translation as `.srt`, `.vtt` or `.txt`, from what was kept; free.
    pub(super) async fn translation_file(
        &self,
        turn: Turn,
        format: &str,
        code: &str,
        id: i64,
    ) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let kept = Kept::of(user_id, id, code);
        let Some(text) = self.services.blob.get_if_any(&kept.text).await? else {
            return self.say(chat, texts::transcript_gone(lang)).await;
        };
        let cues: Vec<Cue> = match self.services.blob.get_if_any(&kept.cues).await? {
            Some(json) => serde_json::from_slice(&json).unwrap_or_default(),
            None => Vec::new(),
        };
        let plain = String::from_utf8_lossy(&text);
        self.send_as_file(turn, format, &cues, &plain, &format!("translation_{id}_{code}.{format}")).await
    }
}
