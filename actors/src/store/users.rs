//! Telegram users, created on first contact and kept up to date.

use std::collections::HashMap;

use super::db::{shared_failure, Db, Prepared};
use super::error::StoreError;
use deadpool_postgres::GenericClient;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub telegram_id: i64,
    pub language_code: Option<String>,
    pub balance: i64,
    /// `auto` or the ISO-639-1 code the user pinned their recordings to.
    pub transcription_language: String,
    /// Who said what in every recording (`/settings`).
    pub speakers: bool,
}

const USER_COLUMNS: &str = "id, telegram_id, language_code, balance, transcription_language, speakers";

fn qualified(table: &str) -> String {
    USER_COLUMNS.split(", ").map(|c| format!("{table}.{c}")).collect::<Vec<_>>().join(", ")
}

impl User {
    /// The user from [`USER_COLUMNS`], starting at column `from`.
    fn from_row(row: &tokio_postgres::Row, from: usize) -> Self {
        Self {
            id: row.get(from),
            telegram_id: row.get(from + 1),
            language_code: row.get(from + 2),
            balance: row.get(from + 3),
            transcription_language: row.get(from + 4),
            speakers: row.get(from + 5),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TelegramProfile {
    pub telegram_id: i64,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub language_code: Option<String>,
}

impl TelegramProfile {
    pub fn of(user: &teloxide::types::User) -> Self {
        Self {
            telegram_id: user.id.0 as i64,
            username: user.username.clone(),
            first_name: Some(user.first_name.clone()),
            last_name: user.last_name.clone(),
            language_code: user.language_code.clone(),
        }
    }
}

/// Each user's work not finished yet (jobs queued or running, FAL requests
/// submitted and not answered), leaving out the jobs `excluding`: the one
/// statement both the limit check and the charge count with.
pub async fn work_in_flight_in(
    client: &impl GenericClient,
    user_ids: &[i64],
    excluding: &[i64],
) -> Result<HashMap<i64, i64>, StoreError> {
    let in_flight = super::db::cached(
        client,
        "SELECT u.id, (SELECT count(*) FROM jobs
                       WHERE user_id = u.id AND state IN ('queued', 'running') AND id <> ALL($2::bigint[]))
                    + (SELECT count(*) FROM fal_requests WHERE user_id = u.id AND state = 'submitted')
         FROM unnest($1::bigint[]) AS u(id)",
    )
    .await?;
    let rows = client.query(&in_flight, &[&user_ids, &excluding]).await?;
    Ok(rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))).collect())
}

impl Db {
    /// A user's work not finished yet: jobs queued or running, and FAL
    /// requests submitted and not yet answered.
    pub async fn work_in_flight(&self, user_id: i64) -> Result<i64, StoreError> {
        self.work_in_flight_of(&[user_id]).await.pop().unwrap_or(Err(StoreError::Shared("no count came back".into())))
    }

    /// [`Db::work_in_flight`] of many users in one statement, in order.
    pub async fn work_in_flight_of(&self, user_ids: &[i64]) -> Vec<Result<i64, StoreError>> {
        let counted = async { work_in_flight_in(&self.client().await?, user_ids, &[]).await };
        match counted.await {
            Ok(counts) => user_ids
                .iter()
                .map(|id| counts.get(id).copied().ok_or_else(|| StoreError::Shared(format!("no count for user {id}"))))
                .collect(),
            Err(e) => shared_failure(user_ids.len(), "counting work in flight", &e),
        }
    }

    /// Creates the user on first sight, refreshes names and language after.
    pub async fn upsert_user(&self, profile: &TelegramProfile) -> Result<User, StoreError> {
        let mut users = self.upsert_users(std::slice::from_ref(profile)).await;
        users.pop().unwrap_or(Err(StoreError::Shared("no user came back".into())))
    }

    /// [`Db::upsert_user`] for many profiles, in order. Every update asks
    /// this, so profiles that did not change are only read (one statement
    /// for all); only new or changed ones are written, in a second.
    pub async fn upsert_users(&self, profiles: &[TelegramProfile]) -> Vec<Result<User, StoreError>> {
        match self.upsert_all(profiles).await {
            Ok(users) => users.into_iter().map(Ok).collect(),
            Err(e) => shared_failure(profiles.len(), "reading users", &e),
        }
    }

