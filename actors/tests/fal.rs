//! Avatars and images on FAL, end to end: the poller, the WebhookListener
//! verifying the fake FAL's real Ed25519 signatures, the FAL job pool, real
//! PostgreSQL, Redis and SeaweedFS.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aisha_actors::clients::fal::files;
use aisha_actors::fal_job::FalJobs;
use aisha_actors::poller::TelegramPoller;
use aisha_actors::pool::{JobPool, JobPoolArgs};
use aisha_actors::secret::Secret;
use aisha_actors::services::Services;
use aisha_actors::store::fal::FalState;
use aisha_actors::store::images::AvatarState;
use aisha_actors::webhook::WebhookListener;
use aisha_testkit::fal::{sign_with, unix_now, Outcome, FAL_USER_ID};
use aisha_testkit::{eventually, free_port, FakeFal, FakeTelegram};
use bytes::Bytes;
use serde_json::json;

const TOKEN: &str = "9090:FAL-test-token-abcdef";
const USER: i64 = 4001;
const WAIT: Duration = Duration::from_secs(30);
const FILES_SECRET: &str = "files-secret-for-tests";

struct Rig {
    telegram: FakeTelegram,
    fal: FakeFal,
    services: Services,
    webhook: String,
    base: String,
}

async fn rig(name: &str, with_webhook: bool, tweak: impl FnOnce(&mut aisha_actors::settings::Settings)) -> Rig {
    let telegram = FakeTelegram::start(TOKEN).await;
    let fal = FakeFal::start("fal-test-key").await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let webhook = format!("{base}/webhooks/fal");
    let (telegram_url, queue_url, jwks_url, hook, files_base) =
        (telegram.url(), fal.queue_url(), fal.jwks_url(), webhook.clone(), base.clone());
    let (_test, services) = common::services(name, |s| {
        common::use_telegram(s, TOKEN, telegram_url);
        s.fal.key = Secret::new("fal-test-key");
        s.fal.queue_url = queue_url;
        s.fal.jwks_url = jwks_url;
        s.fal.webhook_url = if with_webhook { hook } else { String::new() };
        s.fal.public_url = files_base;
        s.fal.files_secret = Secret::new(FILES_SECRET);
        s.fal.min_photos = 3;
        s.fal.max_photos = 5;
        s.http.webhook_bind = ([127, 0, 0, 1], port).into();
        common::fast_jobs(s);
        tweak(s);
    })
    .await;
    services.blob.ensure_bucket().await.unwrap();
    Actor::spawn(None, WebhookListener, services.clone()).await.unwrap();
    Actor::spawn(None, TelegramPoller, services.clone()).await.unwrap();
    let handlers: BTreeMap<_, _> =
        FalJobs::handlers(services.clone()).unwrap().into_iter().map(|(k, h)| (k.to_owned(), h)).collect();
    Actor::spawn(None, JobPool, JobPoolArgs { services: services.clone(), handlers }).await.unwrap();
    telegram.push_text(USER, "en", "/start");
    eventually("welcome", WAIT, || telegram.sent_texts(USER).len() == 1).await;
    Rig { telegram, fal, services, webhook, base }
}

use ractor::Actor;

impl Rig {
    async fn scalar(&self, sql: &str) -> i64 {
        self.services.db.client().await.unwrap().query_one(sql, &[]).await.unwrap().get(0)
    }

    async fn balance(&self) -> i64 {
        self.scalar(&format!("SELECT balance FROM users WHERE telegram_id = {USER}")).await
    }

    fn photos_sent(&self) -> Vec<aisha_testkit::telegram::Call> {
        self.telegram.calls("sendPhoto")
    }

    async fn post_owned(&self, headers: Vec<(String, String)>, body: Vec<u8>) -> u16 {
        self.post(&headers, body).await
    }

    async fn post(&self, headers: &[(String, String)], body: Vec<u8>) -> u16 {
        let mut request = reqwest::Client::new().post(&self.webhook).body(body);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        request.send().await.unwrap().status().as_u16()
    }
}

