//! Telegram's flood limits, kept before sending: about 30 messages a second
//! overall, 1 a second to one chat, 20 a minute to one group. The limits
//! are the bot's, not a process's: every process of the bot reserves its
//! slots in one budget in Redis (`shared`). While Redis is slow or away a
//! process keeps to `telegram.local_send_share` of each limit on its own
//! (`window`), so a handful of processes together stay near the limit
//! rather than a multiple of it. A message under every limit goes at once;
//! one over a limit waits exactly until its slot. (teloxide's `Throttle`
//! releases queued messages on a 250 ms tick, so every message waited up to
//! a quarter of a second.) A 429 that still comes is honoured by `patiently()`.

mod limits;
mod shared;
mod window;

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

pub use limits::Limits;
pub use shared::{SharedBudget, Slot};
use window::LocalBudget;

use crate::cache::Redis;
use crate::settings::TelegramSettings;

/// How long a send waits for Redis to reserve its slot before keeping to
/// the local share: a reservation takes well under a millisecond, and a
/// reply should not wait on a Redis that is failing over.
const REDIS_PATIENCE: Duration = Duration::from_millis(100);
/// After Redis failed a reservation, how long sends keep to the local share
/// before asking Redis again, so an outage costs one timeout, not one a send.
const REDIS_RECHECK: Duration = Duration::from_secs(1);
struct Budget {
    limits: Limits,
    alone: Limits,
    shared: Option<SharedBudget>,
}

/// One bot per process, so one budget (the last configured).
static BUDGET: RwLock<Option<Budget>> = RwLock::new(None);
/// The whole budget when there is no Redis, or the local share while it is away.
static LOCAL: Mutex<Option<LocalBudget>> = Mutex::new(None);
static REDIS_AWAY_UNTIL: Mutex<Option<Instant>> = Mutex::new(None);

/// The limits of this process's bot, kept locally until `share_through`.
pub fn configure(settings: &TelegramSettings) {
    let shared = BUDGET.read().ok().and_then(|b| b.as_ref().and_then(|b| b.shared.clone()));
    set(settings, shared);
}

/// From now on this process reserves its sends in the bot's budget in Redis.
pub fn share_through(redis: Redis, settings: &TelegramSettings) {
    let bot_id = settings.token.expose().split(':').next().unwrap_or_default();
    set(settings, Some(SharedBudget::new(redis, bot_id)));
}

fn set(settings: &TelegramSettings, shared: Option<SharedBudget>) {
    let limits = Limits::from_settings(settings);
    let budget = Budget { limits, alone: limits.share(settings.local_send_share), shared };
    if let Ok(mut slot) = BUDGET.write() {
        *slot = Some(budget);
    }
}

/// Which Bot API methods the limits count: those that post a message
/// (teloxide names them `SendMessage`, the Bot API `sendMessage`).
pub fn counts(method: &str) -> bool {
    let method = method.to_ascii_lowercase();
    (method.starts_with("send") && method != "sendchataction")
        || matches!(method.as_str(), "forwardmessage" | "copymessage")
}

/// Reserves a slot for one message to `chat` and waits for it.
pub async fn wait_turn(chat: Option<i64>) {
    let Some((limits, alone, shared)) =
        BUDGET.read().ok().and_then(|b| b.as_ref().map(|b| (b.limits, b.alone, b.shared.clone())))
    else {
        return;
    };
    let wait = match shared {
        Some(shared) if !redis_away() => {
            match tokio::time::timeout(REDIS_PATIENCE, shared.reserve(&limits, chat)).await {
                Ok(Ok(slot)) => slot.wait,
                failed => {
                    let reason = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {REDIS_PATIENCE:?}"),
                    };
                    redis_failed(&reason);
                    reserve_locally(&alone, chat)
                }
            }
        }
        Some(_) => reserve_locally(&alone, chat),
        None => reserve_locally(&limits, chat),
    };
    if !wait.is_zero() {
        metrics::counter!("aishad_telegram_flood_waits_total").increment(1);
        tokio::time::sleep(wait).await;
    }
}

fn reserve_locally(limits: &Limits, chat: Option<i64>) -> Duration {
    let Ok(mut local) = LOCAL.lock() else { return Duration::ZERO };
    let now = Instant::now();
    local.get_or_insert_with(LocalBudget::default).reserve(limits, chat, now).saturating_duration_since(now)
}

fn redis_away() -> bool {
    REDIS_AWAY_UNTIL.lock().ok().and_then(|t| *t).is_some_and(|until| Instant::now() < until)
}

fn redis_failed(reason: &str) {
    metrics::counter!("aishad_telegram_send_budget_fallbacks_total").increment(1);
    tracing::warn!(
        reason,
        "the shared send budget in Redis failed; keeping to this process's share of Telegram's limits"
    );
    if let Ok(mut until) = REDIS_AWAY_UNTIL.lock() {
        *until = Some(Instant::now() + REDIS_RECHECK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_count() {
        assert!(counts("sendMessage") && counts("SendPhoto") && counts("CopyMessage"));
        assert!(!counts("SendChatAction") && !counts("AnswerCallbackQuery"));
        assert!(!counts("sendChatAction") && !counts("editMessageText") && !counts("getFile"));
    }

    #[test]
    fn a_group_bursts_a_fifth_of_its_minute_a_private_chat_not_at_all() {
        let limits = Limits::new(30, 1, 20);
        assert_eq!(limits.chat_gcra(-100).tolerance_us, limits.chat_gcra(-100).interval_us * 3);
        assert_eq!(limits.chat_gcra(100).tolerance_us, 0);
        assert_eq!(limits.overall_gcra().interval_us, 33_334);
    }
}