    async fn upsert_all(&self, profiles: &[TelegramProfile]) -> Result<Vec<User>, StoreError> {
        let column = |f: fn(&TelegramProfile) -> Option<&str>| profiles.iter().map(f).collect::<Vec<_>>();
        let ids: Vec<i64> = profiles.iter().map(|p| p.telegram_id).collect();
        let (usernames, first, last, languages) = (
            column(|p| p.username.as_deref()),
            column(|p| p.first_name.as_deref()),
            column(|p| p.last_name.as_deref()),
            column(|p| p.language_code.as_deref()),
        );
        let client = self.client().await?;
        let unchanged = super::db::cached(
            &client,
            &format!(
                "SELECT p.n, {columns} FROM users
                 JOIN unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY
                      AS p(telegram_id, username, first_name, last_name, language_code, n)
                   ON users.telegram_id = p.telegram_id AND users.username IS NOT DISTINCT FROM p.username
                  AND users.first_name IS NOT DISTINCT FROM p.first_name AND users.last_name IS NOT DISTINCT FROM p.last_name
                  AND (p.language_code IS NULL OR users.language_code IS NOT DISTINCT FROM p.language_code)",
                columns = qualified("users")
            ),
        )
        .await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [&ids, &usernames, &first, &last, &languages];
        let mut found: Vec<Option<User>> = vec![None; profiles.len()];
        for row in client.query(&unchanged, &params).await? {
            let n: i64 = row.get(0);
            found[n as usize - 1] = Some(User::from_row(&row, 1));
        }
        // New or changed: written once per telegram id, the last profile seen winning.
        let mut changed: HashMap<i64, usize> = HashMap::new();
        for (i, _) in found.iter().enumerate().filter(|(_, f)| f.is_none()) {
            changed.insert(profiles[i].telegram_id, i);
        }
        if !changed.is_empty() {
            let pick = |f: fn(&TelegramProfile) -> Option<&str>| {
                changed.values().map(|&i| f(&profiles[i])).collect::<Vec<_>>()
            };
            let ids: Vec<i64> = changed.keys().copied().collect();
            let (usernames, first, last, languages) = (
                pick(|p| p.username.as_deref()),
                pick(|p| p.first_name.as_deref()),
                pick(|p| p.last_name.as_deref()),
                pick(|p| p.language_code.as_deref()),
            );
            let upsert = super::db::cached(
                &client,
                &format!(
                    "INSERT INTO users (telegram_id, username, first_name, last_name, language_code)
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
                     ON CONFLICT (telegram_id) DO UPDATE SET
                         username = EXCLUDED.username, first_name = EXCLUDED.first_name,
                         last_name = EXCLUDED.last_name,
                         language_code = COALESCE(EXCLUDED.language_code, users.language_code),
                         updated_at = now()
                     RETURNING {USER_COLUMNS}"
                ),
            )
            .await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [&ids, &usernames, &first, &last, &languages];
            let written: HashMap<i64, User> = client
                .query(&upsert, &params)
                .await?
                .iter()
                .map(|r| User::from_row(r, 0))
                .map(|u| (u.telegram_id, u))
                .collect();
            for (i, slot) in found.iter_mut().enumerate().filter(|(_, f)| f.is_none()) {
                *slot = written.get(&profiles[i].telegram_id).cloned();
            }
        }
        found
            .into_iter()
            .zip(profiles)
            .map(|(user, p)| {
                user.ok_or_else(|| StoreError::Shared(format!("user {} was neither read nor written", p.telegram_id)))
            })
            .collect()
    }

    pub async fn user_by_telegram_id(&self, telegram_id: i64) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE telegram_id = $1"), &[&telegram_id])
            .await?;
        Ok(row.as_ref().map(|r| User::from_row(r, 0)))
    }

    /// `auto` or the ISO-639-1 code the user pinned their recordings to.
    pub async fn transcription_language(&self, user_id: i64) -> Result<String, StoreError> {
        let client = self.client().await?;
        Ok(client.query_one("SELECT transcription_language FROM users WHERE id = $1", &[&user_id]).await?.get(0))
    }

    pub async fn set_transcription_language(&self, user_id: i64, code: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE users SET transcription_language = $2, updated_at = now() WHERE id = $1",
                &[&user_id, &code],
            )
            .await?;
        Ok(())
    }

    /// Whether the user has every recording transcribed with speakers.
    pub async fn speakers(&self, user_id: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client.query_one("SELECT speakers FROM users WHERE id = $1", &[&user_id]).await?.get(0))
    }

    pub async fn set_speakers(&self, user_id: i64, on: bool) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("UPDATE users SET speakers = $2, updated_at = now() WHERE id = $1", &[&user_id, &on]).await?;
        Ok(())
    }

    /// The user's glossary as kept (JSON; its shape is `transcriber::glossary`'s).
    pub async fn glossary(&self, user_id: i64) -> Result<serde_json::Value, StoreError> {
        let client = self.client().await?;
        Ok(client.query_one_prepared("SELECT glossary FROM users WHERE id = $1", &[&user_id]).await?.get(0))
    }

    pub async fn set_glossary(&self, user_id: i64, glossary: &serde_json::Value) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("UPDATE users SET glossary = $2, updated_at = now() WHERE id = $1", &[&user_id, glossary])
            .await?;
        Ok(())
    }
}
