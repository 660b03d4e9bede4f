//! What every client's failures and calls come to, decided once: what a
//! failed call means for the work that made it, the metric each call is
//! timed as, and a client that cannot be built.

/// What a failed call to a paid API means for the work that made it: the
/// same rules for OpenAI and FAL, decided here once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Asked to slow down (429): wait this long (the API's `Retry-After`
    /// when it gives one), then try again.
    RetryAfter(Option<std::time::Duration>),
    /// May pass (a 5xx, 408, the network): try again with backoff.
    Passing,
    /// This request will never succeed (any other 4xx, a result we refuse).
    Refused,
    /// Ours to fix, and an operator is alerted: the key or the account (401, 403, no quota).
    NeedsOperator,
}

impl Failure {
    /// What the HTTP status of a failed call means, read the same for every API.
    pub fn of_status(status: u16) -> Self {
        match status {
            401 | 403 => Failure::NeedsOperator,
            429 => Failure::RetryAfter(None),
            408 | 500..=599 => Failure::Passing,
            _ => Failure::Refused,
        }
    }
}

/// An outside API's error, told apart by what it means for the work.
pub trait ApiError: std::error::Error {
    fn failure(&self) -> Failure;
    /// The `alert` label of `aishad_alerts_total` when it needs an operator.
    fn alert(&self) -> &'static str;
}

/// What a call to an outside API came to, as a metric label.
pub trait Outcome {
    fn outcome(&self) -> &'static str;
}

/// `call` to `api` (`openai`, `fal`), timed as
/// `aishad_outside_request_seconds{api, call, outcome}`: its latency, and
/// (its `_count`) how often each outcome happens.
pub(crate) async fn timed<T, E: Outcome>(
    api: &'static str,
    call: &'static str,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let result = request.await;
    let outcome = result.as_ref().map_or_else(Outcome::outcome, |_| "ok");
    metrics::histogram!("aishad_outside_request_seconds", "api" => api, "call" => call, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("telegram.api_url is not a valid URL: {0}")]
    InvalidTelegramUrl(String),
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}

#[cfg(test)]
mod tests {
    use super::Failure;

    #[test]
    fn a_status_means_the_same_for_every_api() {
        assert_eq!(Failure::of_status(401), Failure::NeedsOperator);
        assert_eq!(Failure::of_status(403), Failure::NeedsOperator);
        assert_eq!(Failure::of_status(429), Failure::RetryAfter(None));
        assert_eq!(Failure::of_status(408), Failure::Passing);
        assert_eq!(Failure::of_status(503), Failure::Passing);
        assert_eq!(Failure::of_status(400), Failure::Refused);
        assert_eq!(Failure::of_status(422), Failure::Refused);
    }
}
