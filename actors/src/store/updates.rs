//! Recorded Telegram updates: written before the offset moves past them,
//! marked handled after. The offset itself is derived from what is recorded,
//! so it survives restarts and leader changes.

use serde_json::Value;

use super::{Db, StoreError};

impl Db {
    /// Records the updates not seen before; returns the ids that were new.
    pub async fn record_updates(&self, updates: &[(i64, Option<i64>, Value)], instance: &str) -> Result<Vec<i64>, StoreError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = updates.iter().map(|u| u.0).collect();
        let chats: Vec<Option<i64>> = updates.iter().map(|u| u.1).collect();
        let payloads: Vec<Value> = updates.iter().map(|u| u.2.clone()).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                "INSERT INTO telegram_updates (update_id, chat_id, payload, received_by)
                 SELECT u.id, u.chat, u.payload, $4
                 FROM unnest($1::bigint[], $2::bigint[], $3::jsonb[]) AS u(id, chat, payload)
                 ON CONFLICT (update_id) DO NOTHING
                 RETURNING update_id",
                &[&ids, &chats, &payloads, &instance],
            )
            .await?;
        let mut new: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        new.sort_unstable();
        Ok(new)
    }

    pub async fn mark_update_handled(&self, update_id: i64, error: Option<&str>) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("UPDATE telegram_updates SET handled_at = now(), error = $2 WHERE update_id = $1", &[&update_id, &error])
            .await?;
        Ok(())
    }

    /// Recorded but not handled (a crash came in between), oldest first.
    pub async fn unhandled_updates(&self, limit: i64) -> Result<Vec<(i64, Value)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT update_id, payload FROM telegram_updates WHERE handled_at IS NULL ORDER BY update_id LIMIT $1",
                &[&limit],
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
