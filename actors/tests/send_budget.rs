//! The bot's send budget shared through the real Redis: processes of one
//! bot (here, separate Redis connections) draw on one budget, so together
//! they keep Telegram's limits; without Redis a process keeps to its share.

use std::time::{Duration, Instant};

use aisha_actors::cache::Redis;
use aisha_actors::clients::flood::{self, Held, Limits, Paid, SharedBudget, Slot};
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

/// A slot for one message to `chat`, asking again while its chat is not ready, as `flood::wait_turn` does.
async fn reserve_when_ready(budget: &SharedBudget, limits: &Limits, chat: i64, paid: Option<&Paid>) -> Slot {
    loop {
        let slot = budget.reserve(limits, Some(chat), paid).await.unwrap();
        if slot.reserved {
            return slot;
        }
        tokio::time::sleep(slot.wait).await;
    }
}

#[tokio::test]
async fn one_chat_gets_one_message_a_second_whichever_process_sends_it() {
    let services = TestServices::new("send_budget_chat").await;
    let (a, b) = (process(&services), process(&services));
    let limits = Limits::new(30, 1, 20);
    let mut slots = Vec::new();
    for i in 0..3 {
        let budget = if i % 2 == 0 { &a } else { &b };
        slots.push(reserve_when_ready(budget, &limits, 77, None).await.at_us);
    }
    for pair in slots.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((1_000_000..1_050_000).contains(&gap), "one message a second to one chat: {gap} µs apart");
    }
}

/// The bot's budget is one point in time (GCRA): a message that took the
/// bot's slot at its busy chat's later time would leave every slot before
/// it unused, as each transcript sent a moment after its "queued" note did.
#[tokio::test]
async fn a_message_whose_chat_is_not_ready_leaves_the_bots_slots_to_other_chats() {
    let services = TestServices::new("send_budget_chat_later").await;
    let budget = process(&services);
    let limits = Limits::new(30, 1, 20);
    assert!(budget.reserve(&limits, Some(5), None).await.unwrap().reserved, "the chat's first message goes");
    let later = budget.reserve(&limits, Some(5), None).await.unwrap();
    assert!(!later.reserved, "its second is not reserved while the chat is not ready");
    assert!(
        later.wait.abs_diff(Duration::from_secs(1)) < Duration::from_millis(50),
        "it asks again in a second: {later:?}"
    );
    let mut others = Vec::new();
    for chat in 6..35 {
        others.push(budget.reserve(&limits, Some(chat), None).await.unwrap());
    }
    assert!(others.iter().all(|s| s.reserved));
    let last = *others.last().unwrap();
    assert!(last.wait < Duration::from_millis(1000), "29 other chats within the second, at the bot's 30: {last:?}");
    let again = reserve_when_ready(&budget, &limits, 5, None).await;
    let after_them = again.at_us - last.at_us;
    assert!(
        (33_000..34_000).contains(&after_them),
        "then the chat's second takes the bot's next slot: {after_them} µs later"
    );
}

/// The same for the paid budget: a busy chat's message going paid takes no
/// paid slot at its chat's time, which would hold every paid message after it.
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
    assert!(first.reserved && first.paid, "{first:?}");
    assert!(!budget.reserve(&limits, Some(5), Some(&paid)).await.unwrap().reserved, "chat 5 is not ready");
    let other = budget.reserve(&limits, Some(6), Some(&paid)).await.unwrap();
    assert!(other.paid && other.wait < Duration::from_millis(100), "another chat goes paid at once: {other:?}");
}

#[tokio::test]
async fn a_group_takes_four_at_once_then_the_rest_of_its_minute_spaced() {
    let services = TestServices::new("send_budget_group").await;
    let (a, b) = (process(&services), process(&services));
    let limits = Limits::new(30, 1, 20);
    let mut slots = Vec::new();
    for i in 0..6 {
        let budget = if i % 2 == 0 { &a } else { &b };
        slots.push(budget.reserve(&limits, Some(-100_500), None).await.unwrap());
    }
    assert!(slots[..4].iter().all(|s| s.reserved && s.wait < Duration::from_millis(100)), "a burst of four: {slots:?}");
    let step = Duration::from_micros(3_529_412);
    for fifth in &slots[4..] {
        assert!(!fifth.reserved, "the fifth is not reserved: {fifth:?}");
        assert!(fifth.wait.abs_diff(step) < Duration::from_millis(100), "it asks again 60 s / 17 later: {fifth:?}");
    }
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
