//! Charging for work and queueing it, in one transaction. Requests that
//! arrive together (the updates of one getUpdates batch) share that
//! transaction: one commit, and a handful of statements for all of them
//! instead of five each, which is most of what a voice note costs the
//! database.

use std::collections::HashMap;

use super::book::{Charged, LedgerError, REASON_CHARGE};
use crate::jobs::queue::{self, Enqueued};
use crate::jobs::{Job, NewJob};
use crate::store::{cached, Db, GenericClient};

/// Charges `job.cost` to `user_id` and enqueues the job, in one transaction.
pub async fn charge_and_enqueue(db: &Db, user_id: i64, job: NewJob) -> Result<Charged, LedgerError> {
    let mut outcome = charge_many(db, vec![(user_id, job)], None).await;
    outcome.pop().unwrap_or(Err(LedgerError::NoSuchUser(user_id)))
}

/// Charges and enqueues each `(user_id, job)` as if one after another, in
/// order: a user's second request sees the balance their first left, and,
/// with `max_in_flight`, the paid work their first put in flight (counted
/// under the payer's row lock, so requests from several chats at once
/// cannot pass the cap together). All in one transaction; when that
/// fails, each is tried in its own, so a bad request fails only itself.
/// One outcome per request, in order.
pub async fn charge_many(
    db: &Db,
    requests: Vec<(i64, NewJob)>,
    max_in_flight: Option<i64>,
) -> Vec<Result<Charged, LedgerError>> {
    let jobs: Vec<NewJob> = requests
        .into_iter()
        .map(|(user_id, mut job)| {
            job.user_id = Some(user_id);
            job
        })
        .collect();
    match charge_together(db, &jobs, max_in_flight).await {
        Ok(charged) => charged.into_iter().map(Ok).collect(),
        Err(e) if jobs.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(error = %e, requests = jobs.len(), "a shared charge failed; charging each request alone");
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in &jobs {
                let alone = charge_together(db, std::slice::from_ref(job), max_in_flight).await;
                outcomes.push(
                    alone.and_then(|mut one| one.pop().ok_or(LedgerError::NoSuchUser(job.user_id.unwrap_or_default()))),
                );
            }
            outcomes
        }
    }
}

async fn charge_together(db: &Db, jobs: &[NewJob], max_in_flight: Option<i64>) -> Result<Vec<Charged>, LedgerError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let enqueued = queue::enqueue_batch(&tx, jobs).await?;
    let payers = payers_of(&enqueued);
    let mut balances = lock_balances(&tx, &payers).await?;
    let mut in_flight = match max_in_flight {
        Some(_) if !payers.is_empty() => in_flight_before(&tx, &payers, &enqueued).await?,
        _ => HashMap::new(),
    };
    let mut debits = Debits::default();
    let mut kinds: Vec<String> = Vec::new();
    let mut outcomes = Vec::with_capacity(jobs.len());
    for enqueued in enqueued {
        let job = match enqueued {
            // The same request was seen before: no second job, no second charge.
            Enqueued::Existing(job) => {
                outcomes.push(Charged::Duplicate(job));
                continue;
            }
            Enqueued::Created(job) => job,
        };
        let user_id = job.user_id.unwrap_or_default();
        let balance = balances.get_mut(&user_id).ok_or(LedgerError::NoSuchUser(user_id))?;
        let flying = in_flight.entry(user_id).or_default();
        let outcome = debits.decide(job, balance, flying, max_in_flight)?;
        if let Charged::Queued { job, .. } = &outcome {
            if !kinds.contains(&job.kind) {
                kinds.push(job.kind.clone());
            }
        }
        outcomes.push(outcome);
    }
    debits.write(&tx).await?;
    tx.commit().await?;
    for kind in &kinds {
        db.wake(kind);
    }
    Ok(outcomes)
}

/// The users whose new jobs this batch charges, in id order, once each.
fn payers_of(enqueued: &[Enqueued]) -> Vec<i64> {
    let mut payers: Vec<i64> = enqueued
        .iter()
        .filter_map(|e| match e {
            Enqueued::Created(job) => job.user_id,
            Enqueued::Existing(_) => None,
        })
        .collect();
    payers.sort_unstable();
    payers.dedup();
    payers
}

