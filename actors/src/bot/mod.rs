//! What the bot does with one update: commands, menu buttons, media that
//! becomes a charged job. Every path answers the user; nothing is silent.
//! Handling may run again for the same update (a restart between recording
//! and handling), so anything that charges goes through an idempotency key
//! derived from the message.

mod avatars;
mod charge;
mod error;
mod glossary;
mod groups;
mod guest;
mod images;
mod links;
mod media;
mod payments;
mod privacy;
mod settings;
mod shared;
mod transcripts;
mod translations;

use teloxide::payloads::{SendMessageSetters, SetMyCommandsSetters};
use teloxide::prelude::Requester;
use teloxide::types::{BotCommand, CallbackQuery, ChatId, Message, MessageKind, Update, UpdateKind};
use teloxide::RequestError;

use crate::chat::callback::{Callback, MenuItem};
use crate::chat::command::Command;
use crate::chat::keyboards;
use crate::chat::{texts, Lang};
use crate::clients::fal::Fal;
use crate::clients::newer_api::GuestQuery;
use crate::clients::{Patiently, TgBot};
use crate::dialogue::{self, Dialogue};
use crate::fal_job::models::Product;
use crate::ledger;
use crate::services::Services;
use crate::store::users::{TelegramProfile, User};

pub use error::HandleError;
pub use media::Media;

#[derive(Clone)]
pub struct BotHandler {
    services: Services,
    bot: TgBot,
    fal: Fal,
    shared: shared::Shared,
    /// Photos held in memory at once (downloaded, not yet stored): the one
    /// handler step that holds megabytes, bounded apart from the chats
    /// handled at once, which mostly wait on the network.
    photos_in_memory: std::sync::Arc<tokio::sync::Semaphore>,
    /// Our @username (getMe, once): a group command for another bot is not ours.
    me: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

/// Whom a handler answers: the chat, the sender as our user, their language.
/// Every handler of a private chat's turn takes one, not the three apart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turn {
    pub chat: ChatId,
    pub user_id: i64,
    pub lang: Lang,
}

impl Turn {
    /// The same person answered in another chat (their private one).
    fn in_chat(self, chat: ChatId) -> Self {
        Turn { chat, ..self }
    }
}

/// At most this many avatar photos (each up to `clients::MAX_DOWNLOAD`) in memory at once.
const PHOTOS_IN_MEMORY: usize = 16;

/// Registers the command menu in Russian, English and the default
/// (Russian): the bot's, not a handler's (no writers need starting for it).
pub async fn register_commands(bot: &TgBot) -> Result<(), RequestError> {
    let list =
        |lang| crate::chat::command::menu(lang).into_iter().map(|(c, d)| BotCommand::new(c, d)).collect::<Vec<_>>();
    bot.set_my_commands(list(Lang::Ru)).patiently().await?;
    bot.set_my_commands(list(Lang::Ru)).language_code("ru").patiently().await?;
    bot.set_my_commands(list(Lang::En)).language_code("en").patiently().await?;
    Ok(())
}

impl BotHandler {
    pub fn new(services: Services) -> Self {
        Self {
            fal: Fal::new(&services.settings.fal),
            bot: services.telegram.clone(),
            shared: shared::Shared::start(&services.db, &services.redis, &services.settings.limits),
            photos_in_memory: std::sync::Arc::new(tokio::sync::Semaphore::new(PHOTOS_IN_MEMORY)),
            me: Default::default(),
            services,
        }
    }

    pub fn bot(&self) -> &TgBot {
        &self.bot
    }

    pub async fn handle(&self, update: &Update) -> Result<(), HandleError> {
        match &update.kind {
            UpdateKind::Message(message) => self.on_message(message).await,
            UpdateKind::CallbackQuery(query) => self.on_callback(query).await,
            UpdateKind::PreCheckoutQuery(query) => self.on_pre_checkout(query).await,
            UpdateKind::ChatMember(change) => self.on_chat_member(change).await,
            UpdateKind::Error(raw) => match GuestQuery::of(raw) {
                Some(guest) => self.on_guest(&guest).await,
                None => Ok(()),
            },
            // Edits, channel posts, member changes: nothing to do.
            _ => Ok(()),
        }
    }

