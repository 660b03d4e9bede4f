//! FAL's callbacks, as the webhook listener takes them: headers first
//! (present, our account, fresh), then the body, then the signature against
//! FAL's published keys; recorded once, in commits shared by the callbacks
//! that arrive together (queueing each delivery in the same transaction).
//! Nothing is written for a request that fails any check.

use http::StatusCode;

use super::requests::{self, NewCallback};
use crate::batch::GroupCommit;
use crate::clients::fal::signature::{Jwks, Rejection, Signed};
use crate::http::{read_body, text, Reply, Request};
use crate::settings::Settings;
use crate::store::{Db, StoreError};

/// Callbacks that arrive together share a commit: at most this many in one,
/// and a few commits in flight (while some wait for their flush, the next gathers).
const CALLBACK_BATCH: usize = 128;
const CALLBACK_COMMITTERS: usize = 4;

pub struct Callbacks {
    jwks: Jwks,
    writer: GroupCommit<NewCallback, Result<bool, StoreError>>,
}

impl Callbacks {
    /// Starts the shared writer; needs a Tokio runtime.
    pub fn start(db: &Db, settings: &Settings) -> Self {
        let db = db.clone();
        let writer = GroupCommit::start("fal_callbacks", CALLBACK_BATCH, CALLBACK_COMMITTERS, move |batch| {
            let db = db.clone();
            async move { requests::record_callbacks(&db, batch).await }
        });
        Self { jwks: Jwks::new(&settings.fal.jwks_url, settings.fal.jwks_cache), writer }
    }

    /// One callback checked, recorded once, and answered.
    pub async fn take(&self, settings: &Settings, req: Request) -> Reply {
        let headers = req.headers().clone();
        let signed = match Signed::from_headers(
            &headers,
            &settings.fal.user_id,
            chrono::Utc::now().timestamp(),
            settings.fal.timestamp_tolerance,
        ) {
            Ok(signed) => signed,
            Err(e) => {
                tracing::warn!(error = %e, "FAL callback refused before its body was read");
                verdict(if matches!(e, Rejection::WrongUser(_)) { "wrong_user" } else { "bad_signature" });
                return text(StatusCode::UNAUTHORIZED, format!("{e}\n"));
            }
        };
        let body = match read_body(req, settings.http.max_body.0 as usize).await {
            Ok((_, body)) => body,
            Err(e) => {
                verdict(if e.status() == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "malformed" });
                return text(e.status(), format!("{e}\n"));
            }
        };
        let verified = match self.jwks.verify(&signed, &body).await {
            Ok(verified) => verified,
            Err(Rejection::NoKeys(e)) => {
                // Not the sender's fault: FAL retries, and by then the keys may be reachable.
                tracing::error!(error = %e, "cannot verify FAL callbacks: no signing keys");
                verdict("no_keys");
                return text(StatusCode::SERVICE_UNAVAILABLE, "signing keys unavailable\n");
            }
            Err(e) => {
                tracing::warn!(error = %e, "FAL callback refused");
                verdict("bad_signature");
                return text(StatusCode::UNAUTHORIZED, format!("{e}\n"));
            }
        };
        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&body);
        let Ok(json) = parsed else {
            verdict("malformed");
            return text(StatusCode::BAD_REQUEST, "body is not JSON\n");
        };
        let status = json["status"].as_str().unwrap_or_default().to_owned();
        if json["request_id"].as_str() != Some(verified.request_id.as_str())
            || !matches!(status.as_str(), "OK" | "ERROR")
        {
            verdict("malformed");
            return text(StatusCode::BAD_REQUEST, "request_id or status missing or not matching the signed header\n");
        }
        let request_id = verified.request_id;
        let callback = NewCallback { request_id: request_id.clone(), status, body: json, source: "webhook" };
        // Answered only once the commit that holds it is done.
        let recorded =
            self.writer.submit(callback).await.unwrap_or_else(|stopped| Err(StoreError::Shared(stopped.to_string())));
        match recorded {
            Ok(true) => {
                // Counted by aishad_webhook_verdicts_total; a line each would cost more than the commit.
                tracing::debug!(request_id, "FAL callback recorded");
                verdict("accepted");
                text(StatusCode::OK, "accepted\n")
            }
            Ok(false) => {
                tracing::debug!(request_id, "duplicate FAL callback ignored");
                verdict("duplicate");
                text(StatusCode::OK, "duplicate\n")
            }
            Err(e) => {
                // FAL retries for two hours; tell it to.
                tracing::error!(request_id, error = %crate::error::chain(&e), "could not record a FAL callback");
                verdict("error");
                text(StatusCode::INTERNAL_SERVER_ERROR, "try again\n")
            }
        }
    }
}

fn verdict(verdict: &'static str) {
    metrics::counter!("aishad_webhook_verdicts_total", "verdict" => verdict).increment(1);
}
