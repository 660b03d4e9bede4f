//! Per-user rate limits in Redis: paid requests counted in fixed
//! one-minute windows, free readings of links in hourly ones. Redis is coordination here, not money: when it does
//! not answer, the request is let through (and logged).

use std::time::Duration;

use fred::prelude::KeysInterface;
use fred::types::ExpireOptions;

use crate::cache::{CacheError, Redis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit; the window ends in this long.
    RetryIn(Duration),
}

/// Counts paid requests, one per user id, in order (a user twice counts
/// twice), in one round trip, and says of each whether it fits in
/// `per_minute`.
pub async fn paid_requests(redis: &Redis, user_ids: &[i64], per_minute: u32) -> Result<Vec<Verdict>, CacheError> {
    counted(redis, "paid", Duration::from_secs(60), user_ids, per_minute).await
}

/// Counts one free reading of a link by `user_id` (its own window: free
/// work is limited apart from paid work) and says whether it fits in `per_hour`.
pub async fn link_reading(redis: &Redis, user_id: i64, per_hour: u32) -> Result<Verdict, CacheError> {
    let verdicts = counted(redis, "link_readings", Duration::from_secs(3600), &[user_id], per_hour).await?;
    Ok(verdicts.into_iter().next().unwrap_or(Verdict::Allowed))
}

/// Counts requests in fixed windows of `window` named `name`, one per user
/// id in order, and says of each whether it fits in `limit`. Each count and
/// its window's expiry go together, so a window never outlives its length.
async fn counted(
    redis: &Redis,
    name: &str,
    window: Duration,
    user_ids: &[i64],
    limit: u32,
) -> Result<Vec<Verdict>, CacheError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let length = window.as_secs().max(1);
    let pipeline = redis.client().pipeline();
    for user_id in user_ids {
        let key = redis.key(&format!("limits:{name}:{user_id}:{}", now / length));
        let () = pipeline.incr(&key).await?;
        // NX: the window's first request sets when it ends; the others leave it.
        let () = pipeline.expire(&key, length as i64 + 1, Some(ExpireOptions::NX)).await?;
    }
    let replies: Vec<i64> = if user_ids.is_empty() { Vec::new() } else { pipeline.all().await? };
    let verdict = |count: i64| {
        if count > i64::from(limit) {
            Verdict::RetryIn(Duration::from_secs(length - now % length))
        } else {
            Verdict::Allowed
        }
    };
    Ok(replies.chunks(2).map(|reply| verdict(reply[0])).collect())
}
