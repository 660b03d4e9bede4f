//! The queue's state machine in SQL. Every change a worker makes is guarded
//! by `locked_by`, so a worker whose lease lapsed cannot finish a job that
//! another worker has since claimed. The transitions that end a job unpaid
//! (fail, cancel, reap) run in the caller's transaction and know nothing of
//! money: the ledger composes them with the refund they owe.

use std::time::Duration;

use crate::store::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;

use super::{Job, JobState, NewJob};
use crate::store::{Db, Prepared, StoreError};

/// The NOTIFY channel; the payload is the job kind.
pub const CHANNEL: &str = crate::store::wake::JOBS_CHANNEL;
/// First key of the per-kind claim lock (`pg_advisory_xact_lock(int, int)`,
/// the second `hashtext(kind)`): whoever holds it pauses that kind's claims.
pub const CLAIM_LOCK_NAMESPACE: i32 = 0x6a6f_6273; // "jobs"

const JOB_COLUMNS: &str = "id, kind, state, user_id, chat_id, payload, idempotency_key, cost, attempts, \
                           max_attempts, last_error, locked_by";

fn job(row: &Row) -> Job {
    Job {
        id: row.get("id"),
        kind: row.get("kind"),
        // The table's CHECK holds every state to these five.
        state: JobState::parse(row.get("state")).unwrap_or(JobState::Cancelled),
        user_id: row.get("user_id"),
        chat_id: row.get("chat_id"),
        payload: row.get("payload"),
        idempotency_key: row.get("idempotency_key"),
        cost: row.get("cost"),
        attempts: row.get("attempts"),
        max_attempts: row.get("max_attempts"),
        last_error: row.get("last_error"),
        locked_by: row.get("locked_by"),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Enqueued {
    Created(Job),
    /// A job with this idempotency key already existed; nothing was added.
    Existing(Job),
}

impl Enqueued {
    pub fn job(&self) -> &Job {
        match self {
            Enqueued::Created(job) | Enqueued::Existing(job) => job,
        }
    }
}

/// Adds a job inside the caller's transaction (so it commits, or not, with
/// the charge it costs). After the commit the caller wakes the workers with
/// `Db::wake(kind)` (see `store::wake` for why not NOTIFY here).
pub async fn enqueue(tx: &impl GenericClient, new: &NewJob) -> Result<Enqueued, StoreError> {
    let mut one = enqueue_batch(tx, std::slice::from_ref(new)).await?;
    one.pop().ok_or_else(|| StoreError::Shared("enqueueing one job came back with none".into()))
}

/// Adds, in one statement inside the caller's transaction, those of `jobs`
/// whose idempotency key is new, and returns only their ids: for loading
/// many at once without reading back the others. Wake the workers after the
/// commit, as for [`enqueue`].
pub async fn enqueue_new(tx: &impl GenericClient, jobs: &[NewJob]) -> Result<Vec<i64>, StoreError> {
    Ok(insert_many(tx, jobs, "id").await?.iter().map(|r| r.get(0)).collect())
}

/// [`enqueue`] for a batch, an answer per job in order: one statement adds them all,
/// a second reads the jobs whose keys existed. Of two with one key, the
/// first is created and the second finds it.
pub async fn enqueue_batch(tx: &impl GenericClient, jobs: &[NewJob]) -> Result<Vec<Enqueued>, StoreError> {
    let mut created: std::collections::HashMap<String, Job> =
        insert_many(tx, jobs, JOB_COLUMNS).await?.iter().map(job).map(|j| (j.idempotency_key.clone(), j)).collect();
    let others: Vec<&str> =
        jobs.iter().map(|n| n.idempotency_key.as_str()).filter(|key| !created.contains_key(*key)).collect();
    let mut existing = std::collections::HashMap::new();
    if !others.is_empty() {
        let read = crate::store::cached(tx, &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key = ANY($1)"))
            .await?;
        existing.extend(tx.query(&read, &[&others]).await?.iter().map(job).map(|j| (j.idempotency_key.clone(), j)));
    }
    // Where each job created here stands, for a later one with its key.
    let mut created_at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut enqueued: Vec<Enqueued> = Vec::with_capacity(jobs.len());
    for key in jobs.iter().map(|n| n.idempotency_key.as_str()) {
        let next = if let Some(new) = created.remove(key) {
            created_at.insert(key, enqueued.len());
            Enqueued::Created(new)
        } else if let Some(&at) = created_at.get(key) {
            Enqueued::Existing(enqueued[at].job().clone())
        } else {
            // Not inserted, so it existed when the insert ran.
            let found = existing.get(key).cloned();
            Enqueued::Existing(
                found.ok_or_else(|| StoreError::Shared(format!("job {key} was neither added nor found")))?,
            )
        };
        enqueued.push(next);
    }
    Ok(enqueued)
}

/// The one insert of many jobs; `returning` says which columns come back.
async fn insert_many(tx: &impl GenericClient, jobs: &[NewJob], returning: &str) -> Result<Vec<Row>, StoreError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let insert = crate::store::cached(tx, &insert_sql(1, "true", returning)).await?;
    let (described, payloads) = as_arrays(jobs);
    Ok(tx.query(&insert, &[&described, &payloads]).await?)
}

/// The insert of the jobs that [`as_arrays`] passed as parameters `$first`
/// and `$first + 1`, in order, keeping those for which `keep` (SQL over
/// `n`, a job's position from 1) is true: for a statement that decides in
/// SQL which of its jobs to add.
pub(crate) fn insert_sql(first: usize, keep: &str, returning: &str) -> String {
    let second = first + 1;
    format!(
        "INSERT INTO jobs (kind, user_id, chat_id, payload, idempotency_key, cost, max_attempts, run_at)
         SELECT j->>'kind', (j->>'user_id')::bigint, (j->>'chat_id')::bigint, p, j->>'key', (j->>'cost')::bigint,
                (j->>'max_attempts')::int, now() + make_interval(secs => (j->>'delay')::float8)
         FROM unnest(${first}::jsonb[], ${second}::jsonb[]) WITH ORDINALITY AS t(j, p, n)
         WHERE {keep}
         ORDER BY n
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING {returning}"
    )
}

/// The parameters of [`insert_sql`]: each job's columns, and its payload.
pub(crate) fn as_arrays(jobs: &[NewJob]) -> (Vec<Value>, Vec<Value>) {
    let described = jobs
        .iter()
        .map(|n| {
            serde_json::json!({
                "kind": n.kind, "user_id": n.user_id, "chat_id": n.chat_id, "key": n.idempotency_key,
                "cost": n.cost, "max_attempts": n.max_attempts, "delay": n.delay.as_secs_f64(),
            })
        })
        .collect();
    (described, jobs.iter().map(|n| n.payload.clone()).collect())
}

/// Claims up to `max` runnable jobs of `kind`: queued and due, or running
/// with a lapsed lease (its worker died). At most `concurrency` of the kind
/// run at once across all workers: claims of one kind take a transaction
/// lock so the count and the claim agree.
///
/// One round trip: BEGIN, the lock, the claim and COMMIT are sent together
/// and run in that order. Each statement takes its own snapshot (read
/// committed), so the claim's count, taken after the lock was granted, sees
/// every claim committed by whoever held it before.
pub async fn claim(
    db: &Db,
    kind: &str,
    max: usize,
    concurrency: i64,
    instance: &str,
    lease: Duration,
) -> Result<Vec<Job>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let client = db.client().await?;
    let lock = crate::store::cached(&client, "SELECT pg_advisory_xact_lock($1, hashtext($2))").await?;
    let take = crate::store::cached(&client, &CLAIM_SQL).await?;
    let (begun, locked, taken, committed) = futures::future::join4(
        client.batch_execute("BEGIN"),
        client.execute(&lock, &[&CLAIM_LOCK_NAMESPACE, &kind]),
        client.query(&take, &[&kind, &(max as i64), &instance, &lease.as_secs_f64(), &concurrency]),
        client.batch_execute("COMMIT"),
    )
    .await;
    // A failed statement aborts the transaction and COMMIT rolls it back: nothing was claimed.
    begun?;
    locked?;
    let rows = taken?;
    committed?;
    Ok(rows.iter().map(job).collect())
}

/// The claim itself: as many as `$2` and what `$5` (the kind's concurrency)
/// leaves beside the jobs of the kind running now allow.
static CLAIM_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH next AS (
             SELECT id FROM jobs
             WHERE kind = $1
               AND ((state = 'queued' AND run_at <= now())
                 OR (state = 'running' AND locked_until <= now() AND attempts < max_attempts))
             ORDER BY run_at, id
             LIMIT greatest(0, least($2, $5 - (SELECT count(*) FROM jobs
                                               WHERE kind = $1 AND state = 'running' AND locked_until > now()
                                                 AND NOT handing_over)))
             FOR UPDATE SKIP LOCKED
         )
         UPDATE jobs j
         SET state = 'running', locked_by = $3, locked_until = now() + make_interval(secs => $4),
             handing_over = false, attempts = j.attempts + 1, claimed_at = now(), updated_at = now()
         FROM next WHERE j.id = next.id
         RETURNING {}",
        JOB_COLUMNS.split(", ").map(|c| format!("j.{c}")).collect::<Vec<_>>().join(", ")
    )
});

