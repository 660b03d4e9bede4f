//! `fal.deliver`: one per finished request (its key is the request id, so a
//! callback delivered ten times delivers once). Result files are copied from
//! FAL's temporary URLs into S3 before anything is sent; the request moves
//! out of `submitted` only after the user has it.

use bytes::Bytes;
use serde_json::{json, Value};
use teloxide::payloads::{SendMessageSetters, SendPhotoSetters};
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, InputMedia, InputMediaPhoto};

use super::{job_error, FalJobs};
use crate::clients::Patiently;
use crate::chat::texts::{self, Lang};
use crate::clients::fal::MAX_RESULT_FILE;
use crate::fal_requests;
use crate::jobs::kinds::FalRequestRef;
use crate::jobs::{Job, JobError};
use crate::pool::JobContext;
use crate::store::fal::FalRequest;

/// Telegram takes photos up to 10 MB; FAL's images are far smaller.
const MAX_IMAGE: u64 = 20 * 1024 * 1024;

pub(super) async fn deliver(f: &FalJobs, job: &Job, ctx: &JobContext) -> Result<Value, JobError> {
    let db = &f.services.db;
    let FalRequestRef { request_id } = job.payload_as()?;
    let request_id = request_id.as_str();
    let request = db.fal_request(request_id).await.map_err(JobError::retry)?.ok_or_else(|| JobError::Retry("request not recorded yet".into()))?;
    if request.state != "submitted" {
        return Ok(json!({ "outcome": request.state }));
    }
    let callback = db.fal_callback(request_id).await.map_err(JobError::retry)?.ok_or_else(|| JobError::Retry("no callback yet".into()))?;
    let body = &callback.body;
    let payload_error = body["payload_error"].as_str().filter(|e| !e.is_empty());
    if callback.status != "OK" || payload_error.is_some() {
        let reason = body["error"].as_str().or(payload_error).or_else(|| body["payload"]["detail"][0]["msg"].as_str()).unwrap_or("unknown error");
        fail_request(f, request_id, reason).await;
        return Ok(json!({ "outcome": "failed", "reason": reason }));
    }
    let payload = &body["payload"];
    match request.kind.as_str() {
        "train" => deliver_avatar(f, job, ctx, &request, payload).await,
        _ => deliver_images(f, job, ctx, &request, payload).await,
    }
}

async fn deliver_images(f: &FalJobs, job: &Job, ctx: &JobContext, r: &FalRequest, payload: &Value) -> Result<Value, JobError> {
    let (db, blob) = (&f.services.db, &f.services.blob);
    let lang = Lang::from_code(r.language.as_deref());
    let urls: Vec<&str> = payload["images"].as_array().into_iter().flatten().filter_map(|i| i["url"].as_str()).collect();
    if urls.is_empty() {
        fail_request(f, &r.request_id, "no images in the result").await;
        return Ok(json!({ "outcome": "failed" }));
    }
    let prompt = r.prompt.clone().unwrap_or_default();
    let mut stored = Vec::new();
    for (n, url) in urls.iter().enumerate() {
        let bytes = f.fal.download(url, MAX_IMAGE).await.map_err(job_error)?;
        let ext = if bytes.starts_with(b"\x89PNG") { "png" } else if bytes.starts_with(b"RIFF") { "webp" } else { "jpg" };
        let key = format!("images/{}/{}/{n}.{ext}", r.user_id, r.request_id);
        blob.put(&key, bytes.clone(), &format!("image/{}", if ext == "jpg" { "jpeg" } else { ext })).await.map_err(JobError::retry)?;
        let image = db
            .add_image(r.user_id, &r.request_id, n as i32, r.avatar_id, &prompt, &r.model, r.aspect_ratio.as_deref(), &key)
            .await
            .map_err(JobError::retry)?;
        stored.push((image, bytes));
    }
    ctx.hold(job).await?;
    let chat = ChatId(r.chat_id);
    let caption = texts::image_caption(&prompt, &r.model, r.aspect_ratio.as_deref());
    let first_id = stored[0].0.id;
    let [regenerate, favourite] = texts::image_buttons(lang);
    let keyboard = InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback(regenerate, format!("regen:{first_id}")),
        InlineKeyboardButton::callback(favourite, format!("fav:{first_id}")),
    ]]);
    if stored.len() == 1 {
        let (image, bytes) = &stored[0];
        let file = InputFile::memory(bytes.clone()).file_name("image.png");
        let sent = f.bot.send_photo(chat, file).caption(caption).reply_markup(keyboard).patiently().await.map_err(JobError::from)?;
        if let Some(photo) = sent.photo().and_then(|sizes| sizes.last()) {
            let _ = db.set_image_file_id(image.id, &photo.file.id.0).await;
        }
    } else {
        let media: Vec<InputMedia> = stored
            .iter()
            .enumerate()
            .map(|(i, (_, bytes))| {
                let photo = InputMediaPhoto::new(InputFile::memory(bytes.clone()).file_name(format!("image{i}.png")));
                InputMedia::Photo(if i == 0 { photo.caption(caption.clone()) } else { photo })
            })
            .collect();
        let sent = f.bot.send_media_group(chat, media).patiently().await.map_err(JobError::from)?;
        for ((image, _), message) in stored.iter().zip(sent.iter()) {
            if let Some(photo) = message.photo().and_then(|sizes| sizes.last()) {
                let _ = db.set_image_file_id(image.id, &photo.file.id.0).await;
            }
        }
        f.bot.send_message(chat, "👆").reply_markup(keyboard).patiently().await.map_err(JobError::from)?;
    }
    db.finish_fal_request(&r.request_id, "delivered").await.map_err(JobError::retry)?;
    metrics::counter!("aishad_images_delivered_total", "kind" => r.kind.clone()).increment(stored.len() as u64);
    Ok(json!({ "outcome": "delivered", "images": stored.len() }))
}

