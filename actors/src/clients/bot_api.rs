//! The Bot API for every call but getUpdates: one teloxide bot per process,
//! and `patiently()` on every call: Telegram's flood limits kept before a
//! message is sent (`flood`), and after a refusal that may pass (429 with its
//! `retry_after`, 5xx, a network failure) the call sent again with backoff,
//! so a reply is delayed, not lost.

use std::future::Future;
use std::time::Duration;

use teloxide::requests::{Output, Payload, Request};
use teloxide::{ApiError, Bot, RequestError};

use super::outcome::ClientError;
use crate::backoff::Backoff;
use crate::settings::TelegramSettings;

/// The bot every handler and worker sends through.
pub type TgBot = Bot;

/// Sends after the first, on a transient failure (about a minute in all,
/// plus the 10 s teloxide itself waits after each 5xx).
const RETRIES: u32 = 5;
const RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(16));

/// A bot pointed at `telegram.api_url`, with a request timeout that leaves
/// room for uploads; its flood limits from the settings.
pub fn telegram_bot(settings: &TelegramSettings) -> Result<TgBot, ClientError> {
    let url = reqwest::Url::parse(&settings.api_url).map_err(|e| ClientError::InvalidTelegramUrl(e.to_string()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(settings.poll_timeout + Duration::from_secs(15))
        .build()
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let bot = Bot::with_client(settings.token.expose(), client).set_api_url(url);
    super::flood::configure(settings);
    Ok(bot)
}

/// Whether sending the same request again may succeed: Telegram's 5xx, a
/// proxy's HTML error page, a dropped connection, a 429 that got through.
pub fn is_transient(error: &RequestError) -> bool {
    match error {
        RequestError::RetryAfter(_) | RequestError::Network(_) | RequestError::InvalidJson { .. } => true,
        RequestError::Api(ApiError::Unknown(description)) => {
            let d = description.to_ascii_lowercase();
            ["internal server error", "bad gateway", "service unavailable", "gateway timeout", "too many requests"]
                .iter()
                .any(|known| d.contains(known))
        }
        _ => false,
    }
}

/// A refusal no retry changes: the user blocked the bot, deleted their
/// account, the chat is gone or became a supergroup, or the bot may not
/// write there (removed, or its right to send taken in a group). A result
/// that exists stays stored, and what it cost stands.
pub fn is_undeliverable(error: &RequestError) -> bool {
    match error {
        RequestError::MigrateToChatId(_) => true,
        RequestError::Api(
            ApiError::BotBlocked
            | ApiError::UserDeactivated
            | ApiError::ChatNotFound
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel
            | ApiError::CantInitiateConversation
            | ApiError::NotEnoughRightsToPostMessages,
        ) => true,
        RequestError::Api(ApiError::Unknown(description)) => {
            let d = description.to_ascii_lowercase();
            [
                "not enough rights to send",
                "have no rights to send",
                "chat_write_forbidden",
                "bot is not a member",
                "topic_closed",
            ]
            .iter()
            .any(|known| d.contains(known))
        }
        _ => false,
    }
}

fn wait_before(error: &RequestError, attempt: u32) -> Duration {
    match error {
        RequestError::RetryAfter(seconds) => seconds.duration(),
        _ => RETRY_BACKOFF.delay(attempt),
    }
}

/// `request.patiently().await` instead of `request.await`: the same call,
/// sent again after transient failures.
pub trait Patiently: Request<Err = RequestError> {
    fn patiently(self) -> impl Future<Output = Result<Output<Self>, RequestError>> + Send;
}

impl<R> Patiently for R
where
    R: Request<Err = RequestError> + Send + Sync,
    R::Payload: serde::Serialize + 'static,
    Output<R>: Send,
{
    async fn patiently(mut self) -> Result<Output<R>, RequestError> {
        let method = <R::Payload as Payload>::NAME;
        let counted = super::flood::counts(method);
        let chat = counted.then(|| chat_of(self.payload_ref())).flatten();
        let payable = paid_broadcast(self.payload_mut(), false);
        let mut attempt = 0;
        loop {
            let turn = if counted { Some(super::flood::wait_turn(chat, payable).await) } else { None };
            let paid = turn.is_some_and(|t| t.paid);
            paid_broadcast(self.payload_mut(), paid);
            if let Some(turn) = turn {
                turn.record_lateness();
            }
            let result = self.send_ref().await;
            if paid && result.is_ok() {
                metrics::counter!("aishad_telegram_paid_broadcast_messages_total").increment(1);
            }
            let mut wait_held = false;
            if let Err(RequestError::RetryAfter(after)) = &result {
                // Telegram counted more than the bot's budget let out: one
                // series with getUpdates' 429s, what the rate alert watches.
                metrics::counter!("aishad_telegram_errors_total", "kind" => "429").increment(1);
                if let Some(turn) = turn {
                    super::flood::refused(chat, turn, after.duration()).await;
                    wait_held = true;
                }
            }
            match result {
                Err(e) if attempt < RETRIES && is_transient(&e) => {
                    // A refused message's next turn comes after the hold.
                    let wait = if wait_held { Duration::ZERO } else { wait_before(&e, attempt) };
                    tracing::warn!(error = %e, attempt, ?wait, "Bot API call failed; sending it again");
                    metrics::counter!("aishad_telegram_retries_total").increment(1);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

/// Sets `allow_paid_broadcast` on a payload that has it; whether it has.
/// (teloxide has the field on each message payload, not on a trait.)
fn paid_broadcast(payload: &mut dyn std::any::Any, paid: bool) -> bool {
    use teloxide::payloads::*;
    macro_rules! set_on {
        ($($payload:ty),*) => {
            $(if let Some(p) = payload.downcast_mut::<$payload>() {
                p.allow_paid_broadcast = paid.then_some(true);
                return true;
            })*
        };
    }
    set_on!(SendMessage, SendDocument, SendPhoto, SendMediaGroup, SendVoice, SendAudio, SendVideo, CopyMessage);
    false
}

/// The `chat_id` a payload is addressed to (a number; a `@channel` name counts as no chat).
fn chat_of(payload: &impl serde::Serialize) -> Option<i64> {
    let value = serde_json::to_value(payload).ok()?;
    value["chat_id"].as_i64().or_else(|| value["chat_id"].as_str().and_then(|s| s.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_and_network_failures_are_transient_a_refusal_is_not() {
        let unknown = |d: &str| RequestError::Api(ApiError::Unknown(d.into()));
        assert!(is_transient(&unknown("Bad Gateway")));
        assert!(is_transient(&unknown("Internal Server Error: restart")));
        assert!(is_transient(&RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(3))));
        assert!(!is_transient(&RequestError::Api(ApiError::BotBlocked)));
        assert!(!is_transient(&unknown("Bad Request: message text is empty")));
    }

    #[test]
    fn losing_the_right_to_send_in_a_group_is_final_not_transient() {
        let unknown = |d: &str| RequestError::Api(ApiError::Unknown(d.into()));
        let no_rights = unknown("Bad Request: not enough rights to send text messages to the chat");
        assert!(is_undeliverable(&no_rights) && !is_transient(&no_rights));
        assert!(is_undeliverable(&unknown("Bad Request: CHAT_WRITE_FORBIDDEN")));
        assert!(is_undeliverable(&RequestError::MigrateToChatId(teloxide::types::ChatId(-1007))));
        assert!(is_undeliverable(&RequestError::Api(ApiError::BotKickedFromSupergroup)));
        assert!(!is_undeliverable(&unknown("Bad Gateway")));
    }

    #[test]
    fn a_payload_names_its_chat() {
        let payload = teloxide::payloads::SendMessage::new(teloxide::types::ChatId(-1005), "hi");
        assert_eq!(chat_of(&payload), Some(-1005));
    }
}
