//! Submitting to FAL: text to image, an image from the user's avatar, or an
//! avatar's training. The request is recorded with the job that paid for
//! it, and a job submits once: an attempt that finds its request recorded
//! goes on from there. (What stays open: a worker killed between FAL's
//! answer and the record's commit; FAL's queue takes no idempotency key.)

use std::io::Write;

use bytes::Bytes;
use serde_json::{json, Value};

use super::kinds::{ImageRequest, Train};
use super::models::{self, Ask, FalModel, Product};
use super::requests;
use super::shared::{lang_of, FalJobs};
use crate::chat::texts;
use crate::jobs::{Job, JobError};
use crate::keep;
use crate::pool::JobContext;
use crate::store::fal::{FalKind, FalRequest, FalState};
use crate::store::images::AvatarState;

pub(super) async fn submit(f: &FalJobs, job: &Job, ctx: &JobContext, product: Product) -> Result<Value, JobError> {
    let (db, settings) = (&f.services.db, &f.services.settings.fal);
    if let Some(resumed) = submitted_before(f, job).await? {
        return Ok(resumed);
    }
    let lang = lang_of(job);
    let user_id = job.user_id.ok_or_else(|| JobError::Broken("job has no user".into()))?;
    let chat_id = job.chat_id.ok_or_else(|| JobError::Broken("job has no chat".into()))?;
    let model = models::model_for(product, product.configured(settings)).map_err(JobError::Broken)?;
    let Asked { input, avatar_id, prompt, aspect } = ask(f, job, product, model, user_id).await?;
    let (kind, model) = (product.request_kind(), model.id().to_owned());
    // FAL bills the submission: only while this attempt still holds the job
    // (its lease may have lapsed while the archive was made, and another
    // worker's attempt be under way).
    ctx.hold(job).await?;
    let submitted = f.fal.submit(&model, &input).await?;
    let request = FalRequest {
        request_id: submitted.request_id.clone(),
        job_id: job.id,
        user_id,
        chat_id,
        kind,
        model,
        status_url: submitted.status_url,
        response_url: submitted.response_url,
        cancel_url: submitted.cancel_url,
        avatar_id,
        prompt,
        aspect_ratio: (kind != FalKind::Train).then_some(aspect),
        language: Some(lang.code().to_owned()),
        state: FalState::Submitted,
        age_seconds: 0.0,
    };
    // FAL bills the submission: its request id is written, however long the database is away.
    keep::until_kept("a FAL request id", job.id, || requests::record_request(db, &request, settings.poll_after))
        .await?;
    tracing::info!(request_id = %submitted.request_id, %kind, "submitted to FAL");
    Ok(json!({ "request_id": submitted.request_id }))
}

/// What a submission sends, and what its record keeps of it.
struct Asked {
    input: Value,
    avatar_id: Option<i64>,
    prompt: Option<String>,
    /// The user's image size, as it was asked.
    aspect: String,
}

/// The request's input for `model`, from the job and the user's settings.
async fn ask(f: &FalJobs, job: &Job, product: Product, model: &dyn FalModel, user_id: i64) -> Result<Asked, JobError> {
    let (db, settings, lang) = (&f.services.db, &f.services.settings.fal, lang_of(job));
    let aspect = db.aspect_ratio(user_id).await?;
    let prompt = match product {
        Product::Training => None,
        _ => Some(job.payload_as::<ImageRequest>()?.prompt),
    };
    let (input, avatar_id) = match product {
        Product::TextToImage => {
            let ask = Ask::TextToImage {
                prompt: prompt.as_deref().unwrap_or_default(),
                size: &aspect,
                num_images: settings.num_images,
            };
            (model.input(&ask), None)
        }
        Product::AvatarImage => {
            let avatar =
                db.main_avatar(user_id).await?.ok_or_else(|| JobError::Refused(texts::no_avatar(lang).into()))?;
            let lora = avatar.lora_key.clone().ok_or_else(|| JobError::Refused(texts::no_avatar(lang).into()))?;
            let lora_url = f.public_link(&lora).await?;
            let ask = Ask::AvatarImage {
                prompt: prompt.as_deref().unwrap_or_default(),
                size: &aspect,
                num_images: settings.num_images,
                trigger: &avatar.trigger_phrase,
                lora_url: &lora_url,
                lora_scale: settings.lora_scale,
            };
            (model.input(&ask), Some(avatar.id))
        }
        Product::Training => {
            let Train { avatar_id, .. } = job.payload_as()?;
            let avatar = db
                .avatar_of(user_id, avatar_id)
                .await?
                .ok_or_else(|| JobError::Refused(texts::no_avatar(lang).into()))?;
            let archive = training_archive(f, user_id, avatar_id).await?;
            let images_url = f.public_link(&archive).await?;
            let ask = Ask::Training {
                images_url: &images_url,
                trigger: &avatar.trigger_phrase,
                steps: settings.training_steps,
            };
            let input = model.input(&ask);
            db.set_avatar_state(avatar_id, &[AvatarState::Queued], AvatarState::Training, None).await?;
            (input, Some(avatar_id))
        }
    };
    let input = input.ok_or_else(|| JobError::Broken(format!("{} asked for {product:?}", model.id())))?;
    Ok(Asked { input, avatar_id, prompt, aspect })
}

/// A job claimed again goes on from the request an earlier attempt made:
/// FAL bills every submission. An attempt whose lease lapsed while the
/// database was away may still hold its request id and write it soon after
/// the database's return: a claim after such a lapse looks once more after
/// `keep::holder_grace`.
async fn submitted_before(f: &FalJobs, job: &Job) -> Result<Option<Value>, JobError> {
    let db = &f.services.db;
    let mut made = db.fal_request_for_job(job.id).await?;
    if made.is_none() && job.attempts > 1 {
        tokio::time::sleep(keep::holder_grace(f.services.settings.jobs.lease)).await;
        made = db.fal_request_for_job(job.id).await?;
    }
    Ok(made.map(|made| {
        tracing::info!(job_id = job.id, request_id = %made.request_id, "the request was submitted by an earlier attempt; not again");
        json!({ "request_id": made.request_id, "resumed": true })
    }))
}

/// The avatar's photos as a zip in S3 (made once; a retry reuses it).
async fn training_archive(f: &FalJobs, user_id: i64, avatar_id: i64) -> Result<String, JobError> {
    let key = format!("avatars/{user_id}/{avatar_id}/training.zip");
    if f.services.blob.get(&key).await.is_ok() {
        return Ok(key);
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Photos are JPEG/PNG/WebP already: storing beats compressing them again.
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (i, photo_key) in f.services.db.avatar_photo_keys(avatar_id).await?.iter().enumerate() {
        let bytes = f.services.blob.get(photo_key).await?;
        let ext = photo_key.rsplit('.').next().filter(|e| e.len() <= 4).unwrap_or("jpg");
        zip.start_file(format!("photo_{:02}.{ext}", i + 1), options).map_err(JobError::retry)?;
        zip.write_all(&bytes)?;
    }
    let archive = zip.finish().map_err(JobError::retry)?.into_inner();
    f.services.blob.put(&key, Bytes::from(archive), "application/zip").await?;
    f.services.db.set_archive_key(avatar_id, &key).await?;
    Ok(key)
}
