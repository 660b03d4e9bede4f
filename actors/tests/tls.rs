//! TLS to the real PostgreSQL and Redis that scripts/services.sh starts with
//! certificates of its throwaway CA: verified when asked, refused when the
//! certificate cannot be trusted.

use std::time::Duration;

use aisha_actors::cache::Redis;
use aisha_actors::secret::ConnUrl;
use aisha_actors::settings::{DatabaseSettings, RedisSettings};
use aisha_actors::store::Db;

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: load .local/services.env (scripts/test.sh does)"))
}

fn db(query: &str) -> Db {
    let url = format!("{}?{query}", required("DATABASE_URL"));
    Db::new(&DatabaseSettings {
        url: ConnUrl::new(&url),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .unwrap()
}

async fn encrypted(db: &Db) -> bool {
    let client = db.client().await.unwrap();
    client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn postgres_verify_full_with_the_ca_is_encrypted() {
    let db = db(&format!("sslmode=verify-full&sslrootcert={}", required("AISHAD_TEST_CA")));
    assert!(encrypted(&db).await);
}

#[tokio::test]
async fn postgres_require_is_encrypted_and_disable_is_not() {
    assert!(encrypted(&db("sslmode=require")).await);
    assert!(!encrypted(&db("sslmode=disable")).await);
}

#[tokio::test]
async fn postgres_verify_full_refuses_a_certificate_it_cannot_trust() {
    // The Mozilla roots: our throwaway CA is not among them.
    let db = db("sslmode=verify-full");
    let Err(refused) = db.client().await else { panic!("an untrusted certificate is refused") };
    assert!(format!("{refused:?}").to_lowercase().contains("certificate"), "{refused:?}");
}

fn redis(ca_file: &str) -> Redis {
    let url = required("AISHAD_TEST_REDIS_TLS_URL");
    Redis::connect(&RedisSettings { url: ConnUrl::new(&url), tls_ca_file: ca_file.into(), ..Default::default() })
        .unwrap()
}

#[tokio::test]
async fn redis_over_tls_with_the_ca_answers() {
    let redis = redis(&required("AISHAD_TEST_CA"));
    // A ping is bounded at 2 s, as readiness bounds it; the first one also
    // waits for the handshake, which can take longer while the suite runs
    // several tests at once on two cores. So a few tries.
    let mut last = None;
    for _ in 0..10 {
        match redis.ping().await {
            Ok(()) => return,
            Err(e) => last = Some(e),
        }
    }
    panic!("no PONG over TLS in 10 tries: {last:?}");
}

#[tokio::test]
async fn redis_over_tls_refuses_a_certificate_it_cannot_trust() {
    assert!(redis("").ping().await.is_err(), "the Mozilla roots do not trust the local CA");
}
