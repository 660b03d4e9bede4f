//! The budget one process keeps on its own: sliding windows in memory. It
//! is the whole budget when there is no Redis to share it through, and a
//! conservative share of it while Redis is slow or away.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::limits::Limits;

/// A sliding window: how many sends it allows in `span`.
#[derive(Debug, Default)]
pub(super) struct Window {
    sent: VecDeque<Instant>,
}

impl Window {
    /// When a send may go, given at most `allowed` in any `span`.
    pub(super) fn next_slot(&mut self, now: Instant, allowed: u32, span: Duration) -> Instant {
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= span) {
            self.sent.pop_front();
        }
        if (self.sent.len() as u32) < allowed.max(1) {
            return now;
        }
        self.sent[self.sent.len() - allowed.max(1) as usize] + span
    }

    fn push(&mut self, at: Instant) {
        self.sent.push_back(at);
    }
}

#[derive(Debug, Default)]
pub(super) struct LocalBudget {
    overall: Window,
    chats: HashMap<i64, Window>,
    /// Until when Telegram refused the bot's messages, or one chat's.
    held: Option<Instant>,
    held_chats: HashMap<i64, Instant>,
}

impl LocalBudget {
    /// Reserves the earliest slot under `limits` for one message to `chat`;
    /// and whether that chat had a message within its span.
    pub(super) fn reserve(&mut self, limits: &Limits, chat: Option<i64>, now: Instant) -> (Instant, bool) {
        self.held_chats.retain(|_, until| *until > now);
        let (allowed, span) = limits.overall;
        let mut at = self.overall.next_slot(now, allowed, span).max(self.held.unwrap_or(now));
        let mut chat_busy = false;
        if let Some(chat) = chat {
            let (allowed, span) = limits.for_chat(chat);
            let window = self.chats.entry(chat).or_default();
            at = at.max(window.next_slot(now, allowed, span));
            chat_busy = !window.sent.is_empty();
            at = at.max(self.held_chats.get(&chat).copied().unwrap_or(now));
            window.push(at);
            if self.chats.len() > 10_000 {
                self.chats
                    .retain(|_, w| w.sent.back().is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60)));
            }
        }
        self.overall.push(at);
        (at, chat_busy)
    }

    /// No message to `chat` (or, with `None`, from the bot) before `until`.
    pub(super) fn hold(&mut self, chat: Option<i64>, until: Instant) {
        match chat {
            Some(chat) => {
                let held = self.held_chats.entry(chat).or_insert(until);
                *held = (*held).max(until);
            }
            None => self.held = Some(self.held.map_or(until, |held| held.max(until))),
        }
    }

    /// Whether a bot-wide hold covers a slot at `at`.
    pub(super) fn held_over(&self, at: Instant) -> bool {
        self.held.is_some_and(|until| until > at)
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
            window.push(slot);
        }
        let fourth = window.next_slot(start, 3, Duration::from_secs(1));
        assert_eq!(fourth, start + Duration::from_secs(1), "the fourth waits for the first to leave the window");
    }

    #[test]
    fn a_share_of_the_limits_spaces_one_chat_further_apart() {
        let limits = Limits::new(30, 1, 20).share(0.25);
        let mut budget = LocalBudget::default();
        let start = Instant::now();
        assert_eq!(budget.reserve(&limits, Some(5), start), (start, false));
        assert_eq!(
            budget.reserve(&limits, Some(5), start),
            (start + Duration::from_secs(4), true),
            "1 a second shared four ways"
        );
        assert_eq!(limits.overall, (7, Duration::from_secs(1)));
        assert_eq!(limits.for_chat(-100), (5, Duration::from_secs(60)));
    }
}
