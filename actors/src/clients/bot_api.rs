//! The Bot API for every call but getUpdates: one teloxide bot per process
//! behind teloxide's `Throttle` (Telegram's flood limits: a 429 freezes the
//! chat for `retry_after` and the request is sent again), and `patiently()`
//! for what Throttle leaves to us: 5xx answers and network failures, retried
//! with backoff so a reply is delayed, not lost.

use std::future::Future;
use std::time::Duration;

use teloxide::adaptors::throttle::{Limits, Settings as ThrottleSettings};
use teloxide::adaptors::Throttle;
use teloxide::requests::{Output, Request};
use teloxide::{ApiError, Bot, RequestError};

use super::ClientError;
use crate::backoff::Backoff;
use crate::settings::TelegramSettings;

/// The bot every handler and worker sends through.
pub type TgBot = Throttle<Bot>;

/// Sends after the first, on a transient failure (about a minute in all,
/// plus the 10 s teloxide itself waits after each 5xx).
const RETRIES: u32 = 5;
const RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(16));

/// A throttled bot pointed at `telegram.api_url`, with a request timeout that
/// leaves room for uploads. Spawns the throttle's worker: call inside the runtime.
pub fn telegram_bot(settings: &TelegramSettings) -> Result<TgBot, ClientError> {
    let url = reqwest::Url::parse(&settings.api_url).map_err(|e| ClientError::InvalidTelegramUrl(e.to_string()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(settings.poll_timeout + Duration::from_secs(15))
        .build()
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let bot = Bot::with_client(settings.token.expose(), client).set_api_url(url);
    Ok(Throttle::spawn_with_settings(bot, ThrottleSettings::default().limits(limits(settings))))
}

fn limits(settings: &TelegramSettings) -> Limits {
    Limits {
        messages_per_sec_chat: settings.send_per_chat_second,
        // Telegram states no per-minute limit for private chats: only the per-second one applies.
        messages_per_min_chat: settings.send_per_chat_second.saturating_mul(60),
        messages_per_min_channel_or_supergroup: settings.send_per_group_minute,
        messages_per_sec_overall: settings.send_per_second,
    }
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
/// account, or the chat is gone. A result that exists stays stored, and
/// what it cost stands.
pub fn is_undeliverable(error: &RequestError) -> bool {
    matches!(
        error,
        RequestError::Api(
            ApiError::BotBlocked | ApiError::UserDeactivated | ApiError::ChatNotFound | ApiError::BotKicked | ApiError::BotKickedFromSupergroup
        )
    )
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
    Output<R>: Send,
{
    async fn patiently(self) -> Result<Output<R>, RequestError> {
        let mut attempt = 0;
        loop {
            match self.send_ref().await {
                Err(e) if attempt < RETRIES && is_transient(&e) => {
                    let wait = wait_before(&e, attempt);
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
    fn private_chats_have_no_per_minute_limit_beyond_the_per_second_one() {
        let limits = limits(&TelegramSettings::default());
        assert_eq!((limits.messages_per_sec_chat, limits.messages_per_min_chat), (1, 60));
        assert_eq!((limits.messages_per_sec_overall, limits.messages_per_min_channel_or_supergroup), (30, 20));
    }
}
