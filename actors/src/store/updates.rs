//! Recorded Telegram updates: written before the offset moves past them,
//! marked handled after. The offset itself is derived from what is recorded,
//! so it survives restarts and leader changes.

use serde_json::Value;

use super::db::Db;
use super::error::StoreError;

/// Whether this poller may send getUpdates now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollFence {
    /// Ours until the deadline asked for.
    Granted,
    /// Another poller's getUpdates may be open for this long yet.
    Busy(std::time::Duration),
}

impl Db {
    /// Claims (or extends) the right to have one getUpdates open for
    /// `window`: granted when we hold it already or the last holder's poll
    /// has surely ended. PostgreSQL's clock only, so hosts' clocks don't matter.
    pub async fn fence_poll(&self, holder: &str, window: std::time::Duration) -> Result<PollFence, StoreError> {
        let client = self.client().await?;
        let granted = client
            .execute(
                "UPDATE poll_fence SET holder = $1, poll_until = now() + make_interval(secs => $2)
                 WHERE holder = $1 OR poll_until <= now()",
                &[&holder, &window.as_secs_f64()],
            )
            .await?;
        if granted == 1 {
            return Ok(PollFence::Granted);
        }
        let left: f64 = client
            .query_one("SELECT greatest(extract(epoch FROM poll_until - now()), 0)::float8 FROM poll_fence", &[])
            .await?
            .get(0);
        Ok(PollFence::Busy(std::time::Duration::from_secs_f64(left)))
    }

    /// Says our getUpdates is closed, so the next poller need not wait for it.
    pub async fn close_poll(&self, holder: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("UPDATE poll_fence SET poll_until = now() WHERE holder = $1", &[&holder]).await?;
        Ok(())
    }

    /// Records the updates not seen before, claimed by `instance` for
    /// `claim` (see [`Db::claim_updates`]); returns the ids that were new.
    pub async fn record_updates(
        &self,
        updates: &[(i64, Option<i64>, Value)],
        instance: &str,
        claim: std::time::Duration,
    ) -> Result<Vec<i64>, StoreError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = updates.iter().map(|u| u.0).collect();
        let chats: Vec<Option<i64>> = updates.iter().map(|u| u.1).collect();
        let payloads: Vec<&Value> = updates.iter().map(|u| &u.2).collect();
        let client = self.client().await?;
        let record = super::db::cached(
            &client,
            "INSERT INTO telegram_updates (update_id, chat_id, payload, received_by, handling_by, handling_until)
             SELECT u.id, u.chat, u.payload, $4, $4, now() + make_interval(secs => $5)
             FROM unnest($1::bigint[], $2::bigint[], $3::jsonb[]) AS u(id, chat, payload)
             ON CONFLICT (update_id) DO NOTHING
             RETURNING update_id",
        )
        .await?;
        let rows = client.query(&record, &[&ids, &chats, &payloads, &instance, &claim.as_secs_f64()]).await?;
        let mut new: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        new.sort_unstable();
        Ok(new)
    }

    pub async fn mark_update_handled(&self, update_id: i64, error: Option<&str>) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE telegram_updates SET handled_at = now(), error = $2 WHERE update_id = $1",
                &[&update_id, &error],
            )
            .await?;
        Ok(())
    }

    /// Marks many updates handled in one statement (one commit).
    pub async fn mark_updates_handled(&self, done: &[(i64, Option<String>)]) -> Vec<Result<(), StoreError>> {
        let ids: Vec<i64> = done.iter().map(|d| d.0).collect();
        let errors: Vec<Option<&str>> = done.iter().map(|d| d.1.as_deref()).collect();
        let marked = async {
            let client = self.client().await?;
            let mark = super::db::cached(
                &client,
                "UPDATE telegram_updates t SET handled_at = now(), error = u.error
                 FROM unnest($1::bigint[], $2::text[]) AS u(id, error) WHERE t.update_id = u.id",
            )
            .await?;
            client.execute(&mark, &[&ids, &errors]).await?;
            Ok::<_, StoreError>(())
        };
        match marked.await {
            Ok(()) => done.iter().map(|_| Ok(())).collect(),
            Err(e) => super::db::shared_failure(done.len(), "marking updates handled", &e),
        }
    }

    /// Claims recorded updates for handling, for `window`; per id, whether
    /// it is this caller's to handle: not handled yet, and either nobody's
    /// claim runs or the claim is the one `instance` took on recording it
    /// (which this claim then replaces, so it is taken once).
    pub async fn claim_updates(
        &self,
        ids: &[i64],
        window: std::time::Duration,
        instance: &str,
    ) -> Vec<Result<bool, StoreError>> {
        let claimed = async {
            let client = self.client().await?;
            let claim = super::db::cached(
                &client,
                "UPDATE telegram_updates SET handling_until = now() + make_interval(secs => $2), handling_by = NULL
                 WHERE update_id = ANY($1) AND handled_at IS NULL
                   AND (handling_until IS NULL OR handling_until <= now() OR handling_by = $3)
                 RETURNING update_id",
            )
            .await?;
            let rows = client.query(&claim, &[&ids, &window.as_secs_f64(), &instance]).await?;
            Ok::<_, StoreError>(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<std::collections::HashSet<i64>>())
        };
        match claimed.await {
            Ok(mut mine) => ids.iter().map(|id| Ok(mine.remove(id))).collect(),
            Err(e) => super::db::shared_failure(ids.len(), "claiming updates", &e),
        }
    }

    /// Gives up the claims `instance` took on recording updates it has not
    /// handled, once none of its handlers runs (a clean stop): another
    /// replica may handle them at once. Returns how many were given up.
    pub async fn release_recorded_claims(&self, instance: &str) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let released = client
            .execute(
                "UPDATE telegram_updates SET handling_until = NULL, handling_by = NULL
                 WHERE handled_at IS NULL AND handling_by = $1",
                &[&instance],
            )
            .await?;
        Ok(released)
    }

    /// Recorded at least `age` ago but not handled, and not claimed by a
    /// handler still at work (a crash came in between), oldest first.
    pub async fn unhandled_updates(
        &self,
        limit: i64,
        age: std::time::Duration,
    ) -> Result<Vec<(i64, Value)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT update_id, payload FROM telegram_updates
                 WHERE handled_at IS NULL AND (handling_until IS NULL OR handling_until <= now())
                   AND received_at <= now() - make_interval(secs => $2)
                 ORDER BY update_id LIMIT $1",
                &[&limit, &age.as_secs_f64()],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The getUpdates offset: one past the newest recorded update (0 when none).
    pub async fn next_update_offset(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client.query_one("SELECT COALESCE(max(update_id) + 1, 0) FROM telegram_updates", &[]).await?;
        Ok(row.get(0))
    }
}
