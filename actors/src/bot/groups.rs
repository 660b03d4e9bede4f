//! Group chats. The bot answers its own commands there and nothing else,
//! until an admin sends `/autotranscribe on`: then voice messages and video
//! notes are answered with their transcript, as a reply, paid by that admin.
//! When the payer runs out of coins the group is told once; it goes on by
//! itself once they top up.

use std::time::Duration;

use fred::prelude::KeysInterface;
use fred::types::Expiration;
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{ChatAction, ChatId, ChatMemberUpdated, Message, ReplyParameters, User, UserId};

use super::media::GroupReply;
use super::{BotHandler, HandleError, Media};
use crate::chat::command::Command;
use crate::chat::{texts, Lang};
use crate::clients::Patiently;
use crate::ledger::Charged;
use crate::store::groups::GroupChat;
use crate::store::users::TelegramProfile;

/// How long Telegram's word on a payer's admin status is trusted before it
/// is asked again (a `chat_member` update ends it sooner).
const ADMIN_CHECK_TTL: Duration = Duration::from_secs(60);

impl BotHandler {
    pub(super) async fn on_group_message(&self, message: &Message, from: &User) -> Result<(), HandleError> {
        let chat = message.chat.id;
        let lang = Lang::from_code(from.language_code.as_deref());
        if let Some(command) = message.text().and_then(Command::parse) {
            if !self.addressed_to_us(message.text().unwrap_or_default()).await {
                return Ok(());
            }
            return match command {
                Command::AutoTranscribe(args) => self.autotranscribe(chat, message, from, lang, &args).await,
                Command::Transcribe => self.transcribe_on_demand(message, from, lang).await,
                Command::Help => {
                    self.say(chat, format!("{}\n\n{}", texts::help(lang), texts::autotranscribe_usage(lang))).await
                }
                Command::Privacy => self.say(chat, texts::privacy(lang)).await,
                Command::Terms => self.say(chat, crate::chat::texts::terms(lang)).await,
                Command::PaySupport => self.say(chat, crate::chat::texts::paysupport(lang)).await,
                // Another bot's command, or a typo: not ours to answer in a group.
                Command::Unknown(_) => Ok(()),
                _ => self.reply(chat, message, texts::private_only(lang)).await,
            };
        }
        let Some(media) = Media::of(message).filter(|m| matches!(m.kind, "voice" | "video_note")) else {
            return Ok(()); // chatter: not ours to answer
        };
        match self.services.db.group_chat(chat.0).await? {
            Some(group) if group.autotranscribe => self.group_transcribe(message, from, lang, media, group).await,
            _ => Ok(()),
        }
    }

    /// Telegram says a member's status changed: a cached answer is dropped,
    /// and a payer who is no longer an admin (demoted, left, banned) stops
    /// paying at once.
    pub(super) async fn on_chat_member(&self, change: &ChatMemberUpdated) -> Result<(), HandleError> {
        let (chat, telegram_id) = (change.chat.id, change.new_chat_member.user.id.0 as i64);
        self.forget_admin(chat, telegram_id).await;
        let Some(group) = self.services.db.group_chat(chat.0).await? else { return Ok(()) };
        if group.payer_telegram_id != Some(telegram_id) || change.new_chat_member.kind.is_privileged() {
            return Ok(());
        }
        let lang = Lang::from_code(change.from.language_code.as_deref());
        self.payer_stepped_down(change.chat.title().unwrap_or_default(), &group, lang).await
    }

    /// The group's payer is no longer an admin: transcription there stops
    /// (nothing more charged to them), the group and the payer told once.
    async fn payer_stepped_down(&self, title: &str, group: &GroupChat, lang: Lang) -> Result<(), HandleError> {
        let Some(payer) = group.payer_user_id else { return Ok(()) };
        if !self.services.db.stop_group_payer(group.chat_id, payer).await? {
            return Ok(());
        }
        tracing::info!(
            chat_id = group.chat_id,
            user_id = payer,
            "the group's payer is no longer an admin; transcription off"
        );
        let name = group.payer_name.clone().unwrap_or_default();
        self.say(ChatId(group.chat_id), texts::group_payer_stepped_down(lang, &name)).await?;
        if let Some(private) = group.payer_telegram_id {
            if let Err(e) =
                self.bot.send_message(ChatId(private), texts::no_longer_paying(lang, title)).patiently().await
            {
                tracing::debug!(user_id = payer, error = %e, "could not tell the former payer privately");
            }
        }
        Ok(())
    }

