//! The supervised components of aishad and what they use. The daemon crate
//! only wires these together.
//!
//! Modules stand in floors, each importing only floors below it (checked by
//! `tests/layering.rs`, whose list this is), from the ground up:
//! - base, libraries only: `error`, `backoff`, `keep`, `batch`, `secret`, `settings`, `http`, `tls`
//! - rows, SQL as methods on `Db`: `store`
//! - Redis and S3: `cache`, `lease`, `dialogue`, `limits`, `blob`
//! - outside APIs over HTTP, each with its own errors: `clients`
//! - the handles every actor shares: `services`
//! - job rows, how a kind of work is declared, the queue's state machine: `jobs`
//! - money (charges, refunds, and the queue's unpaid endings with them; Stars): `ledger`, `payments`
//! - what the bot says (texts, replies, keyboards, "job failed" notices): `chat`
//! - JobPool, its runners and listener, the `JobHandler` trait: `pool`
//! - pool workers, then every kind of work they declare: `transcriber`, `fal_job`, `kinds`
//! - chat routing: `bot`, `dispatcher`
//! - intake (room, record once, dispatch): `intake`
//! - the ways updates come in: `poller`, `webhook`

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
pub mod http;
pub mod intake;
pub mod jobs;
pub mod keep;
pub mod kinds;
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
