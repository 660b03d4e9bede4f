//! TelegramPoller: exactly one replica calls getUpdates, the one holding the
//! Redis lease. Each cycle renews the lease, then long-polls for no longer
//! than the lease is surely ours, so a replica that loses the lease has
//! stopped polling before anyone else can take it.
//!
//! What it fetches goes through the intake (`intake::Intake`): recorded in
//! PostgreSQL before the offset moves past it, handled once.
//!
//! One cycle, as steps: lead (hold the lease) → recover (now and then) →
//! room (backpressure) → window (how long the poll may stay open) → fence
//! (never two getUpdates at once) → poll → take what came.

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde_json::Value;
use teloxide::prelude::Requester;

use crate::backoff::Backoff;
use crate::clients::{Patiently, PollError, TgBot, UpdatesClient};
use crate::intake::{Full, Intake};
use crate::lease::Lease;
use crate::services::Services;
use crate::store::updates::PollFence;

pub const LEASE_NAME: &str = "poller:lease";
const RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
/// Slack for the network: a poll ends at least this long before the lease could.
const NETWORK_SLACK: Duration = Duration::from_secs(1);
/// How often the leader looks for updates whose handler went away (claimed
/// by a process that died, see dispatcher::CLAIM), and how old an update
/// must be to count: older than any still waiting in our own lanes should be.
const RECOVER_EVERY: Duration = Duration::from_secs(10);
/// How soon to look again when the dispatcher holds as many as it may.
const FULL_RECHECK: Duration = Duration::from_millis(200);

pub struct TelegramPoller;

pub enum PollerMsg {
    Poll,
    /// Renews the lease between polls, on its own clock: a backoff after a
    /// failed getUpdates may outlast the lease, which must not lapse meanwhile.
    Renew,
}

pub struct PollerState {
    services: Services,
    bot: TgBot,
    updates: UpdatesClient,
    lease: Lease,
    intake: Intake,
    /// Loaded from the recorded updates on taking the lease.
    offset: i64,
    leader: bool,
    failures: u32,
    /// When abandoned updates were last looked for.
    recovered_at: Instant,
}

impl Actor for TelegramPoller {
    type Msg = PollerMsg;
    type State = PollerState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        myself: ActorRef<PollerMsg>,
        services: Services,
    ) -> Result<PollerState, ActorProcessingErr> {
        let settings = &services.settings;
        let bot = services.telegram.clone();
        let updates = UpdatesClient::new(&settings.telegram)?;
        let lease = Lease::new(services.redis.clone(), LEASE_NAME, &settings.instance_id, settings.telegram.lease_ttl);
        let intake = Intake::start(&services, myself.get_cell()).await?;
        myself.cast(PollerMsg::Poll)?;
        myself.send_interval(standby(&lease), || PollerMsg::Renew);
        Ok(PollerState {
            services,
            bot,
            updates,
            lease,
            intake,
            offset: 0,
            leader: false,
            failures: 0,
            recovered_at: Instant::now(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<PollerMsg>,
        message: PollerMsg,
        state: &mut PollerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PollerMsg::Poll => {
                let next = match cycle(state).await {
                    Ok(next) | Err(next) => next,
                };
                myself.send_after(next, || PollerMsg::Poll);
            }
            PollerMsg::Renew => keep_lease(state).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<PollerMsg>,
        event: SupervisionEvent,
        _state: &mut PollerState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(_, e) => Err(format!("dispatcher failed: {e}").into()),
            SupervisionEvent::ActorTerminated(..) => Err("dispatcher stopped".into()),
            _ => Ok(()),
        }
    }

    async fn post_stop(&self, _myself: ActorRef<PollerMsg>, state: &mut PollerState) -> Result<(), ActorProcessingErr> {
        // Drain first, release after: the next leader re-handles what is
        // recorded but unhandled, and must not start while we still handle it.
        state.intake.drain().await;
        if state.leader {
            let _ = state.services.db.close_poll(state.lease.token()).await;
            match state.lease.release().await {
                Ok(_) => tracing::info!("poller lease released"),
                Err(e) => tracing::warn!(error = %e, "could not release the poller lease; it will expire"),
            }
            metrics::gauge!("aishad_poller_leader").set(0.0);
        }
        Ok(())
    }
}

/// A step of the cycle: `Err(wait)` ends this cycle, the next starts after `wait`.
type Step<T> = Result<T, Duration>;

/// One poll cycle; either way, how long to wait before the next.
async fn cycle(state: &mut PollerState) -> Step<Duration> {
    lead(state).await?;
    recover_now_and_then(state).await;
    room(state).await?;
    let window = poll_window(state)?;
    fence(state, window).await?;
    let polled = poll(state, window).await?;
    Ok(take_polled(state, polled).await)
}

/// Holds the lease (renewing it), taking over polling when it is new to us.
async fn lead(state: &mut PollerState) -> Step<()> {
    match state.lease.acquire_or_renew().await {
        Ok(true) => {}
        Ok(false) => {
            if state.leader {
                let why = state.lease.why_lost().await;
                step_down(state, &why).await;
            }
            return Err(standby(&state.lease));
        }
        Err(e) => {
            // Tried again as often as a standby tries: Redis that moved (a
            // failover) is followed within a second of taking writes again.
            lease_failed(state, &e).await;
            return Err(standby(&state.lease));
        }
    }
    if !state.leader {
        if let Err(e) = take_over(state).await {
            tracing::warn!(error = %e, "taking over polling failed; retrying");
            return Err(backoff(state));
        }
    }
    Ok(())
}

/// How long a replica without the lease waits before trying again.
fn standby(lease: &Lease) -> Duration {
    (lease.ttl() / 5).min(Duration::from_secs(1))
}

async fn recover_now_and_then(state: &mut PollerState) {
    if state.recovered_at.elapsed() < RECOVER_EVERY {
        return;
    }
    state.recovered_at = Instant::now();
    match state.intake.recover(RECOVER_EVERY).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(recovered = n, "re-dispatched updates whose handler went away"),
        Err(e) => tracing::warn!(error = %e, "looking for abandoned updates failed"),
    }
}

