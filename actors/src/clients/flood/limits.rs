//! The limits themselves: how many messages in which span, for the bot,
//! one chat and one group, and each as GCRA counts it.

use std::time::Duration;

use crate::settings::TelegramSettings;

/// A group's burst is a fifth of its minute (4 of 20): a reply in parts
/// goes at once, and the rest of the minute is spaced to stay within it.
const GROUP_BURST_DIVISOR: u32 = 5;

/// The least headroom one chat's limits keep (see `with_headroom`).
const CHAT_HEADROOM: f64 = 0.1;

/// How many messages in which span, for the bot, one chat and one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub(super) overall: (u32, Duration),
    pub(super) chat: (u32, Duration),
    pub(super) group: (u32, Duration),
}

impl Limits {
    pub fn new(per_second: u32, per_chat_second: u32, per_group_minute: u32) -> Self {
        Self {
            overall: (per_second, Duration::from_secs(1)),
            chat: (per_chat_second, Duration::from_secs(1)),
            group: (per_group_minute, Duration::from_secs(60)),
        }
    }

    /// The configured limits with `telegram.send_headroom` kept unused:
    /// each span stretched so the bot sends at `1 - headroom` of each rate.
    /// Telegram counts arrivals on its own clock; slots spaced exactly at
    /// the limit arrive with the network's jitter, and two that arrive
    /// closer than their slots put one message too many into a window.
    pub fn from_settings(settings: &TelegramSettings) -> Self {
        Self::new(settings.send_per_second, settings.send_per_chat_second, settings.send_per_group_minute)
            .with_headroom(settings.send_headroom)
    }

    /// One chat's limits keep at least `CHAT_HEADROOM`: its next message a
    /// tenth of a second later costs nothing, while Telegram's 429 does not
    /// say which limit a refusal was for, and one for a private chat holds
    /// the whole bot (`Refusal`).
    pub(super) fn with_headroom(self, headroom: f64) -> Self {
        let stretch = |headroom: f64| {
            move |(allowed, span): (u32, Duration)| (allowed, span.div_f64(1.0 - headroom.clamp(0.0, 0.9)))
        };
        let (bot, chat) = (stretch(headroom), stretch(headroom.max(CHAT_HEADROOM)));
        Self { overall: bot(self.overall), chat: chat(self.chat), group: chat(self.group) }
    }

    /// How much later than its slot a message may reach Telegram before
    /// the 30 after it make 31 in a second: what the headroom bought
    /// (`h / (1 - h)` of the bot's second, 52 ms at 5 %).
    pub(super) fn lateness_absorbed(&self) -> Duration {
        self.overall.1.saturating_sub(Duration::from_secs(1))
    }

    /// Groups and channels have negative ids: a per-minute limit; private chats a per-second one.
    pub(super) fn for_chat(&self, chat: i64) -> (u32, Duration) {
        if chat < 0 {
            self.group
        } else {
            self.chat
        }
    }

    /// `fraction` of every limit: fewer messages in the same span, or, where
    /// one is already the least, the same one in a longer span.
    pub(super) fn share(&self, fraction: f64) -> Self {
        let part = |(allowed, span): (u32, Duration)| {
            let scaled = f64::from(allowed) * fraction;
            if scaled >= 1.0 {
                (scaled.floor() as u32, span)
            } else {
                (1, span.div_f64(scaled.max(f64::EPSILON)))
            }
        };
        Self { overall: part(self.overall), chat: part(self.chat), group: part(self.group) }
    }

    pub(super) fn overall_gcra(&self) -> Gcra {
        Gcra::within(self.overall.0, self.overall.1, 1)
    }

    pub(super) fn chat_gcra(&self, chat: i64) -> Gcra {
        let (allowed, span) = self.for_chat(chat);
        let burst = if chat < 0 { allowed / GROUP_BURST_DIVISOR } else { 1 };
        Gcra::within(allowed, span, burst)
    }
}

/// When a message goes paid (`allow_paid_broadcast`): the paid budget, how
/// far off a free slot may be before paying, and the day's ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paid {
    pub(super) gcra: Gcra,
    pub(super) after: Duration,
    pub(super) daily_messages: u64,
}

impl Paid {
    /// The terms an operator turned on, with the same headroom as the free limits.
    pub fn from_settings(settings: &TelegramSettings) -> Option<Self> {
        let paid = &settings.paid_broadcast;
        let span = Duration::from_secs(1).div_f64(1.0 - settings.send_headroom.clamp(0.0, 0.9));
        paid.enabled.then(|| Self {
            gcra: Gcra::within(paid.per_second, span, 1),
            after: paid.after,
            daily_messages: u64::from(paid.daily_stars) * 10 / crate::settings::PAID_BROADCAST_TENTHS_OF_A_STAR.max(1),
        })
    }
}

/// One budget as GCRA sees it: a message every `interval`, and `tolerance`
/// of burst on top. In whole µs, rounded up: an interval rounded down lets
/// one message too many into a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gcra {
    pub interval_us: u64,
    pub tolerance_us: u64,
}

impl Gcra {
    /// At most `allowed` in any window of `span`, sliding, with a burst of
    /// `burst` at once. A burst costs sustained rate: GCRA lets `burst - 1`
    /// more into a window than its rate, so the interval is widened to keep
    /// every window within `allowed`.
    pub(super) fn within(allowed: u32, span: Duration, burst: u32) -> Self {
        let allowed = allowed.max(1);
        let burst = burst.clamp(1, allowed);
        let interval_us = (span.as_micros() as u64).div_ceil(u64::from(allowed - burst + 1));
        Self { interval_us, tolerance_us: interval_us * u64::from(burst - 1) }
    }
}
