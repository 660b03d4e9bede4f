//! A Redis lease: one holder at a time. Acquired when free (or still ours), renewed
//! only by its holder (compare-and-pexpire), released only by its holder
//! (compare-and-delete). The holder tracks how long its lease is surely
//! valid (measured from *before* each renewal was sent), so it can stop
//! acting before the lease could have expired and passed to someone else.

use std::time::{Duration, Instant};

use fred::prelude::{KeysInterface, LuaInterface};

use crate::cache::{CacheError, Redis};

const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                        return redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
                     else return 0 end";
/// Taking the lease: free, or already ours (a renewal that timed out, or the
/// key carried over to a promoted replica, still names us).
const ACQUIRE: &str = "local current = redis.call('GET', KEYS[1]) \
                       if current == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end \
                       if not current then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
                       return 0";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                          return redis.call('DEL', KEYS[1]) \
                       else return 0 end";

pub struct Lease {
    redis: Redis,
    key: String,
    token: String,
    ttl: Duration,
    valid_until: Option<Instant>,
}

impl Lease {
    /// `name` is the key under the Redis prefix; `holder` names this replica.
    pub fn new(redis: Redis, name: &str, holder: &str, ttl: Duration) -> Self {
        // A random suffix: a restarted replica with the same name is a new holder.
        let token = format!("{holder}:{}", uuid::Uuid::new_v4().simple());
        Self { key: redis.key(name), redis, token, ttl, valid_until: None }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether this replica holds the lease, as far as it can be sure now.
    pub fn held(&self) -> bool {
        self.remaining() > Duration::ZERO
    }

    /// How long the lease is surely still ours.
    pub fn remaining(&self) -> Duration {
        self.valid_until.map(|t| t.saturating_duration_since(Instant::now())).unwrap_or(Duration::ZERO)
    }

    /// Renews the lease if held, else tries to take it. Returns whether it is held.
    /// An error means "not sure", and counts as not held: Redis unreachable,
    /// refusing the write (a replica: a failover demoted it), or no answer
    /// within a third of the TTL, so a lease is never counted on past it.
    pub async fn acquire_or_renew(&mut self) -> Result<bool, CacheError> {
        let limit = self.ttl / 3;
        match tokio::time::timeout(limit, self.try_acquire_or_renew()).await {
            Ok(result) => result,
            Err(_) => {
                self.valid_until = None;
                Err(CacheError::Timeout(limit))
            }
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<bool, CacheError> {
        let sent = Instant::now();
        let ttl_ms = self.ttl.as_millis() as i64;
        let result = if self.valid_until.is_some() {
            self.redis
                .client()
                .eval::<i64, _, _, _>(RENEW, vec![self.key.clone()], vec![self.token.clone(), ttl_ms.to_string()])
                .await
                .map(|renewed| renewed == 1)
        } else {
            self.redis
                .client()
                .eval::<i64, _, _, _>(ACQUIRE, vec![self.key.clone()], vec![self.token.clone(), ttl_ms.to_string()])
                .await
                .map(|taken| taken == 1)
        };
        match result {
            Ok(true) => {
                self.valid_until = Some(sent + self.ttl);
                Ok(true)
            }
            Ok(false) => {
                self.valid_until = None;
                Ok(false)
            }
            Err(e) => {
                self.valid_until = None;
                Err(e.into())
            }
        }
    }

    /// Gives the lease up, if still ours, so a standby need not wait for it to expire.
    pub async fn release(&mut self) -> Result<bool, CacheError> {
        self.valid_until = None;
        let released: i64 = self.redis.client().eval(RELEASE, vec![self.key.clone()], vec![self.token.clone()]).await?;
        Ok(released == 1)
    }

    /// The current holder's token, if anyone holds it.
    pub async fn holder(&self) -> Result<Option<String>, CacheError> {
        Ok(self.redis.client().get(&self.key).await?)
    }

    /// Why a lease we held is not ours any more, as far as Redis tells:
    /// another replica named only when one holds it.
    pub async fn why_lost(&self) -> String {
        match self.holder().await {
            Ok(Some(token)) if token != self.token => {
                let (instance, _) = token.rsplit_once(':').unwrap_or((&token, ""));
                format!("another replica ({instance}) holds the lease")
            }
            Ok(Some(_)) => "the lease was renewed too late, though Redis still names us".to_owned(),
            Ok(None) => "the lease lapsed in Redis (renewed too late, or Redis lost the key in a restart or failover)"
                .to_owned(),
            Err(e) => format!("Redis cannot say who holds the lease: {e}"),
        }
    }
}
