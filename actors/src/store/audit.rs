//! The books checked off the hot path (a pool's periodic sweep): users
//! whose balance is not the sum of their ledger entries, or is below zero.
//! One aggregate over the ledger; at most one process runs it at a time
//! (an advisory lock), the others skip their turn.

use super::db::Db;
use super::error::StoreError;

/// Any constant will do as long as every aishad uses the same one.
const CHECK_LOCK_KEY: i64 = 0x6169_7368_615f_6c63; // "aisha_lc"

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerCheck {
    /// Users whose balance differs from the sum of their entries.
    pub drifted: i64,
    /// Users whose balance is below zero.
    pub negative: i64,
}

impl Db {
    /// `None` when another process is checking right now.
    pub async fn ledger_check(&self) -> Result<Option<LedgerCheck>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let locked: bool = tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&CHECK_LOCK_KEY]).await?.get(0);
        if !locked {
            return Ok(None);
        }
        let row = tx
            .query_one(
                "SELECT count(*) FILTER (WHERE u.balance <> COALESCE(e.total, 0)), count(*) FILTER (WHERE u.balance < 0)
                   FROM users u LEFT JOIN (SELECT user_id, sum(delta) AS total FROM ledger_entries GROUP BY user_id) e
                     ON e.user_id = u.id",
                &[],
            )
            .await?;
        tx.commit().await?;
        Ok(Some(LedgerCheck { drifted: row.get(0), negative: row.get(1) }))
    }
}
