//! FAL webhook verification: the four `X-Fal-Webhook-*` headers, our own FAL
//! account's user id, a timestamp within tolerance, and a strict Ed25519
//! signature over `request_id \n user_id \n timestamp \n hex(sha256(body))`
//! by any key of FAL's JWKS. Keys are cached and fetched by one caller at a
//! time; a failed fetch keeps the keys we had and is not retried at once, so
//! forged requests cannot turn into a flood of fetches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

use crate::backoff::Backoff;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("the callback is for FAL user {0:?}, not our account")]
    WrongUser(String),
    #[error("timestamp is not a number")]
    BadTimestamp,
    #[error("timestamp is {0} s away from now")]
    Stale(i64),
    #[error("signature is not 64 hex-encoded bytes")]
    MalformedSignature,
    #[error("signature does not verify with any known key")]
    BadSignature,
    #[error("no FAL signing keys available: {0}")]
    NoKeys(String),
}

pub const HEADER_REQUEST_ID: &str = "x-fal-webhook-request-id";
pub const HEADER_USER_ID: &str = "x-fal-webhook-user-id";
pub const HEADER_TIMESTAMP: &str = "x-fal-webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "x-fal-webhook-signature";

/// The verified request id.
pub struct Verified {
    pub request_id: String,
}

/// The parts a signature covers, checked for presence and freshness.
pub struct Signed<'a> {
    pub request_id: &'a str,
    user_id: &'a str,
    timestamp: &'a str,
    signature: [u8; 64],
}

impl<'a> Signed<'a> {
    /// `user_id`: our FAL account's id; empty accepts any (not advised).
    pub fn from_headers(headers: &'a HeaderMap, user: &str, now: i64, tolerance: Duration) -> Result<Self, Rejection> {
        let get = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .ok_or(Rejection::MissingHeader(name))
        };
        let (request_id, user_id, timestamp, signature) =
            (get(HEADER_REQUEST_ID)?, get(HEADER_USER_ID)?, get(HEADER_TIMESTAMP)?, get(HEADER_SIGNATURE)?);
        if !user.is_empty() && user_id != user {
            return Err(Rejection::WrongUser(user_id.chars().take(64).collect()));
        }
        let at: i64 = timestamp.trim().parse().map_err(|_| Rejection::BadTimestamp)?;
        if (now - at).abs() > tolerance.as_secs() as i64 {
            return Err(Rejection::Stale(now - at));
        }
        let signature: [u8; 64] =
            hex::decode(signature.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(Rejection::MalformedSignature)?;
        Ok(Self { request_id, user_id, timestamp, signature })
    }

    fn message(&self, body: &[u8]) -> String {
        format!("{}\n{}\n{}\n{}", self.request_id, self.user_id, self.timestamp, hex::encode(Sha256::digest(body)))
    }

    pub fn verify_with(&self, keys: &[VerifyingKey], body: &[u8]) -> bool {
        let message = self.message(body);
        let signature = Signature::from_bytes(&self.signature);
        // Strict: no small-order keys, no malleable (non-canonical) signatures.
        keys.iter().any(|k| k.verify_strict(message.as_bytes(), &signature).is_ok())
    }
}

