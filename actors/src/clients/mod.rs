//! Outside APIs, each reached only through its configurable base URL. Every
//! client has its own error type; what a failure means for a job is decided
//! by the workers, not here.

pub mod bot_api;
pub mod fal;
pub mod flood;
pub mod openai;
pub mod telegram;

pub use bot_api::{telegram_bot, Patiently, TgBot};
pub use telegram::{download_telegram_file, fetch_telegram_file, parse_update, DownloadError, PollError, UpdatesClient, MAX_DOWNLOAD};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("telegram.api_url is not a valid URL: {0}")]
    InvalidTelegramUrl(String),
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}
