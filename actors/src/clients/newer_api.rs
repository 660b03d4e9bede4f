//! Bot API methods newer than teloxide 0.17, as typed requests over the
//! same client (`JsonRequest`): the same token, URL, timeouts and error
//! parsing, and `patiently()` like any other call. Field
//! names as the Bot API pages give them.

use serde::Serialize;
use teloxide::requests::{JsonRequest, Payload};
use teloxide::types::True;

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