    /// Whether `telegram_id` is an admin (or the creator) of `chat`, as
    /// Telegram says, remembered for [`ADMIN_CHECK_TTL`]; `fresh` asks
    /// Telegram and remembers nothing (a command, not a charge).
    /// Someone Telegram does not know in the chat is not an admin.
    async fn is_admin(&self, chat: ChatId, telegram_id: i64, fresh: bool) -> Result<bool, HandleError> {
        let key = self.admin_key(chat, telegram_id);
        let redis = self.services.redis.client();
        if !fresh {
            if let Ok(Some(cached)) = redis.get::<Option<String>, _>(&key).await {
                return Ok(cached == "1");
            }
        }
        let admin = match self.bot.get_chat_member(chat, UserId(telegram_id as u64)).patiently().await {
            Ok(member) => member.kind.is_privileged(),
            Err(e) if !crate::clients::bot_api::is_transient(&e) => false,
            Err(e) => return Err(e.into()),
        };
        if !fresh {
            let value = if admin { "1" } else { "0" };
            let expiry = Some(Expiration::EX(ADMIN_CHECK_TTL.as_secs() as i64));
            if let Err(e) = redis.set::<(), _, _>(&key, value, expiry, None, false).await {
                tracing::debug!(error = %e, "could not cache an admin check");
            }
        }
        Ok(admin)
    }

    async fn forget_admin(&self, chat: ChatId, telegram_id: i64) {
        let _ = self.services.redis.client().del::<(), _>(&self.admin_key(chat, telegram_id)).await;
    }

    fn admin_key(&self, chat: ChatId, telegram_id: i64) -> String {
        self.services.redis.key(&format!("group_admin:{}:{telegram_id}", chat.0))
    }

    /// `/cmd` or `/cmd@us`, not `/cmd@another_bot`.
    async fn addressed_to_us(&self, text: &str) -> bool {
        let head = text.split_whitespace().next().unwrap_or_default();
        let Some((_, name)) = head.split_once('@') else { return true };
        match self.username().await {
            Some(ours) => name.eq_ignore_ascii_case(&ours),
            None => true,
        }
    }

    pub(super) async fn username(&self) -> Option<String> {
        let bot = self.bot.clone();
        self.me
            .get_or_try_init(|| async move {
                bot.get_me().patiently().await.map(|me| me.username.clone().unwrap_or_default())
            })
            .await
            .ok()
            .cloned()
    }

    async fn reply(&self, chat: ChatId, to: &Message, text: impl Into<String>) -> Result<(), HandleError> {
        let reply = ReplyParameters::new(to.id).allow_sending_without_reply();
        self.bot.send_message(chat, text.into()).reply_parameters(reply).patiently().await?;
        Ok(())
    }

    async fn autotranscribe(
        &self,
        chat: ChatId,
        message: &Message,
        from: &User,
        lang: Lang,
        args: &str,
    ) -> Result<(), HandleError> {
        let on = match args.trim().to_ascii_lowercase().as_str() {
            "on" | "вкл" => true,
            "off" | "выкл" => false,
            _ => return self.reply(chat, message, texts::autotranscribe_usage(lang)).await,
        };
        let admin = self.is_admin(chat, from.id.0 as i64, true).await?;
        // The payer may always stop paying, admin or not.
        let payer_stops = !on
            && self.services.db.group_chat(chat.0).await?.and_then(|g| g.payer_telegram_id) == Some(from.id.0 as i64);
        if !admin && !payer_stops {
            tracing::info!(chat_id = chat.0, telegram_id = from.id.0, "autotranscribe refused: not a group admin");
            return self.reply(chat, message, texts::admins_only(lang)).await;
        }
        let payer = self.shared.user(TelegramProfile::of(from)).await?;
        self.services.db.set_autotranscribe(chat.0, on, payer.id).await?;
        tracing::info!(chat_id = chat.0, user_id = payer.id, on, "group transcription switched");
        if !on {
            return self.reply(chat, message, texts::autotranscribe_off(lang)).await;
        }
        let name = from.username.as_ref().map(|u| format!("@{u}")).unwrap_or_else(|| from.first_name.clone());
        let per_minute = self.services.settings.pricing.transcription_per_minute;
        self.reply(chat, message, texts::autotranscribe_on(lang, &name, per_minute)).await
    }

