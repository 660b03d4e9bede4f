//! `fal.deliver`: one per finished request (its key is the request id, so a
//! callback delivered ten times delivers once). Result files are copied from
//! FAL's temporary URLs into S3; then, in one transaction, the request ends
//! delivered and the result joins the gallery (or the avatar turns ready) —
//! unless the request was cancelled first, and then nothing is delivered.
//! Only then is it sent; a user who blocked the bot keeps the result and the
//! charge stands.

use bytes::Bytes;
use serde_json::{json, Value};
use teloxide::payloads::{SendMessageSetters, SendPhotoSetters};
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, InlineKeyboardMarkup, InputFile, InputMedia, InputMediaPhoto};
use teloxide::RequestError;

use super::kinds::FalRequestRef;
use super::models::{self, Product, Weights};
use super::requests;
use super::shared::FalJobs;
use crate::blob::image_kind;
use crate::chat::callback::{button, Callback};
use crate::chat::{texts, Lang};
use crate::clients::bot_api::is_undeliverable;
use crate::clients::fal::MAX_RESULT_FILE;
use crate::clients::Patiently;
use crate::jobs::{Job, JobError};
use crate::pool::JobContext;
use crate::store::fal::{FalKind, FalRequest, FalState};
use crate::store::images::{AvatarState, Image, NewImage};

/// Telegram takes photos up to 10 MB; FAL's images are far smaller.
const MAX_IMAGE: u64 = 20 * 1024 * 1024;

pub(super) async fn deliver(f: &FalJobs, job: &Job, ctx: &JobContext) -> Result<Value, JobError> {
    let db = &f.services.db;
    let FalRequestRef { request_id } = job.payload_as()?;
    let request_id = request_id.as_str();
    let request =
        db.fal_request(request_id).await?.ok_or_else(|| JobError::Retry("request not recorded yet".into()))?;
    match request.state {
        FalState::Submitted => {}
        // Stored by an earlier attempt that could not send it: send it now.
        FalState::Delivered => return resend(f, job, ctx, &request).await,
        // Cancelled or failed (refunded), or forgotten at the user's request: nothing is delivered.
        other @ (FalState::Failed | FalState::Cancelled | FalState::Forgotten) => {
            return Ok(json!({ "outcome": other.as_str() }))
        }
    }
    let callback = db.fal_callback(request_id).await?.ok_or_else(|| JobError::Retry("no callback yet".into()))?;
    let body = &callback.body;
    let payload_error = body["payload_error"].as_str().filter(|e| !e.is_empty());
    if callback.status != "OK" || payload_error.is_some() {
        let reason = body["error"]
            .as_str()
            .or(payload_error)
            .or_else(|| body["payload"]["detail"][0]["msg"].as_str())
            .unwrap_or("unknown error");
        fail_request(f, request_id, reason).await;
        return Ok(json!({ "outcome": "failed", "reason": reason }));
    }
    let payload = &body["payload"];
    // The model that made it reads its result (recorded with the request).
    let model = models::model(&request.model)
        .ok_or_else(|| JobError::Broken(format!("no model file for {} (fal_job/models)", request.model)))?;
    match model.product() {
        Product::Training => deliver_avatar(f, job, ctx, &request, model.weights(payload)).await,
        Product::TextToImage | Product::AvatarImage => {
            deliver_images(f, job, ctx, &request, model.images(payload)).await
        }
    }
}

/// Sending's outcome for the job: done, undeliverable (done too), or retry.
fn sent(r: &FalRequest, what: usize, result: Result<(), RequestError>) -> Result<Value, JobError> {
    match result {
        Ok(()) => {
            metrics::counter!("aishad_images_delivered_total", "kind" => r.kind.as_str()).increment(what as u64);
            Ok(json!({ "outcome": "delivered", "items": what }))
        }
        Err(e) if is_undeliverable(&e) => {
            tracing::warn!(request_id = %r.request_id, user_id = r.user_id, error = %e, "result stored but undeliverable; the charge stands");
            metrics::counter!("aishad_fal_undeliverable_total", "kind" => r.kind.as_str()).increment(1);
            Ok(json!({ "outcome": "undeliverable", "reason": e.to_string() }))
        }
        Err(e) => Err(JobError::from(e)),
    }
}

