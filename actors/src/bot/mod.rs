//! What the bot does with one update: commands, menu buttons, media that
//! becomes a charged job. Every path answers the user; nothing is silent.
//! Handling may run again for the same update (a restart between recording
//! and handling), so anything that charges goes through an idempotency key
//! derived from the message.

mod avatars;
mod images;
mod transcripts;
pub mod reply;
pub mod texts;

use teloxide::payloads::{SendMessageSetters, SetMyCommandsSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    BotCommand, CallbackQuery, ChatAction, ChatId, FileMeta, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update,
    UpdateKind, User,
};
use teloxide::{Bot, RequestError};

use crate::cache::CacheError;
use crate::dialogue::{self, Dialogue};
use crate::fal::Fal;
use crate::fal_job::{GENERATE_KIND, IMAGINE_KIND};
use crate::jobs::{queue, DeadReason, Job, NewJob, QueueError};
use crate::ledger::{self, Charged, LedgerError};
use crate::services::Services;
use crate::store::users::TelegramProfile;
use crate::store::StoreError;
use texts::Lang;

/// Telegram's limit on what a bot may download.
pub const MAX_DOWNLOAD: u64 = 20 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("Telegram request failed: {0}")]
    Telegram(#[from] RequestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Blob(#[from] crate::blob::BlobError),
    #[error(transparent)]
    Download(#[from] crate::clients::DownloadError),
    #[error(transparent)]
    Fal(#[from] crate::store::fal::FalStoreError),
}

/// Tells the user a job failed and was refunded. A permanent error's text
/// is written for the user; exhausted retries get `unavailable`.
pub async fn tell_failed(bot: &Bot, job: &Job, reason: DeadReason, unavailable: &str, lang: Lang) {
    let Some(chat) = job.chat_id else { return };
    let why = match &reason {
        DeadReason::Permanent(text) => text.as_str(),
        DeadReason::Exhausted(_) => unavailable,
    };
    let text = format!("{}\n{why}\n{}", texts::failed(lang, &job.kind), texts::refunded(lang, job.cost));
    if let Err(e) = bot.send_message(ChatId(chat), text.trim_end().to_owned()).await {
        tracing::warn!(job_id = job.id, error = %e, "could not tell the user about a failed job");
    }
}

#[derive(Clone)]
pub struct BotHandler {
    services: Services,
    bot: Bot,
    fal: Fal,
}

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

/// `/cmd@bot args` → (`cmd`, `args`).
pub fn parse_command(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix('/')?;
    let (head, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let command = head.split('@').next().unwrap_or_default().to_ascii_lowercase();
    (!command.is_empty()).then(|| (command, args.trim().to_owned()))
}

fn profile(user: &User) -> TelegramProfile {
    TelegramProfile {
        telegram_id: user.id.0 as i64,
        username: user.username.clone(),
        first_name: Some(user.first_name.clone()),
        last_name: user.last_name.clone(),
        language_code: user.language_code.clone(),
    }
}

fn keyboard(rows: Vec<Vec<(&'static str, &'static str)>>) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(
        rows.into_iter().map(|row| row.into_iter().map(|(label, data)| InlineKeyboardButton::callback(label, data)).collect::<Vec<_>>()),
    )
}

impl BotHandler {
    pub fn new(services: Services, bot: Bot) -> Self {
        Self { fal: Fal::new(&services.settings.fal), services, bot }
    }

    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// Registers the command menu in Russian, English and the default (Russian).
    pub async fn register_commands(&self) -> Result<(), RequestError> {
        let list = |lang| texts::commands(lang).into_iter().map(|(c, d)| BotCommand::new(c, d)).collect::<Vec<_>>();
        self.bot.set_my_commands(list(Lang::Ru)).await?;
        self.bot.set_my_commands(list(Lang::Ru)).language_code("ru").await?;
        self.bot.set_my_commands(list(Lang::En)).language_code("en").await?;
        Ok(())
    }

    pub async fn handle(&self, update: &Update) -> Result<(), HandleError> {
        match &update.kind {
            UpdateKind::Message(message) => self.on_message(message).await,
            UpdateKind::CallbackQuery(query) => self.on_callback(query).await,
            // Edits, channel posts, member changes: nothing to do.
            _ => Ok(()),
        }
    }

    /// Tells the user something failed on our side (used after a handler error).
    pub async fn apologise(&self, update: &Update) {
        let (Some(chat), lang) = (update.chat().map(|c| c.id), Lang::from_code(update.from().and_then(|u| u.language_code.as_deref())))
        else {
            return;
        };
        let _ = self.bot.send_message(chat, texts::something_went_wrong(lang)).await;
    }

    async fn on_message(&self, message: &Message) -> Result<(), HandleError> {
        let Some(from) = message.from.as_ref() else { return Ok(()) };
        if from.is_bot {
            return Ok(());
        }
        let chat = message.chat.id;
        let lang = Lang::from_code(from.language_code.as_deref());
        let user = self.services.db.upsert_user(&profile(from)).await?;

        if let Some(media) = Media::of(message) {
            return self.on_media(chat, message, user.id, lang, media).await;
        }
        let step = dialogue::get(&self.services.redis, user.id).await?;
        if let Some(image) = avatars::image_of(message) {
            return match step {
                Some(Dialogue::AvatarPhotos { avatar_id }) => self.avatar_photo(chat, user.id, lang, avatar_id, image).await,
                _ => self.say(chat, texts::unsupported(lang)).await,
            };
        }
        let Some(text) = message.text() else {
            self.bot.send_message(chat, texts::unsupported(lang)).await?;
            return Ok(());
        };
        let Some((command, args)) = parse_command(text) else {
            if step == Some(Dialogue::AvatarName) {
                return self.avatar_named(chat, user.id, lang, text).await;
            }
            self.bot.send_message(chat, texts::unsupported(lang)).await?;
            return Ok(());
        };
        self.on_command(chat, message, user.id, lang, &command, &args).await
    }

    async fn on_command(
        &self,
        chat: ChatId,
        message: &Message,
        user_id: i64,
        lang: Lang,
        command: &str,
        args: &str,
    ) -> Result<(), HandleError> {
        match command {
            "start" => self.start(chat, user_id, lang).await,
            "help" => self.say(chat, texts::help(lang)).await,
            "balance" => self.balance(chat, user_id, lang).await,
            "cancel" => self.cancel(chat, user_id, lang).await,
            "imagine" if args.is_empty() => self.say(chat, texts::imagine_usage(lang)).await,
            "imagine" => {
                let key = format!("tg:{}:{}:imagine", chat.0, message.id.0);
                self.image_request(chat, key, user_id, lang, IMAGINE_KIND, args).await
            }
            "generate" if args.is_empty() => self.say(chat, texts::generate_usage(lang)).await,
            "generate" => {
                let key = format!("tg:{}:{}:generate", chat.0, message.id.0);
                self.image_request(chat, key, user_id, lang, GENERATE_KIND, args).await
            }
            "avatars" => self.avatars(chat, user_id, lang).await,
            "history" => self.history(chat, user_id, lang, 0).await,
            "gallery" => self.gallery(chat, user_id, lang, 0).await,
            "settings" => self.settings(chat, user_id, lang).await,
            _ => self.say(chat, texts::unknown_command(lang)).await,
        }
    }

    async fn on_media(&self, chat: ChatId, message: &Message, user_id: i64, lang: Lang, media: Media) -> Result<(), HandleError> {
        if let Some(size) = media.size.filter(|s| *s > MAX_DOWNLOAD) {
            return self.say(chat, texts::too_big(lang, size)).await;
        }
        let price = media.price(self.services.settings.pricing.transcription_per_minute);
        let key = format!("tg:{}:{}:transcribe:{}", chat.0, message.id.0, media.file_unique_id);
        let payload = serde_json::json!({
            "chat_id": chat.0, "message_id": message.id.0, "media": media.kind, "file_id": media.file_id,
            "file_unique_id": media.file_unique_id, "file_size": media.size, "duration": media.duration,
            "mime_type": media.mime_type, "file_name": media.file_name, "language": lang.code(),
        });
        let _ = self.bot.send_chat_action(chat, ChatAction::Typing).await;
        self.charge(chat, user_id, lang, NewJob::new("transcribe", key, payload), price).await
    }

    async fn charge(&self, chat: ChatId, user_id: i64, lang: Lang, job: NewJob, price: i64) -> Result<(), HandleError> {
        self.charge_for(chat, user_id, lang, job, price).await.map(drop)
    }

    /// Charges and queues `job`, telling the user either way; true when the
    /// job is queued (now or by an earlier identical request).
    async fn charge_for(&self, chat: ChatId, user_id: i64, lang: Lang, mut job: NewJob, price: i64) -> Result<bool, HandleError> {
        job.chat_id = Some(chat.0);
        job.cost = price;
        job.max_attempts = self.services.settings.jobs.kind(&job.kind).max_attempts;
        let kind = job.kind.clone();
        match ledger::charge_and_enqueue(&self.services.db, user_id, job).await? {
            Charged::Queued { job, balance } => {
                tracing::info!(job_id = job.id, user_id, kind = %kind, price, "job queued");
                self.say(chat, texts::queued(lang, &kind, price, balance)).await?;
                Ok(true)
            }
            Charged::Duplicate(job) => {
                tracing::info!(job_id = job.id, user_id, "duplicate request; not charged again");
                self.say(chat, texts::already_queued(lang)).await?;
                Ok(true)
            }
            Charged::InsufficientBalance { price, balance } => {
                self.say(chat, texts::insufficient(lang, price, balance)).await?;
                Ok(false)
            }
        }
    }

    async fn start(&self, chat: ChatId, user_id: i64, lang: Lang) -> Result<(), HandleError> {
        let amount = self.services.settings.pricing.welcome_bonus;
        let credited = ledger::welcome_bonus(&self.services.db, user_id, amount).await?;
        let balance = ledger::balance(&self.services.db, user_id).await?;
        let text = texts::welcome(lang, credited.then_some(amount), balance);
        self.bot.send_message(chat, text).reply_markup(keyboard(texts::main_menu(lang))).await?;
        Ok(())
    }

    async fn balance(&self, chat: ChatId, user_id: i64, lang: Lang) -> Result<(), HandleError> {
        let balance = ledger::balance(&self.services.db, user_id).await?;
        let entries = ledger::recent_entries(&self.services.db, user_id, 5).await?;
        self.say(chat, texts::balance(lang, balance, &entries)).await
    }

    async fn cancel(&self, chat: ChatId, user_id: i64, lang: Lang) -> Result<(), HandleError> {
        dialogue::clear(&self.services.redis, user_id).await?;
        let (mut count, mut refunded) = (0, 0);
        for job in queue::active_for_user(&self.services.db, user_id).await? {
            if let Some(cancelled) = queue::cancel(&self.services.db, job.id, "cancelled by the user").await? {
                tracing::info!(job_id = cancelled.id, user_id, "job cancelled by the user");
                count += 1;
                refunded += cancelled.cost;
            }
        }
        self.say(chat, texts::cancelled(lang, count, refunded)).await
    }

    async fn on_callback(&self, query: &CallbackQuery) -> Result<(), HandleError> {
        // Answer first, so the button stops spinning whatever happens next.
        self.bot.answer_callback_query(query.id.clone()).await?;
        let lang = Lang::from_code(query.from.language_code.as_deref());
        let chat = query.message.as_ref().map(|m| m.chat().id).unwrap_or(ChatId(query.from.id.0 as i64));
        let user = self.services.db.upsert_user(&profile(&query.from)).await?;
        let data = query.data.as_deref().unwrap_or_default();
        let mut parts = data.split(':');
        let number = |s: &str| s.parse::<i64>().unwrap_or(0);
        match (parts.next(), parts.next(), parts.next()) {
            (Some("avatar"), Some("new"), None) => return self.avatar_new(chat, user.id, lang).await,
            (Some("avatar"), Some("train"), Some(id)) => return self.avatar_train(chat, user.id, lang, number(id)).await,
            (Some("avatar"), Some("cancel"), Some(id)) => return self.avatar_cancel(chat, user.id, lang, number(id)).await,
            (Some("avatar"), Some("main"), Some(id)) => return self.avatar_main(chat, user.id, lang, number(id)).await,
            (Some("avatar"), Some(id), None) => return self.avatar_status(chat, user.id, lang, number(id)).await,
            (Some("gender"), Some(gender @ ("man" | "woman")), None) => return self.avatar_gender(chat, user.id, lang, gender).await,
            (Some("regen"), Some(id), None) => return self.regenerate(chat, query, user.id, lang, number(id)).await,
            (Some("fav"), Some(id), None) => return self.favourite(chat, user.id, lang, number(id)).await,
            (Some("del"), Some(id), None) => return self.delete_image(chat, user.id, lang, number(id)).await,
            (Some("gal"), Some(index), None) => return self.gallery(chat, user.id, lang, number(index)).await,
            (Some("aspect"), Some(aspect), None) => return self.set_aspect(chat, user.id, lang, aspect).await,
            (Some("history"), Some(page), None) => {
                return self.history(chat, user.id, lang, page.parse().unwrap_or(0)).await;
            }
            (Some("transcript"), Some(id), None) => {
                return self.resend_transcript(chat, user.id, lang, id.parse().unwrap_or(0)).await;
            }
            (Some("digest"), Some(kind), Some(id)) if matches!(kind, "summary" | "actions" | "minutes") => {
                return self.digest(chat, query, user.id, lang, kind, id.parse().unwrap_or(0)).await;
            }
            _ => {}
        }
        match data {
            "menu:balance" => self.balance(chat, user.id, lang).await,
            "menu:help" => self.say(chat, texts::help(lang)).await,
            "menu:imagine" => self.say(chat, texts::imagine_usage(lang)).await,
            "menu:avatars" => self.avatars(chat, user.id, lang).await,
            "menu:gallery" => self.gallery(chat, user.id, lang, 0).await,
            "menu:history" => self.history(chat, user.id, lang, 0).await,
            "menu:settings" => self.settings(chat, user.id, lang).await,
            _ => self.say(chat, texts::unknown_command(lang)).await,
        }
    }

    async fn say(&self, chat: ChatId, text: impl Into<String>) -> Result<(), HandleError> {
        self.bot.send_message(chat, text.into()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_and_without_the_bot_name() {
        assert_eq!(parse_command("/start"), Some(("start".into(), "".into())));
        assert_eq!(parse_command("/imagine@aisha_bot  a red fox "), Some(("imagine".into(), "a red fox".into())));
        assert_eq!(parse_command("hello"), None);
        assert_eq!(parse_command("/"), None);
    }

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
