//! Telegram's flood limits, kept before sending: about 30 messages a second
//! overall, 1 a second to one chat, 20 a minute to one group. A message
//! under every limit goes at once; one over a limit waits exactly until it
//! is under again. (teloxide's `Throttle` releases queued messages on a
//! 250 ms tick, so every message waited up to a quarter of a second, which
//! capped a busy chat at four answers a second and put 125 ms on average
//! into every reply.) A 429 that still comes is honoured by `patiently()`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::settings::TelegramSettings;

#[derive(Debug, Clone, Copy)]
struct Limits {
    per_second: u32,
    per_chat_second: u32,
    per_group_minute: u32,
}

/// A sliding window: how many sends it allows in `span`.
#[derive(Debug, Default)]
struct Window {
    sent: std::collections::VecDeque<Instant>,
}

impl Window {
    /// When a send may go, given at most `allowed` in any `span`.
    fn next_slot(&mut self, now: Instant, allowed: u32, span: Duration) -> Instant {
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= span) {
            self.sent.pop_front();
        }
        if (self.sent.len() as u32) < allowed.max(1) {
            return now;
        }
        self.sent[self.sent.len() - allowed.max(1) as usize] + span
    }
}

#[derive(Default)]
struct State {
    overall: Window,
    chats: HashMap<i64, Window>,
}

/// One bot per process, so one set of limits (the last configured).
static LIMITS: std::sync::RwLock<Option<Limits>> = std::sync::RwLock::new(None);
static STATE: OnceLock<Mutex<State>> = OnceLock::new();

/// The limits of this process's bot.
pub fn configure(settings: &TelegramSettings) {
    if let Ok(mut limits) = LIMITS.write() {
        *limits = Some(Limits {
            per_second: settings.send_per_second,
            per_chat_second: settings.send_per_chat_second,
            per_group_minute: settings.send_per_group_minute,
        });
    }
}

/// Which Bot API methods the limits count: those that post a message
/// (teloxide names them `SendMessage`, the Bot API `sendMessage`).
pub fn counts(method: &str) -> bool {
    let method = method.to_ascii_lowercase();
    (method.starts_with("send") && method != "sendchataction") || matches!(method.as_str(), "forwardmessage" | "copymessage")
}

/// Reserves a slot for one message to `chat` and waits for it.
pub async fn wait_turn(chat: Option<i64>) {
    let Some(limits) = LIMITS.read().ok().and_then(|l| *l) else { return };
    let at = {
        let Ok(mut state) = STATE.get_or_init(Default::default).lock() else { return };
        let now = Instant::now();
        let mut at = state.overall.next_slot(now, limits.per_second, Duration::from_secs(1));
        if let Some(chat) = chat {
            // Groups and channels have negative ids: a per-minute limit; private chats a per-second one.
            let (allowed, span) =
                if chat < 0 { (limits.per_group_minute, Duration::from_secs(60)) } else { (limits.per_chat_second, Duration::from_secs(1)) };
            let window = state.chats.entry(chat).or_default();
            at = at.max(window.next_slot(now, allowed, span));
            window.sent.push_back(at);
            if state.chats.len() > 10_000 {
                state.chats.retain(|_, w| w.sent.back().is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60)));
            }
        }
        state.overall.sent.push_back(at);
        at
    };
    let wait = at.saturating_duration_since(Instant::now());
    if !wait.is_zero() {
        metrics::counter!("aishad_telegram_flood_waits_total").increment(1);
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_the_limit_a_send_goes_at_once_over_it_waits_for_the_window() {
        let mut window = Window::default();
        let start = Instant::now();
        for _ in 0..3 {
            let slot = window.next_slot(start, 3, Duration::from_secs(1));
            assert_eq!(slot, start, "no wait under the limit");
            window.sent.push_back(slot);
        }
        let fourth = window.next_slot(start, 3, Duration::from_secs(1));
        assert_eq!(fourth, start + Duration::from_secs(1), "the fourth waits for the first to leave the window");
    }

    #[test]
    fn only_messages_count() {
        assert!(counts("sendMessage") && counts("SendPhoto") && counts("CopyMessage"));
        assert!(!counts("SendChatAction") && !counts("AnswerCallbackQuery"));
        assert!(!counts("sendChatAction") && !counts("editMessageText") && !counts("getFile"));
    }
}

#[cfg(test)]
mod configured {
    use super::*;

    #[tokio::test]
    async fn the_configured_limits_are_the_ones_kept() {
        let settings = TelegramSettings { send_per_second: 1_000_000, send_per_chat_second: 1_000_000, ..Default::default() };
        configure(&settings);
        let started = Instant::now();
        for _ in 0..5 {
            wait_turn(Some(424_242)).await;
        }
        assert!(started.elapsed() < Duration::from_millis(100), "{:?}", started.elapsed());
    }
}
