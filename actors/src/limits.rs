//! Per-user rate limits in Redis: paid requests counted in fixed
//! one-minute windows. Redis is coordination here, not money: when it does
//! not answer, the request is let through (and logged).

use std::time::Duration;

use fred::prelude::KeysInterface;

use crate::cache::{CacheError, Redis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit; the window ends in this long.
    RetryIn(Duration),
}

/// Counts one paid request of `user_id` and says whether it fits in `per_minute`.
pub async fn paid_request(redis: &Redis, user_id: i64, per_minute: u32) -> Result<Verdict, CacheError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let key = redis.key(&format!("limits:paid:{user_id}:{}", now / 60));
    let count: i64 = redis.client().incr(&key).await?;
    if count == 1 {
        redis.client().expire::<(), _>(&key, 61, None).await?;
    }
    if count > i64::from(per_minute) {
        return Ok(Verdict::RetryIn(Duration::from_secs(60 - now % 60)));
    }
    Ok(Verdict::Allowed)
}
