//! The budget every process of one bot shares, in Redis: Telegram counts a
//! bot's messages wherever they come from, so a poller and three workers
//! each keeping 30 a second would send 120. One GCRA key per bot, per chat
//! and per group holds the "theoretical arrival time" of the next message;
//! a script reserves a slot against all of a message's keys at once, on
//! Redis's clock, so hosts whose clocks differ still agree.

use std::time::Duration;

use fred::interfaces::LuaInterface;

use super::limits::{Gcra, Limits};
use crate::cache::{CacheError, Redis};

/// KEYS: every budget the message counts against. ARGV: each key's emission
/// interval and burst tolerance in µs, in the order of KEYS. Returns how
/// many µs from now the message may go, and when that is on Redis's clock
/// (µs since the epoch); its slot is reserved.
const RESERVE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local at = now
local tats = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  tats[i] = tat
  local earliest = tat - tonumber(ARGV[2 * i])
  if earliest > at then at = earliest end
end
for i, key in ipairs(KEYS) do
  local tat = math.max(tats[i], at) + tonumber(ARGV[2 * i - 1])
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
return {at - now, string.format('%.0f', at)}
"#;

/// A reserved slot: how long from now, and when on Redis's clock.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub wait: Duration,
    pub at_us: u64,
}

#[derive(Clone)]
pub struct SharedBudget {
    redis: Redis,
    /// `send:{bot id}`: the bot's own keys, whatever else shares the prefix.
    stem: String,
}

impl SharedBudget {
    pub fn new(redis: Redis, bot_id: &str) -> Self {
        let stem = redis.key(&format!("send:{bot_id}"));
        Self { redis, stem }
    }

    /// Reserves a slot for one message to `chat`; how long until it.
    pub async fn reserve(&self, limits: &Limits, chat: Option<i64>) -> Result<Slot, CacheError> {
        let mut keys = vec![self.stem.clone()];
        let mut args = budget_args(limits.overall_gcra());
        if let Some(chat) = chat {
            keys.push(format!("{}:chat:{chat}", self.stem));
            args.extend(budget_args(limits.chat_gcra(chat)));
        }
        let (wait_us, at_us): (i64, String) = self.redis.client().eval(RESERVE, keys, args).await?;
        let at_us = at_us.parse().map_err(|_| CacheError::Unexpected(format!("a slot time of {at_us:?}")))?;
        Ok(Slot { wait: Duration::from_micros(wait_us.max(0) as u64), at_us })
    }
}

fn budget_args(gcra: Gcra) -> Vec<String> {
    vec![gcra.interval_us.to_string(), gcra.tolerance_us.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends at each conforming instant, greedily, and counts the most in
    /// any window of `span` (half-open, as Telegram counts).
    fn most_in_a_window(gcra: Gcra, span: Duration, sends: usize) -> usize {
        let span = span.as_micros() as u64;
        let mut tat = 0_u64;
        let mut times = Vec::new();
        for _ in 0..sends {
            let at = tat.saturating_sub(gcra.tolerance_us);
            times.push(at);
            tat = tat.max(at) + gcra.interval_us;
        }
        times.iter().map(|start| times.iter().filter(|t| **t >= *start && **t < *start + span).count()).max().unwrap()
    }

    #[test]
    fn no_window_ever_holds_more_than_the_limit_with_or_without_a_burst() {
        for (allowed, span, burst) in [(30, 1, 1), (1, 1, 1), (20, 60, 4), (20, 60, 20), (7, 1, 3)] {
            let span = Duration::from_secs(span);
            let gcra = Gcra::within(allowed, span, burst);
            assert_eq!(
                most_in_a_window(gcra, span, 200),
                allowed as usize,
                "{allowed} per {span:?}, burst {burst}: {gcra:?}"
            );
        }
    }

    #[test]
    fn a_burst_goes_at_once_and_the_rest_follow_at_the_widened_interval() {
        let gcra = Gcra::within(20, Duration::from_secs(60), 4);
        assert_eq!(gcra.interval_us, 3_529_412, "60 s / 17, rounded up");
        assert_eq!(gcra.tolerance_us, gcra.interval_us * 3, "four at once");
    }
}
