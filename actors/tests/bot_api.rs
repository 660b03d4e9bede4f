//! Sending through the Bot API under its failures: 429 waits `retry_after`,
//! 5xx and dropped answers are sent again, and the throttle keeps a chat
//! within Telegram's one message a second.

mod common;

use std::time::Duration;

use aisha_actors::clients::{fetch_telegram_file, telegram_bot, Patiently};
use aisha_actors::poller::TelegramPoller;
use aisha_actors::secret::Secret;
use aisha_actors::settings::TelegramSettings;
use aisha_testkit::telegram::Failure;
use aisha_testkit::{eventually, FakeTelegram};
use ractor::Actor;
use teloxide::prelude::*;

const TOKEN: &str = "515151:BOT-API-test-token-xyz";

#[tokio::test]
async fn replies_survive_429s_and_502s_and_none_is_replaced_by_an_apology() {
    let telegram = FakeTelegram::start(TOKEN).await;
    let url = telegram.url();
    let (_test, services) = common::services("botapi_faults", |s| common::use_telegram(s, TOKEN, url)).await;
    let (poller, _) = Actor::spawn(None, TelegramPoller, services.clone()).await.unwrap();
    for _ in 0..3 {
        telegram.fail_next("sendMessage", Failure::RetryAfter(2));
    }
    for _ in 0..3 {
        telegram.fail_next("sendMessage", Failure::Status(502, "Bad Gateway".into()));
    }
    let users: Vec<i64> = (1..=6).map(|i| 7100 + i).collect();
    for &user in &users {
        telegram.push_text(user, "en", "/balance");
    }
    eventually("every user got an answer", Duration::from_secs(60), || {
        users.iter().all(|&u| !telegram.sent_texts(u).is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for &user in &users {
        let texts = telegram.sent_texts(user);
        assert_eq!(texts.len(), 1, "user {user}: exactly one reply: {texts:?}");
        assert!(texts[0].contains("Balance"), "user {user}: the balance, not an apology: {texts:?}");
    }
    let failed = telegram.calls("sendMessage").iter().filter(|c| c.failed).count();
    assert_eq!(failed, 6, "the six injected failures were met, and each was sent again");
    common::assert_ledger(&services).await;
    poller.stop(None);
}

fn settings(fake: &FakeTelegram) -> TelegramSettings {
    TelegramSettings { token: Secret::new(TOKEN), api_url: fake.url(), ..Default::default() }
}

#[tokio::test]
async fn a_429_waits_its_retry_after_before_the_same_message_goes_again() {
    let telegram = FakeTelegram::start(TOKEN).await;
    let bot = telegram_bot(&settings(&telegram)).unwrap();
    telegram.fail_next("sendMessage", Failure::RetryAfter(2));
    bot.send_message(ChatId(9), "hello").patiently().await.unwrap();
    let calls = telegram.calls("sendMessage");
    assert_eq!(calls.len(), 2);
    assert!(calls[1].at - calls[0].at >= Duration::from_secs(2), "waited {:?}", calls[1].at - calls[0].at);
    assert_eq!(telegram.sent_texts(9), vec!["hello".to_string()]);
}

#[tokio::test]
async fn files_are_downloaded_over_the_bots_open_connections() {
    let telegram = FakeTelegram::start(TOKEN).await;
    let settings = settings(&telegram);
    let bot = telegram_bot(&settings).unwrap();
    let dir = std::env::temp_dir().join(format!("aisha-downloads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..3 {
        let file_id = telegram.add_file(&format!("voice/file_{i}.oga"), bytes::Bytes::from(vec![i as u8; 4096]));
        let path = dir.join(format!("{i}.oga"));
        let size = fetch_telegram_file(&bot, &settings, &file_id, 1 << 20, &path).await.unwrap();
        assert_eq!((size, std::fs::read(&path).unwrap()), (4096, vec![i as u8; 4096]));
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(telegram.downloads(), (3, 1), "three files, one after another, on one connection");
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let telegram = FakeTelegram::start(TOKEN).await;
    let bot = telegram_bot(&settings(&telegram)).unwrap();
    telegram.fail_next("sendMessage", Failure::Status(403, "Forbidden: bot was blocked by the user".into()));
    assert!(bot.send_message(ChatId(9), "hello").patiently().await.is_err());
    assert_eq!(telegram.calls("sendMessage").len(), 1);
}

#[tokio::test]
async fn one_chat_gets_at_most_one_message_a_second_while_others_are_not_held_up() {
    let telegram = FakeTelegram::start(TOKEN).await;
    let bot = telegram_bot(&settings(&telegram)).unwrap();
    let sends = (0..3).map(|i| bot.send_message(ChatId(77), format!("part {i}")).patiently());
    let others = (0..10).map(|i| bot.send_message(ChatId(1000 + i), "hi").patiently());
    let started = tokio::time::Instant::now();
    let (same_chat, other_chats) = tokio::join!(futures::future::join_all(sends), futures::future::join_all(others));
    assert!(same_chat.iter().chain(&other_chats).all(Result::is_ok));
    let to_77: Vec<_> =
        telegram.calls("sendMessage").into_iter().filter(|c| c.params["chat_id"] == 77).map(|c| c.at).collect();
    assert_eq!(to_77.len(), 3);
    for pair in to_77.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(900), "same chat within {:?}", pair[1] - pair[0]);
    }
    assert!(started.elapsed() >= Duration::from_millis(1800), "three to one chat take two seconds at least");
    let others_done = telegram.calls("sendMessage").iter().filter(|c| c.params["chat_id"] != 77).count();
    assert_eq!(others_done, 10);
}
