//! FAL, in one area: the jobs (worker mode) — `fal.imagine`, `fal.generate`
//! and `fal.train` submit to FAL's queue, `fal.deliver` copies a finished
//! request's files into S3 and sends them, `fal.poll` looks after requests
//! whose callback does not come — and beside them one file per model
//! (`models/`), the requests' bookkeeping (`requests`) and the callbacks the
//! webhook listener takes (`callback`). The HTTP client is `clients::fal`,
//! the rows `store::fal`.

pub mod callback;
mod deliver;
pub mod models;
mod poll;
pub mod requests;
mod shared;
mod submit;

use shared::lang_of;
pub use shared::FalJobs;

use std::sync::Arc;

use serde_json::Value;

use crate::chat::notices::tell_failed;
use crate::chat::texts;
use crate::clients::ClientError;
use crate::jobs::kinds::{FalRequestRef, Train};
use crate::jobs::{Job, JobError, Kind};
use crate::pool::{BoxFuture, DeadReason, Handlers, JobContext, JobHandler};
use crate::services::Services;
use crate::store::images::AvatarState;

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