async fn deliver_avatar(f: &FalJobs, job: &Job, ctx: &JobContext, r: &FalRequest, payload: &Value) -> Result<Value, JobError> {
    let (db, blob) = (&f.services.db, &f.services.blob);
    let lang = Lang::from_code(r.language.as_deref());
    let avatar_id = r.avatar_id.ok_or_else(|| JobError::Permanent("training without an avatar".into()))?;
    let Some(lora_url) = payload["diffusers_lora_file"]["url"].as_str() else {
        fail_request(f, &r.request_id, "the training produced no weights").await;
        return Ok(json!({ "outcome": "failed" }));
    };
    let lora_key = format!("avatars/{}/{avatar_id}/lora.safetensors", r.user_id);
    // Through a file: LoRA weights are 100–300 MB, more than a worker's memory budget.
    let scratch = std::path::Path::new(&f.services.settings.transcription.temp_dir).join(format!("fal-{}-lora.safetensors", job.id));
    tokio::fs::create_dir_all(scratch.parent().expect("joined")).await.map_err(JobError::retry)?;
    let stored = async {
        f.fal.download_to_file(lora_url, MAX_RESULT_FILE, &scratch).await.map_err(job_error)?;
        blob.put_file(&lora_key, &scratch, "application/octet-stream").await.map_err(JobError::retry)
    }
    .await;
    let _ = tokio::fs::remove_file(&scratch).await;
    stored?;
    let config_key = match payload["config_file"]["url"].as_str() {
        Some(url) => {
            let key = format!("avatars/{}/{avatar_id}/config.json", r.user_id);
            let config: Bytes = f.fal.download(url, 10 * 1024 * 1024).await.map_err(job_error)?;
            blob.put(&key, config, "application/json").await.map_err(JobError::retry)?;
            Some(key)
        }
        None => None,
    };
    db.avatar_ready(avatar_id, &lora_key, config_key.as_deref()).await.map_err(JobError::retry)?;
    ctx.hold(job).await?;
    let name = db.avatar_of(r.user_id, avatar_id).await.map_err(JobError::retry)?.map(|a| a.name).unwrap_or_default();
    f.bot.send_message(ChatId(r.chat_id), texts::avatar_ready(lang, &name)).patiently().await.map_err(JobError::from)?;
    db.finish_fal_request(&r.request_id, "delivered").await.map_err(JobError::retry)?;
    if f.services.settings.fal.delete_photos_after_training {
        for key in db.avatar_photo_keys(avatar_id).await.map_err(JobError::retry)? {
            let _ = blob.delete(&key).await;
        }
    }
    Ok(json!({ "outcome": "avatar ready", "avatar_id": avatar_id }))
}

/// A request that will not produce a result: failed once, refunded once,
/// and the user told why.
pub(super) async fn fail_request(f: &FalJobs, request_id: &str, reason: &str) {
    let db = &f.services.db;
    let ended = match fal_requests::end_unpaid(db, request_id, "failed", true).await {
        Ok(Some(ended)) => ended,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(request_id, error = %e, "could not fail a FAL request");
            return;
        }
    };
    let request = ended.request;
    tracing::warn!(request_id, reason, kind = %request.kind, refunded = ended.refunded, "FAL request failed");
    metrics::counter!("aishad_fal_failures_total", "kind" => request.kind.clone()).increment(1);
    if let Some(avatar) = request.avatar_id.filter(|_| request.kind == "train") {
        let _ = db.set_avatar_state(avatar, &["queued", "training"], "failed", Some(reason)).await;
    }
    let lang = Lang::from_code(request.language.as_deref());
    let text = format!(
        "{}\n{}\n{}",
        texts::failed(lang, &format!("fal.{}", request.kind)),
        texts::generation_failed(lang, reason),
        texts::refunded(lang, ended.refunded)
    );
    if let Err(e) = f.bot.send_message(ChatId(request.chat_id), text.trim_end().to_owned()).patiently().await {
        tracing::warn!(request_id, error = %e, "could not tell the user about a failed request");
    }
}
