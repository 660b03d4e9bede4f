//! WebhookListener: the hyper server on `http.webhook_bind` that takes FAL
//! callbacks, serves signed file links, and (with `telegram.webhook_secret`)
//! takes Telegram updates through the same intake as the poller. Binding happens in
//! `pre_start`, so a port that cannot be bound is a failed start the
//! supervisor retries with backoff.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use teloxide::payloads::SetWebhookSetters;
use teloxide::prelude::Requester;
use teloxide::types::AllowedUpdate;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::batch::GroupCommit;
use crate::clients::fal::files::{self, TokenError};
use crate::clients::fal::signature::{Jwks, Rejection, Signed};
use crate::clients::Patiently;
use crate::fal_requests::{self, NewCallback};
use crate::http::{read_body, streamed, text, Handler, Reply, Request, Server};
use crate::intake::{Full, Intake, Taken};
use crate::services::Services;
use crate::store::StoreError;

pub struct WebhookListener;

/// Callbacks that arrive together share a commit: at most this many in one,
/// and a few commits in flight (while some wait for their flush, the next gathers).
const CALLBACK_BATCH: usize = 128;
const CALLBACK_COMMITTERS: usize = 4;

pub enum WebhookMsg {}

pub struct WebhookState {
    addr: SocketAddr,
    intake: Option<Arc<Intake>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// Reads getWebhookInfo while our webhook is registered with Telegram.
    webhook_info: Option<JoinHandle<()>>,
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
        myself: ActorRef<Self::Msg>,
        services: Services,
    ) -> Result<Self::State, ActorProcessingErr> {
        let intake = telegram_intake(&myself, &services).await?;
        let (telegram, bot) = (services.settings.telegram.clone(), services.telegram.clone());
        if services.settings.fal.user_id.is_empty() {
            tracing::warn!("fal.user_id is not set: FAL callbacks signed for any FAL account are accepted");
        }
        let bind = services.settings.http.webhook_bind;
        let server = Server::bind(bind, services.settings.http.max_connections)
            .await
            .map_err(|e| format!("webhook listener cannot bind {bind}: {e}"))?;
        let addr = server.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let handler = routes(Arc::new(services), intake.clone());
        let task = tokio::spawn(server.serve(
            handler,
            async move {
                let _ = stopped.await;
            },
            DRAIN,
        ));
        tracing::info!(%addr, "webhook listener accepting");
        let webhook_info = (intake.is_some() && !telegram.webhook_url.is_empty()).then(|| watch_webhook_info(bot));
        Ok(WebhookState { addr, intake, stop: Some(stop), server: Some(task), webhook_info })
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        if let Some(stop) = state.stop.take() {
            let _ = stop.send(());
        }
        if let Some(watch) = state.webhook_info.take() {
            watch.abort();
        }
        if let Some(task) = state.server.take() {
            let _ = task.await;
        }
        if let Some(intake) = state.intake.take() {
            intake.drain().await;
        }
        tracing::info!(addr = %state.addr, "webhook listener stopped");
        Ok(())
    }
}

/// With `telegram.webhook_secret` set: an intake for Telegram updates
/// (and, with `telegram.webhook_url`, the webhook registered with Telegram).
async fn telegram_intake(
    myself: &ActorRef<WebhookMsg>,
    services: &Services,
) -> Result<Option<Arc<Intake>>, ActorProcessingErr> {
    let telegram = &services.settings.telegram;
    if telegram.webhook_secret.is_empty() {
        return Ok(None);
    }
    let bot = services.telegram.clone();
    if !telegram.webhook_url.is_empty() {
        let url = reqwest::Url::parse(&telegram.webhook_url).map_err(|e| format!("telegram.webhook_url: {e}"))?;
        let registered = bot
            .set_webhook(url)
            .secret_token(telegram.webhook_secret.expose().to_owned())
            .allowed_updates(vec![
                AllowedUpdate::Message,
                AllowedUpdate::CallbackQuery,
                AllowedUpdate::PreCheckoutQuery,
                AllowedUpdate::ChatMember,
            ])
            .patiently()
            .await;
        if let Err(e) = registered {
            tracing::warn!(error = %e, "setWebhook failed; Telegram will not send updates here until it succeeds");
        }
    }
    Ok(Some(Arc::new(Intake::start(services, myself.get_cell()).await?)))
}

/// How often Telegram is asked how our webhook fares.
const WEBHOOK_INFO_EVERY: Duration = Duration::from_secs(60);

