//! The budget every process of one bot shares, in Redis: Telegram counts a
//! bot's messages wherever they come from, so a poller and three workers
//! each keeping 30 a second would send 120. One GCRA key per bot, per chat
//! and per group holds the "theoretical arrival time" of the next message;
//! a script reserves a slot against all of a message's keys at once, on
//! Redis's clock, so hosts whose clocks differ still agree.

use std::time::Duration;

use fred::interfaces::{KeysInterface, LuaInterface};

use super::limits::{Gcra, Limits, Paid};
use crate::cache::{CacheError, Redis};

/// KEYS: the bot's free budget, its paid budget, today's paid messages,
/// the free and the paid budget's bookings, and the chat's budget when the
/// message has a chat. ARGV: the free and the paid budget's emission
/// interval and burst tolerance in µs; how far off a free slot may be
/// before the message goes paid (µs, -1: never); the day's ceiling in paid
/// messages; the most µs from now the slot may be (-1: any), a later one
/// not reserved and -1 returned as its wait; the chat's interval and
/// tolerance when there is a chat. Returns how many µs from
/// now the message may go, when that is on Redis's clock (µs since the
/// epoch), whether its chat's budget was in use (a message there within its
/// interval), and whether it goes paid; its slot is reserved.
///
/// A budget is GCRA's one point in time, the next free slot, plus bookings:
/// a message whose chat is ready only after that slot books a slot at its
/// chat's time instead of moving the point there, which would leave every
/// slot in between unused (a transcript sent a moment after its chat's
/// "queued" note skipped a second of the whole bot's). Every slot, booked
/// or not, keeps an interval clear of every other, so no window holds more
/// than GCRA alone lets into it; and each message is still reserved when
/// it asks, so one chat's messages go in the order they asked.
const RESERVE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function tat_of(key)
  return math.max(tonumber(redis.call('GET', key)) or now, now)
end
local function us(time)
  return string.format('%.0f', time)
end
local function keep_until(key, at)
  local ms = math.ceil((at - now) / 1000) + 1
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
local function take(key, at, interval)
  local tat = math.max(tat_of(key), at) + interval
  redis.call('SET', key, us(tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
-- The first time from `at` on that is an interval clear of every booking.
local function clear_of(booked, at, interval)
  while true do
    local near = redis.call('ZRANGEBYSCORE', booked, '(' .. us(at - interval), '(' .. us(at + interval),
      'WITHSCORES', 'LIMIT', 0, 1)
    if #near == 0 then return at end
    at = tonumber(near[2]) + interval
  end
end
-- A slot in one budget: its next one, or, when the chat is ready only
-- later, a booking at the chat's time. Returns the time and whether booked.
local function slot_in(key, booked, tolerance, interval, chat_at)
  redis.call('ZREMRANGEBYSCORE', booked, '-inf', '(' .. us(now - interval))
  local point = tat_of(key) - tolerance
  if chat_at <= point then return clear_of(booked, point, interval), false end
  return clear_of(booked, chat_at, interval), true
end
local chat_at, busy = now, 0
if KEYS[6] then
  local tat = tonumber(redis.call('GET', KEYS[6]))
  if tat and tat > now then busy = 1 end
  chat_at = math.max(now, tat_of(KEYS[6]) - tonumber(ARGV[9]))
end
local at, booking = slot_in(KEYS[1], KEYS[4], tonumber(ARGV[2]), tonumber(ARGV[1]), chat_at)
local budget, booked, interval, paid = KEYS[1], KEYS[4], tonumber(ARGV[1]), 0
local pay_after = tonumber(ARGV[5])
if pay_after >= 0 and at - now > pay_after and (tonumber(redis.call('GET', KEYS[3])) or 0) < tonumber(ARGV[6]) then
  local paid_at, paid_booking = slot_in(KEYS[2], KEYS[5], tonumber(ARGV[4]), tonumber(ARGV[3]), chat_at)
  if paid_at < at then
    at, booking, budget, booked, interval, paid = paid_at, paid_booking, KEYS[2], KEYS[5], tonumber(ARGV[3]), 1
  end
end
local within = tonumber(ARGV[7])
if within >= 0 and at - now > within then return {-1, us(at), busy, paid} end
if paid == 1 then
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], 172800)
end
if booking then
  redis.call('ZADD', booked, at, us(at))
  keep_until(booked, at + interval)
else
  take(budget, at, interval)
end
if KEYS[6] then take(KEYS[6], at, tonumber(ARGV[8])) end
return {at - now, us(at), busy, paid}
"#;

/// KEYS: the budgets Telegram refused, and for a bot-wide refusal the
/// bot's `held` key. ARGV[1]: the `retry_after` in µs; then each key's
/// burst tolerance. No message under those budgets goes before then; the
/// `held` key says until when, for slots reserved before the refusal.
const HOLD: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local free_at = now + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local tat = math.max(tonumber(redis.call('GET', key)) or now, free_at + tonumber(ARGV[i + 1]))
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
return string.format('%.0f', free_at)
"#;

