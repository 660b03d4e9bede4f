//! FAL's queue API: submit with a webhook, then status, result and cancel at
//! the URLs the submission returns; result files are downloaded from FAL's
//! temporary URLs and never stored as links.

pub mod files;
pub mod signature;

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::settings::FalSettings;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FalError {
    #[error("FAL rejected the key (401/403)")]
    Unauthorized,
    /// The request itself is wrong, or the generation failed: no retry helps.
    #[error("FAL refused ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("FAL server error ({status}): {message}")]
    Server { status: u16, message: String },
    #[error("could not reach FAL: {0}")]
    Network(String),
    #[error("a result file is larger than {0} bytes")]
    TooLarge(u64),
    /// A URL in FAL's answer points somewhere we do not send our key or fetch from.
    #[error("refusing a URL outside FAL's hosts: {0}")]
    UntrustedUrl(String),
}

impl super::outcome::ApiError for FalError {
    fn failure(&self) -> super::outcome::Failure {
        match self {
            FalError::Unauthorized => super::outcome::Failure::NeedsOperator,
            FalError::Server { .. } | FalError::Network(_) => super::outcome::Failure::Passing,
            FalError::Rejected { .. } | FalError::TooLarge(_) | FalError::UntrustedUrl(_) => {
                super::outcome::Failure::Refused
            }
        }
    }

    fn alert(&self) -> &'static str {
        "fal_unauthorized"
    }
}

/// A failed status, as the variant `Failure::of_status` says it is.
fn status_error(status: u16, message: String) -> FalError {
    match super::outcome::Failure::of_status(status) {
        super::outcome::Failure::NeedsOperator => FalError::Unauthorized,
        super::outcome::Failure::RetryAfter(_) | super::outcome::Failure::Passing => {
            FalError::Server { status, message }
        }
        super::outcome::Failure::Refused => FalError::Rejected { status, message },
    }
}

