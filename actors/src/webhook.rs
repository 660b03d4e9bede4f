//! WebhookListener: the hyper server on `http.webhook_bind` that takes FAL
//! callbacks (and, optionally, Telegram updates). Binding happens in
//! `pre_start`, so a port that cannot be bound is a failed start the
//! supervisor retries with backoff.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fal::files::{self, TokenError};
use crate::fal::signature::{Jwks, Rejection};
use crate::http::{read_body, text, Handler, Reply, Request, Server};
use crate::services::Services;

pub struct WebhookListener;

pub enum WebhookMsg {}

pub struct WebhookState {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl WebhookState {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// How long a stopping listener lets in-flight callbacks finish.
const DRAIN: Duration = Duration::from_secs(10);

impl Actor for WebhookListener {
    type Msg = WebhookMsg;
    type State = WebhookState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        services: Services,
    ) -> Result<Self::State, ActorProcessingErr> {
        let bind = services.settings.http.webhook_bind;
        let server = Server::bind(bind)
            .await
            .map_err(|e| format!("webhook listener cannot bind {bind}: {e}"))?;
        let addr = server.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let handler = routes(Arc::new(services));
        let task = tokio::spawn(server.serve(
            handler,
            async move {
                let _ = stopped.await;
            },
            DRAIN,
        ));
        tracing::info!(%addr, "webhook listener accepting");
        Ok(WebhookState { addr, stop: Some(stop), server: Some(task) })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(stop) = state.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = state.server.take() {
            let _ = task.await;
        }
        tracing::info!(addr = %state.addr, "webhook listener stopped");
        Ok(())
    }
}

struct Routes {
    services: Services,
    jwks: Jwks,
}

fn routes(services: Arc<Services>) -> Handler {
    let fal = &services.settings.fal;
    let routes = Arc::new(Routes { jwks: Jwks::new(&fal.jwks_url, fal.jwks_cache), services: (*services).clone() });
    Arc::new(move |req: Request| {
        let routes = routes.clone();
        Box::pin(async move { routes.route(req).await })
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn verdict(verdict: &'static str) {
    metrics::counter!("aishad_webhook_verdicts_total", "verdict" => verdict).increment(1);
}

impl Routes {
    async fn route(&self, req: Request) -> Reply {
        let path = req.uri().path().to_owned();
        match (req.method(), path.as_str()) {
            (&Method::GET, "/") => text(StatusCode::OK, "aishad webhook listener\n"),
            (&Method::POST, "/webhooks/fal") => self.fal_callback(req).await,
            (_, "/webhooks/fal") => text(StatusCode::METHOD_NOT_ALLOWED, "POST only\n"),
            (&Method::GET, p) if p.starts_with("/files/") => self.file(&p["/files/".len()..]).await,
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Verify, record once (queueing the delivery in the same transaction),
    /// answer. Nothing is written for a request that fails any check.
    async fn fal_callback(&self, req: Request) -> Reply {
        let settings = &self.services.settings;
        let (parts, body) = match read_body(req, settings.http.max_body.0 as usize).await {
            Ok(read) => read,
            Err(e) => {
                verdict(if e.status() == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "malformed" });
                return text(e.status(), format!("{e}\n"));
            }
        };
        let verified = match self.jwks.verify(&parts.headers, &body, unix_now(), settings.fal.timestamp_tolerance).await {
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
        let status = json["status"].as_str().unwrap_or_default();
        if json["request_id"].as_str() != Some(verified.request_id.as_str()) || !matches!(status, "OK" | "ERROR") {
            verdict("malformed");
            return text(StatusCode::BAD_REQUEST, "request_id or status missing or not matching the signed header\n");
        }
        let request_id = verified.request_id;
        match self.services.db.record_fal_callback(&request_id, status, &json, "webhook").await {
            Ok(true) => {
                tracing::info!(request_id, status, "FAL callback recorded");
                verdict("accepted");
                text(StatusCode::OK, "accepted\n")
            }
            Ok(false) => {
                tracing::info!(request_id, "duplicate FAL callback ignored");
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

    /// A training archive or LoRA weights, for FAL to download by a signed link.
    async fn file(&self, token: &str) -> Reply {
        let secret = self.services.settings.fal.files_secret.expose().as_bytes();
        if secret.is_empty() {
            return text(StatusCode::NOT_FOUND, "not found\n");
        }
        let key = match files::verify(secret, token, unix_now()) {
            Ok(key) => key,
            Err(TokenError::Expired) => return text(StatusCode::GONE, "link expired\n"),
            Err(e) => {
                tracing::warn!(error = %e, "file link refused");
                return text(StatusCode::FORBIDDEN, "invalid link\n");
            }
        };
        match self.services.blob.get(&key).await {
            Ok(bytes) => {
                let content_type = if key.ends_with(".zip") { "application/zip" } else { "application/octet-stream" };
                http::Response::builder()
                    .status(StatusCode::OK)
                    .header(http::header::CONTENT_TYPE, content_type)
                    .body(http_body_util::Full::new(bytes))
                    .expect("static response parts are valid")
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "file link to a missing object");
                text(StatusCode::NOT_FOUND, "not found\n")
            }
        }
    }
}
