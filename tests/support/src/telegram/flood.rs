//! Telegram's flood limits as the Bot API enforces them, for tests that
//! switch them on: about 30 messages a second per bot, 1 a second per
//! private chat, 20 a minute per group, counted on arrival; a message over
//! any of them is refused 429 with the `retry_after` that frees its slot.
//! As strict as Telegram can be: each window slides over exactly its span,
//! with no slack, so two sends whose slots were a limit's spacing apart but
//! which arrive closer (a busy machine delays the first) are one too many.
//! A message sent with `allow_paid_broadcast` is not counted in the free 30
//! a second but in the paid 1,000, and costs the bot 0.1 Star; one chat's
//! limits hold either way.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone, Copy)]
pub struct FloodLimits {
    pub per_second: u32,
    pub per_chat_second: u32,
    pub per_group_minute: u32,
}

impl Default for FloodLimits {
    fn default() -> Self {
        Self { per_second: 30, per_chat_second: 1, per_group_minute: 20 }
    }
}

#[derive(Default)]
pub(super) struct Flood {
    limits: Option<FloodLimits>,
    overall: VecDeque<Instant>,
    paid: VecDeque<Instant>,
    chats: HashMap<i64, VecDeque<Instant>>,
    pub refused: usize,
    /// Messages sent with `allow_paid_broadcast`: 0.1 Star each.
    pub paid_sent: usize,
}

/// Telegram's rate for messages sent with `allow_paid_broadcast`.
const PAID_PER_SECOND: u32 = 1000;

impl Flood {
    pub(super) fn enforce(&mut self, limits: FloodLimits) {
        self.limits = Some(limits);
    }

    /// Admits one call, or says after how many seconds it may be sent again.
    pub(super) fn admit(&mut self, method: &str, params: &Value, now: Instant) -> Result<(), u64> {
        let Some(limits) = self.limits else { return Ok(()) };
        if !counts(method) {
            return Ok(());
        }
        let chat = params["chat_id"].as_i64().or_else(|| params["chat_id"].as_str().and_then(|s| s.parse().ok()));
        let paid = params["allow_paid_broadcast"].as_bool() == Some(true)
            || params["allow_paid_broadcast"].as_str() == Some("true");
        let (budget, allowed) =
            if paid { (&mut self.paid, PAID_PER_SECOND) } else { (&mut self.overall, limits.per_second) };
        let mut wait = free_in(budget, allowed, Duration::from_secs(1), now);
        if let Some(chat) = chat {
            let (allowed, span) = if chat < 0 {
                (limits.per_group_minute, Duration::from_secs(60))
            } else {
                (limits.per_chat_second, Duration::from_secs(1))
            };
            wait = wait.max(free_in(self.chats.entry(chat).or_default(), allowed, span, now));
        }
        if !wait.is_zero() {
            self.refused += 1;
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        if paid {
            self.paid.push_back(now);
            self.paid_sent += 1;
        } else {
            self.overall.push_back(now);
        }
        if let Some(chat) = chat {
            self.chats.entry(chat).or_default().push_back(now);
        }
        Ok(())
    }
}

/// How long until `window` has room for one more, dropping what has left it.
fn free_in(window: &mut VecDeque<Instant>, allowed: u32, span: Duration, now: Instant) -> Duration {
    while window.front().is_some_and(|t| now.duration_since(*t) >= span) {
        window.pop_front();
    }
    if window.len() < allowed as usize {
        return Duration::ZERO;
    }
    (window[window.len() - allowed as usize] + span).saturating_duration_since(now)
}

/// The calls Telegram counts against the flood limits: those that post a message.
pub(super) fn counts(method: &str) -> bool {
    (method.starts_with("send") && method != "sendChatAction") || matches!(method, "copyMessage" | "forwardMessage")
}