/// The job this worker holds has done its work and only waits to hand its
/// result over: it stops counting against its kind's concurrency.
pub async fn hand_over(db: &Db, id: i64, instance: &str) -> Result<bool, StoreError> {
    let client = db.client().await?;
    let updated = client
        .execute_prepared(
            "UPDATE jobs SET handing_over = true WHERE id = $1 AND locked_by = $2 AND state = 'running'",
            &[&id, &instance],
        )
        .await?;
    Ok(updated == 1)
}

/// Extends the leases this worker still holds; returns the ids renewed. A
/// missing id means the job was cancelled or claimed by another worker.
pub async fn heartbeat(db: &Db, ids: &[i64], instance: &str, lease: Duration) -> Result<Vec<i64>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let client = db.client().await?;
    let rows = client
        .query(
            "UPDATE jobs SET locked_until = now() + make_interval(secs => $3), updated_at = now()
             WHERE id = ANY($1) AND locked_by = $2 AND state = 'running'
             RETURNING id",
            &[&ids, &instance, &lease.as_secs_f64()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether this worker holds the job with at least `margin` of its lease
/// left (`Some(false)`: held, but for less, or on a server that has turned
/// read-only, where the send could not be recorded); `None` when it does not
/// hold it.
pub async fn lease_left(db: &Db, id: i64, instance: &str, margin: Duration) -> Result<Option<bool>, StoreError> {
    let client = db.client().await?;
    let row = client
        .query_opt_prepared(
            "SELECT locked_until > now() + make_interval(secs => $3)
                    AND current_setting('transaction_read_only') = 'off'
             FROM jobs
             WHERE id = $1 AND locked_by = $2 AND state = 'running' AND locked_until > now()",
            &[&id, &instance, &margin.as_secs_f64()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Makes the jobs of `kinds` older incarnations of `instance` still hold
/// claimable at once (their lease ends now); `worker` is the current
/// incarnation. The caller must know those incarnations are dead (see
/// pool::presence), on whose own connection (outside the pool, so not a
/// pooled client) this runs.
pub async fn release_predecessors(
    client: &tokio_postgres::Client,
    instance: &str,
    worker: &str,
    kinds: &[String],
) -> Result<u64, StoreError> {
    Ok(client
        .execute(
            "UPDATE jobs SET locked_until = now(), updated_at = now()
             WHERE state = 'running' AND locked_until > now() AND locked_by <> $2 AND kind = ANY($3)
               AND (locked_by = $1 OR left(locked_by, length($1) + 1) = $1 || '#')",
            &[&instance, &worker, &kinds],
        )
        .await?)
}

/// Marks the job done; false when this worker no longer holds it.
pub async fn complete(db: &Db, id: i64, instance: &str, result: &Value) -> Result<bool, StoreError> {
    let client = db.client().await?;
    let n = client
        .execute_prepared(
            "UPDATE jobs SET state = 'done', result = $3, finished_at = now(), updated_at = now(),
                             locked_by = NULL, locked_until = NULL
             WHERE id = $1 AND locked_by = $2 AND state = 'running'",
            &[&id, &instance, result],
        )
        .await?;
    Ok(n == 1)
}

/// A job a worker finished, waiting to be marked done.
#[derive(Debug, Clone)]
pub struct Completion {
    pub id: i64,
    pub worker: String,
    pub result: Value,
}

/// Marks many jobs done in one statement (one commit); per job, false when
/// its worker no longer holds it. When the statement fails (a result
/// PostgreSQL refuses), each is marked alone, so one fails only itself.
pub async fn complete_many(db: &Db, done: Vec<Completion>) -> Vec<Result<bool, StoreError>> {
    if done.len() > 1 {
        let ids: Vec<i64> = done.iter().map(|c| c.id).collect();
        let workers: Vec<&str> = done.iter().map(|c| c.worker.as_str()).collect();
        let results: Vec<&Value> = done.iter().map(|c| &c.result).collect();
        let together = async {
            let client = db.client().await?;
            let update = crate::store::cached(
                &client,
                "UPDATE jobs j SET state = 'done', result = c.result, finished_at = now(), updated_at = now(),
                                   locked_by = NULL, locked_until = NULL
                 FROM unnest($1::bigint[], $2::text[], $3::jsonb[]) AS c(id, worker, result)
                 WHERE j.id = c.id AND j.locked_by = c.worker AND j.state = 'running'
                 RETURNING j.id",
            )
            .await?;
            let rows = client.query(&update, &[&ids, &workers, &results]).await?;
            Ok::<_, StoreError>(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<std::collections::HashSet<i64>>())
        };
        match together.await {
            Ok(marked) => return ids.iter().map(|id| Ok(marked.contains(id))).collect(),
            Err(e) => {
                tracing::warn!(jobs = ids.len(), error = %e, "marking a batch of jobs done failed; marking them one by one")
            }
        }
    }
    let mut outcomes = Vec::with_capacity(done.len());
    for c in &done {
        outcomes.push(complete(db, c.id, &c.worker, &c.result).await);
    }
    outcomes
}

#[derive(Debug, Clone, PartialEq)]
pub enum Failed {
    /// Queued again, to run after `delay`.
    Retrying { delay: Duration },
    /// Out of attempts (or not retryable): dead.
    Dead(Job),
    /// This worker no longer held the job; nothing changed.
    NotHeld,
}

/// Records a failed attempt, in the caller's transaction: back to the queue
/// after `delay` while attempts remain and the error may pass, otherwise dead.
pub async fn fail(
    tx: &impl GenericClient,
    id: i64,
    instance: &str,
    error: &str,
    retry_after: Option<Duration>,
) -> Result<Failed, StoreError> {
    let Some(row) = tx
        .query_opt(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND locked_by = $2 AND state = 'running' FOR UPDATE"
            ),
            &[&id, &instance],
        )
        .await?
    else {
        return Ok(Failed::NotHeld);
    };
    let current = job(&row);
    match retry_after {
        Some(delay) if current.attempts < current.max_attempts => {
            tx.execute(
                "UPDATE jobs SET state = 'queued', run_at = now() + make_interval(secs => $2), last_error = $3,
                                 locked_by = NULL, locked_until = NULL, updated_at = now()
                 WHERE id = $1",
                &[&id, &delay.as_secs_f64(), &error],
            )
            .await?;
            Ok(Failed::Retrying { delay })
        }
        _ => Ok(Failed::Dead(finish_unsuccessfully(tx, current, JobState::Dead, error).await?)),
    }
}

/// A job its worker hands back as it stops: queued again now, its attempt
/// given back (`max_attempts` raised by one: `attempts` stays above zero, so
/// a job that holds paid work is never taken for one never claimed).
/// `false` when this worker no longer held it.
pub async fn give_back(db: &Db, id: i64, instance: &str) -> Result<bool, StoreError> {
    let client = db.client().await?;
    let updated = client
        .execute(
            "UPDATE jobs SET state = 'queued', run_at = now(), max_attempts = max_attempts + 1,
                             locked_by = NULL, locked_until = NULL, updated_at = now()
             WHERE id = $1 AND locked_by = $2 AND state = 'running'",
            &[&id, &instance],
        )
        .await?;
    Ok(updated == 1)
}

/// Cancels a job no worker has ever claimed, in the caller's transaction;
/// `None` when a worker runs it, ran it (a job re-queued after an attempt
/// may hold work already paid for) or it finished: work under way is left
/// to finish, so it is never both delivered and refunded.
pub async fn cancel(tx: &impl GenericClient, id: i64, reason: &str) -> Result<Option<Job>, StoreError> {
    let row = tx
        .query_opt(
            // Never claimed: a job re-queued after an attempt may hold paid work (a transcript made, a send to retry).
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND state = 'queued' AND attempts = 0 FOR UPDATE"),
            &[&id],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(finish_unsuccessfully(tx, job(&row), JobState::Cancelled, reason).await?)),
        None => Ok(None),
    }
}

/// Lapsed jobs of `kind` that have used every attempt (their last worker
/// died), marked dead in the caller's transaction.
pub async fn reap_exhausted(tx: &impl GenericClient, kind: &str) -> Result<Vec<Job>, StoreError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE kind = $1 AND state = 'running' AND locked_until <= now() AND attempts >= max_attempts
                 FOR UPDATE SKIP LOCKED"
            ),
            &[&kind],
        )
        .await?;
    let mut dead = Vec::with_capacity(rows.len());
    for row in &rows {
        dead.push(
            finish_unsuccessfully(tx, job(row), JobState::Dead, "worker lost the job on its last attempt").await?,
        );
    }
    Ok(dead)
}

