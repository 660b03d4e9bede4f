//! FAL jobs (worker mode): `fal.imagine`, `fal.generate` and `fal.train`
//! submit to FAL's queue; `fal.deliver` copies a finished request's files
//! into S3 and sends them; `fal.poll` looks after requests whose callback
//! does not come.

mod deliver;
mod poll;
mod submit;

use std::sync::Arc;

use serde_json::Value;
use teloxide::Bot;

use crate::blob::Blob;
use crate::bot::texts::{self, Lang};
use crate::clients::{telegram_bot, ClientError};
use crate::fal::Fal;
use crate::jobs::{BoxFuture, DeadReason, Handlers, Job, JobContext, JobError, JobHandler};
use crate::services::Services;
use crate::settings::S3Settings;
use crate::store::fal::{DELIVER_KIND, POLL_KIND};
use crate::bot::tell_failed;

pub const IMAGINE_KIND: &str = "fal.imagine";
pub const GENERATE_KIND: &str = "fal.generate";
pub const TRAIN_KIND: &str = "fal.train";

#[derive(Clone)]
pub struct FalJobs {
    services: Services,
    bot: Bot,
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
        Ok(Self { bot: telegram_bot(&settings.telegram)?, fal: Fal::new(&settings.fal), public_blob, services })
    }

    pub fn handlers(services: Services) -> Result<Handlers, ClientError> {
        let jobs = Self::new(services)?;
        let handler = |role| -> Arc<dyn JobHandler> { Arc::new(Handler { jobs: jobs.clone(), role }) };
        Ok(vec![
            (IMAGINE_KIND, handler(Role::Submit)),
            (GENERATE_KIND, handler(Role::Submit)),
            (TRAIN_KIND, handler(Role::Submit)),
            (DELIVER_KIND, handler(Role::Deliver)),
            (POLL_KIND, handler(Role::Poll)),
        ])
    }

    /// A URL FAL can download `key` from: presigned on the public S3
    /// endpoint, or a signed `/files/{token}` link on the webhook listener.
    async fn public_link(&self, key: &str) -> Result<String, JobError> {
        let fal = &self.services.settings.fal;
        if let Some(blob) = &self.public_blob {
            return blob.presigned_get(key, fal.file_link_ttl).await.map_err(JobError::retry);
        }
        let (base, secret) = (fal.files_base(), fal.files_secret.expose());
        if base.is_empty() || secret.is_empty() {
            return Err(JobError::Permanent(
                "FAL cannot fetch files: set fal.public_url (or fal.webhook_url) and fal.files_secret, or s3.public_endpoint".into(),
            ));
        }
        let expires = chrono::Utc::now().timestamp() + fal.file_link_ttl.as_secs() as i64;
        Ok(format!("{base}/files/{}", crate::fal::files::sign(secret.as_bytes(), key, expires)))
    }
}

fn lang_of(job: &Job) -> Lang {
    Lang::from_code(job.payload["language"].as_str())
}

impl JobHandler for Handler {
    fn run(&self, job: Job, _ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        let (jobs, role) = (self.jobs.clone(), self.role);
        Box::pin(async move {
            match role {
                Role::Submit => submit::submit(&jobs, &job).await,
                Role::Deliver => deliver::deliver(&jobs, &job).await,
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
                    if job.kind == TRAIN_KIND {
                        if let Some(avatar) = job.payload["avatar_id"].as_i64() {
                            let _ = jobs.services.db.set_avatar_state(avatar, &["queued", "training"], "failed", Some("submission failed")).await;
                        }
                    }
                    tell_failed(&jobs.bot, &job, reason, texts::generation_unavailable(lang), lang).await
                }
                // Delivery or polling gave up: fail the request (refunding what paid for it).
                Role::Deliver | Role::Poll => {
                    if let Some(request_id) = job.payload["request_id"].as_str() {
                        deliver::fail_request(&jobs, request_id, "could not fetch the result").await;
                    }
                }
            }
        })
    }
}
