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

pub use limits::{Limits, Paid};
pub use shared::{Held, SharedBudget, Slot};
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
    /// Only through Redis: the day's ceiling is the bot's, not a process's.
    paid: Option<Paid>,
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
    let paid = Paid::from_settings(settings);
    let budget = Budget { limits, alone: limits.share(settings.local_send_share), shared, paid };
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

/// A wait shorter than this is a send going out, not a line to wait in.
const A_LINE: Duration = Duration::from_millis(20);

tokio::task_local! {
    /// Called before a send of this task waits in line for its turn.
    static BEFORE_WAITING: std::sync::Arc<dyn Fn() + Send + Sync>;
}

/// Runs `sends`, calling `before_waiting` each time one of its messages is
/// about to wait in line: a job delivering its result gives its slot to
/// the next job meanwhile, so a worker keeps the budget busy.
pub async fn while_waiting<F: std::future::Future>(
    before_waiting: std::sync::Arc<dyn Fn() + Send + Sync>,
    sends: F,
) -> F::Output {
    BEFORE_WAITING.scope(before_waiting, sends).await
}

/// A message's turn, kept to tell what a refusal of it was about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Turn {
    /// Its chat had a message within its own limit's span when it was reserved.
    chat_busy: bool,
    /// It goes paid: sent with `allow_paid_broadcast`.
    pub paid: bool,
    /// When its slot came, on this process's clock (`None`: it waited for none).
    pub due: Option<Instant>,
}

impl Turn {
    /// How long after its slot the message is going out: what the
    /// headroom has to absorb (with the network's share on top), as
    /// `aishad_telegram_send_lateness_seconds`.
    pub fn record_lateness(&self) {
        if let Some(due) = self.due {
            metrics::histogram!("aishad_telegram_send_lateness_seconds").record(due.elapsed().as_secs_f64());
        }
    }
}

/// What a slot was reserved in, to ask after its wait whether a bot-wide
/// hold set since then covers it.
enum Reserved {
    Shared(SharedBudget, Slot),
    Local(Instant),
}

/// Reserves a slot for one message to `chat` and waits for it; a message
/// that can be `payable` may go paid when paid broadcasts are on. A slot
/// that a refusal (`refused`) put under a hold while it waited is reserved
/// again after the hold, in line, so the held messages do not all go at its end.
pub async fn wait_turn(chat: Option<i64>, payable: bool) -> Turn {
    loop {
        let Some((wait, mut turn, reserved)) = reserve(chat, payable).await else { return Turn::default() };
        let due = Instant::now() + wait;
        turn.due = Some(due);
        if wait.is_zero() {
            return turn;
        }
        metrics::counter!("aishad_telegram_flood_waits_total").increment(1);
        if wait >= A_LINE {
            let _ = BEFORE_WAITING.try_with(|hook| hook());
        }
        tokio::time::sleep_until((due.checked_sub(HOLD_LOOKAHEAD).unwrap_or(due)).into()).await;
        let (held, ()) = futures::future::join(held_over(reserved), tokio::time::sleep_until(due.into())).await;
        if !held {
            return late_goes_paid(turn, due, payable).await;
        }
    }
}

/// A free message going out later than half what the headroom absorbs
/// (a busy machine: a send 60-90 ms late drew a refusal that held the
/// whole bot a second) would reach Telegram too close to the messages
/// after it. With paid broadcasts on it goes paid instead, at once if the
/// paid budget has a slot within that lateness; its chat's turn was already
/// its own. Otherwise it goes as it is, so one chat's messages keep their order.
async fn late_goes_paid(turn: Turn, due: Instant, payable: bool) -> Turn {
    if turn.paid || !payable || redis_away() {
        return turn;
    }
    let Some((limits, Some(shared), Some(paid))) =
        BUDGET.read().ok().and_then(|b| b.as_ref().map(|b| (b.limits, b.shared.clone(), b.paid)))
    else {
        return turn;
    };
    let limit = limits.lateness_absorbed() / 2;
    if due.elapsed() <= limit {
        return turn;
    }
    let asked = Instant::now();
    match tokio::time::timeout(REDIS_PATIENCE, shared.reserve_within(&limits, &paid, limit)).await {
        Ok(Ok(Some(slot))) => {
            metrics::counter!("aishad_telegram_late_sends_total", "sent" => if slot.paid { "paid" } else { "free" })
                .increment(1);
            tokio::time::sleep_until((asked + slot.wait).into()).await;
            Turn { paid: slot.paid, due: Some(asked + slot.wait), ..turn }
        }
        _ => turn,
    }
}

