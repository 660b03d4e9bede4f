//! Which actors each mode runs, in start order: workers first, so that
//! nothing is taken in before something can work on it; intake last. The
//! supervisor stops them in reverse: intake first, workers drain last.

use std::collections::BTreeMap;

use aisha_actors::clients::ClientError;
use aisha_actors::fal_job::FalJobs;
use aisha_actors::poller::TelegramPoller;
use aisha_actors::pool::{Handlers, JobPool, JobPoolArgs};
use aisha_actors::services::Services;
use aisha_actors::settings::Mode;
use aisha_actors::transcriber::Transcriber;
use aisha_actors::webhook::WebhookListener;

use crate::supervisor::{ChildSpec, Restart};

pub const TRANSCRIBER_POOL: &str = "transcriber_pool";
pub const FAL_JOB_POOL: &str = "fal_job_pool";
pub const WEBHOOK_LISTENER: &str = "webhook_listener";
pub const TELEGRAM_POLLER: &str = "telegram_poller";

/// A JobPool child running `handlers`.
fn pool(name: &'static str, services: &Services, handlers: Handlers) -> ChildSpec {
    let handlers: BTreeMap<_, _> = handlers.into_iter().map(|(kind, h)| (kind.to_owned(), h)).collect();
    let services = services.clone();
    ChildSpec::new(name, Restart::Permanent, move || {
        (JobPool, JobPoolArgs { services: services.clone(), handlers: handlers.clone() })
    })
}

/// Fails only when a client cannot be built from the settings (a bad URL).
pub fn children(mode: Mode, services: &Services) -> Result<Vec<ChildSpec>, ClientError> {
    let mut children = Vec::new();
    if mode.works() {
        children.push(pool(TRANSCRIBER_POOL, services, Transcriber::handlers(services.clone())?));
        children.push(pool(FAL_JOB_POOL, services, FalJobs::handlers(services.clone())?));
    }
    if mode.serves_webhooks() {
        let s = services.clone();
        children.push(ChildSpec::new(WEBHOOK_LISTENER, Restart::Permanent, move || (WebhookListener, s.clone())));
    }
    if mode.polls() {
        let s = services.clone();
        children.push(ChildSpec::new(TELEGRAM_POLLER, Restart::Permanent, move || (TelegramPoller, s.clone())));
    }
    Ok(children)
}

/// The names `children(mode, _)` starts, for tests and `/readyz` checks.
pub fn child_names(mode: Mode) -> Vec<&'static str> {
    let mut names = Vec::new();
    if mode.works() {
        names.extend([TRANSCRIBER_POOL, FAL_JOB_POOL]);
    }
    if mode.serves_webhooks() {
        names.push(WEBHOOK_LISTENER);
    }
    if mode.polls() {
        names.push(TELEGRAM_POLLER);
    }
    names
}
