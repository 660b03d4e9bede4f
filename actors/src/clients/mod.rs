//! Outside APIs, each reached only through its configurable base URL. Every
//! client has its own error type; what a failure means for a job is decided
//! by the workers, not here.

pub mod bot_api;
pub mod fal;
pub mod flood;
pub mod openai;
pub mod telegram;

pub use bot_api::{telegram_bot, Patiently, TgBot};
pub use telegram::{
    download_telegram_file, fetch_telegram_file, parse_update, DownloadError, PollError, UpdatesClient, MAX_DOWNLOAD,
};

/// What a call to an outside API came to, as a metric label.
pub trait Outcome {
    fn outcome(&self) -> &'static str;
}

/// `call` to `api` (`openai`, `fal`), timed as
/// `aishad_outside_request_seconds{api, call, outcome}`: its latency, and
/// (its `_count`) how often each outcome happens.
pub(crate) async fn timed<T, E: Outcome>(
    api: &'static str,
    call: &'static str,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let result = request.await;
    let outcome = result.as_ref().map_or_else(Outcome::outcome, |_| "ok");
    metrics::histogram!("aishad_outside_request_seconds", "api" => api, "call" => call, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("telegram.api_url is not a valid URL: {0}")]
    InvalidTelegramUrl(String),
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}