async fn finish_unsuccessfully(
    tx: &impl GenericClient,
    mut job: Job,
    state: JobState,
    error: &str,
) -> Result<Job, StoreError> {
    tx.execute(
        "UPDATE jobs SET state = $2, last_error = $3, finished_at = now(), updated_at = now(),
                         locked_by = NULL, locked_until = NULL
         WHERE id = $1",
        &[&job.id, &state.as_str(), &error],
    )
    .await?;
    job.state = state;
    job.last_error = Some(error.to_owned());
    job.locked_by = None;
    Ok(job)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Job>, StoreError> {
    get_in(&db.client().await?, id).await
}

pub async fn get_in(client: &impl GenericClient, id: i64) -> Result<Option<Job>, StoreError> {
    let row = client.query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"), &[&id]).await?;
    Ok(row.as_ref().map(job))
}

/// The job a request with this idempotency key made, if one did.
pub async fn by_key(db: &Db, key: &str) -> Result<Option<Job>, StoreError> {
    let client = db.client().await?;
    let row = client.query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key = $1"), &[&key]).await?;
    Ok(row.as_ref().map(job))
}

/// Queued and running counts per kind, for the depth gauge.
pub async fn depth(db: &Db) -> Result<Vec<Depth>, StoreError> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT kind, state, count(*),
                    COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE state = 'queued' AND run_at <= now())), 0)::float8
               FROM jobs WHERE state IN ('queued', 'running') GROUP BY kind, state",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let state = JobState::parse(r.get(1))?;
            Some(Depth { kind: r.get(0), state, count: r.get(2), oldest_seconds: r.get(3) })
        })
        .collect())
}

/// Jobs of one kind in one state, and how long the oldest of them that is
/// due (not waiting out a retry's backoff) has waited since it was queued.
#[derive(Debug, Clone, PartialEq)]
pub struct Depth {
    pub kind: String,
    pub state: JobState,
    pub count: i64,
    pub oldest_seconds: f64,
}

/// How many of the user's jobs of `kind` are queued or running.
pub async fn in_flight_of_kind(db: &Db, user_id: i64, kind: &str) -> Result<i64, StoreError> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT count(*) FROM jobs WHERE user_id = $1 AND kind = $2 AND state IN ('queued', 'running')",
            &[&user_id, &kind],
        )
        .await?;
    Ok(row.get(0))
}

/// The user's jobs still waiting or running, newest first.
pub async fn active_for_user(db: &Db, user_id: i64) -> Result<Vec<Job>, StoreError> {
    let client = db.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE user_id = $1 AND state IN ('queued', 'running')
                 ORDER BY created_at DESC"
            ),
            &[&user_id],
        )
        .await?;
    Ok(rows.iter().map(job).collect())
}