/// Decodes a JWKS document's Ed25519 keys (`x` base64url, padding tolerated).
pub fn keys_from_jwks(jwks: &serde_json::Value) -> Vec<VerifyingKey> {
    jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519")
        .filter_map(|k| k["x"].as_str())
        .filter_map(|x| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(x.trim_end_matches('=')).ok())
        .filter_map(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .filter_map(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .collect()
}

#[derive(Default)]
struct Cached {
    keys: Vec<VerifyingKey>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch last failed, how many in a row, and why.
    failed: Option<(Instant, u32, String)>,
}

impl Cached {
    fn fresh(&self, max_age: Duration) -> bool {
        !self.keys.is_empty() && self.fetched.is_some_and(|t| t.elapsed() < max_age)
    }

    /// Whether a fetch now is allowed: not within `min_gap` of the last
    /// success, nor within the backoff after failures.
    fn may_fetch(&self, min_gap: Duration) -> bool {
        let since_success = self.fetched.is_none_or(|t| t.elapsed() >= min_gap);
        let since_failure = self.failed.as_ref().is_none_or(|(at, n, _)| at.elapsed() >= FAILED_FETCH.ceiling(n - 1));
        since_success && since_failure
    }
}

/// FAL's signing keys, fetched from the JWKS URL and kept for `max_age`.
#[derive(Clone)]
pub struct Jwks {
    url: String,
    http: reqwest::Client,
    max_age: Duration,
    cache: Arc<RwLock<Cached>>,
    /// One fetch at a time; the others wait for its result.
    fetching: Arc<Mutex<()>>,
}

/// An unknown signature refetches the keys, but not more often than this.
const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// After failed fetches: 5 s, doubling to 5 min, before trying again.
const FAILED_FETCH: Backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(300));

impl Jwks {
    pub fn new(url: &str, max_age: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self {
            url: url.to_owned(),
            http,
            max_age,
            cache: Arc::new(RwLock::new(Cached::default())),
            fetching: Arc::new(Mutex::new(())),
        }
    }

    /// Fetches the keys unless another caller just did (or just failed):
    /// then its result, or the keys we have, stand.
    async fn refresh(&self, min_gap: Duration) -> Result<Vec<VerifyingKey>, Rejection> {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let cache = self.cache.read().await;
            if !cache.may_fetch(min_gap) {
                return match (&cache.failed, cache.keys.is_empty()) {
                    (Some((_, _, why)), true) => Err(Rejection::NoKeys(why.clone())),
                    _ => Ok(cache.keys.clone()),
                };
            }
        }
        match self.fetch().await {
            Ok(keys) => {
                let mut cache = self.cache.write().await;
                cache.keys = keys.clone();
                cache.fetched = Some(Instant::now());
                cache.failed = None;
                Ok(keys)
            }
            Err(Rejection::NoKeys(why)) => {
                let mut cache = self.cache.write().await;
                let failures = cache.failed.as_ref().map_or(1, |(_, n, _)| n + 1);
                tracing::warn!(error = %why, failures, kept = cache.keys.len(), "fetching FAL's JWKS failed; keeping the keys we have");
                metrics::counter!("aishad_fal_jwks_failures_total").increment(1);
                cache.failed = Some((Instant::now(), failures, why.clone()));
                if cache.keys.is_empty() {
                    Err(Rejection::NoKeys(why))
                } else {
                    Ok(cache.keys.clone())
                }
            }
            Err(other) => Err(other),
        }
    }

    async fn fetch(&self) -> Result<Vec<VerifyingKey>, Rejection> {
        let document: serde_json::Value = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Rejection::NoKeys(e.without_url().to_string()))?
            .json()
            .await
            .map_err(|e| Rejection::NoKeys(e.to_string()))?;
        let keys = keys_from_jwks(&document);
        if keys.is_empty() {
            return Err(Rejection::NoKeys("the JWKS holds no Ed25519 key".into()));
        }
        Ok(keys)
    }

    async fn keys(&self) -> Result<Vec<VerifyingKey>, Rejection> {
        {
            let cache = self.cache.read().await;
            if cache.fresh(self.max_age) {
                return Ok(cache.keys.clone());
            }
        }
        self.refresh(self.max_age).await
    }

    /// Checks a callback's signature over its body (its headers were checked
    /// by [`Signed::from_headers`] before the body was read).
    pub async fn verify(&self, signed: &Signed<'_>, body: &[u8]) -> Result<Verified, Rejection> {
        let known = self.keys().await?;
        if signed.verify_with(&known, body) {
            return Ok(Verified { request_id: signed.request_id.to_owned() });
        }
        // FAL may have rotated its keys: look once more, if nobody has just looked.
        let keys = self.refresh(REFETCH_AFTER).await?;
        if keys != known && signed.verify_with(&keys, body) {
            return Ok(Verified { request_id: signed.request_id.to_owned() });
        }
        Err(Rejection::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_keys_decode_with_or_without_padding() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        let x = base64::engine::general_purpose::URL_SAFE.encode(key.to_bytes());
        assert!(x.ends_with('='), "padded form for the test");
        let jwks = serde_json::json!({ "keys": [
            { "kty": "OKP", "crv": "Ed25519", "x": x },
            { "kty": "OKP", "crv": "Ed25519", "x": x.trim_end_matches('=') },
            { "kty": "RSA", "n": "abc" },
        ]});
        assert_eq!(keys_from_jwks(&jwks), vec![key, key]);
    }

    #[test]
    fn stale_and_missing_headers_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_REQUEST_ID, "r".parse().unwrap());
        headers.insert(HEADER_USER_ID, "u".parse().unwrap());
        assert!(matches!(
            Signed::from_headers(&headers, "u", 1000, Duration::from_secs(300)),
            Err(Rejection::MissingHeader(HEADER_TIMESTAMP))
        ));
        headers.insert(HEADER_TIMESTAMP, "100".parse().unwrap());
        headers.insert(HEADER_SIGNATURE, "00".repeat(64).parse().unwrap());
        assert!(matches!(
            Signed::from_headers(&headers, "u", 1000, Duration::from_secs(300)),
            Err(Rejection::Stale(900))
        ));
        assert!(Signed::from_headers(&headers, "u", 350, Duration::from_secs(300)).is_ok());
    }

    #[test]
    fn a_callback_for_another_fal_account_is_refused_before_its_signature() {
        let mut headers = HeaderMap::new();
        for (name, value) in [(HEADER_REQUEST_ID, "r"), (HEADER_USER_ID, "someone-else"), (HEADER_TIMESTAMP, "100")] {
            headers.insert(name, value.parse().unwrap());
        }
        headers.insert(HEADER_SIGNATURE, "00".repeat(64).parse().unwrap());
        let refused = Signed::from_headers(&headers, "our-account", 100, Duration::from_secs(300));
        assert!(matches!(refused, Err(Rejection::WrongUser(u)) if u == "someone-else"));
    }

    #[test]
    fn only_okp_ed25519_keys_are_taken_from_the_jwks() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key();
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.to_bytes());
        let jwks = serde_json::json!({ "keys": [
            { "kty": "OKP", "crv": "X25519", "x": x },
            { "kty": "EC", "crv": "Ed25519", "x": x },
        ]});
        assert!(keys_from_jwks(&jwks).is_empty());
    }
}