async fn deliver_images(
    f: &FalJobs,
    job: &Job,
    ctx: &JobContext,
    r: &FalRequest,
    urls: Vec<&str>,
) -> Result<Value, JobError> {
    let blob = &f.services.blob;
    if urls.is_empty() {
        fail_request(f, &r.request_id, "no images in the result").await;
        return Ok(json!({ "outcome": "failed" }));
    }
    let prompt = r.prompt.clone().unwrap_or_default();
    let mut new = Vec::new();
    let mut bytes = Vec::new();
    for (n, url) in urls.iter().enumerate() {
        let image = f.fal.download(url, MAX_IMAGE).await?;
        let (ext, mime) = image_kind(&image);
        let key = format!("images/{}/{}/{n}.{ext}", r.user_id, r.request_id);
        blob.put(&key, image.clone(), mime).await?;
        bytes.push(image);
        let (prompt, model) = (prompt.as_str(), r.model.as_str());
        new.push(NewImage {
            user_id: r.user_id,
            request_id: &r.request_id,
            n: n as i32,
            avatar_id: r.avatar_id,
            prompt,
            model,
            aspect_ratio: r.aspect_ratio.as_deref(),
            key,
        });
    }
    ctx.hold(job).await?;
    let Some(stored) = requests::store_images(&f.services.db, &r.request_id, &new).await? else {
        tracing::info!(request_id = %r.request_id, "the request was cancelled before its result was stored; nothing delivered");
        for image in &new {
            let _ = blob.delete(&image.key).await;
        }
        return Ok(json!({ "outcome": "cancelled" }));
    };
    let images: Vec<(Image, Bytes)> = stored.into_iter().zip(bytes).collect();
    sent(r, images.len(), send_images(f, r, &images).await)
}

/// The images, with Regenerate / Favourite under them.
async fn send_images(f: &FalJobs, r: &FalRequest, images: &[(Image, Bytes)]) -> Result<(), RequestError> {
    let db = &f.services.db;
    let lang = Lang::from_code(r.language.as_deref());
    let chat = ChatId(r.chat_id);
    let caption = texts::image_caption(r.prompt.as_deref().unwrap_or_default(), r.aspect_ratio.as_deref());
    let first_id = images[0].0.id;
    let [regenerate, favourite] = texts::image_buttons(lang);
    let keyboard = InlineKeyboardMarkup::new([[
        button(regenerate, Callback::Regenerate(first_id)),
        button(favourite, Callback::Favourite(first_id)),
    ]]);
    if images.len() == 1 {
        let (image, bytes) = &images[0];
        let file = InputFile::memory(bytes.clone()).file_name(format!("image.{}", image_kind(bytes).0));
        let sent = f.bot.send_photo(chat, file).caption(caption).reply_markup(keyboard).patiently().await?;
        if let Some(photo) = sent.photo().and_then(|sizes| sizes.last()) {
            let _ = db.set_image_file_id(image.id, &photo.file.id.0).await;
        }
        return Ok(());
    }
    let media: Vec<InputMedia> = images
        .iter()
        .enumerate()
        .map(|(i, (_, bytes))| {
            let photo = InputMediaPhoto::new(
                InputFile::memory(bytes.clone()).file_name(format!("image{i}.{}", image_kind(bytes).0)),
            );
            InputMedia::Photo(if i == 0 { photo.caption(caption.clone()) } else { photo })
        })
        .collect();
    let sent = f.bot.send_media_group(chat, media).patiently().await?;
    for ((image, _), message) in images.iter().zip(sent.iter()) {
        if let Some(photo) = message.photo().and_then(|sizes| sizes.last()) {
            let _ = db.set_image_file_id(image.id, &photo.file.id.0).await;
        }
    }
    f.bot.send_message(chat, "👆").reply_markup(keyboard).patiently().await?;
    Ok(())
}

/// A result stored by an attempt that could not send it.
async fn resend(f: &FalJobs, job: &Job, ctx: &JobContext, r: &FalRequest) -> Result<Value, JobError> {
    ctx.hold(job).await?;
    if r.kind == FalKind::Train {
        return sent(r, 1, tell_avatar_ready(f, r).await);
    }
    let mut images = Vec::new();
    for image in f.services.db.images_of_request(&r.request_id).await? {
        let bytes = f.services.blob.get(&image.key).await?;
        images.push((image, bytes));
    }
    if images.is_empty() {
        return Ok(json!({ "outcome": "delivered", "items": 0 }));
    }
    sent(r, images.len(), send_images(f, r, &images).await)
}

