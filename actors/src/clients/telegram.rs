//! The Telegram Bot API's reading side: plain-HTTP getUpdates (updates
//! stored exactly as sent) and file downloads.

use std::time::Duration;

use teloxide::RequestError;

use super::bot_api::{Patiently, TgBot};

use super::outcome::ClientError;
use crate::settings::TelegramSettings;

/// Telegram's limit on what a bot may download from the public Bot API.
pub const MAX_DOWNLOAD: u64 = crate::settings::CLOUD_MAX_DOWNLOAD;

/// The updates the bot asks Telegram for, by getUpdates and setWebhook
/// alike (`guest_message`: guest mode, which teloxide 0.17 cannot name).
pub const ALLOWED_UPDATES: [&str; 5] =
    ["message", "callback_query", "pre_checkout_query", "chat_member", "guest_message"];

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
            "allowed_updates": ALLOWED_UPDATES,
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
    let mut update: teloxide::types::Update = serde_json::from_str(&value.to_string())?;
    // A kind newer than teloxide (a guest message) comes back empty: it
    // keeps the update as sent, for the handler that knows it.
    if let teloxide::types::UpdateKind::Error(raw) = &mut update.kind {
        *raw = value.clone();
    }
    Ok(update)
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
    /// Over what a bot may download: no retry will help.
    #[error("the file is {0} bytes, over what a bot may download")]
    TooBig(u64),
    #[error("Telegram getFile failed: {0}")]
    Telegram(#[from] RequestError),
    #[error("downloading the file failed: {0}")]
    Http(String),
    /// Local Bot API mode: the path is not on the shared volume, or unreadable.
    #[error("the local Bot API file {path} cannot be read: {reason}")]
    Local { path: String, reason: String },
    #[error("writing the downloaded file failed: {0}")]
    Write(String),
}

/// Where getFile says the bytes are.
enum Source {
    Url(String),
    /// A local Bot API server's absolute path, on a volume shared with us.
    Disk(std::path::PathBuf),
}

/// getFile, refusing anything over `max` bytes, and where to read it from:
/// `{api}/file/bot{token}/{path}`, or with `telegram.local_api` the
/// server's own absolute path under `telegram.local_files_dir`.
async fn locate(
    bot: &TgBot,
    settings: &TelegramSettings,
    file_id: &str,
    max: u64,
) -> Result<(Source, u64), DownloadError> {
    use teloxide::prelude::Requester;
    let file = match bot.get_file(teloxide::types::FileId(file_id.to_owned())).patiently().await {
        Ok(file) => file,
        Err(RequestError::Api(teloxide::ApiError::Unknown(d))) if d.contains("file is too big") => {
            return Err(DownloadError::TooBig(max + 1));
        }
        Err(e) => return Err(e.into()),
    };
    let size = file.size as u64;
    if size > max && file.size != u32::MAX {
        return Err(DownloadError::TooBig(size));
    }
    if settings.local_api && file.path.starts_with('/') {
        return Ok((Source::Disk(on_shared_volume(settings, &file.path)?), size));
    }
    let url = format!("{}/file/bot{}/{}", settings.api_url.trim_end_matches('/'), settings.token.expose(), file.path);
    Ok((Source::Url(url), size))
}

/// `path`, resolved, only when it lies under `telegram.local_files_dir`:
/// a server answer naming `/etc/shadow` or `../..` is refused.
fn on_shared_volume(settings: &TelegramSettings, path: &str) -> Result<std::path::PathBuf, DownloadError> {
    let refuse = |reason: String| DownloadError::Local { path: path.to_owned(), reason };
    let root = std::fs::canonicalize(&settings.local_files_dir)
        .map_err(|e| refuse(format!("telegram.local_files_dir {}: {e}", settings.local_files_dir)))?;
    let resolved = std::fs::canonicalize(path).map_err(|e| refuse(e.to_string()))?;
    if !resolved.starts_with(&root) {
        return Err(refuse(format!("not under telegram.local_files_dir {}", root.display())));
    }
    Ok(resolved)
}

/// How long one file may take to arrive (up to 2000 MB from a local server).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(1800);

/// Through the bot's own client, whose connections to the Bot API server
/// stay open: a client per file loaded the TLS roots again and opened (and
/// shook hands on) a connection of its own for every download.
async fn open_url(bot: &TgBot, url: &str) -> Result<reqwest::Response, DownloadError> {
    let request = bot.client().get(url).timeout(DOWNLOAD_TIMEOUT);
    // The URL holds the token: never let it into an error message.
    let response = request.send().await.map_err(|e| DownloadError::Http(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(DownloadError::Http(format!("HTTP {}", response.status())));
    }
    Ok(response)
}

/// The file's bytes in memory (photos, small files), at most `max`.
pub async fn download_telegram_file(
    bot: &TgBot,
    settings: &TelegramSettings,
    file_id: &str,
    max: u64,
) -> Result<bytes::Bytes, DownloadError> {
    let (source, size) = locate(bot, settings, file_id, max).await?;
    let mut body = Vec::with_capacity(size.min(max).min(32 * 1024 * 1024) as usize);
    match source {
        Source::Disk(path) => {
            use tokio::io::AsyncReadExt;
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| DownloadError::Local { path: path.display().to_string(), reason: e.to_string() })?;
            file.take(max + 1)
                .read_to_end(&mut body)
                .await
                .map_err(|e| DownloadError::Local { path: path.display().to_string(), reason: e.to_string() })?;
        }
        Source::Url(url) => {
            let mut response = open_url(bot, &url).await?;
            while let Some(chunk) =
                response.chunk().await.map_err(|e| DownloadError::Http(e.without_url().to_string()))?
            {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > max {
                    break;
                }
            }
        }
    }
    if body.len() as u64 > max {
        return Err(DownloadError::TooBig(body.len() as u64));
    }
    Ok(body.into())
}

/// The file written to `dest` as it arrives, so memory stays flat whatever
/// its size (a local Bot API server hands over up to 2000 MB); its length.
pub async fn fetch_telegram_file(
    bot: &TgBot,
    settings: &TelegramSettings,
    file_id: &str,
    max: u64,
    dest: &std::path::Path,
) -> Result<u64, DownloadError> {
    use tokio::io::AsyncWriteExt;
    let write = |e: std::io::Error| DownloadError::Write(e.to_string());
    let (source, _) = locate(bot, settings, file_id, max).await?;
    let written = match source {
        Source::Disk(path) => {
            let local =
                |e: std::io::Error| DownloadError::Local { path: path.display().to_string(), reason: e.to_string() };
            let length = tokio::fs::metadata(&path).await.map_err(local)?.len();
            if length > max {
                return Err(DownloadError::TooBig(length));
            }
            tokio::fs::copy(&path, dest).await.map_err(local)?
        }
        Source::Url(url) => {
            let mut response = open_url(bot, &url).await?;
            let mut out = tokio::io::BufWriter::new(tokio::fs::File::create(dest).await.map_err(write)?);
            let mut written = 0u64;
            while let Some(chunk) =
                response.chunk().await.map_err(|e| DownloadError::Http(e.without_url().to_string()))?
            {
                written += chunk.len() as u64;
                if written > max {
                    return Err(DownloadError::TooBig(written));
                }
                out.write_all(&chunk).await.map_err(write)?;
            }
            out.flush().await.map_err(write)?;
            written
        }
    };
    Ok(written)
}
