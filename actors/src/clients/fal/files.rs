//! Links FAL can download from without credentials: `/files/{token}`, where
//! the token names an S3 key and an expiry, signed with HMAC-SHA256.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed file token")]
    Malformed,
    #[error("file token signature does not match")]
    BadSignature,
    #[error("file link expired")]
    Expired,
}

fn mac(secret: &[u8], key: &str, expires: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(key.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    mac
}

/// `base64url(key).expires.hex(hmac)`.
pub fn sign(secret: &[u8], key: &str, expires: i64) -> String {
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key);
    let signature = hex::encode(mac(secret, key, expires).finalize().into_bytes());
    format!("{encoded}.{expires}.{signature}")
}

/// The S3 key the token names, if it is genuine and not expired at `now`.
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<String, TokenError> {
    let mut parts = token.split('.');
    let (Some(encoded), Some(expires), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(TokenError::Malformed)?;
    let expires: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let signature = hex::decode(signature).map_err(|_| TokenError::Malformed)?;
    mac(secret, &key, expires).verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;
    if now > expires {
        return Err(TokenError::Expired);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let token = sign(b"secret", "avatars/1/2/training.zip", 1000);
        assert_eq!(verify(b"secret", &token, 999).unwrap(), "avatars/1/2/training.zip");
        assert_eq!(verify(b"secret", &token, 1001), Err(TokenError::Expired));
    }

    #[test]
    fn tampering_is_detected() {
        let token = sign(b"secret", "avatars/1/2/training.zip", 1000);
        let other_key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("avatars/9/9/training.zip");
        let forged = format!("{other_key}.{}", token.split_once('.').unwrap().1);
        assert_eq!(verify(b"secret", &forged, 0), Err(TokenError::BadSignature));
        let longer = token.replacen(".1000.", ".99999.", 1);
        assert_eq!(verify(b"secret", &longer, 0), Err(TokenError::BadSignature));
        assert_eq!(verify(b"other", &token, 0), Err(TokenError::BadSignature));
        assert_eq!(verify(b"secret", "garbage", 0), Err(TokenError::Malformed));
    }
}