async fn tell_avatar_ready(f: &FalJobs, r: &FalRequest) -> Result<(), RequestError> {
    let lang = Lang::from_code(r.language.as_deref());
    let avatar = match r.avatar_id {
        Some(id) => f.services.db.avatar_of(r.user_id, id).await.ok().flatten(),
        None => None,
    };
    let name = avatar.map(|a| a.name).unwrap_or_default();
    f.bot.send_message(ChatId(r.chat_id), texts::avatar_ready(lang, &name)).patiently().await.map(drop)
}

async fn deliver_avatar(
    f: &FalJobs,
    job: &Job,
    ctx: &JobContext,
    r: &FalRequest,
    weights: Option<Weights<'_>>,
) -> Result<Value, JobError> {
    let (db, blob) = (&f.services.db, &f.services.blob);
    let avatar_id = r.avatar_id.ok_or_else(|| JobError::Broken("training without an avatar".into()))?;
    let Some(Weights { lora_url, config_url }) = weights else {
        fail_request(f, &r.request_id, "the training produced no weights").await;
        return Ok(json!({ "outcome": "failed" }));
    };
    let lora_key = format!("avatars/{}/{avatar_id}/lora.safetensors", r.user_id);
    // Through a file: LoRA weights are 100–300 MB, more than a worker's memory budget.
    let scratch = std::path::Path::new(&f.services.settings.transcription.temp_dir)
        .join(format!("fal-{}-lora.safetensors", job.id));
    tokio::fs::create_dir_all(scratch.parent().expect("joined")).await?;
    let stored = async {
        f.fal.download_to_file(lora_url, MAX_RESULT_FILE, &scratch).await?;
        Ok::<_, JobError>(blob.put_file(&lora_key, &scratch, "application/octet-stream").await?)
    }
    .await;
    let _ = tokio::fs::remove_file(&scratch).await;
    stored?;
    let config_key = match config_url {
        Some(url) => {
            let key = format!("avatars/{}/{avatar_id}/config.json", r.user_id);
            let config: Bytes = f.fal.download(url, 10 * 1024 * 1024).await?;
            blob.put(&key, config, "application/json").await?;
            Some(key)
        }
        None => None,
    };
    ctx.hold(job).await?;
    if !requests::store_avatar(db, &r.request_id, avatar_id, &lora_key, config_key.as_deref()).await? {
        tracing::info!(request_id = %r.request_id, avatar_id, "the training was cancelled before its weights were stored; the avatar stays cancelled");
        return Ok(json!({ "outcome": "cancelled" }));
    }
    if f.services.settings.fal.delete_photos_after_training {
        for key in db.avatar_photo_keys(avatar_id).await? {
            let _ = blob.delete(&key).await;
        }
    }
    sent(r, 1, tell_avatar_ready(f, r).await)
}

/// A request that will not produce a result: failed once, refunded once,
/// and the user told why.
pub(super) async fn fail_request(f: &FalJobs, request_id: &str, reason: &str) {
    let db = &f.services.db;
    let ended = match requests::end_unpaid(db, request_id, FalState::Failed, true).await {
        Ok(Some(ended)) => ended,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(request_id, error = %e, "could not fail a FAL request");
            return;
        }
    };
    let request = ended.request;
    tracing::warn!(request_id, reason, kind = %request.kind, refunded = ended.refunded, "FAL request failed");
    metrics::counter!("aishad_fal_failures_total", "kind" => request.kind.as_str()).increment(1);
    if let Some(avatar) = request.avatar_id.filter(|_| request.kind == FalKind::Train) {
        let _ = db
            .set_avatar_state(avatar, &[AvatarState::Queued, AvatarState::Training], AvatarState::Failed, Some(reason))
            .await;
    }
    let (lang, title) = (Lang::from_code(request.language.as_deref()), super::kinds::title_of_request(request.kind));
    let text = format!(
        "{}\n{}\n{}",
        texts::failed(lang, lang.title(title)),
        texts::generation_failed(lang, reason),
        texts::refunded(lang, ended.refunded)
    );
    if let Err(e) = f.bot.send_message(ChatId(request.chat_id), text.trim_end().to_owned()).patiently().await {
        tracing::warn!(request_id, error = %e, "could not tell the user about a failed request");
    }
}