/// How long before its slot a waiting message asks whether a refusal held
/// its budget meanwhile: the question takes a round trip to Redis, which
/// would otherwise make every such message that much late, and lateness
/// is what the headroom is spent on. A hold set in these last milliseconds
/// is missed, as one set while the message is on its way would be.
const HOLD_LOOKAHEAD: Duration = Duration::from_millis(20);

/// Whether a bot-wide hold set since `reserved` was reserved covers it.
async fn held_over(reserved: Reserved) -> bool {
    match reserved {
        Reserved::Shared(shared, slot) => {
            matches!(tokio::time::timeout(REDIS_PATIENCE, shared.held_over(&slot)).await, Ok(Ok(true)))
        }
        Reserved::Local(at) => LOCAL.lock().ok().and_then(|l| l.as_ref().map(|l| l.held_over(at))).unwrap_or(false),
    }
}

async fn reserve(chat: Option<i64>, payable: bool) -> Option<(Duration, Turn, Reserved)> {
    let (limits, alone, shared, paid) =
        BUDGET.read().ok().and_then(|b| b.as_ref().map(|b| (b.limits, b.alone, b.shared.clone(), b.paid)))?;
    let local = |limits: &Limits| {
        let (at, chat_busy) = reserve_locally(limits, chat);
        Some((
            at.saturating_duration_since(Instant::now()),
            Turn { chat_busy, paid: false, due: None },
            Reserved::Local(at),
        ))
    };
    let paid = paid.filter(|_| payable);
    match shared {
        Some(shared) if !redis_away() => {
            match tokio::time::timeout(REDIS_PATIENCE, shared.reserve(&limits, chat, paid.as_ref())).await {
                Ok(Ok(slot)) => {
                    let turn = Turn { chat_busy: slot.chat_busy, paid: slot.paid, due: None };
                    Some((slot.wait, turn, Reserved::Shared(shared, slot)))
                }
                failed => {
                    let reason = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {REDIS_PATIENCE:?}"),
                    };
                    redis_failed(&reason);
                    local(&alone)
                }
            }
        }
        Some(_) => local(&alone),
        None => local(&limits),
    }
}

fn reserve_locally(limits: &Limits, chat: Option<i64>) -> (Instant, bool) {
    let now = Instant::now();
    let Ok(mut local) = LOCAL.lock() else { return (now, false) };
    local.get_or_insert_with(LocalBudget::default).reserve(limits, chat, now)
}

/// Which of a message's budgets Telegram refused it for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The bot's free 30 a second: every process's free messages wait out
    /// the `retry_after`; paid broadcasts, counted apart, go on.
    Bot,
    /// The bot's paid broadcasts: its paid messages wait; free ones go on.
    Paid,
    /// One chat's limit: only that chat waits; the bot sends on.
    Chat,
}

impl Refusal {
    /// Telegram's 429 does not say which limit it was. It is one chat's
    /// only when that chat had a message within its span and the bot's
    /// own rate cannot be why: a group's `retry_after` longer than the
    /// bot's one-second window can ask for, or a paid message, whose rate
    /// keeps at least Telegram's 1,000 less the free 30 and the headroom
    /// (a clump of a hundred, where one chat's is one message early).
    /// Otherwise the budget the message went in waits: a chat held for a
    /// bot-wide refusal would draw one more refusal for every other chat,
    /// each a longer penalty.
    pub fn of(chat: Option<i64>, turn: Turn, retry_after: Duration) -> Self {
        match chat {
            Some(chat) if turn.chat_busy && (turn.paid || (chat < 0 && retry_after > Duration::from_secs(1))) => {
                Refusal::Chat
            }
            _ if turn.paid => Refusal::Paid,
            _ => Refusal::Bot,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Refusal::Bot => "bot",
            Refusal::Paid => "paid",
            Refusal::Chat => "chat",
        }
    }
}

