//! A guest's transcript (`bot::guest`): edited into the "⏳" answer the
//! bot gave in the chat it was asked in, cut to one message with the way to
//! the whole text (the caller's private chat, /history) when longer. Its
//! failure is said there too, with the refund.

use teloxide::prelude::Requester;
use teloxide::{ApiError, RequestError};

use super::kinds::GuestAnswer;
use super::turn::Turn;
use crate::chat::reply::{split_message, MESSAGE_LIMIT};
use crate::chat::{texts, Lang};
use crate::clients::bot_api::is_transient;
use crate::clients::{Patiently, TgBot};
use crate::jobs::JobError;

impl Turn<'_> {
    /// The transcript edited into the guest answer: `delivered`, or
    /// `undeliverable` when that message is gone (it stays in /history).
    pub(super) async fn answer_guest(
        &self,
        guest: &GuestAnswer,
        intro: &str,
        text: &str,
    ) -> Result<&'static str, JobError> {
        let body = guest_body(self.lang, intro, text, &guest.bot_username);
        match edit(&self.worker.bot, guest, body).await {
            Ok(()) => Ok("delivered"),
            Err(e) if is_transient(&e) => Err(e.into()),
            Err(e) => {
                tracing::warn!(job_id = self.job.id, user_id = self.user_id, error = %e, "guest answer gone; the transcript stays in /history");
                Ok("undeliverable")
            }
        }
    }
}

/// Says in the guest answer that the job failed (`text`: why, and the refund).
pub(super) async fn tell_failed(bot: &TgBot, guest: &GuestAnswer, job_id: i64, text: String) {
    if let Err(e) = edit(bot, guest, text).await {
        tracing::warn!(job_id, error = %e, "could not tell a guest caller their transcription failed");
    }
}

/// An edit that finds the text already there (a retry after the edit
/// landed) has done its work.
async fn edit(bot: &TgBot, guest: &GuestAnswer, text: String) -> Result<(), RequestError> {
    match bot.edit_message_text_inline(&guest.inline_message_id, text).patiently().await {
        Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The intro and the text in one message; a text too long for it is cut at
/// a boundary, with the way to the whole text.
fn guest_body(lang: Lang, intro: &str, text: &str, bot_username: &str) -> String {
    let whole = format!("{intro}\n\n{text}");
    if whole.chars().count() <= MESSAGE_LIMIT {
        return whole;
    }
    let tail = texts::guest_whole_text(lang, bot_username);
    let room = MESSAGE_LIMIT - tail.chars().count() - intro.chars().count() - 2;
    let head = split_message(text, room).into_iter().next().unwrap_or_default();
    format!("{intro}\n\n{head}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_transcript_is_cut_to_one_message_with_the_way_to_the_rest() {
        let short = guest_body(Lang::En, "📝", "Hello.", "aisha_bot");
        assert_eq!(short, "📝\n\nHello.");
        let long = guest_body(Lang::En, "📝", &"A sentence of the talk. ".repeat(400), "aisha_bot");
        assert!(long.chars().count() <= MESSAGE_LIMIT, "{}", long.chars().count());
        assert!(long.ends_with("in /history: https://t.me/aisha_bot"), "{long}");
        assert!(long.contains("talk.…"), "cut at a sentence");
    }
}
