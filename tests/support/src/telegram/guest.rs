//! Guest mode in the Bot API fake (Bot API 10.0): `guest_message` updates
//! (a caller mentions the bot in reply to a voice in a chat it is not in),
//! `answerGuestQuery` once per query (a second answer is refused, as is an
//! unknown query), and inline messages edited with `editMessageText
//! (inline_message_id)`, which answers `true` and refuses an edit that
//! changes nothing ("message is not modified").

use std::collections::HashMap;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use super::{error, now, ok, user, FakeTelegram, Reply, BOT_USERNAME};

/// The guest queries asked and the inline messages that answered them.
#[derive(Debug, Default)]
pub(super) struct Guests {
    /// Query id → the inline message id it was answered with, once answered.
    queries: HashMap<String, Option<String>>,
    /// Inline message id → its text now.
    messages: HashMap<String, String>,
}

impl FakeTelegram {
    /// `caller` mentions the bot in the group `chat_id` (one the bot is not
    /// in) in reply to a voice message `author` sent there. Returns the
    /// guest query's id.
    pub fn push_guest_voice(
        &self,
        caller: i64,
        language: &str,
        chat_id: i64,
        author: i64,
        duration: u32,
        bytes: Bytes,
    ) -> String {
        let file_id = self.add_file("voice/guest.oga", bytes.clone());
        let chat = json!({ "id": chat_id, "type": "supergroup", "title": "A chat without the bot" });
        let voice = json!({
            "message_id": self.next_message_id(), "date": now(), "chat": chat, "from": user(author, "en"),
            "voice": {
                "file_id": file_id, "file_unique_id": format!("u{file_id}"), "duration": duration,
                "mime_type": "audio/ogg", "file_size": bytes.len(),
            },
        });
        self.push_guest(caller, language, chat, Some(voice))
    }

    /// `caller` mentions the bot in `chat_id`, replying to nothing.
    pub fn push_guest_mention(&self, caller: i64, language: &str, chat_id: i64) -> String {
        let chat = json!({ "id": chat_id, "type": "supergroup", "title": "A chat without the bot" });
        self.push_guest(caller, language, chat, None)
    }

    fn push_guest(&self, caller: i64, language: &str, chat: Value, reply_to: Option<Value>) -> String {
        let query_id = format!("gq-{}", uuid::Uuid::new_v4().simple());
        self.state.lock().unwrap().guests.queries.insert(query_id.clone(), None);
        let mention = format!("@{BOT_USERNAME}");
        let mut message = json!({
            "message_id": self.next_message_id(), "date": now(), "chat": chat, "from": user(caller, language),
            "text": mention, "entities": [{ "type": "mention", "offset": 0, "length": mention.len() }],
            "guest_query_id": query_id,
        });
        if let Some(voice) = reply_to {
            message["reply_to_message"] = voice;
        }
        self.push_update(json!({ "guest_message": message }));
        query_id
    }

    /// The text of the message that answered guest query `query_id`, as it is now.
    pub fn guest_answer(&self, query_id: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        let inline = state.guests.queries.get(query_id)?.as_ref()?;
        state.guests.messages.get(inline).cloned()
    }

    pub(super) fn answer_guest_query(&self, params: &Value) -> Reply {
        let query_id = params["guest_query_id"].as_str().unwrap_or_default();
        let text = params["result"]["input_message_content"]["message_text"].as_str().unwrap_or_default();
        let article = params["result"]["type"] == "article" && params["result"]["id"].is_string();
        if !article || !(1..=4096).contains(&text.chars().count()) {
            return error(StatusCode::BAD_REQUEST, "Bad Request: RESULT_INVALID", None);
        }
        let mut state = self.state.lock().unwrap();
        let inline = format!("inline-{}", state.guests.messages.len() + 1);
        match state.guests.queries.get_mut(query_id) {
            Some(answer @ None) => *answer = Some(inline.clone()),
            Some(Some(_)) | None => {
                return error(StatusCode::BAD_REQUEST, "Bad Request: query is too old or query ID is invalid", None)
            }
        }
        state.guests.messages.insert(inline.clone(), text.to_owned());
        ok(json!({ "inline_message_id": inline }))
    }

    pub(super) fn edit_inline_message(&self, params: &Value) -> Reply {
        let inline = params["inline_message_id"].as_str().unwrap_or_default();
        let text = params["text"].as_str().unwrap_or_default();
        if !(1..=4096).contains(&text.chars().count()) {
            return error(StatusCode::BAD_REQUEST, "Bad Request: message is too long", None);
        }
        let mut state = self.state.lock().unwrap();
        match state.guests.messages.get_mut(inline) {
            None => error(StatusCode::BAD_REQUEST, "Bad Request: MESSAGE_ID_INVALID", None),
            Some(now) if now == text => error(
                StatusCode::BAD_REQUEST,
                "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
                None,
            ),
            Some(now) => {
                *now = text.to_owned();
                ok(json!(true))
            }
        }
    }
}
