//! Signed file links (`/files/{token}`): a training archive or LoRA weights,
//! streamed from S3 for FAL to download.

use http::StatusCode;

use crate::clients::fal::files::{self, TokenError};
use crate::http::{streamed, text, Reply};
use crate::services::Services;

/// A training archive or LoRA weights, for FAL to download by a signed link.
pub(super) async fn serve(services: &Services, token: &str) -> Reply {
    let secret = services.settings.fal.files_secret.expose().as_bytes();
    if secret.is_empty() {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    let key = match files::verify(secret, token, chrono::Utc::now().timestamp()) {
        Ok(key) => key,
        Err(TokenError::Expired) => return text(StatusCode::GONE, "link expired\n"),
        Err(e) => {
            tracing::warn!(error = %e, "file link refused");
            return text(StatusCode::FORBIDDEN, "invalid link\n");
        }
    };
    match services.blob.get_stream(&key).await {
        Ok((length, chunks)) => {
            let content_type = if key.ends_with(".zip") { "application/zip" } else { "application/octet-stream" };
            let mut reply =
                http::Response::builder().status(StatusCode::OK).header(http::header::CONTENT_TYPE, content_type);
            if let Some(length) = length {
                reply = reply.header(http::header::CONTENT_LENGTH, length);
            }
            reply.body(streamed(chunks)).expect("static response parts are valid")
        }
        Err(e) => {
            tracing::warn!(key, error = %e, "file link to a missing object");
            text(StatusCode::NOT_FOUND, "not found\n")
        }
    }
}
