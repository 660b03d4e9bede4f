//! The bot's send budget shared through the real Redis: processes of one
//! bot (here, separate Redis connections) draw on one budget, so together
//! they keep Telegram's limits; without Redis a process keeps to its share.

use std::time::{Duration, Instant};

use aisha_actors::cache::Redis;
use aisha_actors::clients::flood::{self, Held, Limits, Paid, SharedBudget};
use aisha_actors::secret::{ConnUrl, Secret};
use aisha_actors::settings::{PaidBroadcastSettings, RedisSettings, TelegramSettings};
use aisha_testkit::TestServices;

/// A process's own connection to the bot's budget.
fn process(services: &TestServices) -> SharedBudget {
    let settings = RedisSettings {
        url: ConnUrl::new(&services.redis_url),
        key_prefix: services.redis_prefix.clone(),
        ..Default::default()
    };
    SharedBudget::new(Redis::connect(&settings).unwrap(), "4242")
}

/// The most slots (µs on Redis's clock) in any half-open window of `span_us`.
fn most_in_a_window(slots: &[u64], span_us: u64) -> usize {
    slots
        .iter()
        .map(|start| slots.iter().filter(|t| **t >= *start && **t < *start + span_us).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn three_processes_together_send_no_more_than_the_bots_limit() {
    let services = TestServices::new("send_budget_overall").await;
    let processes = [process(&services), process(&services), process(&services)];
    let limits = Limits::new(30, 1, 20);
    let mut slots = Vec::new();
    for i in 0..90_i64 {
        slots.push(processes[i as usize % 3].reserve(&limits, Some(1000 + i), None).await.unwrap().at_us);
    }
    let most = most_in_a_window(&slots, 1_000_000);
    assert_eq!(most, 30, "at most 30 in any second, and the budget used");
    let span_us = slots.iter().max().unwrap() - slots.iter().min().unwrap();
    assert!((2_900_000..3_000_000).contains(&span_us), "90 messages at 30 a second span 89 intervals: {span_us} µs");
}

/// `count` messages to `chat`, reserved by two processes in turn under
/// Telegram's limits: how long each waits.
async fn waits_from_two_processes(name: &str, chat: i64, count: usize) -> Vec<Duration> {
    let services = TestServices::new(name).await;
    let processes = [process(&services), process(&services)];
    let limits = Limits::new(30, 1, 20);
    let mut waits = Vec::new();
    for i in 0..count {
        waits.push(processes[i % 2].reserve(&limits, Some(chat), None).await.unwrap().wait);
    }
    waits
}

#[tokio::test]
async fn one_chat_gets_one_message_a_second_whichever_process_sends_it() {
    let waits = waits_from_two_processes("send_budget_chat", 77, 4).await;
    for (i, wait) in waits.iter().enumerate() {
        let expected = Duration::from_secs(i as u64);
        assert!(wait.abs_diff(expected) < Duration::from_millis(50), "message {i} waits {wait:?}, not {expected:?}");
    }
}

#[tokio::test]
async fn a_group_takes_four_at_once_then_the_rest_of_its_minute_spaced() {
    let waits = waits_from_two_processes("send_budget_group", -100_500, 6).await;
    assert!(waits[..4].iter().all(|w| *w < Duration::from_millis(100)), "a burst of four: {waits:?}");
    let step = Duration::from_micros(3_529_412);
    assert!(waits[4].abs_diff(step) < Duration::from_millis(100), "then 60 s / 17 apart: {waits:?}");
    assert!(waits[5].abs_diff(step * 2) < Duration::from_millis(100), "{waits:?}");
}

/// The bot's budget is one point in time (GCRA): a message that moved it
/// to its busy chat's later time would leave every slot before it unused,
/// as each transcript sent a moment after its "queued" note did. It books
/// its slot there instead, and the slots before it go to other chats.
#[tokio::test]
async fn a_message_whose_chat_is_not_ready_leaves_the_bots_slots_to_other_chats() {
    let services = TestServices::new("send_budget_chat_later").await;
    let budget = process(&services);
    let limits = Limits::new(30, 1, 20);
    let first = budget.reserve(&limits, Some(5), None).await.unwrap();
    let later = budget.reserve(&limits, Some(5), None).await.unwrap();
    assert!(later.wait.abs_diff(Duration::from_secs(1)) < Duration::from_millis(50), "a second later: {later:?}");
    let mut slots = vec![first.at_us, later.at_us];
    let mut within = 0;
    for chat in 6..35 {
        let slot = budget.reserve(&limits, Some(chat), None).await.unwrap();
        within += usize::from(slot.at_us < later.at_us);
        slots.push(slot.at_us);
    }
    assert!(within >= 28, "the other chats take the second's slots before the booked one: {within} of 29");
    let most = most_in_a_window(&slots, 1_000_000);
    assert!(most <= 30, "and no second holds more than the bot's 30: {most}");
}

/// The same for the paid budget: a busy chat's paid message books its
/// slot, and the other paid messages go before it.
#[tokio::test]
async fn a_paid_message_whose_chat_is_not_ready_holds_no_other_paid_message() {
    let services = TestServices::new("send_budget_paid_chat_later").await;
    let budget = process(&services);
    let mut settings = TelegramSettings { send_headroom: 0.0, ..Default::default() };
    settings.paid_broadcast = PaidBroadcastSettings { enabled: true, after: Duration::ZERO, ..Default::default() };
    let (limits, paid) = (Limits::from_settings(&settings), Paid::from_settings(&settings).unwrap());
    // Free messages wait 3 s (a refusal's hold), so every message goes paid.
    budget.hold(&limits, Some(&paid), Held::Free, Duration::from_secs(3)).await.unwrap();
    let first = budget.reserve(&limits, Some(5), Some(&paid)).await.unwrap();
    assert!(first.paid && first.wait < Duration::from_millis(100), "{first:?}");
    let later = budget.reserve(&limits, Some(5), Some(&paid)).await.unwrap();
    assert!(later.paid && later.wait > Duration::from_secs(1), "chat 5's next is a second off: {later:?}");
    let other = budget.reserve(&limits, Some(6), Some(&paid)).await.unwrap();
    assert!(other.paid && other.wait < Duration::from_millis(100), "another chat goes paid at once: {other:?}");
}

/// A free message that went out late is sent again paid: at once while
/// the free line is long, never later than asked, and nothing is reserved
/// (nor a paid message counted) when no slot is that near.
#[tokio::test]
async fn a_late_message_goes_paid_at_once_or_takes_no_slot_at_all() {
    let services = TestServices::new("send_budget_late_paid").await;
    let budget = process(&services);
    let mut settings = TelegramSettings { send_headroom: 0.0, ..Default::default() };
    settings.paid_broadcast = PaidBroadcastSettings { enabled: true, daily_stars: 1, ..Default::default() };
    let (limits, paid) = (Limits::from_settings(&settings), Paid::from_settings(&settings).unwrap());
    let within = Duration::from_millis(25);
    for chat in 0..30 {
        budget.reserve(&limits, Some(chat), None).await.unwrap();
    }
    let late = budget.reserve_within(&limits, &paid, within).await.unwrap().expect("a paid slot now");
    assert!(late.paid && late.wait <= within, "{late:?}");

    // A Star a day is ten paid messages: the rest of today's go free, and the free line is a second long.
    for _ in 0..9 {
        assert!(budget.reserve_within(&limits, &paid, within).await.unwrap().unwrap().paid);
    }
    let free_point = budget.reserve(&limits, None, None).await.unwrap().at_us;
    assert_eq!(budget.reserve_within(&limits, &paid, within).await.unwrap().map(|s| s.at_us), None);
    let next = budget.reserve(&limits, None, None).await.unwrap().at_us;
    // 30 a second with no headroom: a slot every 33,334 µs (rounded up).
    assert_eq!(next - free_point, 33_334, "the refused retake took no free slot");
}

#[tokio::test]
async fn without_redis_a_process_keeps_to_its_share_and_waits_no_longer_for_redis() {
    // A port nothing listens on: the reservation fails, and the process keeps to its half.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let redis =
        Redis::connect(&RedisSettings { url: ConnUrl::new(format!("redis://{free}")), ..Default::default() }).unwrap();
    let telegram = TelegramSettings { token: Secret::new("4242:away"), local_send_share: 0.5, ..Default::default() };
    flood::configure(&telegram);
    flood::share_through(redis, &telegram);

    let first = Instant::now();
    flood::wait_turn(Some(9), false).await;
    let first = first.elapsed();
    assert!(first < Duration::from_millis(300), "Redis's absence costs at most its patience: {first:?}");
    let second = Instant::now();
    flood::wait_turn(Some(9), false).await;
    let second = second.elapsed();
    assert!(second >= Duration::from_millis(1900), "half of one a second is one every two: {second:?}");
    assert!(second < Duration::from_millis(2300), "and Redis is not asked again meanwhile: {second:?}");
}