/// The payers' balances, their rows locked in id order: concurrent charges
/// of one user queue behind each other, and two batches never wait on each
/// other in a circle. NO KEY UPDATE, as an UPDATE of the balance takes: the
/// jobs' foreign keys hold KEY SHARE on these rows, which FOR UPDATE would wait on.
async fn lock_balances(tx: &impl GenericClient, payers: &[i64]) -> Result<HashMap<i64, i64>, LedgerError> {
    if payers.is_empty() {
        return Ok(HashMap::new());
    }
    let lock = cached(tx, "SELECT id, balance FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE").await?;
    let rows = tx.query(&lock, &[&payers]).await?;
    Ok(rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))).collect())
}

/// What a batch's decisions leave to write: the jobs taken back unpaid, and
/// one debit (payer, delta, job) per paid job.
#[derive(Default)]
struct Debits {
    unpaid: Vec<i64>,
    payer: Vec<i64>,
    delta: Vec<i64>,
    job_id: Vec<i64>,
}

impl Debits {
    /// Whether `job` goes ahead, paid from `balance`, with `flying` of its
    /// payer's work in flight: what the caller is told.
    fn decide(
        &mut self,
        job: Job,
        balance: &mut i64,
        flying: &mut i64,
        max: Option<i64>,
    ) -> Result<Charged, LedgerError> {
        if let Some(limit) = max.filter(|limit| job.cost != 0 && *flying >= *limit) {
            self.unpaid.push(job.id);
            return Ok(Charged::TooManyInFlight { limit });
        }
        if job.cost != 0 && *balance < job.cost {
            self.unpaid.push(job.id);
            return Ok(Charged::InsufficientBalance { price: job.cost, balance: *balance });
        }
        if job.cost != 0 {
            *flying += 1;
            *balance = balance.checked_sub(job.cost).ok_or(LedgerError::Overflow)?;
            self.payer.push(job.user_id.unwrap_or_default());
            self.delta.push(-job.cost);
            self.job_id.push(job.id);
        }
        Ok(Charged::Queued { balance: *balance, job })
    }

    async fn write(&self, tx: &impl GenericClient) -> Result<(), LedgerError> {
        if !self.unpaid.is_empty() {
            // Never visible to anyone: added and taken back in this transaction.
            let drop_unpaid = cached(tx, "DELETE FROM jobs WHERE id = ANY($1)").await?;
            tx.execute(&drop_unpaid, &[&self.unpaid]).await?;
        }
        if self.payer.is_empty() {
            return Ok(());
        }
        let debit = cached(
            tx,
            "UPDATE users u SET balance = u.balance + d.delta, updated_at = now()
             FROM (SELECT id, sum(delta)::bigint AS delta FROM unnest($1::bigint[], $2::bigint[]) AS e(id, delta) GROUP BY id) d
             WHERE u.id = d.id",
        )
        .await?;
        tx.execute(&debit, &[&self.payer, &self.delta]).await?;
        let entries = cached(
            tx,
            "INSERT INTO ledger_entries (user_id, delta, reason, job_id)
             SELECT e.user_id, e.delta, $4, e.job_id FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS e(user_id, delta, job_id)",
        )
        .await?;
        tx.execute(&entries, &[&self.payer, &self.delta, &self.job_id, &REASON_CHARGE]).await?;
        Ok(())
    }
}

/// Each payer's work in flight before this batch: queued or running jobs
/// and FAL requests still being made, less the jobs this batch created.
async fn in_flight_before(
    tx: &impl GenericClient,
    payers: &[i64],
    enqueued: &[Enqueued],
) -> Result<HashMap<i64, i64>, LedgerError> {
    let created: Vec<i64> = enqueued
        .iter()
        .filter_map(|e| match e {
            Enqueued::Created(job) => Some(job.id),
            Enqueued::Existing(_) => None,
        })
        .collect();
    Ok(crate::store::users::work_in_flight_in(tx, payers, &created).await?)
}
