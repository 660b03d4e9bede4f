//! The supervised components of aishad and what they use. The daemon crate
//! only wires these together.

pub mod backoff;
pub mod blob;
pub mod bot;
pub mod cache;
pub mod clients;
pub mod dialogue;
pub mod dispatcher;
pub mod error;
pub mod fal;
pub mod fal_job;
pub mod http;
pub mod jobs;
pub mod lease;
pub mod ledger;
pub mod poller;
pub mod secret;
pub mod services;
pub mod settings;
pub mod store;
pub mod transcriber;
pub mod webhook;
