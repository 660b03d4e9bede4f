//! What was paid for is never thrown away because a store was away: a
//! transcribed chunk, a FAL request id, a chat completion is written again
//! and again (for up to ten minutes) until PostgreSQL or S3 takes it, by
//! the worker that holds it. Retrying the write, never the paid call.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;

/// How long a paid result is held for a store that is away.
pub const HOLD_FOR: Duration = Duration::from_secs(600);
/// The longest wait between two writes: soon after the store is back, so a
/// successor waiting on the work sees it kept.
const WRITE_AGAIN_AT_MOST: Duration = Duration::from_secs(1);
const WRITE_AGAIN: Backoff = Backoff::new(Duration::from_millis(200), WRITE_AGAIN_AT_MOST);

/// How long a worker that took paid work over looks again before paying for
/// it anew: a holder back from an outage shows its call alive within a
/// keep-alive's interval (a third of the job's lease) and writes what it
/// holds within `WRITE_AGAIN_AT_MOST`.
pub fn holder_grace(lease: Duration) -> Duration {
    lease / 3 + WRITE_AGAIN_AT_MOST
}

/// `write`, again until it succeeds or `HOLD_FOR` has passed; `what` names
/// the result in the logs (with the job's id).
pub async fn until_kept<T, E, Fut>(what: &'static str, job_id: i64, mut write: impl FnMut() -> Fut) -> Result<T, E>
where
    E: std::error::Error,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        match write().await {
            Ok(kept) => {
                if attempt > 0 {
                    tracing::info!(job_id, attempt, "{what} kept once the store was back");
                }
                return Ok(kept);
            }
            Err(e) if started.elapsed() < HOLD_FOR => {
                if attempt == 0 {
                    tracing::warn!(
                        job_id,
                        error = %crate::error::chain(&e),
                        "could not keep {what}; holding it and writing it again until the store takes it"
                    );
                }
                tokio::time::sleep(WRITE_AGAIN.delay(attempt)).await;
                attempt = attempt.saturating_add(1);
            }
            Err(e) => return Err(e),
        }
    }
}
