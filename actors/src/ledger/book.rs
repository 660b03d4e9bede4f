//! The ledger's own words, beneath every way coins move: the reasons an
//! entry is written for, its errors and outcomes, what a job has cost so
//! far, and the refund every unpaid ending shares.

use crate::jobs::Job;
use crate::store::{GenericClient, Prepared, StoreError};

pub const REASON_CHARGE: &str = "charge";
pub const REASON_REFUND: &str = "refund";
pub const REASON_WELCOME: &str = "welcome_bonus";
pub const REASON_ADMIN: &str = "admin_credit";

pub const REASON_PRICE_ADJUSTMENT: &str = "price_adjustment";
/// The API said it heard more than was measured: the difference, charged once.
pub const REASON_HEARD_ADJUSTMENT: &str = "heard_adjustment";
/// The audio was transcribed before: what was charged up front, given back.
pub const REASON_REPEAT: &str = "repeat";

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

/// What a job has cost so far: its charge and every settlement, net.
pub(super) async fn charged_for(client: &impl GenericClient, job_id: i64) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "SELECT COALESCE(-sum(delta), 0)::bigint FROM ledger_entries WHERE job_id = $1 AND reason IN ($2, $3, $4, $5)",
            &[&job_id, &REASON_CHARGE, &REASON_PRICE_ADJUSTMENT, &REASON_HEARD_ADJUSTMENT, &REASON_REPEAT],
        )
        .await?;
    Ok(row.get(0))
}

/// Refunds what `job` cost, once: a second call finds the entry and does nothing.
/// Returns whether coins moved. Runs inside the caller's transaction.
pub async fn refund_job(tx: &impl GenericClient, job: &Job) -> Result<bool, StoreError> {
    let (Some(user_id), true) = (job.user_id, job.cost > 0) else {
        return Ok(false);
    };
    // What the job cost in the end: its charge and any later price adjustment.
    let amount = charged_for(tx, job.id).await?;
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
        tx.execute_prepared(
            "UPDATE users SET balance = balance + $2, updated_at = now() WHERE id = $1",
            &[&user_id, &amount],
        )
        .await?;
    }
    Ok(inserted == 1)
}

pub(crate) async fn balance_in(client: &impl GenericClient, user_id: i64) -> Result<i64, StoreError> {
    Ok(client.query_one_prepared("SELECT balance FROM users WHERE id = $1", &[&user_id]).await?.get(0))
}
