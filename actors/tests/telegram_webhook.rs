//! `POST /webhooks/telegram`: the secret token is required, each update is
//! recorded once and handled through the dispatcher like a polled one.

mod common;

use std::time::Duration;

use aisha_actors::secret::Secret;
use aisha_actors::webhook::WebhookListener;
use aisha_testkit::{eventually, FakeTelegram};
use ractor::Actor;
use serde_json::json;

const TOKEN: &str = "7070:WEBHOOK-mode-token-abc";
const SECRET: &str = "telegram-webhook-secret-123";

#[tokio::test]
async fn updates_pushed_by_telegram_are_checked_recorded_once_and_handled() {
    let telegram = FakeTelegram::start(TOKEN).await;
    let port = aisha_testkit::free_port();
    let url = telegram.url();
    let public = "https://bot.example.com/webhooks/telegram".to_owned();
    let (_test, services) = common::services("tg_webhook", |s| {
        common::use_telegram(s, TOKEN, url);
        s.telegram.webhook_secret = Secret::new(SECRET);
        s.telegram.webhook_url = public.clone();
        s.http.webhook_bind = ([127, 0, 0, 1], port).into();
    })
    .await;
    let (listener, _) = Actor::spawn(None, WebhookListener, services.clone()).await.unwrap();
    let registered = &telegram.calls("setWebhook")[0];
    assert_eq!(registered.params["url"], public.as_str());
    assert_eq!(registered.params["secret_token"], SECRET);

    let update = json!({ "update_id": 500, "message": telegram.user_message(6001, "en", json!({ "text": "/start" })) });
    let post = |secret: Option<&'static str>, body: serde_json::Value| {
        let mut request = reqwest::Client::new().post(format!("http://127.0.0.1:{port}/webhooks/telegram")).json(&body);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None, update.clone()).await, 401);
    assert_eq!(post(Some("wrong-secret-value-0000000"), update.clone()).await, 401);
    let recorded = || async {
        services
            .db
            .client()
            .await
            .unwrap()
            .query_one("SELECT count(*) FROM telegram_updates", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(recorded().await, 0, "nothing written for a refused update");

    assert_eq!(post(Some(SECRET), update.clone()).await, 200);
    assert_eq!(post(Some(SECRET), update).await, 200, "a redelivery is accepted");
    eventually("welcome", Duration::from_secs(10), || telegram.sent_texts(6001).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(telegram.sent_texts(6001).len(), 1, "handled once");
    assert_eq!(recorded().await, 1);
    assert_eq!(post(Some(SECRET), json!({ "no": "update id" })).await, 400);
    listener.stop(None);
    common::assert_ledger(&services).await;
}