/// getWebhookInfo every minute, as gauges: the updates Telegram holds for
/// us (`aishad_telegram_webhook_pending_updates`) and when its last
/// delivery to us failed (`aishad_telegram_webhook_last_error_timestamp_seconds`, 0 never).
fn watch_webhook_info(bot: crate::clients::TgBot) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WEBHOOK_INFO_EVERY);
        loop {
            tick.tick().await;
            match bot.get_webhook_info().await {
                Ok(info) => {
                    metrics::gauge!("aishad_telegram_webhook_pending_updates")
                        .set(f64::from(info.pending_update_count));
                    let failed_at = info.last_error_date.map_or(0, |at| at.timestamp());
                    metrics::gauge!("aishad_telegram_webhook_last_error_timestamp_seconds").set(failed_at as f64);
                    if let Some(message) = info.last_error_message {
                        tracing::debug!(
                            pending = info.pending_update_count,
                            message,
                            "Telegram's last webhook delivery error"
                        );
                    }
                }
                Err(e) => tracing::debug!(error = %e, "getWebhookInfo failed"),
            }
        }
    })
}

struct Routes {
    services: Services,
    jwks: Jwks,
    intake: Option<Arc<Intake>>,
    callbacks: GroupCommit<NewCallback, Result<bool, StoreError>>,
}

fn routes(services: Arc<Services>, intake: Option<Arc<Intake>>) -> Handler {
    let fal = &services.settings.fal;
    let db = services.db.clone();
    let callbacks = GroupCommit::start("fal_callbacks", CALLBACK_BATCH, CALLBACK_COMMITTERS, move |batch| {
        let db = db.clone();
        async move { fal_requests::record_callbacks(&db, batch).await }
    });
    let jwks = Jwks::new(&fal.jwks_url, fal.jwks_cache);
    let routes = Arc::new(Routes { jwks, services: (*services).clone(), intake, callbacks });
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
            (&Method::POST, "/webhooks/telegram") => match &self.intake {
                Some(intake) => self.telegram_update(intake, req).await,
                None => text(StatusCode::NOT_FOUND, "not found\n"),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Headers first (present, our account, fresh), then the body, then the
    /// signature; record once (queueing the delivery in the same
    /// transaction), answer. Nothing is written for a request that fails any check.
    async fn fal_callback(&self, req: Request) -> Reply {
        let settings = &self.services.settings;
        let headers = req.headers().clone();
        let signed =
            match Signed::from_headers(&headers, &settings.fal.user_id, unix_now(), settings.fal.timestamp_tolerance) {
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
        let recorded = self
            .callbacks
            .submit(callback)
            .await
            .unwrap_or_else(|stopped| Err(StoreError::Shared(stopped.to_string())));
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

    /// An update pushed by Telegram: checked against the secret, then
    /// through the intake (room, record once, dispatch), answered.
    async fn telegram_update(&self, intake: &Intake, req: Request) -> Reply {
        let settings = &self.services.settings;
        let secret = settings.telegram.webhook_secret.expose().as_bytes();
        let given = req.headers().get("x-telegram-bot-api-secret-token").map(|v| v.as_bytes()).unwrap_or_default();
        // Compared in constant time: the secret is the only credential.
        if given.len() != secret.len() || given.iter().zip(secret).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
            return text(StatusCode::UNAUTHORIZED, "bad secret token\n");
        }
        let (_, body) = match read_body(req, settings.http.max_body.0 as usize).await {
            Ok(read) => read,
            Err(e) => return text(e.status(), format!("{e}\n")),
        };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return text(StatusCode::BAD_REQUEST, "body is not JSON\n");
        };
        let Some(update_id) = value["update_id"].as_i64() else {
            return text(StatusCode::BAD_REQUEST, "no update_id\n");
        };
        // Backpressure: unrecorded and refused, Telegram sends it again later.
        if let Err(full) = intake.room().await {
            if let Full::Pending(pending) = full {
                tracing::warn!(update_id, pending, "dispatcher full; refusing the update for Telegram to resend");
            }
            return text(StatusCode::SERVICE_UNAVAILABLE, "busy, retry later\n");
        }
        match intake.take(vec![value]).await {
            Ok(Taken { new: 0, .. }) => text(StatusCode::OK, "duplicate\n"),
            Ok(_) => text(StatusCode::OK, "accepted\n"),
            Err(e) => {
                tracing::error!(update_id, error = %e, "could not record a Telegram update; Telegram will retry");
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
        match self.services.blob.get_stream(&key).await {
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
}
