//! Waking workers after a commit, off the commit path. PostgreSQL takes a
//! database-wide lock when a transaction that issued NOTIFY commits and
//! holds it through the WAL flush, so NOTIFY inside the transactions that
//! enqueue jobs makes every such commit wait for the one before: commits stop
//! sharing flushes, throughput halves and latency piles up behind the lock.
//! Instead, whoever commits a job calls [`Db::wake`]; one task per process
//! sends the kinds that were named since its last NOTIFY, in a transaction
//! of its own that needs no flush (a lost wakeup is caught by the workers'
//! safety-net poll). Workers in the same process (`all` mode, or a worker
//! queueing the next step) are told at once as well, without the round trip
//! through PostgreSQL: see [`Db::on_wake`]. The NOTIFYs go out on a
//! connection of their own, whose backend PID lets this process's listeners
//! pass over the echo of a wakeup they already heard ([`Db::sent_here`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::db::{Db, Wakeups};
use super::error::StoreError;
use super::tls;

/// The channel workers LISTEN on; the payload is the job kind.
pub const JOBS_CHANNEL: &str = "aisha_jobs";

/// A listener registered with [`Db::on_wake`]; dropping it unregisters it.
pub struct LocalWakes {
    id: u64,
    wakeups: Weak<Wakeups>,
}

impl Drop for LocalWakes {
    fn drop(&mut self) {
        if let Some(wakeups) = self.wakeups.upgrade() {
            if let Ok(mut local) = wakeups.local.lock() {
                local.retain(|(id, _)| *id != self.id);
            }
        }
    }
}

impl Db {
    /// Tells workers everywhere that jobs of `kind` were committed. Cheap
    /// and never blocking: wakeups named together share one NOTIFY.
    pub fn wake(&self, kind: &str) {
        let wakeups = &self.wakeups;
        if let Ok(local) = wakeups.local.lock() {
            for (_, listener) in local.iter() {
                listener(kind);
            }
        }
        let added = wakeups.pending.lock().map(|mut p| p.insert(kind.to_owned())).unwrap_or(false);
        if added {
            wakeups.named.notify_one();
        }
        wakeups.sender.get_or_init(|| {
            let db = self.clone();
            tokio::spawn(async move { send_wakeups(db).await });
        });
    }

    /// Calls `listener` with the kind of every [`Db::wake`] on this handle or
    /// its clones, at once, as long as the returned guard lives. It must not
    /// block: it runs in the waker's call.
    pub fn on_wake(&self, listener: impl Fn(&str) + Send + Sync + 'static) -> LocalWakes {
        let id = self.wakeups.next_local.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut local) = self.wakeups.local.lock() {
            local.push((id, Box::new(listener)));
        }
        LocalWakes { id, wakeups: Arc::downgrade(&self.wakeups) }
    }

    /// Whether a notification from `backend_pid` is one of this handle's own
    /// wakeups, which its [`Db::on_wake`] listeners heard when it was named.
    pub fn sent_here(&self, backend_pid: i32) -> bool {
        backend_pid != 0 && self.wakeups.sender_pid.load(Ordering::Relaxed) == backend_pid
    }
}

async fn send_wakeups(db: Db) {
    let wakeups: Arc<Wakeups> = db.wakeups.clone();
    let mut sender = None;
    loop {
        wakeups.named.notified().await;
        let kinds: Vec<String> = match wakeups.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending).into_iter().collect(),
            Err(_) => return,
        };
        if kinds.is_empty() {
            continue;
        }
        if let Err(e) = notify(&db, &mut sender, &kinds).await {
            tracing::warn!(error = %e, ?kinds, "could not NOTIFY workers; they will find the jobs on their next poll");
        }
    }
}

/// Sends one NOTIFY per kind on the sender's connection, (re)connecting
/// first when it has none: one round trip, and no flush to wait for, since a
/// wakeup lost in a crash is found by the poll.
async fn notify(db: &Db, sender: &mut Option<tokio_postgres::Client>, kinds: &[String]) -> Result<(), StoreError> {
    let client = match sender.take() {
        Some(client) if !client.is_closed() => client,
        _ => {
            let connect = async {
                let (client, connection) = tls::connect(db.url()).await?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                // Known before the first NOTIFY, so no echo of it can arrive unrecognised.
                let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
                db.wakeups.sender_pid.store(pid, Ordering::Relaxed);
                Ok::<_, StoreError>(client)
            };
            db.within_timeout(connect).await?
        }
    };
    client.batch_execute(&notify_sql(kinds)).await?;
    *sender = Some(client);
    Ok(())
}

/// The NOTIFY of `kinds` as one simple query: its own transaction, committed without a flush.
fn notify_sql(kinds: &[String]) -> String {
    let quoted = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let notifies: String =
        kinds.iter().map(|k| format!("SELECT pg_notify({}, {});", quoted(JOBS_CHANNEL), quoted(k))).collect();
    format!("BEGIN; SET LOCAL synchronous_commit = off; {notifies} COMMIT;")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::notify_sql;
    use crate::secret::ConnUrl;
    use crate::settings::DatabaseSettings;
    use crate::store::Db;

    #[tokio::test]
    async fn local_listeners_hear_every_wake_until_their_guard_is_dropped() {
        // Nothing listens on port 9: the NOTIFY fails (and is only logged), the local wake does not need it.
        let settings =
            DatabaseSettings { url: ConnUrl::new("postgres://aisha@127.0.0.1:9/aisha"), ..Default::default() };
        let db = Db::new(&settings).unwrap();
        let heard = Arc::new(AtomicUsize::new(0));
        let counter = heard.clone();
        let guard = db.on_wake(move |kind| {
            assert_eq!(kind, "transcribe");
            counter.fetch_add(1, Ordering::SeqCst);
        });
        db.wake("transcribe");
        db.clone().wake("transcribe");
        assert_eq!(heard.load(Ordering::SeqCst), 2, "heard at once, from clones too");
        drop(guard);
        db.wake("transcribe");
        assert_eq!(heard.load(Ordering::SeqCst), 2, "not after the guard is gone");
    }

    #[test]
    fn kinds_are_quoted_as_literals() {
        let sql = notify_sql(&["fal.deliver".to_owned(), "it's".to_owned()]);
        assert_eq!(
            sql,
            "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_notify('aisha_jobs', 'fal.deliver');\
             SELECT pg_notify('aisha_jobs', 'it''s'); COMMIT;"
        );
    }
}
