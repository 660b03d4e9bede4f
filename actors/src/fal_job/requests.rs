//! FAL request bookkeeping: what recording a submission or a callback sets
//! in motion, each in one transaction. A callback is recorded once per
//! request id and the job that delivers its result is queued with it;
//! whichever of "submission recorded" and "callback recorded" commits second
//! queues the delivery, so a callback that beats the submission is not lost.
//! Two that overlap see neither's row (read committed), so each that found
//! no partner looks again after its commit, when both are visible to
//! whichever looks last; the delivery's key keeps it one job.
//! A request that ends without a result refunds the job that paid for it,
//! in the same transaction that ends it; a request whose result is stored
//! ends delivered in the transaction that stores it. Both end only a
//! `submitted` request, so a cancel and a delivery exclude each other: one
//! refund or one result, never both.

use std::time::Duration;

use crate::store::GenericClient;
use serde_json::Value;

use super::kinds::{FalRequestRef, FAL_DELIVER, FAL_POLL};
use crate::jobs::{queue, NewJob};
use crate::ledger;
use crate::store::fal::{self, FalRequest, FalState};
use crate::store::images::{self, Image, NewImage};
use crate::store::{Db, Prepared, StoreError};

fn delivery_job(request_id: &str) -> NewJob {
    let payload = FalRequestRef { request_id: request_id.to_owned() };
    FAL_DELIVER.job(format!("fal:deliver:{request_id}"), &payload)
}

async fn enqueue_delivery(tx: &impl GenericClient, request_id: &str) -> Result<(), StoreError> {
    queue::enqueue(tx, &delivery_job(request_id)).await.map(drop)
}

/// Records a submission and queues its safety-net poll (after `poll_after`);
/// queues the delivery at once if its callback already came.
pub async fn record_request(db: &Db, r: &FalRequest, poll_after: Duration) -> Result<(), StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    fal::insert_request(&tx, r).await?;
    let payload = FalRequestRef { request_id: r.request_id.clone() };
    let poll = NewJob { delay: poll_after, ..FAL_POLL.job(format!("fal:poll:{}", r.request_id), &payload) };
    queue::enqueue(&tx, &poll).await?;
    let delivered = fal::callback_exists(&tx, &r.request_id).await?;
    if delivered {
        enqueue_delivery(&tx, &r.request_id).await?;
    }
    tx.commit().await?;
    if delivered {
        db.wake(FAL_DELIVER.name);
    } else {
        deliver_where_both_recorded(db, &client, &[r.request_id.as_str()]).await?;
    }
    Ok(())
}

/// Queues the deliveries of those of `request_ids` whose submission and
/// callback are both recorded now: for the side that committed without
/// seeing the other's row. A delivery already queued stays the one.
async fn deliver_where_both_recorded(
    db: &Db,
    client: &impl GenericClient,
    request_ids: &[&str],
) -> Result<(), StoreError> {
    let found = client
        .query_prepared(
            "SELECT request_id FROM fal_requests JOIN fal_callbacks USING (request_id) WHERE request_id = ANY($1)",
            &[&request_ids],
        )
        .await?;
    if found.is_empty() {
        return Ok(());
    }
    let deliveries: Vec<NewJob> = found.iter().map(|row| delivery_job(row.get(0))).collect();
    queue::enqueue_batch(client, &deliveries).await?;
    db.wake(FAL_DELIVER.name);
    Ok(())
}

/// Records a callback (or a polled result) once. Returns false for a
/// duplicate, which changes nothing.
pub async fn record_callback(
    db: &Db,
    request_id: &str,
    status: &str,
    body: &Value,
    source: &str,
) -> Result<bool, StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    if !fal::insert_callback(&tx, request_id, status, body, source).await? {
        return Ok(false);
    }
    let known = fal::request_exists(&tx, request_id).await?;
    if known {
        enqueue_delivery(&tx, request_id).await?;
    } else {
        tracing::warn!(request_id, "callback for a request not recorded (yet); stored for its submission");
    }
    tx.commit().await?;
    if known {
        db.wake(FAL_DELIVER.name);
    } else {
        deliver_where_both_recorded(db, &client, &[request_id]).await?;
    }
    Ok(true)
}

/// A verified callback waiting to be recorded.
#[derive(Debug, Clone)]
pub struct NewCallback {
    pub request_id: String,
    pub status: String,
    pub body: Value,
    pub source: &'static str,
}

/// Records callbacks that arrived together in one transaction (one commit,
/// one flush), each once, queueing the deliveries of known requests with
/// them: per callback, as [`record_callback`] would have answered. When the
/// batch cannot be written (a row PostgreSQL refuses), each is tried alone,
/// so a bad one fails only itself.
pub async fn record_callbacks(db: &Db, batch: Vec<NewCallback>) -> Vec<Result<bool, StoreError>> {
    if batch.len() > 1 {
        match record_together(db, &batch).await {
            Ok(new) => return new.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::warn!(callbacks = batch.len(), error = %e, "a batch of FAL callbacks failed; recording them one by one")
            }
        }
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for c in &batch {
        outcomes.push(record_callback(db, &c.request_id, &c.status, &c.body, c.source).await);
    }
    outcomes
}