    async fn group_transcribe(
        &self,
        message: &Message,
        from: &User,
        lang: Lang,
        media: Media,
        group: GroupChat,
    ) -> Result<(), HandleError> {
        let chat = message.chat.id;
        let (Some(payer), Some(payer_telegram_id)) = (group.payer_user_id, group.payer_telegram_id) else {
            return Ok(());
        };
        let payer_name = group.payer_name.clone().unwrap_or_default();
        if !self.is_admin(chat, payer_telegram_id, false).await? {
            return self.payer_stepped_down(message.chat.title().unwrap_or_default(), &group, lang).await;
        }
        if media.size.is_some_and(|s| s > self.services.settings.telegram.max_download()) {
            let limit = self.services.settings.telegram.max_download();
            return self.reply(chat, message, texts::too_big(lang, media.size.unwrap_or_default(), limit)).await;
        }
        let Some(price) = media.price(self.services.settings.pricing.transcription_per_minute) else {
            return self.reply(chat, message, texts::unreadable_audio(lang)).await;
        };
        if let Some(refusal) = self.over_limit(payer, lang).await? {
            return self.reply(chat, message, refusal).await;
        }
        let spoken = self.services.db.transcription_language(payer).await?;
        let reply = GroupReply { payer_chat_id: group.payer_telegram_id };
        let job = self.priced(media.transcribe_job(message, lang, spoken, false, Some(reply)), chat, price);
        match self.shared.charge(payer, job).await? {
            Charged::Queued { job, balance } => {
                tracing::info!(
                    job_id = job.id,
                    user_id = payer,
                    chat_id = chat.0,
                    telegram_id = from.id.0,
                    price,
                    "group transcription queued"
                );
                self.services.db.clear_out_of_coins_told(chat.0).await?;
                self.queued_in_group(message, payer_telegram_id, lang, price, balance).await;
                Ok(())
            }
            Charged::Duplicate(job) => {
                tracing::info!(job_id = job.id, user_id = payer, "duplicate group voice note; not charged again");
                Ok(())
            }
            Charged::TooManyInFlight { limit } => {
                self.reply(chat, message, super::charge::too_many_in_flight(lang, limit)).await
            }
            Charged::InsufficientBalance { .. } => {
                if self.services.db.mark_out_of_coins_told(chat.0).await? {
                    self.say(chat, texts::group_out_of_coins(lang, &payer_name)).await?;
                }
                Ok(())
            }
        }
    }

    /// `/transcribe` as a reply to a voice in a group: on demand, paid by
    /// who asked (registered as by /start), at their own settings; the
    /// transcript answers the voice, the charge is told in their private chat.
    async fn transcribe_on_demand(&self, message: &Message, from: &User, lang: Lang) -> Result<(), HandleError> {
        let chat = message.chat.id;
        let Some((voice, media)) = message.reply_to_message().and_then(|m| Some((m, Media::of(m)?))) else {
            return self.reply(chat, message, texts::transcribe_usage(lang)).await;
        };
        let asker = self.register(from).await?;
        let limit = self.services.settings.telegram.max_download();
        if let Some(size) = media.size.filter(|s| *s > limit) {
            return self.reply(chat, message, texts::too_big(lang, size, limit)).await;
        }
        let Some(price) = media.price(self.services.settings.pricing.transcription_rate(asker.speakers)) else {
            return self.reply(chat, message, texts::unreadable_audio(lang)).await;
        };
        if let Some(refusal) = self.over_limit(asker.id, lang).await? {
            return self.reply(chat, message, refusal).await;
        }
        let reply = GroupReply { payer_chat_id: Some(asker.telegram_id) };
        let spoken = asker.transcription_language.clone();
        let job = self.priced(media.transcribe_job(voice, lang, spoken, asker.speakers, Some(reply)), chat, price);
        match self.shared.charge(asker.id, job).await? {
            Charged::Queued { job, balance } => {
                tracing::info!(
                    job_id = job.id,
                    user_id = asker.id,
                    chat_id = chat.0,
                    price,
                    "transcription on demand queued"
                );
                self.queued_in_group(message, asker.telegram_id, lang, price, balance).await;
                Ok(())
            }
            Charged::Duplicate(_) => self.reply(chat, message, texts::already_queued(lang)).await,
            Charged::TooManyInFlight { limit } => {
                self.reply(chat, message, super::charge::too_many_in_flight(lang, limit)).await
            }
            Charged::InsufficientBalance { .. } => {
                let username = self.username().await.unwrap_or_default();
                self.reply(chat, message, texts::on_demand_top_up(lang, &username)).await
            }
        }
    }

    /// A group's transcription is queued: "typing…" in the group, and the
    /// charge told to the payer in their private chat (when they have one).
    async fn queued_in_group(&self, message: &Message, payer_telegram_id: i64, lang: Lang, price: i64, balance: i64) {
        let _ = self.bot.send_chat_action(message.chat.id, ChatAction::Typing).patiently().await;
        let title = message.chat.title().unwrap_or_default();
        let told = self.bot.send_message(ChatId(payer_telegram_id), texts::group_charged(lang, title, price, balance));
        if let Err(e) = told.patiently().await {
            tracing::debug!(telegram_id = payer_telegram_id, error = %e, "could not tell the payer privately");
        }
    }
}
