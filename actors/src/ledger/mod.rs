//! The coin ledger: append-only entries, with `users.balance` kept equal to
//! their sum in the same transaction. Charges and refunds are tied to a job
//! and unique per (job, reason), so neither can happen twice. `settle`
//! composes the queue's unpaid endings (dead, cancelled) with their refunds.

mod book;
mod charge;
pub mod settle;

use crate::store::GenericClient;

use crate::store::Db;

mod price;

pub(crate) use book::balance_in;
pub use book::{
    refund_job, Charged, LedgerError, REASON_ADMIN, REASON_CHARGE, REASON_HEARD_ADJUSTMENT, REASON_PRICE_ADJUSTMENT,
    REASON_REFUND, REASON_REPEAT, REASON_WELCOME,
};
pub use charge::{charge_and_enqueue, charge_many};
pub use price::{settle_heard, settle_price, settle_repeat, transcription_price, Settled};
pub use settle::{cancel_job, fail_job, reap_exhausted};

/// Credits the welcome bonus unless this user ever had it; true when credited.
pub async fn welcome_bonus(db: &Db, user_id: i64, amount: i64) -> Result<bool, LedgerError> {
    if amount <= 0 {
        return Ok(false);
    }
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let inserted = tx
        .execute(
            "INSERT INTO ledger_entries (user_id, delta, reason) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) WHERE reason = 'welcome_bonus' DO NOTHING",
            &[&user_id, &amount, &REASON_WELCOME],
        )
        .await?;
    if inserted == 1 {
        tx.execute("UPDATE users SET balance = balance + $2, updated_at = now() WHERE id = $1", &[&user_id, &amount])
            .await?;
    }
    tx.commit().await?;
    Ok(inserted == 1)
}

/// An operator's credit (or, with a negative amount, a correction that may
/// not take the balance below zero). Returns the new balance.
pub async fn admin_credit(db: &Db, telegram_id: i64, coins: i64, note: &str) -> Result<i64, LedgerError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let user = tx
        .query_opt("SELECT id, balance FROM users WHERE telegram_id = $1 FOR UPDATE", &[&telegram_id])
        .await?
        .ok_or(LedgerError::UnknownUser(telegram_id))?;
    let (user_id, balance): (i64, i64) = (user.get(0), user.get(1));
    match balance.checked_add(coins) {
        None => return Err(LedgerError::Overflow),
        Some(after) if after < 0 => return Err(LedgerError::WouldGoNegative { balance }),
        Some(_) => {}
    }
    let row = tx
        .query_one(
            "UPDATE users SET balance = balance + $2, updated_at = now() WHERE id = $1 RETURNING balance",
            &[&user_id, &coins],
        )
        .await?;
    tx.execute(
        "INSERT INTO ledger_entries (user_id, delta, reason, note) VALUES ($1, $2, $3, $4)",
        &[&user_id, &coins, &REASON_ADMIN, &note],
    )
    .await?;
    tx.commit().await?;
    Ok(row.get(0))
}

pub async fn balance(db: &Db, user_id: i64) -> Result<i64, LedgerError> {
    Ok(balance_in(&db.client().await?, user_id).await?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub delta: i64,
    pub reason: String,
    pub job_kind: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

pub async fn recent_entries(db: &Db, user_id: i64, limit: i64) -> Result<Vec<Entry>, LedgerError> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT e.delta, e.reason, j.kind, e.created_at FROM ledger_entries e
             LEFT JOIN jobs j ON j.id = e.job_id
             WHERE e.user_id = $1 ORDER BY e.id DESC LIMIT $2",
            &[&user_id, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| Entry { delta: r.get(0), reason: r.get(1), job_kind: r.get(2), at: r.get(3) }).collect())
}