/// The statement of [`record_together`]: `$1`–`$4` the callbacks' columns,
/// `$5` and `$6` their deliveries (see `queue::as_arrays`).
static RECORD_TOGETHER_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH recorded AS (
             INSERT INTO fal_callbacks (request_id, status, body, source)
             SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[])
             ON CONFLICT (request_id) DO NOTHING
             RETURNING request_id),
         deliver AS (
             SELECT c.n FROM unnest($1::text[]) WITH ORDINALITY AS c(request_id, n)
             JOIN recorded USING (request_id) JOIN fal_requests USING (request_id)),
         queued AS ({})
         SELECT request_id, (SELECT count(*) FROM queued) AS queued,
                request_id IN (SELECT request_id FROM fal_requests) AS known
         FROM recorded",
        queue::insert_sql(5, "n IN (SELECT n FROM deliver)", "id")
    )
});

/// One statement, so one round trip and no transaction block: the
/// callbacks new to the table are added, and of those whose request is
/// known, the delivery jobs; then, for those whose submission it could not
/// see, a look once committed. Returns, per callback, whether it was new.
async fn record_together(db: &Db, batch: &[NewCallback]) -> Result<Vec<bool>, StoreError> {
    let ids: Vec<&str> = batch.iter().map(|c| c.request_id.as_str()).collect();
    let statuses: Vec<&str> = batch.iter().map(|c| c.status.as_str()).collect();
    let bodies: Vec<&Value> = batch.iter().map(|c| &c.body).collect();
    let sources: Vec<&str> = batch.iter().map(|c| c.source).collect();
    // A delivery for every callback, in the callbacks' order; the statement keeps those it should add.
    let deliveries: Vec<NewJob> = ids.iter().map(|id| delivery_job(id)).collect();
    let (described, payloads) = queue::as_arrays(&deliveries);
    let client = db.client().await?;
    let record = crate::store::cached(&client, &RECORD_TOGETHER_SQL).await?;
    let rows = client.query(&record, &[&ids, &statuses, &bodies, &sources, &described, &payloads]).await?;
    let inserted: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    if rows.first().is_some_and(|r| r.get::<_, i64>(1) > 0) {
        db.wake(FAL_DELIVER.name);
    }
    let unseen: Vec<&str> = rows.iter().filter(|r| !r.get::<_, bool>(2)).map(|r| r.get(0)).collect();
    if !unseen.is_empty() {
        deliver_where_both_recorded(db, &client, &unseen).await?;
    }
    // A request id twice in one batch: the first is recorded, the second is its duplicate.
    let mut first = std::collections::HashSet::new();
    Ok(ids.iter().map(|id| inserted.contains(*id) && first.insert(*id)).collect())
}

/// A submitted request that will produce nothing for the user (`failed`,
/// `cancelled`): ended, and with `refund` the job that paid for it refunded,
/// together. `None` when it had already ended.
pub async fn end_unpaid(db: &Db, request_id: &str, state: FalState, refund: bool) -> Result<Option<Ended>, StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let Some(request) = fal::finish_request(&tx, request_id, state).await? else {
        return Ok(None);
    };
    let mut refunded = 0;
    if refund {
        if let Some(job) = queue::get_in(&tx, request.job_id).await? {
            if ledger::refund_job(&tx, &job).await? {
                refunded = job.cost;
            }
        }
    }
    tx.commit().await?;
    Ok(Some(Ended { request, refunded }))
}

/// The result of an image request, stored (its bytes already in S3): the
/// request ends delivered and the images join the gallery, together. `None`
/// when the request had ended otherwise (cancelled, failed): nothing stored.
pub async fn store_images(db: &Db, request_id: &str, new: &[NewImage<'_>]) -> Result<Option<Vec<Image>>, StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    if fal::finish_request(&tx, request_id, FalState::Delivered).await?.is_none() {
        return Ok(None);
    }
    let mut stored = Vec::with_capacity(new.len());
    for image in new {
        stored.push(images::add_image(&tx, image).await?);
    }
    tx.commit().await?;
    Ok(Some(stored))
}

/// The result of a training, stored: the request ends delivered and the
/// avatar turns ready, together. False when the request had ended otherwise.
pub async fn store_avatar(
    db: &Db,
    request_id: &str,
    avatar_id: i64,
    lora_key: &str,
    config_key: Option<&str>,
) -> Result<bool, StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    if fal::finish_request(&tx, request_id, FalState::Delivered).await?.is_none() {
        return Ok(false);
    }
    images::avatar_ready(&tx, avatar_id, lora_key, config_key).await?;
    tx.commit().await?;
    Ok(true)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub request: FalRequest,
    /// Coins given back (0 when not refunded).
    pub refunded: i64,
}
