//! The supervised components of aishad and what they use. The daemon crate
//! only wires these together.
//!
//! Modules stand in floors, each importing only floors below it (checked by
//! `tests/layering.rs`), from the ground up:
//! - base: `error`, `backoff`, `batch` (group commit), `secret`, `settings`, `http`
//! - `store`: row SQL as methods on `Db`
//! - Redis and S3: `cache`, `lease`, `dialogue`, `blob`; then `services`, the handles on all three
//! - `clients`: Telegram, OpenAI, FAL over HTTP, each with its own errors
//! - `jobs`: job rows, kinds and typed payloads, the queue's state machine
//! - money: `ledger` (charges, refunds, and the queue's unpaid endings with
//!   them), then `fal_requests` (FAL bookkeeping, refunds included)
//! - `chat`: texts, replies, keyboards, "job failed" notices
//! - `pool`: JobPool, its runners and listener, the `JobHandler` trait
//! - workers: `transcriber`, `fal_job`
//! - chat routing: `bot`, then `dispatcher`
//! - intake: `poller`, `webhook`

pub mod backoff;
pub mod batch;
pub mod blob;
pub mod bot;
pub mod cache;
pub mod chat;
pub mod clients;
pub mod dialogue;
pub mod dispatcher;
pub mod error;
pub mod fal_job;
pub mod fal_requests;
pub mod http;
pub mod intake;
pub mod jobs;
pub mod keep;
pub mod lease;
pub mod ledger;
pub mod limits;
pub mod payments;
pub mod poller;
pub mod pool;
pub mod secret;
pub mod services;
pub mod settings;
pub mod store;
pub mod tls;
pub mod transcriber;
pub mod webhook;