#[tokio::test]
async fn imagine_end_to_end_and_a_callback_ten_times_is_one_message() {
    let rig = rig("fal_imagine", true, |_| {}).await;
    rig.telegram.push_text(USER, "en", "/imagine a red fox in the snow");
    eventually("photo", WAIT, || rig.photos_sent().len() == 1).await;

    let submission = &rig.fal.submissions()[0];
    assert_eq!(submission.model, "fal-ai/imagen4/preview");
    assert_eq!(submission.input["prompt"], "a red fox in the snow");
    assert_eq!(submission.input["aspect_ratio"], "1:1");
    assert_eq!(submission.webhook.as_deref(), Some(rig.webhook.as_str()));
    let photo = &rig.photos_sent()[0];
    assert!(photo.params["caption"].as_str().unwrap().contains("a red fox in the snow"));
    let buttons = photo.params["reply_markup"]["inline_keyboard"][0].as_array().unwrap();
    assert!(buttons[0]["callback_data"].as_str().unwrap().starts_with("regen:"));
    assert!(buttons[1]["callback_data"].as_str().unwrap().starts_with("fav:"));
    assert_eq!(rig.balance().await, 95);
    let key: String =
        rig.services.db.client().await.unwrap().query_one("SELECT key FROM images", &[]).await.unwrap().get(0);
    assert_eq!(
        &rig.services.blob.get(&key).await.unwrap()[..],
        aisha_testkit::fal::TINY_PNG,
        "copied into S3, not linked"
    );

    let request_id = submission.request_id.clone();
    let body =
        rig.fal.callback_body(&request_id, &Outcome::Ok, rig.fal.result_for(&submission.model, &submission.input));
    for _ in 0..9 {
        assert_eq!(rig.fal.deliver(&rig.webhook, &request_id, &body).await, 200, "a duplicate is accepted");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.photos_sent().len(), 1, "one message for ten callbacks");
    assert_eq!(rig.scalar("SELECT count(*) FROM jobs WHERE kind = 'fal.deliver'").await, 1);
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn forged_stale_partial_oversized_and_malformed_callbacks_are_refused_and_nothing_is_written() {
    let rig = rig("fal_reject", true, |_| {}).await;
    let body = br#"{"request_id":"r-1","gateway_request_id":"r-1","status":"OK","payload":{}}"#.to_vec();
    let now = unix_now();

    let stranger = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    assert_eq!(rig.post(&sign_with(&stranger, "r-1", FAL_USER_ID, now, &body), body.clone()).await, 401, "wrong key");

    let headers = rig.fal.sign("r-1", now, &body);
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    assert_eq!(rig.post(&headers, tampered).await, 401, "tampered body");

    assert_eq!(rig.post(&rig.fal.sign("r-1", now - 301, &body), body.clone()).await, 401, "stale timestamp");
    // Well past the 300 s tolerance: the test itself takes seconds on a busy machine.
    assert_eq!(rig.post(&rig.fal.sign("r-1", unix_now() + 360, &body), body.clone()).await, 401, "future timestamp");

    for missing in 0..4 {
        let mut partial = rig.fal.sign("r-1", now, &body);
        partial.remove(missing);
        assert_eq!(rig.post(&partial, body.clone()).await, 401, "missing header {missing}");
    }

    let big = vec![b' '; 2 * 1024 * 1024];
    assert_eq!(rig.post(&rig.fal.sign("r-1", now, &big), big.clone()).await, 413, "2 MiB");

    let not_json = b"{not json".to_vec();
    assert_eq!(rig.post(&rig.fal.sign("r-1", now, &not_json), not_json).await, 400, "invalid JSON, validly signed");

    let other_id = br#"{"request_id":"r-2","status":"OK","payload":{}}"#.to_vec();
    assert_eq!(rig.post(&rig.fal.sign("r-1", now, &other_id), other_id).await, 400, "body names another request");

    assert_eq!(rig.scalar("SELECT count(*) FROM fal_callbacks").await, 0);
    assert_eq!(rig.scalar("SELECT count(*) FROM jobs").await, 0);
    assert_eq!(rig.post(&rig.fal.sign("r-1", now, &body), body).await, 200, "the genuine one passes");
    assert_eq!(rig.scalar("SELECT count(*) FROM fal_callbacks").await, 1, "stored although its request is unknown");
}

#[tokio::test]
async fn without_a_webhook_the_poller_path_delivers() {
    let rig = rig("fal_poll", false, |s| s.fal.poll_after = Duration::from_millis(500)).await;
    rig.fal.set_callbacks(false);
    rig.telegram.push_text(USER, "en", "/imagine a lighthouse");
    eventually("photo", WAIT, || rig.photos_sent().len() == 1).await;
    assert!(rig.fal.submissions()[0].webhook.is_none());
    let source: String = rig
        .services
        .db
        .client()
        .await
        .unwrap()
        .query_one("SELECT source FROM fal_callbacks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(source, "poll");
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn an_error_callback_refunds_and_says_why() {
    let rig = rig("fal_error", true, |_| {}).await;
    rig.fal.set_outcome(Outcome::Error("NSFW content detected".into()));
    rig.telegram.push_text(USER, "en", "/imagine something");
    eventually("told", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("NSFW content detected")))
        .await;
    let told = rig.telegram.sent_texts(USER).into_iter().find(|t| t.contains("NSFW")).unwrap();
    assert!(told.contains("5 coins refunded"), "{told}");
    assert_eq!(rig.balance().await, 100);
    assert!(rig.photos_sent().is_empty());
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_request_that_never_finishes_times_out_with_a_refund() {
    let rig = rig("fal_timeout", true, |s| {
        s.fal.poll_after = Duration::from_millis(200);
        s.fal.image_timeout = Duration::from_secs(2);
    })
    .await;
    rig.fal.set_outcome(Outcome::Hang);
    rig.telegram.push_text(USER, "en", "/imagine a slow thing");
    eventually("told", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("no result within"))).await;
    assert_eq!(rig.balance().await, 100);
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn file_links_refuse_tampered_and_expired_tokens() {
    let rig = rig("fal_files", true, |_| {}).await;
    rig.services.blob.put("avatars/1/1/training.zip", Bytes::from_static(b"PK zip"), "application/zip").await.unwrap();
    let get = |token: String| {
        let url = format!("{}/files/{token}", rig.base);
        async move { reqwest::get(url).await.unwrap() }
    };
    let good = files::sign(FILES_SECRET.as_bytes(), "avatars/1/1/training.zip", unix_now() + 60);
    let response = get(good.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], b"PK zip");
    let tampered = files::sign(b"someone else's secret", "avatars/1/1/training.zip", unix_now() + 60);
    assert_eq!(get(tampered).await.status(), 403);
    use base64::Engine;
    let (_, signature) = good.split_once('.').unwrap();
    let other_key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("avatars/2/2/training.zip");
    assert_eq!(get(format!("{other_key}.{signature}")).await.status(), 403, "a signature for another object");
    let expired = files::sign(FILES_SECRET.as_bytes(), "avatars/1/1/training.zip", unix_now() - 1);
    assert_eq!(get(expired).await.status(), 410);
}

/// A PNG header is all `imagesize` reads; distinct bytes make distinct photos.
fn png(width: u32, height: u32, salt: u8) -> Bytes {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];
    bytes.extend(width.to_be_bytes());
    bytes.extend(height.to_be_bytes());
    bytes.extend([8, 2, 0, 0, 0, 0, 0, 0, 0, salt]);
    bytes.into()
}

fn push_photo(telegram: &FakeTelegram, bytes: Bytes, n: usize) {
    let file_id = telegram.add_file(&format!("photos/p{n}.png"), bytes.clone());
    let message = telegram.user_message(USER, "en", json!({ "photo": [
        { "file_id": file_id, "file_unique_id": format!("up{n}"), "width": 800, "height": 600, "file_size": bytes.len() }
    ] }));
    telegram.push_update(json!({ "message": message }));
}

#[tokio::test]
async fn an_avatar_goes_from_photos_to_training_to_a_generated_image() {
    let rig = rig("fal_avatar", true, |_| {}).await;
    aisha_actors::ledger::admin_credit(&rig.services.db, USER, 200, "test").await.unwrap();
    let said = |needle: &'static str| {
        let telegram = rig.telegram.clone();
        move || telegram.sent_texts(USER).iter().any(|t| t.contains(needle))
    };

    rig.telegram.push_callback(USER, "en", "avatar:new", 1);
    eventually("asked for a name", WAIT, said("What shall we call")).await;
    rig.telegram.push_text(USER, "en", "Me at work");
    eventually("asked for gender", WAIT, said("Who is in the photos")).await;
    rig.telegram.push_callback(USER, "en", "gender:woman", 2);
    eventually("asked for photos", WAIT, said("Send 3 to 5 photos")).await;

    push_photo(&rig.telegram, png(800, 600, 1), 1);
    push_photo(&rig.telegram, png(800, 600, 1), 2); // the same content again
    push_photo(&rig.telegram, png(300, 300, 2), 3); // too small
    push_photo(&rig.telegram, png(800, 600, 3), 4);
    push_photo(&rig.telegram, png(1024, 1024, 4), 5);
    eventually("three accepted", WAIT, said("Got 3/5. Ready to train!")).await;
    let texts = rig.telegram.sent_texts(USER);
    assert!(texts.iter().any(|t| t.contains("already there")), "duplicate refused: {texts:?}");
    assert!(texts.iter().any(|t| t.contains("under 512 px")), "small refused: {texts:?}");

    let avatar_id = rig.scalar("SELECT id FROM avatars").await;
    rig.telegram.push_callback(USER, "en", &format!("avatar:train:{avatar_id}"), 3);
    eventually("ready", WAIT, said("✅ Avatar")).await;
    let training = rig
        .fal
        .submissions()
        .into_iter()
        .find(|s| s.model == "fal-ai/flux-lora-portrait-trainer")
        .unwrap_or_else(|| panic!("{:?} {:?}", rig.fal.submissions(), rig.telegram.sent_texts(USER)));
    assert_eq!(training.input["steps"], 1000);
    let archive_url = training.input["images_data_url"].as_str().unwrap();
    assert!(archive_url.starts_with(&format!("{}/files/", rig.base)), "{archive_url}");
    let archive = reqwest::get(archive_url).await.unwrap().bytes().await.unwrap();
    let zip = zip::ZipArchive::new(std::io::Cursor::new(archive.to_vec())).unwrap();
    assert_eq!(zip.len(), 3, "the three accepted photos");
    let state: String =
        rig.services.db.client().await.unwrap().query_one("SELECT state FROM avatars", &[]).await.unwrap().get(0);
    assert_eq!(state, "ready");
    assert_eq!(
        rig.scalar("SELECT count(*) FROM avatars WHERE is_main").await,
        1,
        "the first ready avatar is the main one"
    );
    assert_eq!(rig.balance().await, 300 - 150);

    rig.telegram.push_text(USER, "en", "/generate on a mountain top");
    eventually("image", WAIT, || !rig.photos_sent().is_empty()).await;
    let models: Vec<String> = rig.fal.submissions().iter().map(|s| s.model.clone()).collect();
    let generation = rig
        .fal
        .submissions()
        .into_iter()
        .find(|s| s.model == "fal-ai/flux-lora")
        .unwrap_or_else(|| panic!("{models:?} {:?}", rig.telegram.sent_texts(USER)));
    assert!(generation.input["prompt"].as_str().unwrap().ends_with("on a mountain top"));
    assert!(generation.input["prompt"].as_str().unwrap().starts_with("ohwx woman"));
    let lora = generation.input["loras"][0]["path"].as_str().unwrap();
    assert_eq!(
        &reqwest::get(lora).await.unwrap().bytes().await.unwrap()[..],
        b"fake lora weights",
        "LoRA served from S3"
    );
    assert_eq!(generation.input["image_size"], "square_hd");

    rig.telegram.push_text(USER, "en", "/gallery");
    eventually("gallery", WAIT, || rig.photos_sent().len() == 2).await;
    let gallery = &rig.photos_sent()[1];
    assert!(gallery.params["caption"].as_str().unwrap().starts_with("🖼 1/1"));
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn cancelling_a_training_tells_fal_and_refunds() {
    let rig = rig("fal_cancel", true, |_| {}).await;
    let avatar_id = training_under_way(&rig).await;
    rig.telegram.push_callback(USER, "en", &format!("avatar:cancel:{avatar_id}"), 2);
    eventually("cancelled", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("Training cancelled")))
        .await;
    assert_eq!(rig.fal.cancelled().len(), 1);
    assert_eq!(rig.balance().await, 300);
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn callbacks_for_another_fal_account_are_refused_before_any_key_is_fetched() {
    let rig = rig("fal_wrong_user", true, |s| s.fal.user_id = FAL_USER_ID.into()).await;
    let body = br#"{"request_id":"r-9","status":"OK","payload":{}}"#.to_vec();
    let other_account = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    for _ in 0..20 {
        let headers = sign_with(&other_account, "r-9", "another-fal-customer", unix_now(), &body);
        assert_eq!(rig.post(&headers, body.clone()).await, 401);
    }
    assert_eq!(rig.fal.jwks_fetches(), 0, "refused on the header alone");
    assert_eq!(rig.scalar("SELECT count(*) FROM fal_callbacks").await, 0);
    assert_eq!(rig.post(&rig.fal.sign("r-9", unix_now(), &body), body).await, 200, "our account's passes");
}

#[tokio::test]
async fn a_burst_of_forged_callbacks_fetches_the_jwks_once() {
    let rig = rig("fal_jwks_burst", true, |_| {}).await;
    let body = br#"{"request_id":"r-8","status":"OK","payload":{}}"#.to_vec();
    let forger = ed25519_dalek::SigningKey::from_bytes(&[6u8; 32]);
    let posts =
        (0..50).map(|_| rig.post_owned(sign_with(&forger, "r-8", FAL_USER_ID, unix_now(), &body), body.clone()));
    let statuses = futures::future::join_all(posts).await;
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    assert_eq!(rig.fal.jwks_fetches(), 1, "one fetch for fifty forgeries");
}

#[tokio::test]
async fn a_failed_jwks_refresh_keeps_the_keys_we_had_and_backs_off() {
    let rig = rig("fal_jwks_stale", true, |s| s.fal.jwks_cache = Duration::from_millis(500)).await;
    let body = |id: &str| format!(r#"{{"request_id":"{id}","status":"OK","payload":{{}}}}"#).into_bytes();
    assert_eq!(rig.post(&rig.fal.sign("r-a", unix_now(), &body("r-a")), body("r-a")).await, 200);
    rig.fal.set_jwks_down(true);
    tokio::time::sleep(Duration::from_millis(700)).await; // the cached keys are stale now
    for id in ["r-b", "r-c", "r-d", "r-e"] {
        assert_eq!(
            rig.post(&rig.fal.sign(id, unix_now(), &body(id)), body(id)).await,
            200,
            "{id}: verified with the keys we had"
        );
    }
    assert_eq!(rig.fal.jwks_fetches(), 2, "one failed refresh, then a backoff");
    assert_eq!(rig.scalar("SELECT count(*) FROM fal_callbacks").await, 5);
}

#[tokio::test]
async fn cancel_after_the_request_went_to_fal_leaves_it_to_finish_delivered_and_charged_once() {
    let rig = rig("fal_cancel_late", true, |_| {}).await;
    rig.fal.set_outcome(Outcome::Hang);
    rig.telegram.push_text(USER, "en", "/imagine a heron at dawn");
    eventually("submitted", WAIT, || !rig.fal.submissions().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    rig.telegram.push_text(USER, "en", "/cancel");
    eventually("cancel answered", WAIT, || {
        rig.telegram.sent_texts(USER).iter().any(|t| t.contains("Already under way: 1"))
    })
    .await;
    assert!(
        !rig.telegram.sent_texts(USER).iter().any(|t| t.contains("Nothing to cancel")),
        "the image on its way is named, not denied"
    );
    let submission = rig.fal.submissions()[0].clone();
    let body = rig.fal.callback_body(
        &submission.request_id,
        &Outcome::Ok,
        rig.fal.result_for(&submission.model, &submission.input),
    );
    assert_eq!(rig.fal.deliver(&rig.webhook, &submission.request_id, &body).await, 200);
    eventually("delivered", WAIT, || rig.photos_sent().len() == 1).await;
    assert_eq!(rig.balance().await, 95, "charged once, not refunded: the image came");
    assert_eq!(rig.scalar("SELECT count(*) FROM ledger_entries WHERE reason = 'refund'").await, 0);
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_user_who_blocked_the_bot_keeps_the_image_in_the_gallery_and_is_not_refunded() {
    let rig = rig("fal_blocked", true, |_| {}).await;
    rig.telegram.fail_next(
        "sendPhoto",
        aisha_testkit::telegram::Failure::Status(403, "Forbidden: bot was blocked by the user".into()),
    );
    rig.telegram.push_text(USER, "en", "/imagine a lighthouse");
    let deadline = std::time::Instant::now() + WAIT;
    while rig.scalar("SELECT count(*) FROM jobs WHERE kind = 'fal.deliver' AND state = 'done'").await == 0 {
        assert!(std::time::Instant::now() < deadline, "the delivery never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rig.telegram.calls("sendPhoto").len(), 1, "403 is not retried");
    assert_eq!(rig.scalar("SELECT count(*) FROM images").await, 1, "the image is in the gallery");
    assert_eq!(rig.balance().await, 95, "the charge stands");
    assert_eq!(rig.scalar("SELECT count(*) FROM ledger_entries WHERE reason = 'refund'").await, 0);
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_cancel_racing_a_delivery_gives_a_result_or_a_refund_never_both() {
    let rig = rig("fal_race", true, |s| {
        s.limits.paid_per_minute = 100;
        s.limits.jobs_in_flight = 100;
    })
    .await;
    aisha_actors::ledger::admin_credit(&rig.services.db, USER, 1000, "test").await.unwrap();
    rig.fal.set_outcome(Outcome::Hang);
    for i in 0..12 {
        rig.telegram.push_text(USER, "en", &format!("/imagine race {i}"));
    }
    eventually("submitted", WAIT, || rig.fal.submissions().len() == 12).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Each request: its stored result and its cancellation, at once.
    let races = rig.fal.submissions().into_iter().map(|s| {
        let db = rig.services.db.clone();
        async move {
            let image = aisha_actors::store::images::NewImage {
                user_id: 1,
                request_id: &s.request_id,
                n: 0,
                avatar_id: None,
                prompt: "p",
                model: "m",
                aspect_ratio: None,
                key: format!("images/race/{}", s.request_id),
            };
            let (stored, ended) = tokio::join!(
                aisha_actors::fal_job::requests::store_images(&db, &s.request_id, std::slice::from_ref(&image)),
                aisha_actors::fal_job::requests::end_unpaid(&db, &s.request_id, FalState::Cancelled, true),
            );
            (stored.unwrap().is_some(), ended.unwrap().is_some())
        }
    });
    for (stored, refunded) in futures::future::join_all(races).await {
        assert!(stored != refunded, "exactly one of result and refund: stored {stored}, refunded {refunded}");
    }
    let (images, refunds) = (
        rig.scalar("SELECT count(*) FROM images").await,
        rig.scalar("SELECT count(*) FROM ledger_entries WHERE reason = 'refund'").await,
    );
    assert_eq!(images + refunds, 12);
    assert_eq!(rig.balance().await, 1100 - 5 * images);
    let unbalanced: i64 = rig.services.db.client().await.unwrap()
        .query_one("SELECT count(*) FROM users u WHERE u.balance <> (SELECT COALESCE(sum(delta), 0) FROM ledger_entries e WHERE e.user_id = u.id)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(unbalanced, 0);
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn callbacks_that_arrive_together_share_a_commit_and_a_bad_one_fails_alone() {
    let rig = rig("fal_group_commit", true, |_| {}).await;
    let body = |id: &str, text: &str| {
        format!(r#"{{"request_id":"{id}","status":"OK","payload":{{"note":"{text}"}}}}"#).into_bytes()
    };
    // PostgreSQL's jsonb refuses \u0000: valid JSON, validly signed, unstorable.
    let mut posts: Vec<(String, Vec<u8>)> =
        (0..40).map(|i| (format!("g-{i}"), body(&format!("g-{i}"), "fine"))).collect();
    posts.push(("g-bad".into(), body("g-bad", "nul \\u0000 here")));
    posts.push(("g-7".into(), body("g-7", "fine")));
    let now = unix_now();
    let sent = posts.iter().map(|(id, b)| rig.post_owned(rig.fal.sign(id, now, b), b.clone()));
    let statuses = futures::future::join_all(sent).await;
    assert_eq!(statuses[40], 500, "the unstorable callback is refused, for FAL to retry");
    assert!(statuses.iter().enumerate().all(|(i, s)| i == 40 || *s == 200), "{statuses:?}");
    assert_eq!(rig.scalar("SELECT count(*) FROM fal_callbacks").await, 40, "each good one once, the duplicate once");
    assert_eq!(
        rig.scalar("SELECT count(*) FROM fal_callbacks WHERE request_id = 'g-bad'").await,
        0,
        "nothing written for it"
    );
}

#[tokio::test]
async fn a_submission_claimed_again_after_its_request_was_recorded_is_not_sent_to_fal_twice() {
    let rig = rig("fal_resubmit", true, |_| {}).await;
    rig.fal.set_outcome(Outcome::Hang);
    rig.telegram.push_text(USER, "en", "/imagine a kingfisher");
    let deadline = std::time::Instant::now() + WAIT;
    while rig.scalar("SELECT count(*) FROM jobs WHERE kind = 'fal.imagine' AND state = 'done'").await == 0 {
        assert!(std::time::Instant::now() < deadline, "never submitted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // As if its worker died after the request was recorded, before the job ended:
    // the lease lapses, it is claimed again.
    rig.services.db.client().await.unwrap()
        .execute("UPDATE jobs SET state = 'queued', locked_by = NULL, locked_until = NULL, run_at = now() WHERE kind = 'fal.imagine'", &[])
        .await
        .unwrap();
    while rig.scalar("SELECT count(*) FROM jobs WHERE kind = 'fal.imagine' AND state = 'done' AND attempts = 2").await
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "the second attempt never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rig.fal.submissions().len(), 1, "FAL bills every submission: one");
    let submission = rig.fal.submissions()[0].clone();
    let body = rig.fal.callback_body(
        &submission.request_id,
        &Outcome::Ok,
        rig.fal.result_for(&submission.model, &submission.input),
    );
    assert_eq!(rig.fal.deliver(&rig.webhook, &submission.request_id, &body).await, 200);
    eventually("delivered", WAIT, || rig.photos_sent().len() == 1).await;
    assert_eq!(rig.balance().await, 95, "charged once");
    assert_eq!(rig.scalar("SELECT count(*) FROM ledger_entries WHERE reason = 'refund'").await, 0, "and not refunded");
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_training_being_submitted_is_not_cancelled_for_nothing() {
    let rig = rig("fal_cancel_submitting", true, |_| {}).await;
    let user_id = rig.scalar(&format!("SELECT id FROM users WHERE telegram_id = {USER}")).await;
    let avatar_id = rig.services.db.create_avatar(user_id, "A", "man", "ohwx man").await.unwrap();
    // The submit job has set the avatar training and is waiting for FAL's answer: no request recorded yet.
    rig.services.db.set_avatar_state(avatar_id, &[AvatarState::Collecting], AvatarState::Training, None).await.unwrap();
    rig.telegram.push_callback(USER, "en", &format!("avatar:cancel:{avatar_id}"), 1);
    eventually("answered", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("Already under way")))
        .await;
    let state = rig.services.db.avatar_of(user_id, avatar_id).await.unwrap().unwrap().state;
    assert_eq!(state, AvatarState::Training, "left to become ready, not cancelled with nothing refunded");
    common::assert_ledger(&rig.services).await;
}

/// An avatar of three photos, its training submitted to FAL (which hangs): its id.
async fn training_under_way(rig: &Rig) -> i64 {
    aisha_actors::ledger::admin_credit(&rig.services.db, USER, 200, "test").await.unwrap();
    rig.fal.set_outcome(Outcome::Hang);
    let user_id = rig.scalar(&format!("SELECT id FROM users WHERE telegram_id = {USER}")).await;
    let avatar_id = rig.services.db.create_avatar(user_id, "A", "man", "ohwx man").await.unwrap();
    for n in 1..=3u8 {
        let key = format!("avatars/{user_id}/{avatar_id}/photo_{n}.png");
        rig.services.blob.put(&key, png(800, 800, n), "image/png").await.unwrap();
        rig.services
            .db
            .add_avatar_photo(
                avatar_id,
                (&format!("avatars/{user_id}/{avatar_id}/photo_"), ".png"),
                &format!("h{n}"),
                800,
                800,
            )
            .await
            .unwrap();
    }
    rig.telegram.push_callback(USER, "en", &format!("avatar:train:{avatar_id}"), 1);
    eventually("submitted", WAIT, || !rig.fal.submissions().is_empty()).await;
    while rig.scalar("SELECT count(*) FROM fal_requests").await == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    avatar_id
}

#[tokio::test]
async fn deleting_ones_data_during_a_training_refunds_only_as_a_cancel_would() {
    for refund in [false, true] {
        let rig =
            rig(&format!("fal_forget_training_{refund}"), true, |s| s.fal.refund_cancelled_training = refund).await;
        training_under_way(&rig).await;
        let charged = rig.balance().await;
        rig.telegram.push_callback(USER, "en", "forget:yes", 2);
        eventually("deleted", WAIT, || {
            rig.telegram.sent_texts(USER).iter().any(|t| t.starts_with("✅ Your data is deleted"))
        })
        .await;
        assert_eq!(rig.fal.cancelled().len(), 1, "FAL asked to stop");
        // FAL finishes anyway: nothing is stored or sent.
        let submission = rig.fal.submissions()[0].clone();
        let body = rig.fal.callback_body(
            &submission.request_id,
            &Outcome::Ok,
            rig.fal.result_for(&submission.model, &submission.input),
        );
        assert_eq!(rig.fal.deliver(&rig.webhook, &submission.request_id, &body).await, 200);
        let deadline = std::time::Instant::now() + WAIT;
        while rig
            .scalar("SELECT count(*) FROM jobs WHERE kind = 'fal.deliver' AND state IN ('queued', 'running')")
            .await
            > 0
        {
            assert!(std::time::Instant::now() < deadline, "the delivery never ended");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(rig.scalar("SELECT count(*) FROM avatars").await, 0);
        let refunded = rig.balance().await - charged;
        assert_eq!(refunded > 0, refund, "refunded {refunded} with refund_cancelled_training = {refund}");
        assert!(
            !rig.telegram.sent_texts(USER).iter().any(|t| t.starts_with("✅ Avatar")),
            "no avatar announced after the deletion"
        );
        common::assert_ledger(&rig.services).await;
    }
}
