//! Settings and service handles for actor tests, on the real local services.
#![allow(dead_code)]

pub mod chat_rig;

use std::sync::Arc;

use aisha_actors::secret::{ConnUrl, Secret};
use aisha_actors::services::Services;
use aisha_actors::settings::Settings;
use aisha_testkit::TestServices;

pub fn settings(test: &TestServices) -> Settings {
    let mut s = Settings { instance_id: "test-instance".into(), ..Default::default() };
    s.database.url = ConnUrl::new(&test.database_url);
    s.redis.url = ConnUrl::new(&test.redis_url);
    s.redis.key_prefix = test.redis_prefix.clone();
    s.s3.endpoint = test.s3_endpoint.clone();
    s.s3.access_key = Secret::new(&test.s3_access_key);
    s.s3.secret_key = Secret::new(&test.s3_secret_key);
    s.s3.bucket = test.s3_bucket.clone();
    s.s3.key_prefix = test.s3_prefix.clone();
    s
}

/// `AISHA_TEST_LOG=debug` (any filter) shows the actors' logs in a test.
pub fn init_logs() {
    if let Ok(filter) = std::env::var("AISHA_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

/// A migrated database and connected clients; `tweak` adjusts the settings first.
pub async fn services(name: &str, tweak: impl FnOnce(&mut Settings)) -> (TestServices, Services) {
    init_logs();
    let test = TestServices::new(name).await;
    let mut s = settings(&test);
    tweak(&mut s);
    let services = Services::new(Arc::new(s)).expect("services");
    services.db.migrate().await.expect("migrate");
    (test, services)
}

/// The same services as another instance would see them (another replica).
pub fn as_instance(services: &Services, instance: &str) -> Services {
    let mut s = (*services.settings).clone();
    s.instance_id = instance.into();
    Services { settings: Arc::new(s), ..services.clone() }
}

pub async fn user(services: &Services, telegram_id: i64) -> i64 {
    let profile = aisha_actors::store::users::TelegramProfile {
        telegram_id,
        language_code: Some("en".into()),
        ..Default::default()
    };
    services.db.upsert_user(&profile).await.unwrap().id
}

/// Points the settings at a fake Bot API with a short long-poll.
pub fn use_telegram(s: &mut Settings, token: &str, url: String) {
    s.telegram.token = Secret::new(token);
    s.telegram.api_url = url;
    s.telegram.poll_timeout = std::time::Duration::from_secs(1);
}

/// Retries quickly, so tests of failure paths finish fast.
pub fn fast_jobs(s: &mut Settings) {
    s.jobs.poll_interval = std::time::Duration::from_millis(200);
    s.jobs.retry_min = std::time::Duration::from_millis(100);
    s.jobs.retry_max = std::time::Duration::from_millis(300);
}

/// The ledger invariant for every user of this test's database: balance =
/// the sum of their entries, never below zero. Every test that moves money ends with it.
pub async fn assert_ledger(services: &Services) {
    let client = services.db.client().await.expect("a connection");
    aisha_testkit::services::assert_ledger_balanced(&client).await;
}

/// A plain transcription of `file_unique_id`, as `start_transcript` records it.
pub fn asked(file_unique_id: &str) -> aisha_actors::store::transcripts::Asked<'_> {
    aisha_actors::store::transcripts::Asked {
        file_unique_id,
        model: "whisper-1",
        spoken_language: Some("auto"),
        glossary: None,
    }
}