impl super::outcome::Outcome for FalError {
    fn outcome(&self) -> &'static str {
        match self {
            FalError::Unauthorized => "unauthorized",
            FalError::Rejected { .. } => "rejected",
            FalError::Server { .. } => "server_error",
            FalError::Network(_) => "network",
            FalError::TooLarge(_) => "too_large",
            FalError::UntrustedUrl(_) => "untrusted_url",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub request_id: String,
    pub status_url: String,
    pub response_url: String,
    pub cancel_url: String,
}

#[derive(Clone)]
pub struct Fal {
    http: reqwest::Client,
    queue: String,
    key: String,
    webhook: String,
    /// `queue_url`'s scheme and host: the only place our key is sent.
    queue_origin: (String, String),
    download_hosts: Vec<String>,
}

/// Whether `host` is `pattern`, or under it when the pattern is `*.domain`.
fn host_matches(host: &str, pattern: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(domain) => {
            host.len() > domain.len() + 1 && host.ends_with(domain) && host[..host.len() - domain.len()].ends_with('.')
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

/// Largest result file copied into S3 (LoRA weights are ~100–300 MB).
pub const MAX_RESULT_FILE: u64 = 1024 * 1024 * 1024;

impl Fal {
    pub fn new(settings: &FalSettings) -> Self {
        let hosts = settings.download_hosts.clone();
        let queue_host = reqwest::Url::parse(&settings.queue_url).ok().and_then(|u| u.host_str().map(str::to_owned));
        // A redirect may not lead a download (or our key) off FAL's hosts.
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let host = attempt.url().host_str().unwrap_or_default();
            let allowed = queue_host.as_deref() == Some(host) || hosts.iter().any(|p| host_matches(host, p));
            if attempt.previous().len() >= 5 || !allowed {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .redirect(redirects)
            .build()
            .unwrap_or_default();
        let origin = reqwest::Url::parse(&settings.queue_url)
            .map(|u| (u.scheme().to_owned(), u.host_str().unwrap_or_default().to_owned()))
            .unwrap_or_default();
        Self {
            http,
            queue: settings.queue_url.trim_end_matches('/').to_owned(),
            key: settings.key.expose().to_owned(),
            webhook: settings.webhook_url.clone(),
            queue_origin: origin,
            download_hosts: settings.download_hosts.clone(),
        }
    }

    /// A status, result or cancel URL: on the queue's own host and scheme, or it
    /// does not get our key.
    fn queue_url(&self, url: &str) -> Result<String, FalError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| FalError::UntrustedUrl(url.chars().take(200).collect()))?;
        let (scheme, host) = &self.queue_origin;
        if parsed.scheme() != scheme || parsed.host_str() != Some(host.as_str()) {
            return Err(FalError::UntrustedUrl(url.chars().take(200).collect()));
        }
        Ok(parsed.into())
    }

    /// A result file URL: https on an allow-listed host (or the queue's own).
    fn download_url(&self, url: &str) -> Result<String, FalError> {
        let untrusted = || FalError::UntrustedUrl(url.chars().take(200).collect());
        let parsed = reqwest::Url::parse(url).map_err(|_| untrusted())?;
        let host = parsed.host_str().unwrap_or_default();
        let (scheme, queue_host) = &self.queue_origin;
        let own = host == queue_host && parsed.scheme() == scheme;
        let listed = parsed.scheme() == "https" && self.download_hosts.iter().any(|p| host_matches(host, p));
        if !(own || listed) {
            return Err(untrusted());
        }
        Ok(parsed.into())
    }

    pub fn has_webhook(&self) -> bool {
        !self.webhook.is_empty()
    }

    /// `POST {queue}/{model}?fal_webhook=…`.
    pub async fn submit(&self, model: &str, input: &Value) -> Result<Submitted, FalError> {
        super::outcome::timed("fal", "submit", self.submit_once(model, input)).await
    }

    async fn submit_once(&self, model: &str, input: &Value) -> Result<Submitted, FalError> {
        let mut url =
            reqwest::Url::parse(&format!("{}/{model}", self.queue)).map_err(|e| FalError::Network(e.to_string()))?;
        if self.has_webhook() {
            url.query_pairs_mut().append_pair("fal_webhook", &self.webhook);
        }
        let response =
            self.http.post(url).header("authorization", format!("Key {}", self.key)).json(input).send().await;
        let body = check(response).await?;
        let field = |name: &str| body[name].as_str().map(str::to_owned);
        match (field("request_id"), field("status_url"), field("response_url"), field("cancel_url")) {
            (Some(request_id), Some(status_url), Some(response_url), Some(cancel_url)) => {
                Ok(Submitted { request_id, status_url, response_url, cancel_url })
            }
            _ => Err(FalError::Server { status: 200, message: format!("unexpected submit answer: {body}") }),
        }
    }

    /// `IN_QUEUE`, `IN_PROGRESS` or `COMPLETED`.
    pub async fn status(&self, status_url: &str) -> Result<String, FalError> {
        let request = async { check(self.authorized(self.http.get(self.queue_url(status_url)?)).send().await).await };
        let body = super::outcome::timed("fal", "status", request).await?;
        Ok(body["status"].as_str().unwrap_or_default().to_owned())
    }

    /// The finished request's output; a failed generation is `Rejected`.
    pub async fn result(&self, response_url: &str) -> Result<Value, FalError> {
        let request = async { check(self.authorized(self.http.get(self.queue_url(response_url)?)).send().await).await };
        super::outcome::timed("fal", "result", request).await
    }

    pub async fn cancel(&self, cancel_url: &str) -> Result<(), FalError> {
        let request =
            async { check(self.authorized(self.http.put(self.queue_url(cancel_url)?)).send().await).await.map(|_| ()) };
        super::outcome::timed("fal", "cancel", request).await
    }

    /// A (small) result file from FAL's (temporary, public) storage, in memory.
    pub async fn download(&self, url: &str, max: u64) -> Result<Bytes, FalError> {
        let mut body = Vec::new();
        self.copy_to(url, max, &mut body).await?;
        Ok(body.into())
    }

    /// A (large) result file written to `path` as it arrives; its length.
    pub async fn download_to_file(&self, url: &str, max: u64, path: &std::path::Path) -> Result<u64, FalError> {
        use tokio::io::AsyncWriteExt;
        let io = |e: std::io::Error| FalError::Network(format!("writing {}: {e}", path.display()));
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        let written = self.copy_to(url, max, &mut file).await?;
        file.flush().await.map_err(io)?;
        Ok(written)
    }

    async fn copy_to(
        &self,
        url: &str,
        max: u64,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64, FalError> {
        super::outcome::timed("fal", "download", self.copy_once(url, max, out)).await
    }

    async fn copy_once(
        &self,
        url: &str,
        max: u64,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64, FalError> {
        use tokio::io::AsyncWriteExt;
        let url = self.download_url(url)?;
        let mut response =
            self.http.get(url).send().await.map_err(|e| FalError::Network(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if status >= 400 {
            let message = format!("downloading a result file: HTTP {status}");
            return Err(status_error(status, message));
        }
        if response.content_length().is_some_and(|n| n > max) {
            return Err(FalError::TooLarge(max));
        }
        let mut written = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| FalError::Network(e.without_url().to_string()))? {
            written += chunk.len() as u64;
            if written > max {
                return Err(FalError::TooLarge(max));
            }
            out.write_all(&chunk).await.map_err(|e| FalError::Network(format!("storing a result file: {e}")))?;
        }
        Ok(written)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header("authorization", format!("Key {}", self.key))
    }
}

async fn check(response: Result<reqwest::Response, reqwest::Error>) -> Result<Value, FalError> {
    let response = response.map_err(|e| FalError::Network(crate::error::chain(&e.without_url())))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| FalError::Network(e.without_url().to_string()))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let message: String = match &body["detail"] {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().filter_map(|i| i["msg"].as_str()).collect::<Vec<_>>().join("; "),
        _ => text,
    }
    .chars()
    .take(300)
    .collect();
    Err(status_error(status, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fal() -> Fal {
        Fal::new(&FalSettings { queue_url: "https://queue.fal.run".into(), ..Default::default() })
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        assert!(host_matches("v3.fal.media", "*.fal.media"));
        assert!(!host_matches("fal.media", "*.fal.media"));
        assert!(!host_matches("evilfal.media", "*.fal.media"));
        assert!(host_matches("fal.media", "fal.media"));
    }

    #[test]
    fn our_key_goes_only_to_the_queue_host_and_files_only_from_fal_hosts() {
        let fal = fal();
        assert!(fal.queue_url("https://queue.fal.run/fal-ai/x/requests/1/status").is_ok());
        assert!(fal.queue_url("https://attacker.example/steal").is_err());
        assert!(fal.queue_url("http://queue.fal.run/downgraded").is_err());
        assert!(fal.download_url("https://v3.fal.media/files/a.png").is_ok());
        assert!(fal.download_url("http://v3.fal.media/files/a.png").is_err(), "https only");
        assert!(fal.download_url("https://169.254.169.254/latest/meta-data").is_err());
        assert!(fal.download_url("not a url").is_err());
    }
}
