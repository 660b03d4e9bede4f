//! FAL jobs (worker mode): `fal.imagine`, `fal.generate` and `fal.train`
//! submit to FAL's queue; `fal.deliver` copies a finished request's files
//! into S3 and sends them; `fal.poll` looks after requests whose callback
//! does not come.

mod deliver;
pub mod models;
mod poll;
mod submit;

use std::sync::Arc;

use serde_json::Value;

use crate::blob::Blob;
use crate::chat::notices::tell_failed;
use crate::chat::{texts, Lang};
use crate::clients::fal::Fal;
use crate::clients::{ClientError, TgBot};
use crate::jobs::kinds::{FalRequestRef, Train};
use crate::jobs::{Job, JobError, Kind};
use crate::pool::{BoxFuture, DeadReason, Handlers, JobContext, JobHandler};
use crate::services::Services;
use crate::settings::S3Settings;
use crate::store::images::AvatarState;

#[derive(Clone)]
pub struct FalJobs {
    services: Services,
    bot: TgBot,
    fal: Fal,
    /// Presigns links on `s3.public_endpoint`, when one is set.
    public_blob: Option<Blob>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Submit,
    Deliver,
    Poll,
}

struct Handler {
    jobs: FalJobs,
    role: Role,
}

impl FalJobs {
    pub fn new(services: Services) -> Result<Self, ClientError> {
        let settings = &services.settings;
        let public_blob = if settings.s3.public_endpoint.is_empty() {
            None
        } else {
            let public = S3Settings { endpoint: settings.s3.public_endpoint.clone(), ..settings.s3.clone() };
            Some(Blob::new(&public).map_err(|e| ClientError::Http(e.to_string()))?)
        };
        Ok(Self { bot: services.telegram.clone(), fal: Fal::new(&settings.fal), public_blob, services })
    }

    pub fn handlers(services: Services) -> Result<Handlers, ClientError> {
        let jobs = Self::new(services)?;
        let handler = |role| -> Arc<dyn JobHandler> { Arc::new(Handler { jobs: jobs.clone(), role }) };
        Ok(vec![
            (Kind::FalImagine.as_str(), handler(Role::Submit)),
            (Kind::FalGenerate.as_str(), handler(Role::Submit)),
            (Kind::FalTrain.as_str(), handler(Role::Submit)),
            (Kind::FalDeliver.as_str(), handler(Role::Deliver)),
            (Kind::FalPoll.as_str(), handler(Role::Poll)),
        ])
    }

    /// A URL FAL can download `key` from: presigned on the public S3
    /// endpoint, or a signed `/files/{token}` link on the webhook listener.
    async fn public_link(&self, key: &str) -> Result<String, JobError> {
        let fal = &self.services.settings.fal;
        if let Some(blob) = &self.public_blob {
            return Ok(blob.presigned_get(key, fal.file_link_ttl).await?);
        }
        let (base, secret) = (fal.files_base(), fal.files_secret.expose());
        if base.is_empty() || secret.is_empty() {
            return Err(JobError::Broken(
                "FAL cannot fetch files: set fal.public_url (or fal.webhook_url) and fal.files_secret, or s3.public_endpoint".into(),
            ));
        }
        let expires = chrono::Utc::now().timestamp() + fal.file_link_ttl.as_secs() as i64;
        Ok(format!("{base}/files/{}", crate::clients::fal::files::sign(secret.as_bytes(), key, expires)))
    }
}

fn lang_of(job: &Job) -> Lang {
    Lang::from_code(job.language())
}

impl JobHandler for Handler {
    fn run(&self, job: Job, ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        let (jobs, role) = (self.jobs.clone(), self.role);
        Box::pin(async move {
            match role {
                Role::Submit => submit::submit(&jobs, &job, &ctx).await,
                Role::Deliver => deliver::deliver(&jobs, &job, &ctx).await,
                Role::Poll => poll::poll(&jobs, &job).await,
            }
        })
    }

    fn on_dead(&self, job: Job, reason: DeadReason) -> BoxFuture<()> {
        let (jobs, role) = (self.jobs.clone(), self.role);
        Box::pin(async move {
            match role {
                // The submit job itself was charged, and the queue refunded it.
                Role::Submit => {
                    let lang = lang_of(&job);
                    if job.kind == Kind::FalTrain.as_str() {
                        if let Ok(Train { avatar_id, .. }) = job.payload_as() {
                            let _ = jobs
                                .services
                                .db
                                .set_avatar_state(
                                    avatar_id,
                                    &[AvatarState::Queued, AvatarState::Training],
                                    AvatarState::Failed,
                                    Some("submission failed"),
                                )
                                .await;
                        }
                    }
                    tell_failed(&jobs.bot, &job, reason.for_user(texts::generation_unavailable(lang)), lang).await
                }
                // Delivery or polling gave up: fail the request (refunding what paid for it).
                Role::Deliver | Role::Poll => {
                    if let Ok(FalRequestRef { request_id }) = job.payload_as() {
                        deliver::fail_request(&jobs, &request_id, "could not fetch the result").await;
                    }
                }
            }
        })
    }
}
