//! Outside APIs, each reached only through its configurable base URL.

use std::time::Duration;

use teloxide::Bot;

use crate::settings::TelegramSettings;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("telegram.api_url is not a valid URL: {0}")]
    InvalidTelegramUrl(String),
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}

/// A teloxide bot pointed at `telegram.api_url`, with a request timeout that
/// leaves room for the long poll.
pub fn telegram_bot(settings: &TelegramSettings) -> Result<Bot, ClientError> {
    let url = reqwest::Url::parse(&settings.api_url)
        .map_err(|e| ClientError::InvalidTelegramUrl(e.to_string()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(settings.poll_timeout + Duration::from_secs(15))
        .build()
        .map_err(|e| ClientError::Http(e.to_string()))?;
    Ok(Bot::with_client(settings.token.expose(), client).set_api_url(url))
}
