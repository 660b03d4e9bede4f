//! A worker's claim to its INSTANCE_ID, so a restart takes its jobs back at
//! once: each pool holds a session advisory lock on the instance id and its
//! job kinds for as long as it runs. PostgreSQL drops the lock with the connection of a
//! process that died, so when a new incarnation gets the lock, jobs still
//! leased to an older incarnation of the same instance are orphans: they are
//! released at once instead of waiting out their lease. Two live processes
//! misconfigured with one INSTANCE_ID just wait on the lock: nothing is
//! released under a living worker.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::jobs::queue;
use crate::secret::ConnUrl;
use crate::store::{tls, StoreError};

/// First key of the presence lock (`pg_try_advisory_lock(int, int)`).
pub const PRESENCE_LOCK_NAMESPACE: i32 = 0x776b_7273; // "wkrs"

const RECONNECT: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
const LOCK_RETRY: Duration = Duration::from_secs(1);

/// Who a pool is: its instance, this incarnation's lease holder name, the
/// kinds it runs (one process may run several pools).
pub struct Presence {
    pub instance: String,
    pub worker: String,
    pub kinds: Vec<String>,
}

impl Presence {
    /// The lock's second key (hashed): the instance and its pool's kinds.
    pub fn key(&self) -> String {
        format!("{}/{}", self.instance, self.kinds.join(","))
    }
}

/// Holds the lock for the pool (reconnecting as needed); each time it is
/// taken, releases the jobs older incarnations held and calls `released(n)`.
pub fn spawn(url: ConnUrl, presence: Presence, released: impl Fn(u64) + Send + Sync + 'static) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut attempt = 0u32;
        loop {
            let ended = hold(&url, &presence, &released, &mut attempt).await;
            let delay = RECONNECT.delay(attempt);
            attempt = attempt.saturating_add(1);
            let error = ended.err().map(|e| crate::error::chain(&e)).unwrap_or_else(|| "the session ended".into());
            tracing::warn!(host = %url.host(), error, retry_in = ?delay, "worker presence lock lost; taking it again");
            tokio::time::sleep(delay).await;
        }
    })
}

async fn hold(
    url: &ConnUrl,
    presence: &Presence,
    released: &(impl Fn(u64) + Sync),
    attempt: &mut u32,
) -> Result<(), StoreError> {
    let (client, connection) = tls::connect(url).await?;
    let connection = tokio::spawn(connection);
    let mut waited = false;
    let Presence { instance, worker, kinds } = presence;
    let key = presence.key();
    loop {
        let taken = client
            .query_one("SELECT pg_try_advisory_lock($1, hashtext($2))", &[&PRESENCE_LOCK_NAMESPACE, &key])
            .await?;
        if taken.get::<_, bool>(0) {
            break;
        }
        if !waited {
            tracing::warn!(instance, "another live worker holds this INSTANCE_ID; waiting for it to go");
            waited = true;
        }
        tokio::time::sleep(LOCK_RETRY).await;
    }
    *attempt = 0;
    match queue::release_predecessors(&client, instance, worker, kinds).await {
        Ok(n) => released(n),
        Err(e) => {
            tracing::warn!(instance, error = %e, "could not release a predecessor's jobs; their leases will lapse")
        }
    }
    if let Err(e) = crate::store::chunk_calls::drop_predecessors_calls(&client, &key, worker).await {
        tracing::warn!(instance, error = %e, "could not drop a predecessor's chunk calls; they lapse in ten leases");
    }
    // The lock lives as long as this session: wait for it to end.
    Ok(connection.await.unwrap_or(Ok(()))?)
}
