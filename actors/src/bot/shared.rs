//! What updates handled at the same time share: their users read in one
//! statement, their work in flight counted in one, their paid requests
//! counted in one Redis round trip, their charges made in one transaction
//! (see [`GroupCommit`]). Under load a getUpdates batch
//! costs the database a few statements per step instead of one per update;
//! an update handled alone waits for nothing.

use std::sync::Arc;

use crate::batch::GroupCommit;
use crate::cache::{CacheError, Redis};
use crate::jobs::NewJob;
use crate::ledger::{self, Charged, LedgerError};
use crate::limits::{self, Verdict};
use crate::settings::LimitsSettings;
use crate::store::users::{TelegramProfile, User};
use crate::store::{Db, SharedAnswer, StoreError};

/// Callers a statement takes at most, and statements in flight at once per step.
const BATCH: usize = 128;
const IN_FLIGHT: usize = 1;

#[derive(Clone)]
pub(super) struct Shared {
    users: GroupCommit<TelegramProfile, Result<User, StoreError>>,
    in_flight: GroupCommit<i64, Result<i64, StoreError>>,
    /// Redis's error, shared by every request of the round trip that met it.
    paid: GroupCommit<i64, Result<Verdict, Arc<CacheError>>>,
    charges: GroupCommit<(i64, NewJob), Result<Charged, LedgerError>>,
}

impl Shared {
    /// Starts the shared writers; needs a Tokio runtime.
    pub(super) fn start(db: &Db, redis: &Redis, limits: &LimitsSettings) -> Self {
        let (paid_per_minute, max_in_flight) = (limits.paid_per_minute, i64::from(limits.jobs_in_flight));
        let (for_users, for_counts, for_charges, for_limits) = (db.clone(), db.clone(), db.clone(), redis.clone());
        Shared {
            users: GroupCommit::start("users", BATCH, IN_FLIGHT, move |profiles: Vec<TelegramProfile>| {
                let db = for_users.clone();
                async move { db.upsert_users(&profiles).await }
            }),
            in_flight: GroupCommit::start("work_in_flight", BATCH, IN_FLIGHT, move |user_ids: Vec<i64>| {
                let db = for_counts.clone();
                async move { db.work_in_flight_of(&user_ids).await }
            }),
            paid: GroupCommit::start("paid_requests", BATCH, IN_FLIGHT, move |user_ids: Vec<i64>| {
                let redis = for_limits.clone();
                async move {
                    match limits::paid_requests(&redis, &user_ids, paid_per_minute).await {
                        Ok(verdicts) => verdicts.into_iter().map(Ok).collect(),
                        Err(e) => {
                            let e = Arc::new(e);
                            user_ids.iter().map(|_| Err(e.clone())).collect()
                        }
                    }
                }
            }),
            charges: GroupCommit::start("charges", BATCH, IN_FLIGHT, move |requests: Vec<(i64, NewJob)>| {
                let db = for_charges.clone();
                async move { ledger::charge_many(&db, requests, Some(max_in_flight)).await }
            }),
        }
    }

    /// [`Db::upsert_user`], sharing the statement.
    pub(super) async fn user(&self, profile: TelegramProfile) -> Result<User, StoreError> {
        self.users.submit(profile).await.or_stopped()
    }

    /// [`Db::work_in_flight`], sharing the statement.
    pub(super) async fn work_in_flight(&self, user_id: i64) -> Result<i64, StoreError> {
        self.in_flight.submit(user_id).await.or_stopped()
    }

    /// [`limits::paid_requests`] of one request, sharing the round trip.
    pub(super) async fn paid_request(&self, user_id: i64) -> Result<Verdict, Arc<CacheError>> {
        self.paid.submit(user_id).await.unwrap_or(Ok(Verdict::Allowed))
    }

    /// [`ledger::charge_many`] of one request, sharing the transaction; the
    /// cap on work in flight is kept there.
    pub(super) async fn charge(&self, user_id: i64, job: NewJob) -> Result<Charged, LedgerError> {
        self.charges.submit((user_id, job)).await.or_stopped()
    }
}
