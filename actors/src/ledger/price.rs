//! A transcription's price from its length, and settling the price once the
//! worker has measured it: the difference from what was charged up front is
//! charged or refunded, once per job, by the worker holding the job only.

use crate::store::GenericClient;

use super::book::{
    balance_in, charged_for, LedgerError, REASON_CHARGE, REASON_HEARD_ADJUSTMENT, REASON_PRICE_ADJUSTMENT,
    REASON_REPEAT,
};
use crate::jobs::Job;
use crate::store::{Db, StoreError};

/// Coins for `seconds` of audio: per started minute, at least one; `None`
/// when the length is not a finite, non-negative number or the price overflows.
pub fn transcription_price(seconds: f64, per_minute: i64) -> Option<i64> {
    if !seconds.is_finite() || seconds < 0.0 || seconds > i64::MAX as f64 {
        return None;
    }
    let minutes = ((seconds / 60.0).ceil() as i64).max(1);
    minutes.checked_mul(per_minute)
}

/// What a job was charged up front, before any settlement.
async fn charged_only(client: &impl GenericClient, job_id: i64) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "SELECT COALESCE(-sum(delta), 0)::bigint FROM ledger_entries WHERE job_id = $1 AND reason = $2",
            &[&job_id, &REASON_CHARGE],
        )
        .await?;
    Ok(row.get(0))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Already the right price (or settled by an earlier attempt).
    Unchanged,
    /// `extra` more charged; the balance after.
    Charged { extra: i64, balance: i64 },
    /// `amount` given back; the balance after.
    Refunded { amount: i64, balance: i64 },
    /// The balance cannot cover the measured price: nothing moved.
    CannotPay { price: i64, balance: i64 },
}

/// Sets a running job's price to `price`: the difference from what it was
/// charged moves now, in one transaction, once (a retry finds it settled).
/// Fenced: only `worker`, holding the job's lease, can settle.
pub async fn settle_price(db: &Db, job: &Job, worker: &str, price: i64) -> Result<Settled, LedgerError> {
    settle(db, job, worker, price, REASON_PRICE_ADJUSTMENT).await
}

/// Raises a running job's price to `price` when the API heard more than
/// was measured (the second check): charged once, never refunded, fenced
/// like [`settle_price`].
pub async fn settle_heard(db: &Db, job: &Job, worker: &str, price: i64) -> Result<Settled, LedgerError> {
    settle(db, job, worker, price, REASON_HEARD_ADJUSTMENT).await
}

/// A repeat (the audio was transcribed before): what was charged up front
/// is given back, once, fenced like [`settle_price`]. Nothing was heard, so
/// no measured or heard settlement follows.
pub async fn settle_repeat(db: &Db, job: &Job, worker: &str) -> Result<Settled, LedgerError> {
    settle(db, job, worker, 0, REASON_REPEAT).await
}

async fn settle(db: &Db, job: &Job, worker: &str, price: i64, reason: &str) -> Result<Settled, LedgerError> {
    let Some(user_id) = job.user_id else { return Ok(Settled::Unchanged) };
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let held = tx
        .query_opt(
            "SELECT 1 FROM jobs WHERE id = $1 AND locked_by = $2 AND state = 'running' AND locked_until > now() FOR UPDATE",
            &[&job.id, &worker],
        )
        .await?;
    if held.is_none() {
        return Err(LedgerError::NotHeld(job.id));
    }
    // Each settlement once per job, by its own reason: the measured price
    // settled first does not stop the heard one, and a retry settles neither again.
    let settled =
        tx.query_opt("SELECT 1 FROM ledger_entries WHERE job_id = $1 AND reason = $2", &[&job.id, &reason]).await?;
    if settled.is_some() {
        return Ok(Settled::Unchanged);
    }
    let only_up = reason == REASON_HEARD_ADJUSTMENT;
    // The measured price is set against the charge alone (a retry after the
    // heard charge must not refund it); the heard one against all so far.
    let charged = if only_up { charged_for(&tx, job.id).await? } else { charged_only(&tx, job.id).await? };
    let difference = price.checked_sub(charged).ok_or(LedgerError::Overflow)?;
    if difference == 0 || (only_up && difference < 0) {
        return Ok(Settled::Unchanged);
    }
    let balance: Option<i64> = tx
        .query_opt(
            "UPDATE users SET balance = balance - $2, updated_at = now() WHERE id = $1 AND balance - $2 >= 0 RETURNING balance",
            &[&user_id, &difference],
        )
        .await?
        .map(|r| r.get(0));
    let Some(balance) = balance else {
        let balance = balance_in(&tx, user_id).await?;
        return Ok(Settled::CannotPay { price, balance });
    };
    tx.execute(
        "INSERT INTO ledger_entries (user_id, delta, reason, job_id) VALUES ($1, $2, $3, $4)",
        &[&user_id, &-difference, &reason, &job.id],
    )
    .await?;
    tx.execute("UPDATE jobs SET cost = $2 WHERE id = $1", &[&job.id, &price]).await?;
    tx.commit().await?;
    Ok(if difference > 0 {
        Settled::Charged { extra: difference, balance }
    } else {
        Settled::Refunded { amount: -difference, balance }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_started_minute_at_least_one_and_absurd_lengths_priced_at_nothing() {
        assert_eq!(transcription_price(0.0, 2), Some(2));
        assert_eq!(transcription_price(60.0, 2), Some(2));
        assert_eq!(transcription_price(61.0, 2), Some(4));
        assert_eq!(transcription_price(f64::NAN, 1), None);
        assert_eq!(transcription_price(-1.0, 1), None);
        assert_eq!(transcription_price(9.4e10, i64::MAX / 2), None, "overflow is not a price");
    }
}
