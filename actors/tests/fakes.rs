//! The fakes must speak the real wire formats: checked here with the very
//! clients the daemon uses (teloxide, reqwest) and FAL's signature scheme.

use std::time::Duration;

use aisha_actors::clients::telegram_bot;
use aisha_actors::secret::Secret;
use aisha_actors::settings::TelegramSettings;
use aisha_testkit::fal::{sign_with, FAL_USER_ID};
use aisha_testkit::openai::Answer;
use aisha_testkit::telegram::Failure;
use aisha_testkit::{FakeFal, FakeOpenAi, FakeTelegram};
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use teloxide::prelude::*;
use teloxide::{ApiError, RequestError};

const TOKEN: &str = "123456:TEST-token-abcdefghij";

fn bot(fake: &FakeTelegram) -> Bot {
    let settings = TelegramSettings {
        token: Secret::new(TOKEN),
        api_url: fake.url(),
        poll_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    // Sent without patiently(): these tests read the wire, errors included, unretried.
    telegram_bot(&settings).unwrap()
}

#[tokio::test]
async fn telegram_fake_answers_teloxide_and_records_calls() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    let me = bot.get_me().await.unwrap();
    assert_eq!(me.username(), aisha_testkit::telegram::BOT_USERNAME);
    let sent = bot.send_message(ChatId(42), "hello").await.unwrap();
    assert_eq!(sent.text(), Some("hello"));
    assert_eq!(fake.sent_texts(42), vec!["hello".to_string()]);
}

#[tokio::test]
async fn telegram_fake_delivers_updates_teloxide_can_parse_and_honours_offsets() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    let first = fake.push_text(5, "en", "/start");
    fake.push_voice(5, "ru", 3, bytes::Bytes::from_static(b"OggS..."));
    let updates = bot.get_updates().timeout(1).await.unwrap();
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0].id.0 as i64, first);
    let next = bot.get_updates().offset(first as i32 + 2).timeout(0).await.unwrap();
    assert!(next.is_empty());
    assert_eq!(fake.pending_updates(), 0, "the offset confirmed both");
}

#[tokio::test]
async fn a_second_poll_terminates_the_first_with_409() {
    let fake = FakeTelegram::start(TOKEN).await;
    let (a, b) = (bot(&fake), bot(&fake));
    let first = tokio::spawn(async move { a.get_updates().timeout(2).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = b.get_updates().timeout(0).await.unwrap();
    assert!(second.is_empty());
    match first.await.unwrap() {
        Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates)) => {}
        other => panic!("expected 409 TerminatedByOtherGetUpdates, got {other:?}"),
    }
    assert_eq!(fake.conflicts(), 1);
    assert_eq!(fake.max_polls_in_flight(), 2);
}

#[tokio::test]
async fn injected_429_is_teloxides_retry_after() {
    let fake = FakeTelegram::start(TOKEN).await;
    fake.fail_next("sendMessage", Failure::RetryAfter(7));
    match bot(&fake).send_message(ChatId(1), "x").await {
        Err(RequestError::RetryAfter(seconds)) => assert_eq!(seconds.seconds(), 7),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
}

#[tokio::test]
async fn files_download_through_get_file() {
    let fake = FakeTelegram::start(TOKEN).await;
    let file_id = fake.add_file("voice/a.oga", bytes::Bytes::from_static(b"voice bytes"));
    let file = bot(&fake).get_file(teloxide::types::FileId(file_id)).await.unwrap();
    let url = format!("{}/file/bot{TOKEN}/{}", fake.url(), file.path);
    let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(&body[..], b"voice bytes");
}

#[tokio::test]
async fn openai_fake_speaks_openai_errors() {
    let fake = FakeOpenAi::start("sk-test").await;
    fake.script_transcriptions([Answer::RateLimited(3), Answer::InsufficientQuota, Answer::Text("hi".into())]);
    let client = reqwest::Client::new();
    let send = || {
        let form = reqwest::multipart::Form::new()
            .text("model", "whisper-1")
            .part("file", reqwest::multipart::Part::bytes(b"ogg".to_vec()).file_name("voice.ogg"));
        client.post(format!("{}/audio/transcriptions", fake.url())).bearer_auth("sk-test").multipart(form).send()
    };
    let limited = send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "3");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let quota: serde_json::Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(quota["error"]["code"], "insufficient_quota");
    let ok: serde_json::Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(ok["text"], "hi");
    assert_eq!(fake.transcriptions()[0].file_name, "voice.ogg");
}

#[tokio::test]
async fn fal_fake_signs_callbacks_verifiable_with_its_jwks() {
    let fake = FakeFal::start("fal-key").await;
    let body = br#"{"request_id":"r1","status":"OK","payload":{}}"#;
    let headers = fake.sign("r1", 1_700_000_000, body);
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).unwrap().1.clone();

    let jwks: serde_json::Value = reqwest::get(fake.jwks_url()).await.unwrap().json().await.unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let key_bytes: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(x).unwrap().try_into().unwrap();
    let key = VerifyingKey::from_bytes(&key_bytes).unwrap();
    let message = format!("r1\n{FAL_USER_ID}\n1700000000\n{}", hex::encode(Sha256::digest(body)));
    let signature: [u8; 64] = hex::decode(header("x-fal-webhook-signature")).unwrap().try_into().unwrap();
    key.verify(message.as_bytes(), &Signature::from_bytes(&signature)).expect("signature verifies");
    assert_eq!(header("x-fal-webhook-user-id"), FAL_USER_ID);

    let other = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let forged = sign_with(&other, "r1", FAL_USER_ID, 1_700_000_000, body);
    let forged_sig: [u8; 64] = hex::decode(&forged[3].1).unwrap().try_into().unwrap();
    assert!(key.verify(message.as_bytes(), &Signature::from_bytes(&forged_sig)).is_err());
}

#[tokio::test]
async fn fal_fake_queue_submit_status_result_and_callback() {
    let fal = FakeFal::start("fal-key").await;
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = received.clone();
    let (hook, _task) =
        aisha_testkit::server::serve(std::sync::Arc::new(move |req: aisha_testkit::server::FakeRequest| {
            sink.lock().unwrap().push(req);
            Box::pin(async { aisha_testkit::server::reply(http::StatusCode::OK, "text/plain", "ok") })
        }))
        .await;
    let client = reqwest::Client::new();
    let submit: serde_json::Value = client
        .post(format!("{}/fal-ai/imagen4/preview?fal_webhook=http://{hook}/webhooks/fal", fal.queue_url()))
        .header("authorization", "Key fal-key")
        .json(&serde_json::json!({ "prompt": "a cat" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request_id = submit["request_id"].as_str().unwrap().to_owned();
    aisha_testkit::eventually("callback", Duration::from_secs(5), || !received.lock().unwrap().is_empty()).await;
    let callback = received.lock().unwrap()[0].clone();
    assert_eq!(callback.header("x-fal-webhook-request-id"), Some(request_id.as_str()));
    let status: serde_json::Value = client
        .get(submit["status_url"].as_str().unwrap())
        .header("authorization", "Key fal-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "COMPLETED");
    let unauthorized = client.get(submit["status_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
}