/// Fetches nothing while the dispatcher is full, or gone (the supervisor
/// is told of that and restarts us).
async fn room(state: &mut PollerState) -> Step<()> {
    match state.intake.room().await {
        Ok(()) => Ok(()),
        Err(Full::Pending(pending)) => {
            tracing::debug!(pending, "dispatcher is full; not fetching more yet");
            Err(FULL_RECHECK)
        }
        Err(e @ Full::DispatcherGone) => {
            tracing::warn!(error = %e, "not fetching");
            Err(backoff(state))
        }
    }
}

/// How long a poll may stay open: only while the lease is surely ours,
/// with slack for the network.
fn poll_window(state: &PollerState) -> Step<Duration> {
    let window = state.lease.remaining().saturating_sub(state.lease.ttl() / 3);
    if window <= NETWORK_SLACK {
        return Err(Duration::ZERO);
    }
    Ok(window)
}

/// Marks our poll open in PostgreSQL, unless the last leader's may still be.
async fn fence(state: &mut PollerState, window: Duration) -> Step<()> {
    match state.services.db.fence_poll(state.lease.token(), window).await {
        Ok(PollFence::Granted) => Ok(()),
        Ok(PollFence::Busy(left)) => {
            // Redis lost the lease (a restart, a failover) while the last
            // leader's poll may still be open: never two getUpdates at once.
            tracing::info!(wait = ?left, "the previous leader's getUpdates may still be open; waiting it out");
            Err(left.clamp(Duration::from_millis(50), standby(&state.lease)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot fence the poll in PostgreSQL; not polling");
            Err(backoff(state))
        }
    }
}

/// getUpdates, abandoned the moment the lease is not surely ours.
async fn poll(state: &mut PollerState, window: Duration) -> Step<Result<Vec<Value>, PollError>> {
    let settings = &state.services.settings;
    let timeout = settings.telegram.poll_timeout.min(window - NETWORK_SLACK);
    let batch = settings.poller.batch.clamp(1, 100);
    let PollerState { updates, lease, offset, .. } = &mut *state;
    let polled = tokio::select! {
        polled = updates.get_updates(*offset, batch, timeout, window) => Some(polled),
        () = until_lease_lost(lease) => None,
    };
    match polled {
        Some(polled) => Ok(polled),
        None => {
            // Dropping the request closes it: the lease may be someone else's now.
            tracing::warn!("lost the poller lease mid-poll; abandoned the getUpdates");
            let why = state.lease.why_lost().await;
            step_down(state, &format!("the lease was lost during a poll: {why}")).await;
            Err(standby(&state.lease))
        }
    }
}

/// Hands what came to the intake and moves the offset past it; on an error,
/// how long to wait.
async fn take_polled(state: &mut PollerState, polled: Result<Vec<Value>, PollError>) -> Duration {
    let error = match polled {
        Ok(updates) => match state.intake.take(updates).await {
            Ok(taken) => {
                if let Some(last) = taken.last {
                    state.offset = last + 1;
                }
                state.failures = 0;
                return Duration::ZERO;
            }
            Err(e) => {
                // Not recorded, so not acknowledged: the same updates come back.
                tracing::warn!(error = %e, "recording updates failed; they will be fetched again");
                return backoff(state);
            }
        },
        Err(e) => e,
    };
    poll_failed(state, error).await
}

async fn poll_failed(state: &mut PollerState, error: PollError) -> Duration {
    let kind = match &error {
        PollError::RetryAfter(_) => "429",
        PollError::Conflict | PollError::WebhookActive => "409",
        _ => "other",
    };
    metrics::counter!("aishad_telegram_errors_total", "kind" => kind).increment(1);
    match error {
        PollError::RetryAfter(wait) => {
            tracing::warn!(retry_after = ?wait, "getUpdates rate limited (429)");
            wait
        }
        PollError::Conflict => {
            tracing::warn!(
                "getUpdates conflict (409): another poller is running; backing off and re-checking the lease"
            );
            backoff(state)
        }
        PollError::WebhookActive => {
            tracing::warn!("a webhook is set (409); deleting it so that polling works");
            if let Err(e) = state.bot.delete_webhook().patiently().await {
                tracing::warn!(error = %e, "deleteWebhook failed");
                return backoff(state);
            }
            Duration::ZERO
        }
        e => {
            tracing::warn!(error = %e, "getUpdates failed");
            backoff(state)
        }
    }
}

fn backoff(state: &mut PollerState) -> Duration {
    let delay = RETRY.delay(state.failures);
    state.failures = state.failures.saturating_add(1);
    delay
}

/// Renews the lease every fifth of its TTL (at most every second) while a
/// poll is open; returns as soon as it is not surely ours: Redis unreachable,
/// or the key gone (Redis restarted without persistence, or failed over).
async fn until_lease_lost(lease: &mut Lease) {
    let every = standby(lease);
    loop {
        tokio::time::sleep(every).await;
        if !matches!(lease.acquire_or_renew().await, Ok(true)) {
            return;
        }
    }
}

/// Between polls, while leading: the lease renewed once a renewal is due
/// (a poll renews it itself, so what queued up meanwhile costs nothing).
async fn keep_lease(state: &mut PollerState) {
    let due = state.lease.remaining() < state.lease.ttl().saturating_sub(standby(&state.lease));
    if !state.leader || !due {
        return;
    }
    match state.lease.acquire_or_renew().await {
        Ok(true) => {}
        Ok(false) => {
            let why = state.lease.why_lost().await;
            step_down(state, &why).await;
        }
        Err(e) => lease_failed(state, &e).await,
    }
}

/// Redis did not take the lease's write: unreachable, too slow, or a
/// replica (a failover demoted the node this URL names). Every attempt is
/// logged and counted, leader or standby: a bot that silently stops polling
/// is the worst outcome.
async fn lease_failed(state: &mut PollerState, error: &crate::cache::CacheError) {
    metrics::counter!("aishad_poller_lease_errors_total").increment(1);
    tracing::warn!(error = %error, redis = state.services.redis.host(), "could not take or renew the poller lease");
    step_down(state, &format!("Redis did not take the lease's renewal: {error}")).await;
}

async fn step_down(state: &mut PollerState, why: &str) {
    if state.leader {
        tracing::warn!(reason = why, "stopped polling; standing by");
        metrics::gauge!("aishad_poller_leader").set(0.0);
        metrics::counter!("aishad_poller_lease_lost_total").increment(1);
        // No poll of ours is open any more: the next leader need not wait for it.
        if let Err(e) = state.services.db.close_poll(state.lease.token()).await {
            tracing::debug!(error = %e, "could not mark our poll closed; the next leader waits out its window");
        }
    }
    state.leader = false;
}

/// On taking the lease: resume from the recorded offset, re-handle what a
/// previous leader recorded but did not handle, register the commands.
async fn take_over(state: &mut PollerState) -> Result<(), crate::store::StoreError> {
    state.offset = state.services.db.next_update_offset().await?;
    state.recovered_at = Instant::now();
    let recovered = state.intake.recover(Duration::ZERO).await?;
    state.leader = true;
    metrics::gauge!("aishad_poller_leader").set(1.0);
    tracing::info!(offset = state.offset, recovered, "took the poller lease; polling");
    // Off the poll cycle: with the Bot API unreachable, setMyCommands's
    // retries outlast the lease, which the poller would lose and retake.
    let bot = state.bot.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::bot::register_commands(&bot).await {
            tracing::warn!(error = %e, "setMyCommands failed; the command menu may be stale");
        }
    });
    Ok(())
}
