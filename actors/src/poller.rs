//! TelegramPoller: exactly one replica calls getUpdates, the one holding the
//! Redis lease. Each cycle renews the lease, then long-polls for no longer
//! than the lease is surely ours, so a replica that loses the lease has
//! stopped polling before anyone else can take it.
//!
//! Updates are recorded in PostgreSQL before the offset moves past them,
//! each claimed for its handler by the same statement (see
//! `dispatcher::CLAIM`); only updates recorded for the first time are
//! dispatched, so the old leader's last batch, seen again by the new one,
//! is handled once.

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use teloxide::prelude::Requester;

use crate::backoff::Backoff;
use crate::bot::BotHandler;
use crate::clients::{parse_update, Patiently, PollError, TgBot, UpdatesClient};
use crate::dispatcher::{DispatchMsg, Dispatcher, DispatcherArgs, Recorded, CLAIM};
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

pub struct TelegramPoller;

pub enum PollerMsg {
    Poll,
}

pub struct PollerState {
    services: Services,
    bot: TgBot,
    updates: UpdatesClient,
    handler: BotHandler,
    lease: Lease,
    dispatcher: ActorRef<DispatchMsg>,
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
        let handler = BotHandler::new(services.clone());
        let lease = Lease::new(services.redis.clone(), LEASE_NAME, &settings.instance_id, settings.telegram.lease_ttl);
        let args = DispatcherArgs {
            handler: handler.clone(),
            db: services.db.clone(),
            instance: settings.instance_id.clone(),
            max_concurrent_chats: settings.poller.max_concurrent_chats,
        };
        let (dispatcher, _) = Actor::spawn_linked(None, Dispatcher, args, myself.get_cell()).await?;
        myself.cast(PollerMsg::Poll)?;
        Ok(PollerState {
            services,
            bot,
            updates,
            handler,
            lease,
            dispatcher,
            offset: 0,
            leader: false,
            failures: 0,
            recovered_at: Instant::now(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<PollerMsg>,
        PollerMsg::Poll: PollerMsg,
        state: &mut PollerState,
    ) -> Result<(), ActorProcessingErr> {
        let next = cycle(state).await;
        myself.send_after(next, || PollerMsg::Poll);
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
        let _ = state.dispatcher.stop_and_wait(None, None).await;
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

/// One poll cycle; returns how long to wait before the next.
async fn cycle(state: &mut PollerState) -> Duration {
    let ttl = state.lease.ttl();
    let standby = (ttl / 5).min(Duration::from_secs(1));
    match state.lease.acquire_or_renew().await {
        Ok(true) => {}
        Ok(false) => {
            step_down(state, "another replica holds the poller lease").await;
            return standby;
        }
        Err(e) => {
            step_down(state, &format!("cannot reach Redis to renew the lease: {e}")).await;
            return backoff(state);
        }
    }
    if !state.leader {
        if let Err(e) = take_over(state).await {
            tracing::warn!(error = %e, "taking over polling failed; retrying");
            return backoff(state);
        }
    }

    if state.recovered_at.elapsed() >= RECOVER_EVERY {
        match recover(state, RECOVER_EVERY).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(recovered = n, "re-dispatched updates whose handler went away"),
            Err(e) => tracing::warn!(error = %e, "looking for abandoned updates failed"),
        }
    }
    let settings = &state.services.settings;
    let pending = ractor::call!(state.dispatcher, DispatchMsg::Pending).unwrap_or(0);
    if pending >= settings.poller.max_pending {
        tracing::debug!(pending, "dispatcher is full; not fetching more yet");
        return Duration::from_millis(200);
    }
    // Poll only while the lease is surely ours, with slack for the network.
    let window = state.lease.remaining().saturating_sub(ttl / 3);
    if window <= NETWORK_SLACK {
        return Duration::ZERO;
    }
    let timeout = settings.telegram.poll_timeout.min(window - NETWORK_SLACK);
    let batch = settings.poller.batch.clamp(1, 100);
    match state.services.db.fence_poll(state.lease.token(), window).await {
        Ok(PollFence::Granted) => {}
        Ok(PollFence::Busy(left)) => {
            // Redis lost the lease (a restart, a failover) while the last
            // leader's poll may still be open: never two getUpdates at once.
            tracing::info!(wait = ?left, "the previous leader's getUpdates may still be open; waiting it out");
            return left.clamp(Duration::from_millis(50), standby);
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot fence the poll in PostgreSQL; not polling");
            return backoff(state);
        }
    }
    let polled = {
        let PollerState { updates, lease, offset, .. } = &mut *state;
        tokio::select! {
            polled = updates.get_updates(*offset, batch, timeout, window) => Some(polled),
            () = until_lease_lost(lease) => None,
        }
    };
    let Some(polled) = polled else {
        // Dropping the request closes it: the lease may be someone else's now.
        tracing::warn!("lost the poller lease mid-poll; abandoned the getUpdates");
        step_down(state, "the lease was lost during a poll").await;
        return standby;
    };
    match polled {
        Ok(updates) => match record_and_dispatch(state, updates).await {
            Ok(()) => {
                state.failures = 0;
                Duration::ZERO
            }
            Err(e) => {
                // Not recorded, so not acknowledged: the same updates come back.
                tracing::warn!(error = %e, "recording updates failed; they will be fetched again");
                backoff(state)
            }
        },
        Err(PollError::RetryAfter(wait)) => {
            tracing::warn!(retry_after = ?wait, "getUpdates rate limited (429)");
            metrics::counter!("aishad_telegram_errors_total", "kind" => "429").increment(1);
            wait
        }
        Err(PollError::Conflict) => {
            tracing::warn!(
                "getUpdates conflict (409): another poller is running; backing off and re-checking the lease"
            );
            metrics::counter!("aishad_telegram_errors_total", "kind" => "409").increment(1);
            backoff(state)
        }
        Err(PollError::WebhookActive) => {
            tracing::warn!("a webhook is set (409); deleting it so that polling works");
            metrics::counter!("aishad_telegram_errors_total", "kind" => "409").increment(1);
            if let Err(e) = state.bot.delete_webhook().patiently().await {
                tracing::warn!(error = %e, "deleteWebhook failed");
                return backoff(state);
            }
            Duration::ZERO
        }
        Err(e) => {
            tracing::warn!(error = %e, "getUpdates failed");
            metrics::counter!("aishad_telegram_errors_total", "kind" => "other").increment(1);
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
    let every = (lease.ttl() / 5).min(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        if !matches!(lease.acquire_or_renew().await, Ok(true)) {
            return;
        }
    }
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
    let recovered = recover(state, Duration::ZERO).await?;
    state.leader = true;
    metrics::gauge!("aishad_poller_leader").set(1.0);
    tracing::info!(offset = state.offset, recovered, "took the poller lease; polling");
    // Off the poll cycle: with the Bot API unreachable, setMyCommands's
    // retries outlast the lease, which the poller would lose and retake.
    let handler = state.handler.clone();
    tokio::spawn(async move {
        if let Err(e) = handler.register_commands().await {
            tracing::warn!(error = %e, "setMyCommands failed; the command menu may be stale");
        }
    });
    Ok(())
}

/// Dispatches recorded updates nobody handles or claims (their handler
/// died), recorded at least `age` ago; returns how many. The dispatcher's
/// claim makes a second dispatch of one update harmless.
async fn recover(state: &mut PollerState, age: Duration) -> Result<usize, crate::store::StoreError> {
    state.recovered_at = Instant::now();
    let unhandled = state.services.db.unhandled_updates(state.services.settings.poller.max_pending as i64, age).await?;
    let recovered: Vec<Recorded> = unhandled
        .into_iter()
        .filter_map(|(update_id, payload)| {
            parse_update(&payload).ok().map(|update| Recorded { update_id, update, recorded_at: None })
        })
        .collect();
    let count = recovered.len();
    if count > 0 {
        let _ = state.dispatcher.cast(DispatchMsg::Dispatch(recovered));
    }
    Ok(count)
}

async fn record_and_dispatch(
    state: &mut PollerState,
    raw: Vec<serde_json::Value>,
) -> Result<(), crate::store::StoreError> {
    let id_of = |v: &serde_json::Value| v["update_id"].as_i64();
    let Some(last) = raw.iter().filter_map(id_of).max() else { return Ok(()) };
    let (mut parsed, mut rows) = (Vec::with_capacity(raw.len()), Vec::with_capacity(raw.len()));
    for value in raw {
        let Some(id) = id_of(&value) else { continue };
        let update = parse_update(&value)
            .map_err(|e| tracing::warn!(update_id = id, error = %e, "an update teloxide cannot parse; recorded, not handled"))
            .ok();
        rows.push((id, update.as_ref().and_then(|u| u.chat()).map(|c| c.id.0), value));
        parsed.push((id, update));
    }
    let recorded_at = Instant::now();
    let new = state.services.db.record_updates(&rows, &state.services.settings.instance_id, CLAIM).await?;
    metrics::counter!("aishad_updates_received_total").increment(rows.len() as u64);
    if new.len() < rows.len() {
        tracing::info!(seen_before = rows.len() - new.len(), "skipping updates already recorded");
    }
    let mut fresh = Vec::with_capacity(new.len());
    for (update_id, update) in parsed.into_iter().filter(|(id, _)| new.binary_search(id).is_ok()) {
        match update {
            Some(update) => fresh.push(Recorded { update_id, update, recorded_at: Some(recorded_at) }),
            None => state.services.db.mark_update_handled(update_id, Some("unparseable update")).await?,
        }
    }
    if !fresh.is_empty() {
        let _ = state.dispatcher.cast(DispatchMsg::Dispatch(fresh));
    }
    state.offset = last + 1;
    Ok(())
}
