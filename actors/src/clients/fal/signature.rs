//! FAL webhook verification: the four `X-Fal-Webhook-*` headers, a timestamp
//! within tolerance, and an Ed25519 signature over
//! `request_id \n user_id \n timestamp \n hex(sha256(body))` by any key of
//! FAL's JWKS. Keys are cached; an unknown signature refetches them once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
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
    pub fn from_headers(headers: &'a HeaderMap, now: i64, tolerance: Duration) -> Result<Self, Rejection> {
        let get = |name: &'static str| {
            headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).ok_or(Rejection::MissingHeader(name))
        };
        let (request_id, user_id, timestamp, signature) =
            (get(HEADER_REQUEST_ID)?, get(HEADER_USER_ID)?, get(HEADER_TIMESTAMP)?, get(HEADER_SIGNATURE)?);
        let at: i64 = timestamp.trim().parse().map_err(|_| Rejection::BadTimestamp)?;
        if (now - at).abs() > tolerance.as_secs() as i64 {
            return Err(Rejection::Stale(now - at));
        }
        let signature: [u8; 64] = hex::decode(signature.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(Rejection::MalformedSignature)?;
        Ok(Self { request_id, user_id, timestamp, signature })
    }

    fn message(&self, body: &[u8]) -> String {
        format!("{}\n{}\n{}\n{}", self.request_id, self.user_id, self.timestamp, hex::encode(Sha256::digest(body)))
    }

    pub fn verify_with(&self, keys: &[VerifyingKey], body: &[u8]) -> bool {
        let message = self.message(body);
        let signature = Signature::from_bytes(&self.signature);
        keys.iter().any(|k| k.verify(message.as_bytes(), &signature).is_ok())
    }
}

/// Decodes a JWKS document's Ed25519 keys (`x` base64url, padding tolerated).
pub fn keys_from_jwks(jwks: &serde_json::Value) -> Vec<VerifyingKey> {
    jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["crv"] == "Ed25519" || k["kty"] == "OKP")
        .filter_map(|k| k["x"].as_str())
        .filter_map(|x| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(x.trim_end_matches('=')).ok())
        .filter_map(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .filter_map(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .collect()
}

struct Cached {
    keys: Vec<VerifyingKey>,
    fetched: Option<Instant>,
}

/// FAL's signing keys, fetched from the JWKS URL and kept for `max_age`.
#[derive(Clone)]
pub struct Jwks {
    url: String,
    http: reqwest::Client,
    max_age: Duration,
    cache: Arc<RwLock<Cached>>,
}

/// An unknown signature refetches the keys, but not more often than this.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

impl Jwks {
    pub fn new(url: &str, max_age: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { url: url.to_owned(), http, max_age, cache: Arc::new(RwLock::new(Cached { keys: Vec::new(), fetched: None })) }
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
        let mut cache = self.cache.write().await;
        cache.keys = keys.clone();
        cache.fetched = Some(Instant::now());
        Ok(keys)
    }

    async fn keys(&self) -> Result<Vec<VerifyingKey>, Rejection> {
        {
            let cache = self.cache.read().await;
            if cache.fetched.is_some_and(|t| t.elapsed() < self.max_age) && !cache.keys.is_empty() {
                return Ok(cache.keys.clone());
            }
        }
        self.fetch().await
    }

    /// Checks a callback's headers and body.
    pub async fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64, tolerance: Duration) -> Result<Verified, Rejection> {
        let signed = Signed::from_headers(headers, now, tolerance)?;
        if signed.verify_with(&self.keys().await?, body) {
            return Ok(Verified { request_id: signed.request_id.to_owned() });
        }
        // FAL may have rotated its keys: look once more, if we have not just looked.
        let recent = self.cache.read().await.fetched.is_some_and(|t| t.elapsed() < REFETCH_AFTER);
        if !recent && signed.verify_with(&self.fetch().await?, body) {
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
        assert!(matches!(Signed::from_headers(&headers, 1000, Duration::from_secs(300)), Err(Rejection::MissingHeader(HEADER_TIMESTAMP))));
        headers.insert(HEADER_TIMESTAMP, "100".parse().unwrap());
        headers.insert(HEADER_SIGNATURE, "00".repeat(64).parse().unwrap());
        assert!(matches!(Signed::from_headers(&headers, 1000, Duration::from_secs(300)), Err(Rejection::Stale(900))));
        assert!(Signed::from_headers(&headers, 350, Duration::from_secs(300)).is_ok());
    }
}
