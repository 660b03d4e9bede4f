//! Bot API methods and updates newer than teloxide 0.17: methods as typed
//! requests over the same client (`JsonRequest`: the same token, URL,
//! timeouts and error parsing, and `patiently()` like any other call), and
//! the guest message read from the update as sent. Field names as the Bot
//! API pages give them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use teloxide::requests::{JsonRequest, Payload};
use teloxide::types::{
    InlineQueryResult, InlineQueryResultArticle, InputMessageContent, InputMessageContentText, Message, True, User,
};

use super::bot_api::TgBot;

/// `sendMessageDraft` (Bot API 9.3): streams a partial message to a user
/// in a private chat; changes to the draft with the same `draft_id` are
/// animated. The message itself is sent afterwards as usual.
#[derive(Debug, Clone, Serialize)]
pub struct SendMessageDraft {
    pub chat_id: i64,
    /// Non-zero; one per message being streamed.
    pub draft_id: i64,
    /// 1–4096 characters.
    pub text: String,
}

impl Payload for SendMessageDraft {
    type Output = True;
    const NAME: &'static str = "sendMessageDraft";
}

/// The most a draft's text may hold, in characters.
pub const DRAFT_MAX_CHARS: usize = 4096;

pub fn send_message_draft(bot: &TgBot, draft: SendMessageDraft) -> JsonRequest<SendMessageDraft> {
    JsonRequest::new(bot.clone(), draft)
}

/// `setWebhook` with the updates teloxide 0.17's `AllowedUpdate` cannot
/// name (`guest_message`).
#[derive(Debug, Clone, Serialize)]
pub struct SetWebhook {
    pub url: String,
    pub secret_token: String,
    pub allowed_updates: Vec<&'static str>,
}

impl Payload for SetWebhook {
    type Output = True;
    const NAME: &'static str = "setWebhook";
}

pub fn set_webhook(bot: &TgBot, url: &str, secret_token: &str) -> JsonRequest<SetWebhook> {
    let allowed_updates = super::telegram::ALLOWED_UPDATES.to_vec();
    JsonRequest::new(
        bot.clone(),
        SetWebhook { url: url.to_owned(), secret_token: secret_token.to_owned(), allowed_updates },
    )
}

/// A guest message: the query to answer, and the message that asked.
#[derive(Debug, Clone)]
pub struct GuestQuery {
    pub query_id: String,
    pub message: Message,
}

impl GuestQuery {
    /// The guest query in an update as Telegram sent it (teloxide 0.17
    /// knows no `guest_message`; `parse_update` keeps such updates raw).
    pub fn of(update: &Value) -> Option<Self> {
        let raw = update.get("guest_message")?;
        let query_id = raw["guest_query_id"].as_str().filter(|id| !id.is_empty())?.to_owned();
        let message = serde_json::from_value(raw.clone())
            .map_err(|e| tracing::warn!(error = %e, "a guest message teloxide cannot read"))
            .ok()?;
        Some(GuestQuery { query_id, message })
    }

    /// Who asked (a person, not a bot).
    pub fn caller(&self) -> Option<&User> {
        self.message.from.as_ref().filter(|u| !u.is_bot)
    }
}

/// `answerGuestQuery` (Bot API 10.0): the bot's one answer to a guest
/// message, posted as the bot's guest message in the chat it was asked in.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerGuestQuery {
    /// `Message.guest_query_id` of the guest message.
    pub guest_query_id: String,
    pub result: InlineQueryResult,
}

/// The guest message sent: edited later as any inline message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SentGuestMessage {
    pub inline_message_id: String,
}

impl Payload for AnswerGuestQuery {
    type Output = SentGuestMessage;
    const NAME: &'static str = "answerGuestQuery";
}

/// A guest answer of plain text (an article whose message is `text`).
pub fn answer_guest_query(
    bot: &TgBot,
    guest_query_id: &str,
    title: &str,
    text: String,
) -> JsonRequest<AnswerGuestQuery> {
    let content = InputMessageContent::Text(InputMessageContentText::new(text));
    let article = InlineQueryResultArticle::new(guest_query_id, title, content);
    let answer = AnswerGuestQuery { guest_query_id: guest_query_id.to_owned(), result: article.into() };
    JsonRequest::new(bot.clone(), answer)
}
