//! Outside APIs, each reached only through its configurable base URL. Every
//! client has its own error type; what a failure means for a job is decided
//! by the workers, not here.

pub mod bot_api;
pub mod fal;
pub mod flood;
pub mod links;
pub mod newer_api;
pub mod openai;
mod outcome;
pub mod telegram;

pub use bot_api::{telegram_bot, Patiently, TgBot};
pub use outcome::{ApiError, ClientError, Failure, Outcome};
pub use telegram::{
    download_telegram_file, fetch_telegram_file, parse_update, DownloadError, PollError, UpdatesClient, MAX_DOWNLOAD,
};
