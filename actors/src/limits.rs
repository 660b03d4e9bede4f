//! Per-user rate limits in Redis: paid requests counted in fixed
//! one-minute windows. Redis is coordination here, not money: when it does
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
/// `per_minute`. Each count and its window's expiry go together, so a
/// window never outlives its minute.
pub async fn paid_requests(redis: &Redis, user_ids: &[i64], per_minute: u32) -> Result<Vec<Verdict>, CacheError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let pipeline = redis.client().pipeline();
    for user_id in user_ids {
        let key = redis.key(&format!("limits:paid:{user_id}:{}", now / 60));
        let () = pipeline.incr(&key).await?;
        // NX: the window's first request sets when it ends; the others leave it.
        let () = pipeline.expire(&key, 61, Some(ExpireOptions::NX)).await?;
    }
    let replies: Vec<i64> = if user_ids.is_empty() { Vec::new() } else { pipeline.all().await? };
    let verdict = |count: i64| {
        if count > i64::from(per_minute) {
            Verdict::RetryIn(Duration::from_secs(60 - now % 60))
        } else {
            Verdict::Allowed
        }
    };
    Ok(replies.chunks(2).map(|reply| verdict(reply[0])).collect())
}
