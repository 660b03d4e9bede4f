//! The coin ledger: append-only entries, with `users.balance` kept equal to
//! their sum in the same transaction. Charges and refunds are tied to a job
//! and unique per (job, reason), so neither can happen twice. `settle`
//! composes the queue's unpaid endings (dead, cancelled) with their refunds.

mod charge;
pub mod settle;

use crate::store::GenericClient;

use crate::jobs::Job;
use crate::store::{Db, StoreError};

mod price;

pub use charge::{charge_and_enqueue, charge_many};
pub use price::{
    settle_heard, settle_price, transcription_price, Settled, REASON_HEARD_ADJUSTMENT, REASON_PRICE_ADJUSTMENT,
};
pub use settle::{cancel_job, fail_job, reap_exhausted};

pub const REASON_CHARGE: &str = "charge";
pub const REASON_REFUND: &str = "refund";
pub const REASON_WELCOME: &str = "welcome_bonus";
pub const REASON_ADMIN: &str = "admin_credit";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no user with telegram id {0}")]
    UnknownUser(i64),
    #[error("that would take the balance of {balance} below zero")]
    WouldGoNegative { balance: i64 },
    #[error("job {0} is no longer held by this worker: not charged")]
    NotHeld(i64),
    #[error("coin arithmetic overflowed")]
    Overflow,
    /// A charge shared a transaction that failed, and failed again alone.
    #[error("user {0} has no row to charge")]
    NoSuchUser(i64),
}

impl From<tokio_postgres::Error> for LedgerError {
    fn from(e: tokio_postgres::Error) -> Self {
        LedgerError::Store(e.into())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Charged {
    /// Charged and queued; the new balance.
    Queued { job: Job, balance: i64 },
    /// The same request was seen before: no second job, no second charge.
    Duplicate(Job),
    /// Not enough coins: nothing charged, nothing queued.
    InsufficientBalance { price: i64, balance: i64 },
    /// The payer has `limit` paid jobs in flight already: nothing charged, nothing queued.
    TooManyInFlight { limit: i64 },
}

/// Refunds what `job` cost, once: a second call finds the entry and does nothing.
/// Returns whether coins moved. Runs inside the caller's transaction.
pub async fn refund_job(tx: &impl GenericClient, job: &Job) -> Result<bool, StoreError> {
    let (Some(user_id), true) = (job.user_id, job.cost > 0) else {
        return Ok(false);
    };
    // What the job cost in the end: its charge and any later price adjustment.
    let amount = price::charged_for(tx, job.id).await?;
    if amount <= 0 {
        return Ok(false);
    }
    // A job whose result exists keeps its charge (see `jobs.result_kept_at`).
    let inserted = tx
        .execute(
            "INSERT INTO ledger_entries (user_id, delta, reason, job_id)
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE id = $4 AND result_kept_at IS NOT NULL)
             ON CONFLICT (job_id, reason) WHERE job_id IS NOT NULL DO NOTHING",
            &[&user_id, &amount, &REASON_REFUND, &job.id],
        )
        .await?;
    if inserted == 1 {
        tx.execute("UPDATE users SET balance = balance + $2, updated_at = now() WHERE id = $1", &[&user_id, &amount])
            .await?;
    }
    Ok(inserted == 1)
}

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

pub(crate) async fn balance_in(client: &impl GenericClient, user_id: i64) -> Result<i64, StoreError> {
    Ok(client.query_one("SELECT balance FROM users WHERE id = $1", &[&user_id]).await?.get(0))
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
