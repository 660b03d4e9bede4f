//! A connection that reached a primary which has since turned read-only
//! (demoted in place behind a proxy, or `default_transaction_read_only` set
//! by a managed service during a failover) fails every write until it is
//! closed: the pool's fast recycling checks only that a connection is open.
//! When any statement meets SQLSTATE 25006, every pooled connection opened
//! before that moment is closed instead of reused; new ones connect with
//! the URL's `target_session_attrs`, so they reach the writable server.
//!
//! Process-wide, because the error is met far from the pool (in the
//! conversion to `StoreError`) and a process writes to one database: a
//! spurious mark costs only fresh connections.

use std::sync::Mutex;
use std::time::Instant;

use deadpool_postgres::{Hook, HookError};

static SEEN_AT: Mutex<Option<Instant>> = Mutex::new(None);

/// SQLSTATE 25006: the server refused a write.
pub(super) fn refused(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION)
}

/// A statement just met a read-only server.
pub(super) fn seen() {
    let mut at = SEEN_AT.lock().unwrap_or_else(|e| e.into_inner());
    let first = at.is_none_or(|at| at.elapsed().as_secs() >= 1);
    *at = Some(Instant::now());
    if first {
        tracing::warn!("the database refused a write (read-only: a failover?); pooled connections are replaced");
        metrics::counter!("aishad_db_read_only_errors_total").increment(1);
    }
}

/// The pool's pre-recycle hook: a connection opened before the last
/// read-only answer is not handed out again.
pub(super) fn replace_older_connections() -> Hook {
    Hook::sync_fn(|_client, metrics| {
        let seen = *SEEN_AT.lock().unwrap_or_else(|e| e.into_inner());
        match seen {
            Some(seen) if metrics.created <= seen => {
                Err(HookError::Message("opened before the server turned read-only".into()))
            }
            _ => Ok(()),
        }
    })
}
