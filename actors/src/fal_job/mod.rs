//! FAL, in one area: the jobs (worker mode) — `fal.imagine`, `fal.generate`
//! and `fal.train` submit to FAL's queue, `fal.deliver` copies a finished
//! request's files into S3 and sends them, `fal.poll` looks after requests
//! whose callback does not come — and beside them one file per model
//! (`models/`), the requests' bookkeeping (`requests`) and the callbacks the
//! webhook listener takes (`callback`). The HTTP client is `clients::fal`,
//! the rows `store::fal`.

pub mod callback;
mod deliver;
pub mod kinds;
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
use crate::jobs::{Job, JobError};
use crate::pool::{BoxFuture, DeadReason, Handlers, JobContext, JobHandler};
use crate::services::Services;
use crate::store::images::AvatarState;
use kinds::{FalRequestRef, Train, FAL_DELIVER, FAL_GENERATE, FAL_IMAGINE, FAL_POLL, FAL_TRAIN};
use models::Product;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Submit(Product),
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
            (FAL_IMAGINE.name, handler(Role::Submit(Product::TextToImage))),
            (FAL_GENERATE.name, handler(Role::Submit(Product::AvatarImage))),
            (FAL_TRAIN.name, handler(Role::Submit(Product::Training))),
            (FAL_DELIVER.name, handler(Role::Deliver)),
            (FAL_POLL.name, handler(Role::Poll)),
        ])
    }
}

impl JobHandler for Handler {
    fn run(&self, job: Job, ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        let (jobs, role) = (self.jobs.clone(), self.role);
        Box::pin(async move {
            match role {
                Role::Submit(product) => submit::submit(&jobs, &job, &ctx, product).await,
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
                Role::Submit(product) => {
                    let lang = lang_of(&job);
                    if product == Product::Training {
                        if let Ok(Train { avatar_id, .. }) = FAL_TRAIN.payload(&job) {
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
                    let title = kinds::title_of_request(product.request_kind());
                    tell_failed(&jobs.bot, &job, title, reason.for_user(texts::generation_unavailable(lang)), lang)
                        .await
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
