//! The connection pool (lazy: an unreachable database is a failed readiness
//! check, not a crash), statements prepared once per connection, and
//! answers shared by the callers of one statement.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicI32, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::Notify;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::error::StoreError;
use super::migrations::{self, MigrationReport};
use super::{read_only, tls};
use crate::secret::ConnUrl;
use crate::settings::DatabaseSettings;

/// A lazily connecting pool: creating it never touches the network, so an
/// unreachable database shows up as a failed readiness check, not a crash.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// For the connections that live outside the pool (NOTIFY, LISTEN).
    url: ConnUrl,
    host: String,
    timeout: Duration,
    pub(super) wakeups: Arc<Wakeups>,
    /// When this process last could not get a connection: an outage it saw.
    unreachable_at: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Db {
    pub fn new(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let tls::PgTarget { mut config, tls } = tls::target(&settings.url)?;
        check_hosts(&config)?;
        config.connect_timeout(settings.connect_timeout);
        config.application_name("aishad");
        let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.connect_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .pre_recycle(read_only::replace_older_connections())
            .build()
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        Ok(Self {
            pool,
            url: settings.url.clone(),
            host: settings.url.host(),
            timeout: settings.connect_timeout,
            wakeups: Default::default(),
            unreachable_at: Default::default(),
        })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn url(&self) -> &ConnUrl {
        &self.url
    }

    /// `host:port` of the server, safe to log.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|source| {
            *self.unreachable_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
            StoreError::Pool { host: self.host.clone(), source }
        })
    }

    /// Whether this process could not reach the database within `recent`:
    /// after an outage, work others held looks abandoned for a while.
    pub fn unreachable_within(&self, recent: Duration) -> bool {
        let at = *self.unreachable_at.lock().unwrap_or_else(|e| e.into_inner());
        at.is_some_and(|at| at.elapsed() < recent)
    }

    /// Opens connections until the pool holds `wanted` (at most its size),
    /// all at once, each proven with a round trip (`database.min_connections`).
    /// Returns how many the pool holds; a connection that fails only logs.
    pub async fn warm(&self, wanted: usize) -> usize {
        let wanted = wanted.min(self.pool.status().max_size);
        // Held all at once: the pool hands an idle connection out before it opens one.
        let opened = futures::future::join_all((0..wanted).map(|_| async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await?;
            Ok::<_, StoreError>(client)
        }))
        .await;
        if let Some(Err(e)) = opened.iter().find(|r| r.is_err()) {
            tracing::warn!(error = %crate::error::chain(e), wanted, "could not open every connection asked for at start");
        }
        drop(opened);
        self.pool.status().size
    }

    /// One round trip, bounded by the connect timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let check = async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await?;
            Ok(())
        };
        self.within_timeout(check).await
    }

    /// `work`, given up after the connect timeout.
    pub(super) async fn within_timeout<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, work).await.map_err(|_| StoreError::Timeout(self.timeout))?
    }

    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let mut client = self.client().await?;
        migrations::apply(&mut client).await
    }
}

/// A statement prepared once per connection and reused: PostgreSQL parses
/// and plans it once, not on every call (most of its CPU on a hot path).
pub async fn cached(client: &impl GenericClient, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
    Ok(client.prepare_cached(sql).await?)
}

/// Statements on the hot paths, run as statements prepared once per
/// connection ([`cached`]): PostgreSQL parses and plans each once, and a
/// call is one round trip instead of a prepare and then a run. Only for
/// SQL whose text is one of a fixed few: the cache keeps every text it
/// sees for the connection's life.
pub trait Prepared: GenericClient {
    fn execute_prepared<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move { self.execute(&self.prepare_cached(sql).await?, params).await }
    }

    fn query_prepared<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move { self.query(&self.prepare_cached(sql).await?, params).await }
    }

    fn query_one_prepared<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, tokio_postgres::Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move { self.query_one(&self.prepare_cached(sql).await?, params).await }
    }

    fn query_opt_prepared<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, tokio_postgres::Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move { self.query_opt(&self.prepare_cached(sql).await?, params).await }
    }
}

impl<C: GenericClient> Prepared for C {}

/// The same failure for every caller of a statement they shared.
pub(crate) fn shared_failure<T>(callers: usize, what: &str, e: &StoreError) -> Vec<Result<T, StoreError>> {
    let reason = e.to_string();
    (0..callers).map(|_| Err(StoreError::Shared(format!("{what} failed: {reason}")))).collect()
}

/// What a caller of a shared statement gets back: the statement's own
/// answer, or, when the group commit it was handed to has stopped, that.
pub trait SharedAnswer<T, E> {
    fn or_stopped(self) -> Result<T, E>;
}

impl<T, E: From<StoreError>> SharedAnswer<T, E> for Result<Result<T, E>, crate::batch::Stopped> {
    fn or_stopped(self) -> Result<T, E> {
        self.unwrap_or_else(|stopped| Err(StoreError::Shared(stopped.to_string()).into()))
    }
}

/// Validates `database.url` (its TLS parameters and CA file too) without connecting.
pub fn parse_url(url: &ConnUrl) -> Result<tokio_postgres::Config, StoreError> {
    let target = tls::target(url)?;
    check_hosts(&target.config)?;
    Ok(target.config)
}

fn check_hosts(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    if config.get_hosts().is_empty() {
        return Err(StoreError::InvalidUrl("no host given".into()));
    }
    Ok(())
}

/// What [`Db::wake`] and [`Db::on_wake`] (in `wake`) share: kinds named
/// and not yet sent, the sender, and this process's own listeners.
pub(super) type Listener = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
pub(super) struct Wakeups {
    pub(super) pending: Mutex<BTreeSet<String>>,
    pub(super) named: Notify,
    pub(super) sender: OnceLock<()>,
    /// The backend PID of the sender's connection; 0 until it has one.
    pub(super) sender_pid: AtomicI32,
    pub(super) local: Mutex<Vec<(u64, Listener)>>,
    pub(super) next_local: AtomicU64,
}