    /// Tells the user something failed on our side (used after a handler error).
    pub async fn apologise(&self, update: &Update) {
        if let Some(guest) = match &update.kind {
            UpdateKind::Error(raw) => GuestQuery::of(raw),
            _ => None,
        } {
            let lang = Lang::from_code(guest.message.from.as_ref().and_then(|u| u.language_code.as_deref()));
            let _ = self.answer_guest(&guest, texts::something_went_wrong(lang)).await;
            return;
        }
        let (Some(chat), lang) =
            (update.chat().map(|c| c.id), Lang::from_code(update.from().and_then(|u| u.language_code.as_deref())))
        else {
            return;
        };
        let _ = self.bot.send_message(chat, texts::something_went_wrong(lang)).patiently().await;
    }

    async fn on_message(&self, message: &Message) -> Result<(), HandleError> {
        let Some(from) = message.from.as_ref() else { return Ok(()) };
        if from.is_bot {
            return Ok(());
        }
        // Before any routing by chat: Stars paid (or refunded) are credited
        // (or taken back) whatever chat the invoice was in.
        if message.successful_payment().is_some() || matches!(message.kind, MessageKind::RefundedPayment(_)) {
            return self.on_payment_message(message, from).await;
        }
        if message.chat.is_group() || message.chat.is_supergroup() {
            return self.on_group_message(message, from).await;
        }
        if !message.chat.is_private() {
            return Ok(()); // channels: nothing to answer
        }
        let chat = message.chat.id;
        let lang = Lang::from_code(from.language_code.as_deref());
        let user = self.shared.user(TelegramProfile::of(from)).await?;

        let turn = Turn { chat, user_id: user.id, lang };
        if let Some(media) = Media::of(message) {
            return self.on_media(turn, message, &user, media).await;
        }
        let step = dialogue::get(&self.services.redis, user.id).await?;
        if let Some(image) = media::image_of(message) {
            return match step {
                Some(Dialogue::AvatarPhotos { avatar_id }) => self.avatar_photo(turn, avatar_id, image).await,
                _ => self.say(chat, texts::photo_outside_avatars(lang)).await,
            };
        }
        let Some(text) = message.text() else {
            self.bot.send_message(chat, texts::unsupported(lang)).patiently().await?;
            return Ok(());
        };
        let Some(command) = Command::parse(text) else {
            if step == Some(Dialogue::AvatarName) {
                return self.avatar_named(turn, text).await;
            }
            if let Some(url) = crate::clients::links::first_link(text).filter(|_| self.services.settings.links.enabled)
            {
                return self.on_link(turn, message, url).await;
            }
            self.bot.send_message(chat, texts::unsupported(lang)).patiently().await?;
            return Ok(());
        };
        self.on_command(turn, command, Some(message)).await
    }

