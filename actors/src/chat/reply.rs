//! Sending long text: split into messages on paragraph, line, sentence or
//! word boundaries (never mid-word), or as a `.txt` document when it would
//! take too many messages.

use teloxide::payloads::{SendDocumentSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, InlineKeyboardMarkup, InputFile, MessageId, ReplyParameters};
use teloxide::RequestError;

use crate::clients::{Patiently, TgBot};

/// Telegram's limit for one message.
pub const MESSAGE_LIMIT: usize = 4096;
/// Telegram's limit for a caption.
const CAPTION_LIMIT: usize = 1024;

/// Pieces of at most `limit` characters, cut at the best boundary available.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > limit {
        let window: String = rest.chars().take(limit).collect();
        let cut = ["\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " "]
            .iter()
            .filter_map(|sep| window.rfind(sep).map(|i| i + sep.len()))
            .find(|&i| i > window.len() / 3)
            .unwrap_or(window.len()); // one word longer than a message: cut it
        let (head, tail) = rest.split_at(cut);
        pieces.push(head.trim_end().to_owned());
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

/// The first lines of `text`, at most `limit` characters.
pub fn excerpt(text: &str, limit: usize) -> String {
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if out.chars().count() + line.chars().count() + 1 > limit {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    if out.is_empty() {
        out = text.chars().take(limit.saturating_sub(1)).collect::<String>() + "…";
    }
    out.trim_end().to_owned()
}

/// Where a reply goes: a chat, and in a group the message it answers.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub chat: ChatId,
    pub reply_to: Option<MessageId>,
}

impl From<ChatId> for Target {
    fn from(chat: ChatId) -> Self {
        Target { chat, reply_to: None }
    }
}

impl Target {
    /// The reply parameters, sent even when the answered message is gone.
    pub fn reply_parameters(&self) -> Option<ReplyParameters> {
        self.reply_to.map(|id| ReplyParameters::new(id).allow_sending_without_reply())
    }
}

/// Sends `intro` and `body` as up to `max_messages` messages, the keyboard
/// under the last; a longer body goes as the document `file_name`, captioned
/// with `intro` and the body's first lines. The first message answers
/// `target.reply_to`, if set.
pub async fn send_long(
    bot: &TgBot,
    target: impl Into<Target>,
    intro: &str,
    body: &str,
    keyboard: Option<InlineKeyboardMarkup>,
    max_messages: usize,
    file_name: &str,
) -> Result<(), RequestError> {
    let target: Target = target.into();
    let chat = target.chat;
    let pieces = split_message(&format!("{intro}\n\n{body}"), MESSAGE_LIMIT);
    if pieces.len() <= max_messages.max(1) {
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.into_iter().enumerate() {
            let mut request = bot.send_message(chat, piece);
            if let (0, Some(reply)) = (i, target.reply_parameters()) {
                request = request.reply_parameters(reply);
            }
            match (&keyboard, i == last) {
                (Some(k), true) => request.reply_markup(k.clone()).patiently().await?,
                _ => request.patiently().await?,
            };
        }
        return Ok(());
    }
    let quote = excerpt(body, CAPTION_LIMIT.saturating_sub(intro.chars().count() + 4));
    let caption = format!("{intro}\n\n«{quote}»");
    let file = InputFile::memory(body.as_bytes().to_vec()).file_name(file_name.to_owned());
    let mut request = bot.send_document(chat, file).caption(caption);
    if let Some(reply) = target.reply_parameters() {
        request = request.reply_parameters(reply);
    }
    match keyboard {
        Some(k) => request.reply_markup(k).patiently().await?,
        None => request.patiently().await?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split_message("hello world", 4096), vec!["hello world"]);
    }

    #[test]
    fn splits_prefer_paragraphs_then_sentences_and_never_cut_words() {
        let text = format!("{}\n\n{}", "a".repeat(3000), "word ".repeat(500));
        let pieces = split_message(&text, 4096);
        assert_eq!(pieces[0], "a".repeat(3000), "the paragraph break is used");
        for piece in &pieces {
            assert!(piece.chars().count() <= 4096);
        }
        assert!(pieces[1..].iter().all(|p| p.split(' ').all(|w| w == "word")), "no word was cut");
        let rejoined: String = pieces[1..].join(" ");
        assert_eq!(rejoined.split_whitespace().count(), 500);
    }

    #[test]
    fn cyrillic_is_counted_in_characters_not_bytes() {
        let text = "привет ".repeat(1000);
        let pieces = split_message(&text, 4096);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.chars().count() <= 4096));
    }

    #[test]
    fn excerpt_takes_whole_first_lines() {
        assert_eq!(excerpt("one\ntwo\nthree", 9), "one\ntwo");
    }
}