/// What a refusal holds: the bot's free budget, its paid one, or one chat's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Free,
    Paid,
    Chat(i64),
}

/// A reserved slot: how long from now, when on Redis's clock, whether the
/// chat's own budget was in use when it was reserved, and whether the
/// message goes paid (`allow_paid_broadcast`).
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub wait: Duration,
    pub at_us: u64,
    pub chat_busy: bool,
    pub paid: bool,
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

    fn chat_key(&self, chat: i64) -> String {
        format!("{}:chat:{chat}", self.stem)
    }

    /// Until when a bot-wide hold of the free or the paid budget lasts.
    fn held_key(&self, paid: bool) -> String {
        format!("{}:{}held", self.stem, if paid { "paid:" } else { "" })
    }

    /// Reserves a slot for one message to `chat`; how long until it. With
    /// `paid` terms, a message whose free slot is further off than they
    /// allow goes paid, while the day's ceiling holds.
    pub async fn reserve(&self, limits: &Limits, chat: Option<i64>, paid: Option<&Paid>) -> Result<Slot, CacheError> {
        let reserved = self.reserve_by(limits, chat, paid, None).await?;
        reserved.ok_or_else(|| CacheError::Unexpected("no slot was reserved".into()))
    }

    /// A slot for a message whose chat already had its turn (a late one
    /// sent again), paid at once where free ones are further off, but only
    /// one within `within` from now: `None` (nothing reserved) otherwise.
    pub async fn reserve_within(
        &self,
        limits: &Limits,
        paid: &Paid,
        within: Duration,
    ) -> Result<Option<Slot>, CacheError> {
        let now_paid = Paid { after: Duration::ZERO, ..*paid };
        self.reserve_by(limits, None, Some(&now_paid), Some(within)).await
    }

    /// The script's slot, or `None` where none was `within` reach.
    async fn reserve_by(
        &self,
        limits: &Limits,
        chat: Option<i64>,
        paid: Option<&Paid>,
        within: Option<Duration>,
    ) -> Result<Option<Slot>, CacheError> {
        let day =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
        let mut keys = vec![
            self.stem.clone(),
            format!("{}:paid", self.stem),
            format!("{}:paid:spent:{day}", self.stem),
            format!("{}:booked", self.stem),
            format!("{}:paid:booked", self.stem),
        ];
        let mut args = budget_args(limits.overall_gcra());
        match paid {
            Some(paid) => {
                args.extend(budget_args(paid.gcra));
                args.extend([paid.after.as_micros().to_string(), paid.daily_messages.to_string()]);
            }
            None => args.extend(["1", "0", "-1", "0"].map(String::from)),
        }
        args.push(within.map_or("-1".into(), |w| w.as_micros().to_string()));
        if let Some(chat) = chat {
            keys.push(self.chat_key(chat));
            args.extend(budget_args(limits.chat_gcra(chat)));
        }
        let (wait_us, at_us, busy, paid): (i64, String, i64, i64) =
            self.redis.client().eval(RESERVE, keys, args).await?;
        if wait_us < 0 {
            return Ok(None);
        }
        let at_us = at_us.parse().map_err(|_| CacheError::Unexpected(format!("a slot time of {at_us:?}")))?;
        Ok(Some(Slot { wait: Duration::from_micros(wait_us as u64), at_us, chat_busy: busy == 1, paid: paid == 1 }))
    }

    /// Holds one of the bot's budgets for `retry_after`.
    pub async fn hold(
        &self,
        limits: &Limits,
        paid: Option<&Paid>,
        held: Held,
        retry_after: Duration,
    ) -> Result<(), CacheError> {
        let mut args = vec![retry_after.as_micros().to_string()];
        let keys = match held {
            Held::Chat(chat) => {
                args.push(limits.chat_gcra(chat).tolerance_us.to_string());
                vec![self.chat_key(chat)]
            }
            Held::Free => {
                args.extend([limits.overall_gcra().tolerance_us.to_string(), "0".into()]);
                vec![self.stem.clone(), self.held_key(false)]
            }
            Held::Paid => {
                args.extend([paid.map_or(0, |p| p.gcra.tolerance_us).to_string(), "0".into()]);
                vec![format!("{}:paid", self.stem), self.held_key(true)]
            }
        };
        let _: String = self.redis.client().eval(HOLD, keys, args).await?;
        Ok(())
    }

    /// Whether a bot-wide hold of the budget `slot` is in (free or paid),
    /// set since it was reserved, covers it.
    pub async fn held_over(&self, slot: &Slot) -> Result<bool, CacheError> {
        let held: Option<u64> = self.redis.client().get(self.held_key(slot.paid)).await?;
        Ok(held.is_some_and(|free_at| free_at > slot.at_us))
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
