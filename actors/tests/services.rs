//! The service clients against the real local PostgreSQL, Redis and S3.

use aisha_actors::blob::Blob;
use aisha_actors::cache::Redis;
use aisha_actors::secret::{ConnUrl, Secret};
use aisha_actors::settings::{DatabaseSettings, RedisSettings, S3Settings};
use aisha_actors::store::{Db, MIGRATIONS};
use aisha_testkit::TestServices;
use fred::prelude::KeysInterface;

fn db(services: &TestServices) -> Db {
    Db::new(&DatabaseSettings { url: ConnUrl::new(&services.database_url), ..Default::default() }).unwrap()
}

#[tokio::test]
async fn migrations_apply_once_and_a_second_run_is_a_no_op() {
    let services = TestServices::new("migrate_twice").await;
    let db = db(&services);
    let first = db.migrate().await.unwrap();
    assert_eq!(first.applied.len(), MIGRATIONS.len());
    let second = db.migrate().await.unwrap();
    assert!(second.applied.is_empty());
    assert_eq!(second.already, MIGRATIONS.len());
    let rows = services.db().await.query("SELECT version FROM schema_migrations", &[]).await.unwrap();
    assert_eq!(rows.len(), MIGRATIONS.len());
}

#[tokio::test]
async fn a_warmed_pool_holds_the_connections_asked_for_and_never_more_than_its_size() {
    let services = TestServices::new("pool_warm").await;
    let settings = DatabaseSettings { url: ConnUrl::new(&services.database_url), pool_size: 4, ..Default::default() };
    let db = Db::new(&settings).unwrap();
    let open_on_the_server = || async {
        let sql =
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'aishad'";
        services.db().await.query_one(sql, &[]).await.unwrap().get::<_, i64>(0)
    };
    assert_eq!(open_on_the_server().await, 0, "the pool connects lazily");
    assert_eq!(db.warm(3).await, 3);
    assert_eq!(open_on_the_server().await, 3, "open on the server, idle in the pool");
    assert_eq!(db.warm(10).await, 4, "no more than the pool's size");
    assert_eq!(db.warm(2).await, 4, "a warm pool is not shrunk");
    assert_eq!(open_on_the_server().await, 4);
}

#[tokio::test]
async fn concurrent_migrations_do_not_collide() {
    let services = TestServices::new("migrate_race").await;
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let db = db(&services);
            tokio::spawn(async move { db.migrate().await })
        })
        .collect();
    let mut applied = 0;
    for run in runs {
        applied += run.await.unwrap().expect("no migration run fails").applied.len();
    }
    assert_eq!(applied, MIGRATIONS.len(), "each migration applied by exactly one runner");
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_not_a_hang_and_names_no_password() {
    let settings = DatabaseSettings {
        url: ConnUrl::new("postgres://aisha:sup3r-secret@127.0.0.1:1/aisha"),
        connect_timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let db = Db::new(&settings).unwrap();
    let err = db.ping().await.unwrap_err().to_string();
    assert!(!err.contains("sup3r-secret"), "{err}");
    assert_eq!(db.host(), "127.0.0.1:1");
}

#[tokio::test]
async fn redis_keys_live_under_the_prefix() {
    let services = TestServices::new("redis_prefix").await;
    let redis = Redis::connect(&RedisSettings {
        url: ConnUrl::new(&services.redis_url),
        key_prefix: services.redis_prefix.clone(),
        ..Default::default()
    })
    .unwrap();
    redis.ping().await.unwrap();
    let key = redis.key("probe");
    assert!(key.starts_with(&services.redis_prefix));
    redis.client().set::<(), _, _>(&key, "1", Some(fred::types::Expiration::EX(60)), None, false).await.unwrap();
    let value: Option<String> = redis.client().get(&key).await.unwrap();
    assert_eq!(value.as_deref(), Some("1"));
}

#[tokio::test]
async fn s3_bucket_is_ensured_and_objects_round_trip() {
    let services = TestServices::new("s3_roundtrip").await;
    let settings = S3Settings {
        endpoint: services.s3_endpoint.clone(),
        access_key: Secret::new(&services.s3_access_key),
        secret_key: Secret::new(&services.s3_secret_key),
        bucket: services.s3_bucket.clone(),
        key_prefix: services.s3_prefix.clone(),
        ..Default::default()
    };
    let blob = Blob::new(&settings).unwrap();
    blob.ensure_bucket().await.unwrap();
    blob.ensure_bucket().await.unwrap();
    blob.ping().await.unwrap();
    let key = "audio/1/abc/original.ogg";
    blob.put(key, bytes::Bytes::from_static(b"OggS data"), "audio/ogg").await.unwrap();
    assert_eq!(&blob.get(key).await.unwrap()[..], b"OggS data");
    blob.delete(key).await.unwrap();
    assert!(blob.get(key).await.is_err());
}

#[tokio::test]
async fn s3_with_wrong_credentials_fails_readiness() {
    let services = TestServices::new("s3_badcreds").await;
    let settings = S3Settings {
        endpoint: services.s3_endpoint.clone(),
        access_key: Secret::new("nobody"),
        secret_key: Secret::new("wrong-secret"),
        bucket: services.s3_bucket.clone(),
        ..Default::default()
    };
    let blob = Blob::new(&settings).unwrap();
    assert!(blob.ensure_bucket().await.is_err());
}