/// Telegram refused a message to `chat` for a rate (429, `retry_after`):
/// holds the budget it was refused for, in every process of the bot.
pub async fn refused(chat: Option<i64>, turn: Turn, retry_after: Duration) {
    let refusal = Refusal::of(chat, turn, retry_after);
    metrics::counter!("aishad_telegram_send_holds_total", "scope" => refusal.as_str()).increment(1);
    tracing::warn!(chat_id = ?chat, scope = refusal.as_str(), ?retry_after, "Telegram refused a message for its rate; holding the budget");
    let held = match (refusal, chat) {
        (Refusal::Chat, Some(chat)) => Held::Chat(chat),
        (Refusal::Paid, _) => Held::Paid,
        _ => Held::Free,
    };
    // Nothing goes paid on the local budget, so a paid refusal holds nothing there.
    if held != Held::Paid {
        if let Ok(mut local) = LOCAL.lock() {
            let held_chat = if let Held::Chat(chat) = held { Some(chat) } else { None };
            local.get_or_insert_with(LocalBudget::default).hold(held_chat, Instant::now() + retry_after);
        }
    }
    let Some((limits, shared, paid)) =
        BUDGET.read().ok().and_then(|b| b.as_ref().map(|b| (b.limits, b.shared.clone(), b.paid)))
    else {
        return;
    };
    if let Some(shared) = shared.filter(|_| !redis_away()) {
        match tokio::time::timeout(REDIS_PATIENCE, shared.hold(&limits, paid.as_ref(), held, retry_after)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => redis_failed(&e.to_string()),
            Err(_) => redis_failed(&format!("no answer within {REDIS_PATIENCE:?}")),
        }
    }
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
    fn a_refusal_is_one_groups_only_when_that_group_was_busy_and_its_wait_is_a_minutes() {
        let busy = Turn { chat_busy: true, paid: false, due: None };
        let long = Duration::from_secs(12);
        assert_eq!(Refusal::of(Some(-100), busy, long), Refusal::Chat);
        assert_eq!(Refusal::of(Some(-100), Turn::default(), long), Refusal::Bot, "one message breaks no chat's limit");
        assert_eq!(
            Refusal::of(Some(-100), busy, Duration::from_secs(1)),
            Refusal::Bot,
            "the bot's window asks as much"
        );
        assert_eq!(Refusal::of(Some(100), busy, long), Refusal::Bot, "a private chat's limit frees within a second");
        assert_eq!(Refusal::of(None, busy, long), Refusal::Bot);
    }

    #[test]
    fn a_paid_message_refused_in_a_busy_chat_is_that_chats_else_the_paid_budgets() {
        let second = Duration::from_secs(1);
        let paid = Turn { chat_busy: false, paid: true, due: None };
        let busy = Turn { chat_busy: true, paid: true, due: None };
        assert_eq!(Refusal::of(Some(100), busy, second), Refusal::Chat, "the paid rate keeps a hundred in hand");
        assert_eq!(Refusal::of(Some(100), paid, second), Refusal::Paid, "free messages go on");
        assert_eq!(Refusal::of(None, busy, second), Refusal::Paid);
    }

    #[test]
    fn headroom_spaces_every_limit_wider_by_its_share_a_chat_by_a_tenth_at_least() {
        let limits = Limits::new(30, 1, 20).with_headroom(0.05);
        assert_eq!(limits.overall_gcra().interval_us, 35_088, "30 a second at 95 %");
        assert_eq!(limits.chat_gcra(100).interval_us, 1_111_111, "a chat keeps at least a tenth");
        assert_eq!(Limits::new(30, 1, 20).with_headroom(0.2).chat_gcra(100).interval_us, 1_250_000);
        assert_eq!(Limits::new(30, 1, 20).with_headroom(0.0).overall, Limits::new(30, 1, 20).overall);
    }

    #[test]
    fn a_bot_wide_hold_delays_every_chat_a_chats_hold_only_that_chat() {
        let limits = Limits::new(30, 1, 20);
        let mut budget = LocalBudget::default();
        let now = Instant::now();
        let held = now + Duration::from_secs(5);
        budget.hold(Some(-7), held);
        assert_eq!(budget.reserve(&limits, Some(-7), now).0, held);
        assert!(budget.reserve(&limits, Some(8), now).0 < held, "another chat goes on");
        budget.hold(None, held);
        assert!(budget.held_over(now + Duration::from_secs(1)) && !budget.held_over(held));
        assert!(budget.reserve(&limits, Some(9), now).0 >= held);
    }

    #[test]
    fn a_group_bursts_a_fifth_of_its_minute_a_private_chat_not_at_all() {
        let limits = Limits::new(30, 1, 20);
        assert_eq!(limits.chat_gcra(-100).tolerance_us, limits.chat_gcra(-100).interval_us * 3);
        assert_eq!(limits.chat_gcra(100).tolerance_us, 0);
        assert_eq!(limits.overall_gcra().interval_us, 33_334);
    }
}
