//! Guest mode (Bot API 10.0): a user mentions the bot in reply to a voice
//! message, audio, video note or audio document in any chat, one the bot
//! is not in, and the transcript becomes the bot's one guest answer there: a
//! "⏳" placeholder at once, edited to the text by the worker. The caller
//! pays as in a private chat (registered as by /start); the voice's author
//! never does. Nothing is ever sent to that chat by `chat_id`: every other
//! word (charges, refunds) goes to the caller's private chat.

use teloxide::prelude::Requester;
use teloxide::types::ChatId;

use super::{BotHandler, HandleError, Media};
use crate::chat::{texts, Lang};
use crate::clients::newer_api::{answer_guest_query, GuestQuery, SentGuestMessage};
use crate::clients::Patiently;
use crate::ledger::{self, Charged};
use crate::transcriber::kinds::GuestAnswer;

impl BotHandler {
    pub(super) async fn on_guest(&self, guest: &GuestQuery) -> Result<(), HandleError> {
        let Some(from) = guest.caller() else { return Ok(()) };
        let lang = Lang::from_code(from.language_code.as_deref());
        let key = format!("tg:guest:{}", guest.query_id);
        if crate::jobs::queue::by_key(&self.services.db, &key).await?.is_some() {
            return Ok(()); // handled before a restart: answered and queued
        }
        let caller = self.register(from).await?;
        let Some((voice, media)) = guest.message.reply_to_message().and_then(|m| Some((m, Media::of(m)?))) else {
            return self.answer_guest(guest, texts::guest_usage(lang)).await.map(drop);
        };
        let limit = self.services.settings.telegram.max_download();
        if let Some(size) = media.size.filter(|s| *s > limit) {
            return self.answer_guest(guest, &texts::too_big(lang, size, limit)).await.map(drop);
        }
        let rate = self.services.settings.pricing.transcription_rate(caller.speakers);
        let Some(price) = media.price(rate) else {
            return self.answer_guest(guest, texts::unreadable_audio(lang)).await.map(drop);
        };
        let username = self.username().await.unwrap_or_default();
        let balance = ledger::balance(&self.services.db, caller.id).await?;
        if balance < price {
            let refusal = texts::guest_top_up(lang, price, balance, &username);
            return self.answer_guest(guest, &refusal).await.map(drop);
        }
        if let Some(refusal) = self.over_limit(caller.id, lang).await? {
            return self.answer_guest(guest, &refusal).await.map(drop);
        }
        let sent = self.answer_guest(guest, texts::guest_working(lang)).await?;
        let answer = GuestAnswer { inline_message_id: sent.inline_message_id, bot_username: username };
        let job = media.guest_job(voice.id.0, &guest.query_id, &caller, lang, answer.clone());
        let job = self.priced(job, ChatId(caller.telegram_id), price);
        let refusal = match self.shared.charge(caller.id, job).await? {
            Charged::Queued { job, .. } => {
                tracing::info!(job_id = job.id, user_id = caller.id, price, "guest transcription queued");
                return Ok(());
            }
            Charged::Duplicate(_) => return Ok(()),
            // Spent or busy since the check above.
            Charged::InsufficientBalance { price, balance } => {
                texts::guest_top_up(lang, price, balance, &answer.bot_username)
            }
            Charged::TooManyInFlight { limit } => super::charge::too_many_in_flight(lang, limit),
        };
        self.bot.edit_message_text_inline(&answer.inline_message_id, refusal).patiently().await?;
        Ok(())
    }

    /// The one answer a guest query gets.
    pub(super) async fn answer_guest(&self, guest: &GuestQuery, text: &str) -> Result<SentGuestMessage, HandleError> {
        let lang = Lang::from_code(guest.caller().and_then(|u| u.language_code.as_deref()));
        let answer = answer_guest_query(&self.bot, &guest.query_id, texts::guest_title(lang), text.to_owned());
        Ok(answer.patiently().await?)
    }
}
