//! Telegram updates pushed to the webhook listener (with
//! `telegram.webhook_secret`): the webhook registered with Telegram, each
//! update checked against the secret and taken through the same intake as
//! the poller, and how Telegram says our webhook fares.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use ractor::{ActorCell, ActorProcessingErr};
use teloxide::prelude::Requester;
use tokio::task::JoinHandle;

use crate::clients::newer_api::set_webhook;
use crate::clients::Patiently;
use crate::http::{read_body, text, Reply, Request};
use crate::intake::{Full, Intake, Taken};
use crate::services::Services;
use crate::settings::Settings;

/// With `telegram.webhook_secret` set: an intake for Telegram updates
/// (and, with `telegram.webhook_url`, the webhook registered with Telegram).
pub(super) async fn telegram_intake(
    listener: ActorCell,
    services: &Services,
) -> Result<Option<Arc<Intake>>, ActorProcessingErr> {
    let telegram = &services.settings.telegram;
    if telegram.webhook_secret.is_empty() {
        return Ok(None);
    }
    let bot = services.telegram.clone();
    if !telegram.webhook_url.is_empty() {
        let url = reqwest::Url::parse(&telegram.webhook_url).map_err(|e| format!("telegram.webhook_url: {e}"))?;
        let registered = set_webhook(&bot, url.as_str(), telegram.webhook_secret.expose()).patiently().await;
        if let Err(e) = registered {
            tracing::warn!(error = %e, "setWebhook failed; Telegram will not send updates here until it succeeds");
        }
    }
    Ok(Some(Arc::new(Intake::start(services, listener).await?)))
}

/// How often Telegram is asked how our webhook fares.
const WEBHOOK_INFO_EVERY: Duration = Duration::from_secs(60);

/// getWebhookInfo every minute, as gauges: the updates Telegram holds for
/// us (`aishad_telegram_webhook_pending_updates`) and when its last
/// delivery to us failed (`aishad_telegram_webhook_last_error_timestamp_seconds`, 0 never).
pub(super) fn watch_webhook_info(bot: crate::clients::TgBot) -> JoinHandle<()> {
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

/// An update pushed by Telegram: checked against the secret, then
/// through the intake (room, record once, dispatch), answered.
pub(super) async fn update(settings: &Settings, intake: &Intake, req: Request) -> Reply {
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