    /// A command in a private chat, typed or pressed in the menu (`sent`
    /// is the message that typed it: what a paid request is keyed by).
    async fn on_command(&self, turn: Turn, command: Command, sent: Option<&Message>) -> Result<(), HandleError> {
        let Turn { chat, lang, .. } = turn;
        match command {
            Command::Start => self.start(turn).await,
            Command::Help => self.say(chat, texts::help(lang)).await,
            Command::Balance => self.balance(turn).await,
            Command::TopUp => self.top_up(turn).await,
            Command::PaySupport => self.say(chat, texts::paysupport(lang)).await,
            Command::Terms => self.say(chat, texts::terms(lang)).await,
            Command::Privacy => self.say(chat, texts::privacy(lang)).await,
            Command::DeleteMyData => self.ask_to_forget(chat, lang).await,
            Command::AutoTranscribe(_) => self.say(chat, texts::autotranscribe_only_in_groups(lang)).await,
            Command::Transcribe => self.say(chat, texts::transcribe_in_private(lang)).await,
            Command::Translate(code) => self.translate_command(turn, &code, sent).await,
            Command::Glossary(args) => self.glossary(turn, &args).await,
            Command::Cancel => self.cancel(turn).await,
            Command::Imagine(prompt) => match sent.filter(|_| !prompt.is_empty()) {
                Some(message) => {
                    let key = format!("tg:{}:{}:imagine", chat.0, message.id.0);
                    self.image_request(turn, key, Product::TextToImage, &prompt).await
                }
                None => self.say(chat, texts::imagine_usage(lang)).await,
            },
            Command::Generate(prompt) => match sent.filter(|_| !prompt.is_empty()) {
                Some(message) => {
                    let key = format!("tg:{}:{}:generate", chat.0, message.id.0);
                    self.image_request(turn, key, Product::AvatarImage, &prompt).await
                }
                None => self.say(chat, texts::generate_usage(lang)).await,
            },
            Command::Avatars => self.avatars(turn).await,
            Command::History => self.history(turn, 0).await,
            Command::Gallery => self.gallery(turn, 0).await,
            Command::Settings => self.settings(turn).await,
            Command::Unknown(_) => self.say(chat, texts::unknown_command(lang)).await,
        }
    }

    async fn on_media(&self, turn: Turn, message: &Message, user: &User, media: Media) -> Result<(), HandleError> {
        let Turn { chat, lang, .. } = turn;
        let limit = self.services.settings.telegram.max_download();
        if let Some(size) = media.size.filter(|s| *s > limit) {
            return self.say(chat, texts::too_big(lang, size, limit)).await;
        }
        let Some(price) = media.price(self.services.settings.pricing.transcription_rate(user.speakers)) else {
            return self.say(chat, texts::unreadable_audio(lang)).await;
        };
        let job = media.transcribe_job(message, lang, user.transcription_language.clone(), user.speakers, None);
        // No "typing…" here: the "queued" answer follows at once and would
        // clear it. The worker shows it while it transcribes.
        self.charge(turn, job, price).await
    }

