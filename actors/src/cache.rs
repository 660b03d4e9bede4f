//! Redis: one multiplexed client that reconnects on its own, with every key
//! under the configured prefix.

use std::time::Duration;

use fred::prelude::{ClientLike, Config, KeysInterface, ReconnectPolicy};

use crate::settings::RedisSettings;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis.url is not a valid Redis URL: {0}")]
    InvalidUrl(String),
    #[error("redis command failed: {0}")]
    Command(#[from] fred::error::Error),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis answered {0}, which no script here returns")]
    Unexpected(String),
    #[error("redis.tls_ca_file {0}")]
    InvalidCaFile(String),
}

impl CacheError {
    /// The message without the leading key name, for errors that name it elsewhere.
    pub fn reason(&self) -> String {
        match self {
            CacheError::InvalidUrl(reason) => format!("is not a valid Redis URL: {reason}"),
            other => other.to_string(),
        }
    }
}

#[derive(Clone)]
pub struct Redis {
    client: fred::prelude::Client,
    prefix: String,
    host: String,
}

const PING_TIMEOUT: Duration = Duration::from_secs(2);

impl Redis {
    /// Starts the connection task and returns at once; commands wait for the
    /// connection, and fred keeps reconnecting (100 ms doubling to 2 s) forever.
    pub fn connect(settings: &RedisSettings) -> Result<Self, CacheError> {
        let mut config = parse_url(settings.url.expose())?;
        if config.tls.is_some() {
            config.tls = Some(tls_config(&settings.tls_ca_file)?);
        }
        // Capped at 2 s: after an outage the backlog should drain within seconds of Redis returning.
        let policy = ReconnectPolicy::new_exponential(0, 100, 2_000, 2);
        let client = fred::types::Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(5);
                c.internal_command_timeout = Duration::from_secs(5);
            })
            .with_performance_config(|p| {
                p.default_command_timeout = Duration::from_secs(10);
            })
            .set_policy(policy)
            .build()
            .map_err(|e| CacheError::InvalidUrl(e.to_string()))?;
        client.connect();
        Ok(Self { client, prefix: settings.key_prefix.clone(), host: settings.url.host() })
    }

    pub fn client(&self) -> &fred::prelude::Client {
        &self.client
    }

    /// `host:port`, safe to log.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The full key for `name` under this bot's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// Whether Redis takes a write, as readiness needs: a node that answers
    /// PING but refuses writes (a replica, after a failover demoted it under
    /// a plain `redis://` URL) holds no lease, no budget and no limit.
    pub async fn ping(&self) -> Result<(), CacheError> {
        let probe =
            self.client.set::<(), _, _>(self.key("ready"), "1", Some(fred::types::Expiration::PX(10_000)), None, false);
        tokio::time::timeout(PING_TIMEOUT, probe).await.map_err(|_| CacheError::Timeout(PING_TIMEOUT))??;
        Ok(())
    }

    pub async fn quit(&self) {
        let _ = self.client.quit().await;
    }
}

/// rustls verifying the server against `ca_file` (or the Mozilla roots).
pub fn tls_config(ca_file: &str) -> Result<fred::types::config::TlsConfig, CacheError> {
    let roots = crate::tls::root_store(Some(ca_file).filter(|f| !f.is_empty())).map_err(CacheError::InvalidCaFile)?;
    Ok(fred::types::config::TlsConnector::from(crate::tls::verifying_client(roots)).into())
}

/// Validates `redis.url` without connecting.
pub fn parse_url(url: &str) -> Result<Config, CacheError> {
    let scheme = url.split("://").next().unwrap_or_default();
    if !matches!(scheme, "redis" | "rediss" | "redis-cluster" | "redis-sentinel" | "rediss-sentinel")
        || !url.contains("://")
    {
        return Err(CacheError::InvalidUrl(format!(
            "expected redis://, rediss://, redis-sentinel:// or rediss-sentinel://, got {scheme:?}"
        )));
    }
    crate::tls::install_default_provider();
    Config::from_url(url).map_err(|e| CacheError::InvalidUrl(e.details().to_string()))
}
