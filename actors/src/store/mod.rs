//! PostgreSQL: the connection pool and the embedded migrations.

pub mod audit;
pub mod chunk_calls;
pub mod fal;
pub mod forget;
pub mod groups;
pub mod images;
pub mod links;
mod migrations;
mod read_only;
pub mod retention;
pub mod tls;
pub mod transcripts;
pub mod updates;
pub mod users;
pub mod wake;

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

/// The one client trait every statement takes: deadpool's, whose clients
/// and transactions keep prepared statements (see [`cached`]).
pub use deadpool_postgres::GenericClient;
pub use migrations::{MigrationReport, MIGRATIONS};

use crate::secret::ConnUrl;
use crate::settings::DatabaseSettings;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database.url is not a valid PostgreSQL URL: {0}")]
    InvalidUrl(String),
    #[error("could not get a database connection from {host}: {source}")]
    Pool {
        host: String,
        #[source]
        source: deadpool_postgres::PoolError,
    },
    #[error("database query failed: {0}")]
    Query(tokio_postgres::Error),
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
    /// A statement shared with other callers (a group commit) failed, or
    /// the writer it was handed to has stopped: the message says which.
    #[error("{0}")]
    Shared(String),
    /// A value this version has no name for (a newer one wrote it).
    #[error("{column} holds {value:?}, which this version does not know")]
    Unknown { column: &'static str, value: String },
}

/// An enum kept in a TEXT column: each variant and the value that stores
/// it, named once; [`text_column`] reads one back.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The value the column stores.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

/// Column `column` of `row`, read as `parse` reads it.
pub(crate) fn text_column<T>(
    row: &tokio_postgres::Row,
    column: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let value: &str = row.try_get(column)?;
    parse(value).ok_or_else(|| StoreError::Unknown { column, value: value.to_owned() })
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if read_only::refused(&e) {
            read_only::seen();
        }
        StoreError::Query(e)
    }
}

impl StoreError {
    /// The server refused a write: the primary this connection reached was
    /// demoted or turned read-only, a failover is under way.
    pub fn is_read_only(&self) -> bool {
        matches!(self, StoreError::Query(e) if read_only::refused(e))
    }

    /// The message without the leading key name, for errors that name it elsewhere.
    pub fn reason(&self) -> String {
        match self {
            StoreError::InvalidUrl(reason) => format!("is not a valid PostgreSQL URL: {reason}"),
            other => other.to_string(),
        }
    }
}

/// A lazily connecting pool: creating it never touches the network, so an
/// unreachable database shows up as a failed readiness check, not a crash.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// For the connections that live outside the pool (NOTIFY, LISTEN).
    url: ConnUrl,
    host: String,
    timeout: Duration,
    wakeups: std::sync::Arc<wake::Wakeups>,
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
    async fn within_timeout<T>(&self, work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
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
