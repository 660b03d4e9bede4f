//! The deployment, run for real: the image built from docker/Dockerfile and
//! the three compose files, brought up with Compose v2 on podman and checked
//! through the Telegram, OpenAI and FAL fakes, which listen on the podman
//! bridge so the containers reach them.
//!
//! `scripts/stack-test.sh` installs the engine, builds the images and runs
//! this (`cargo test --features stack-tests --test stack -- --test-threads=1`);
//! it is not part of `cargo test --workspace`.

mod deploy;
mod dev_stack;
mod engine;
mod prometheus;
mod release;
mod simple_stack;
mod swarm;
mod webhook_stack;

use std::net::IpAddr;
use std::time::Duration;

use aisha_testkit::forward;
use aisha_testkit::{FakeFal, FakeOpenAi, FakeTelegram, TestServices};

pub const TOKEN: &str = "7777:STACK-telegram-token-do-not-log";
pub const OPENAI_KEY: &str = "sk-stack-openai-key-do-not-log";
pub const FAL_KEY: &str = "fal-stack-key-do-not-log";
const WAIT: Duration = Duration::from_secs(60);

/// The image the stack runs, as scripts/images.sh tagged it.
pub fn aishad_image() -> String {
    format!("aishad:{}", env!("CARGO_PKG_VERSION"))
}

/// The links workers' image (scripts/images.sh builds it on aishad's).
pub fn links_image() -> String {
    format!("aishad-links:{}", env!("CARGO_PKG_VERSION"))
}

/// An image name scripts/stack-test.sh exported (from `scripts/images.sh names`).
pub fn image(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run this through scripts/stack-test.sh"))
}

/// A line of figures for the closing note, greppable in the test output.
pub fn figure(what: &str, value: impl std::fmt::Display) {
    println!("stack figure: {what}: {value}");
}

pub struct Fakes {
    pub telegram: FakeTelegram,
    pub openai: FakeOpenAi,
    pub fal: FakeFal,
    pub bridge: IpAddr,
}

impl Fakes {
    /// The three fakes, listening on the podman bridge.
    pub async fn start() -> Self {
        Self::start_on(engine::bridge_ip()).await
    }

    /// The three fakes, listening on `bridge`, where the containers reach this host.
    pub async fn start_on(bridge: IpAddr) -> Self {
        aisha_testkit::server::set_bind_ip(bridge);
        Self {
            telegram: FakeTelegram::start(TOKEN).await,
            openai: FakeOpenAi::start(OPENAI_KEY).await,
            fal: FakeFal::start(FAL_KEY).await,
            bridge,
        }
    }

    /// What every aishad container needs to reach them, as `.env` lines.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TELEGRAM_BOT_TOKEN", TOKEN.into()),
            ("TELEGRAM_API_URL", self.telegram.url()),
            ("OPENAI_API_KEY", OPENAI_KEY.into()),
            ("OPENAI_BASE_URL", self.openai.url()),
            ("FAL_KEY", FAL_KEY.into()),
            ("FAL_QUEUE_URL", self.fal.queue_url()),
            ("FAL_JWKS_URL", self.fal.jwks_url()),
            ("AISHA_FAL__INSECURE_HTTP", "true".into()),
            ("AISHA_FAL__USER_ID", aisha_testkit::fal::FAL_USER_ID.into()),
            ("AISHAD_IMAGE", aishad_image()),
            // Short polls and leases so failovers in the test take seconds.
            ("AISHA_TELEGRAM__POLL_TIMEOUT", "2s".into()),
            ("AISHA_TELEGRAM__LEASE_TTL", "6s".into()),
            ("AISHA_JOBS__LEASE", "6s".into()),
            ("AISHA_JOBS__RETRY_MIN", "1s".into()),
        ]
    }

    /// Every secret the containers are given; none may reach a log.
    pub fn secrets(&self) -> Vec<String> {
        vec![TOKEN.into(), OPENAI_KEY.into(), FAL_KEY.into()]
    }
}

/// The host's PostgreSQL, Redis and S3 (scripts/services.sh) as the "external
/// services" of the production compose files: a database, key prefix and
/// object prefix of this test's own, reached through forwarders on the bridge.
pub struct External {
    pub test: TestServices,
    pub env: Vec<(&'static str, String)>,
}

impl External {
    pub async fn start(name: &str, bridge: IpAddr) -> Self {
        let test = TestServices::new(name).await;
        let db = forward::forward(bridge, forward::target_of(&test.database_url)).await;
        let redis = forward::forward(bridge, forward::target_of(&test.redis_url)).await;
        let s3 = forward::forward(bridge, forward::target_of(&test.s3_endpoint)).await;
        let mut database_url = url::Url::parse(&test.database_url).expect("database url");
        database_url.set_ip_host(db.ip()).expect("ip host");
        database_url.set_port(Some(db.port())).expect("port");
        let env = vec![
            ("DATABASE_URL", database_url.to_string()),
            ("REDIS_URL", format!("redis://{redis}")),
            ("AISHA_REDIS__KEY_PREFIX", test.redis_prefix.clone()),
            ("MINIO_ENDPOINT", s3.to_string()),
            ("MINIO_SECURE", "false".into()),
            ("MINIO_ACCESS_KEY", test.s3_access_key.clone()),
            ("MINIO_SECRET_KEY", test.s3_secret_key.clone()),
            ("MINIO_BUCKET_NAME", test.s3_bucket.clone()),
            ("AISHA_S3__KEY_PREFIX", test.s3_prefix.clone()),
        ];
        Self { test, env }
    }

    /// The value of `key` in [`External::env`].
    pub fn var(&self, key: &str) -> String {
        self.env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("{key} is not set"))
    }

    pub fn secrets(&self) -> Vec<String> {
        let password = url::Url::parse(&self.test.database_url).ok().and_then(|u| u.password().map(str::to_owned));
        password.into_iter().chain([self.test.s3_secret_key.clone()]).collect()
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        self.test.scalar(sql).await
    }
}

/// The `.env` of a production stack: the fakes and the external services,
/// less the variable named `left_out` (if any).
pub fn env_without(fakes: &Fakes, external: &External, left_out: &str) -> Vec<(&'static str, String)> {
    fakes.env().into_iter().chain(external.env.clone()).filter(|(key, _)| *key != left_out).collect()
}

/// Asserts no secret appears in `logs`.
pub fn assert_no_secret(logs: &str, secrets: &[String]) {
    assert!(!logs.is_empty(), "no logs at all");
    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(!logs.contains(secret.as_str()), "a secret ({}…) is in the logs", &secret[..4]);
    }
}
