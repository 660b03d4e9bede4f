//! The Telegram Bot API's reading side: plain-HTTP getUpdates (updates
//! stored exactly as sent) and file downloads.

use std::time::Duration;

use teloxide::RequestError;

use super::bot_api::{Patiently, TgBot};

use super::ClientError;
use crate::settings::TelegramSettings;

/// Telegram's limit on what a bot may download.
pub const MAX_DOWNLOAD: u64 = 20 * 1024 * 1024;

/// Why a getUpdates call failed, in the terms the poller acts on.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("rate limited by Telegram (429): retry after {0:?}")]
    RetryAfter(Duration),
    #[error("conflict (409): terminated by another getUpdates request")]
    Conflict,
    #[error("conflict (409): a webhook is set, so getUpdates is refused")]
    WebhookActive,
    #[error("Telegram refused the token (401)")]
    Unauthorized,
    #[error("Telegram answered {code}: {description}")]
    Api { code: u16, description: String },
    #[error("getUpdates request failed: {0}")]
    Network(String),
}

/// getUpdates over plain HTTP, so the poller stores each update exactly as
/// Telegram sent it (teloxide's types do not serialise back losslessly).
#[derive(Clone)]
pub struct UpdatesClient {
    http: reqwest::Client,
    url: String,
}

#[derive(serde::Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Vec<serde_json::Value>,
    #[serde(default)]
    error_code: u16,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

#[derive(serde::Deserialize)]
struct ResponseParameters {
    retry_after: Option<u64>,
}

impl UpdatesClient {
    pub fn new(settings: &TelegramSettings) -> Result<Self, ClientError> {
        let base = settings.api_url.trim_end_matches('/');
        reqwest::Url::parse(base).map_err(|e| ClientError::InvalidTelegramUrl(e.to_string()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(Self { http, url: format!("{base}/bot{}/getUpdates", settings.token.expose()) })
    }

    /// Long-polls for at most `timeout`; the whole request is bounded by `deadline`.
    pub async fn get_updates(
        &self,
        offset: i64,
        limit: u8,
        timeout: Duration,
        deadline: Duration,
    ) -> Result<Vec<serde_json::Value>, PollError> {
        let body = serde_json::json!({
            "offset": offset, "limit": limit, "timeout": timeout.as_secs(),
            "allowed_updates": ["message", "callback_query", "pre_checkout_query"],
        });
        let response = self
            .http
            .post(&self.url)
            .timeout(deadline)
            .json(&body)
            .send()
            .await
            // The URL holds the token: never let it into an error message.
            .map_err(|e| PollError::Network(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let envelope: Envelope =
            response.json().await.map_err(|e| PollError::Network(format!("HTTP {status}: {}", e.without_url())))?;
        if envelope.ok {
            return Ok(envelope.result);
        }
        let retry_after = envelope.parameters.and_then(|p| p.retry_after);
        Err(match (envelope.error_code, retry_after) {
            (_, Some(seconds)) => PollError::RetryAfter(Duration::from_secs(seconds)),
            (409, _) if envelope.description.contains("webhook is active") => PollError::WebhookActive,
            (409, _) => PollError::Conflict,
            (401, _) => PollError::Unauthorized,
            (code, _) => PollError::Api { code, description: envelope.description },
        })
    }
}

/// Parses a stored or fetched update. Through text on purpose: teloxide's
/// flattened `UpdateKind` comes out as `UpdateKind::Error` when deserialised
/// from a `serde_json::Value`, and correctly from a string.
pub fn parse_update(value: &serde_json::Value) -> Result<teloxide::types::Update, serde_json::Error> {
    serde_json::from_str(&value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_parse_from_a_value_whatever_its_key_order() {
        // serde_json::Value sorts keys: "message" before "update_id", as jsonb stores them too.
        let value = serde_json::json!({
            "update_id": 7,
            "message": {
                "message_id": 1, "date": 1_700_000_000, "text": "/help",
                "chat": { "id": 42, "type": "private", "first_name": "A" },
                "from": { "id": 42, "is_bot": false, "first_name": "A" },
            }
        });
        let update = parse_update(&value).unwrap();
        assert_eq!(update.chat().map(|c| c.id.0), Some(42));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Over Telegram's 20 MB bot limit: no retry will help.
    #[error("the file is {0} bytes, over the 20 MB a bot may download")]
    TooBig(u64),
    #[error("Telegram getFile failed: {0}")]
    Telegram(#[from] RequestError),
    #[error("downloading the file failed: {0}")]
    Http(String),
}

/// getFile, then the bytes from `{api}/file/bot{token}/{path}`, refusing
/// anything over `max` bytes before and while downloading.
pub async fn download_telegram_file(
    bot: &TgBot,
    settings: &TelegramSettings,
    file_id: &str,
    max: u64,
) -> Result<bytes::Bytes, DownloadError> {
    use teloxide::prelude::Requester;
    let file = match bot.get_file(teloxide::types::FileId(file_id.to_owned())).patiently().await {
        Ok(file) => file,
        Err(RequestError::Api(teloxide::ApiError::Unknown(d))) if d.contains("file is too big") => {
            return Err(DownloadError::TooBig(max + 1));
        }
        Err(e) => return Err(e.into()),
    };
    if file.size as u64 > max && file.size != u32::MAX {
        return Err(DownloadError::TooBig(file.size as u64));
    }
    let url = format!("{}/file/bot{}/{}", settings.api_url.trim_end_matches('/'), settings.token.expose(), file.path);
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| DownloadError::Http(e.to_string()))?;
    let mut response = http.get(url).send().await.map_err(|e| DownloadError::Http(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(DownloadError::Http(format!("HTTP {}", response.status())));
    }
    let mut body = Vec::with_capacity(file.size.min(max as u32) as usize);
    while let Some(chunk) = response.chunk().await.map_err(|e| DownloadError::Http(e.without_url().to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > max {
            return Err(DownloadError::TooBig(body.len() as u64));
        }
    }
    Ok(body.into())
}
