//! Waking workers after a commit, off the commit path. PostgreSQL takes a
//! database-wide lock when a transaction that issued NOTIFY commits and
//! holds it through the WAL flush, so NOTIFY inside the transactions that
//! enqueue jobs makes every such commit wait for the one before: commits stop
//! sharing flushes, throughput halves and latency piles up behind the lock.
//! Instead, whoever commits a job calls [`Db::wake`]; one task per process
//! sends the kinds that were named since its last NOTIFY, in a transaction
//! of its own that needs no flush (a lost wakeup is caught by the workers'
//! safety-net poll).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;

use super::Db;

/// The channel workers LISTEN on; the payload is the job kind.
pub const JOBS_CHANNEL: &str = "aisha_jobs";

#[derive(Default)]
pub(super) struct Wakeups {
    pending: Mutex<BTreeSet<String>>,
    named: Notify,
    sender: OnceLock<()>,
}

impl Db {
    /// Tells workers everywhere that jobs of `kind` were committed. Cheap
    /// and never blocking: wakeups named together share one NOTIFY.
    pub fn wake(&self, kind: &str) {
        let wakeups = &self.wakeups;
        let added = wakeups.pending.lock().map(|mut p| p.insert(kind.to_owned())).unwrap_or(false);
        if added {
            wakeups.named.notify_one();
        }
        wakeups.sender.get_or_init(|| {
            let db = self.clone();
            tokio::spawn(async move { send_wakeups(db).await });
        });
    }
}

async fn send_wakeups(db: Db) {
    let wakeups: Arc<Wakeups> = db.wakeups.clone();
    loop {
        wakeups.named.notified().await;
        let kinds: Vec<String> = match wakeups.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending).into_iter().collect(),
            Err(_) => return,
        };
        if kinds.is_empty() {
            continue;
        }
        let sent = async {
            // One round trip, and no flush to wait for: a wakeup lost in a crash is found by the poll.
            db.client().await?.batch_execute(&notify_sql(&kinds)).await?;
            Ok::<_, super::StoreError>(())
        };
        if let Err(e) = sent.await {
            tracing::warn!(error = %e, ?kinds, "could not NOTIFY workers; they will find the jobs on their next poll");
        }
    }
}

/// The NOTIFY of `kinds` as one simple query: its own transaction, committed without a flush.
fn notify_sql(kinds: &[String]) -> String {
    let quoted = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let notifies: String = kinds.iter().map(|k| format!("SELECT pg_notify({}, {});", quoted(JOBS_CHANNEL), quoted(k))).collect();
    format!("BEGIN; SET LOCAL synchronous_commit = off; {notifies} COMMIT;")
}

#[cfg(test)]
mod tests {
    use super::notify_sql;

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