    async fn start(&self, turn: Turn) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let amount = self.services.settings.pricing.welcome_bonus;
        let credited = ledger::welcome_bonus(&self.services.db, user_id, amount).await?;
        let balance = ledger::balance(&self.services.db, user_id).await?;
        let text = texts::welcome(lang, credited.then_some(amount), balance);
        self.bot.send_message(chat, text).reply_markup(keyboards::main_menu(lang)).patiently().await?;
        Ok(())
    }

    async fn balance(&self, turn: Turn) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let balance = ledger::balance(&self.services.db, user_id).await?;
        let entries = ledger::recent_entries(&self.services.db, user_id, 5).await?;
        let text = texts::balance(lang, balance, &entries, |kind| crate::kinds::title(lang, kind));
        self.bot.send_message(chat, text).reply_markup(keyboards::top_up(lang)).patiently().await?;
        Ok(())
    }

    async fn cancel(&self, turn: Turn) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let in_dialogue = dialogue::get(&self.services.redis, user_id).await?.is_some();
        dialogue::clear(&self.services.redis, user_id).await?;
        let (mut count, mut refunded, mut running) = (0, 0i64, 0);
        for job in crate::jobs::queue::active_for_user(&self.services.db, user_id).await? {
            match ledger::cancel_job(&self.services.db, job.id, "cancelled by the user").await? {
                Some(cancelled) => {
                    tracing::info!(job_id = cancelled.id, user_id, "job cancelled by the user");
                    count += 1;
                    refunded = refunded.saturating_add(cancelled.cost);
                }
                None => running += 1,
            }
        }
        // Images and trainings FAL is making are under way too: they will arrive.
        running += usize::try_from(self.services.db.fal_requests_in_flight(user_id).await?).unwrap_or_default();
        // Stopping the avatar dialogue is something cancelled too: never "nothing to cancel" then.
        let mut lines = Vec::new();
        if in_dialogue {
            lines.push(texts::avatar_dialogue_stopped(lang).to_owned());
        }
        if count > 0 || (!in_dialogue && running == 0) {
            lines.push(texts::cancelled(lang, count, refunded));
        }
        if running > 0 {
            lines.push(texts::still_running(lang, running));
        }
        let text = lines.join("\n");
        self.say(chat, text).await
    }

    async fn on_callback(&self, query: &CallbackQuery) -> Result<(), HandleError> {
        // Answer first, so the button stops spinning whatever happens next.
        self.bot.answer_callback_query(query.id.clone()).patiently().await?;
        let lang = Lang::from_code(query.from.language_code.as_deref());
        let chat = query.message.as_ref().map(|m| m.chat().id).unwrap_or(ChatId(query.from.id.0 as i64));
        let user = self.shared.user(TelegramProfile::of(&query.from)).await?;
        let data = query.data.as_deref().unwrap_or_default();
        let Some(callback) = Callback::parse(data) else {
            tracing::debug!(data, "a callback that is no button of ours");
            return self.say(chat, texts::unknown_command(lang)).await;
        };
        let turn = Turn { chat, user_id: user.id, lang };
        match callback {
            Callback::AvatarNew => self.avatar_new(turn).await,
            Callback::AvatarTrain(id) => self.avatar_train(turn, id).await,
            Callback::AvatarCancel(id) => self.avatar_cancel(turn, id).await,
            Callback::AvatarMain(id) => self.avatar_main(turn, id).await,
            Callback::AvatarStatus(id) => self.avatar_status(turn, id).await,
            Callback::Gender(gender) => self.avatar_gender(turn, gender).await,
            Callback::Regenerate(id) => self.regenerate(turn, query, id).await,
            Callback::Favourite(id) => self.favourite(turn, id).await,
            Callback::Delete(id) => self.delete_image(turn, id).await,
            Callback::Gallery(index) => self.gallery(turn, index).await,
            Callback::Aspect(aspect) => self.set_aspect(turn, aspect).await,
            Callback::History(page) => self.history(turn, page).await,
            Callback::Transcript(id) => self.resend_transcript(turn, id).await,
            Callback::Digest(kind, id) => self.digest(turn, query, kind, id, None).await,
            Callback::DigestIn(kind, code, id) => self.digest(turn, query, kind, id, Some(code)).await,
            Callback::Translate(id) => self.translate_menu(turn, id).await,
            Callback::TranslateTo(code, id) => self.translate(turn, format!("tg:cb:{}", query.id.0), id, code).await,
            Callback::TranslationFile(format, code, id) => self.translation_file(turn, format, code, id).await,
            Callback::Subtitles(format, id) => self.subtitles(turn, format, id).await,
            Callback::Spoken(code) => self.set_spoken_language(turn, code).await,
            Callback::Forget(true) => self.forget(turn, query.from.id.0 as i64).await,
            Callback::Forget(false) => self.say(chat, texts::delete_kept(lang)).await,
            Callback::Speakers(on) => self.set_speakers(turn, on).await,
            Callback::WhoSaidWhat(id, confirmed) => self.who_said_what(turn, id, confirmed).await,
            Callback::Link(id) => self.link_confirmed(turn, id).await,
            // Packages and invoices go to the payer's private chat, never into a group.
            Callback::Menu(MenuItem::TopUp) => {
                self.in_private(chat, query, lang, |private| self.top_up(turn.in_chat(private))).await
            }
            Callback::TopUp(index) => {
                self.in_private(chat, query, lang, |private| self.invoice(turn.in_chat(private), index)).await
            }
            Callback::Menu(item) => self.on_command(turn, item.command(), None).await,
        }
    }

    async fn say(&self, chat: ChatId, text: impl Into<String>) -> Result<(), HandleError> {
        self.bot.send_message(chat, text.into()).patiently().await?;
        Ok(())
    }
}
