//! The worker side of the queue: a JobPool claims jobs of the kinds it has
//! handlers for and runs each in a supervised JobRunner; a listener wakes it
//! on NOTIFY. What a kind of job does is its `JobHandler`.

mod handler;
mod job_pool;
pub mod listener;
mod presence;
mod runner;
mod upkeep;

pub use presence::PRESENCE_LOCK_NAMESPACE;

pub use handler::{BoxFuture, DeadReason, Handlers, JobContext, JobHandler};
pub use job_pool::{JobPool, JobPoolArgs, PoolMsg};
