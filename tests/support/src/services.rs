//! The real local services (started by `scripts/services.sh`), with a fresh
//! database, Redis key prefix and S3 bucket per test so tests run in parallel.

use tokio_postgres::NoTls;

#[derive(Debug, Clone)]
pub struct TestServices {
    /// A database of this test's own.
    pub database_url: String,
    pub redis_url: String,
    /// Every key this test's daemon writes starts with it.
    pub redis_prefix: String,
    pub s3_endpoint: String,
    pub s3_access_key: String,
    pub s3_secret_key: String,
    /// Shared by every test; `s3_prefix` keeps their objects apart.
    pub s3_bucket: String,
    pub s3_prefix: String,
    pub database_name: String,
}

/// `test` as a name part, and a random suffix.
fn names(test: &str) -> (String, String) {
    let slug: String = test.chars().filter(|c| c.is_ascii_alphanumeric()).take(20).collect::<String>().to_lowercase();
    (slug, uuid::Uuid::new_v4().simple().to_string())
}

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: start the local services with `scripts/services.sh start` and load .local/services.env (scripts/test.sh does both)")
    })
}

impl TestServices {
    /// Creates a fresh database named after `test` (plus a random suffix).
    pub async fn new(test: &str) -> Self {
        let admin_url = required("DATABASE_URL");
        let (slug, suffix) = names(test);
        let database_name = format!("t_{slug}_{}", &suffix[..10]);
        let (client, connection) =
            tokio_postgres::connect(&admin_url, NoTls).await.expect("connect to the local PostgreSQL");
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {database_name}")).await.expect("create a test database");
        let mut url = url::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
        url.set_path(&database_name);
        Self::assemble(&slug, &suffix, url.to_string(), database_name)
    }

    /// The shared Redis and S3, and a database of the test's own elsewhere
    /// (a PostgreSQL that fails over, say), already created.
    pub fn on_database(test: &str, database_url: String, database_name: &str) -> Self {
        let (slug, suffix) = names(test);
        Self::assemble(&slug, &suffix, database_url, database_name.to_owned())
    }

    fn assemble(slug: &str, suffix: &str, database_url: String, database_name: String) -> Self {
        Self {
            database_url,
            redis_url: required("REDIS_URL"),
            redis_prefix: format!("test:{slug}:{}:", &suffix[..10]),
            s3_endpoint: required("MINIO_ENDPOINT"),
            s3_access_key: required("MINIO_ACCESS_KEY"),
            s3_secret_key: required("MINIO_SECRET_KEY"),
            // One bucket for all tests: SeaweedFS gives every bucket volumes of its own, and runs out.
            s3_bucket: "aisha-test".into(),
            s3_prefix: format!("test/{slug}-{}/", &suffix[..10]),
            database_name,
        }
    }

    /// The environment a daemon needs to use these services.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("DATABASE_URL", self.database_url.as_str()),
            ("REDIS_URL", self.redis_url.as_str()),
            ("AISHA_REDIS__KEY_PREFIX", self.redis_prefix.as_str()),
            ("MINIO_ENDPOINT", self.s3_endpoint.as_str()),
            ("MINIO_SECURE", "false"),
            ("MINIO_ACCESS_KEY", self.s3_access_key.as_str()),
            ("MINIO_SECRET_KEY", self.s3_secret_key.as_str()),
            ("MINIO_BUCKET_NAME", self.s3_bucket.as_str()),
            ("AISHA_S3__KEY_PREFIX", self.s3_prefix.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The ledger invariant, for every user: see [`assert_ledger_balanced`].
    pub async fn assert_ledger_balanced(&self) {
        assert_ledger_balanced(&self.db().await).await;
    }

    /// A direct connection to this test's database, for assertions.
    /// The one number `sql` selects.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.db().await.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.database_url, NoTls).await.expect("connect to the test database");
        tokio::spawn(connection);
        client
    }
}

/// The ledger invariant, for every user of the database `client` is
/// connected to: balance = the sum of their entries, and never below zero.
pub async fn assert_ledger_balanced(client: &tokio_postgres::Client) {
    let rows = client
        .query(
            "SELECT u.id, u.balance, COALESCE((SELECT sum(delta) FROM ledger_entries e WHERE e.user_id = u.id), 0)::bigint
             FROM users u",
            &[],
        )
        .await
        .expect("read the ledger");
    for row in rows {
        let (user, balance, sum): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(balance, sum, "user {user}: balance {balance} but entries sum to {sum}");
        assert!(balance >= 0, "user {user}: balance {balance} below zero");
    }
}
