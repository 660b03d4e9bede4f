//! Telegram users, created on first contact and kept up to date.

use super::{Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub telegram_id: i64,
    pub language_code: Option<String>,
    pub balance: i64,
    /// `auto` or the ISO-639-1 code the user pinned their recordings to.
    pub transcription_language: String,
}

const USER_COLUMNS: &str = "id, telegram_id, language_code, balance, transcription_language";

impl User {
    fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            id: row.get(0),
            telegram_id: row.get(1),
            language_code: row.get(2),
            balance: row.get(3),
            transcription_language: row.get(4),
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

impl Db {
    /// A user's work not finished yet: jobs queued or running, and FAL
    /// requests submitted and not yet answered.
    pub async fn work_in_flight(&self, user_id: i64) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let in_flight = super::cached(
            &client,
            "SELECT (SELECT count(*) FROM jobs WHERE user_id = $1 AND state IN ('queued', 'running'))
                  + (SELECT count(*) FROM fal_requests WHERE user_id = $1 AND state = 'submitted')",
        )
        .await?;
        Ok(client.query_one(&in_flight, &[&user_id]).await?.get(0))
    }

    /// Creates the user on first sight, refreshes names and language after.
    /// Every update asks this, so a profile that did not change is only
    /// read: a write would cost each update a commit (and a flush) of its own.
    pub async fn upsert_user(&self, profile: &TelegramProfile) -> Result<User, StoreError> {
        let client = self.client().await?;
        let unchanged = super::cached(
            &client,
            &format!(
                "SELECT {USER_COLUMNS} FROM users
             WHERE telegram_id = $1 AND username IS NOT DISTINCT FROM $2 AND first_name IS NOT DISTINCT FROM $3
               AND last_name IS NOT DISTINCT FROM $4 AND ($5::text IS NULL OR language_code IS NOT DISTINCT FROM $5)"
            ),
        )
        .await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&profile.telegram_id, &profile.username, &profile.first_name, &profile.last_name, &profile.language_code];
        let known = client.query_opt(&unchanged, &params).await?;
        if let Some(row) = known {
            return Ok(User::from_row(&row));
        }
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO users (telegram_id, username, first_name, last_name, language_code)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (telegram_id) DO UPDATE SET
                     username = EXCLUDED.username, first_name = EXCLUDED.first_name,
                     last_name = EXCLUDED.last_name,
                     language_code = COALESCE(EXCLUDED.language_code, users.language_code),
                     updated_at = now()
                 RETURNING {USER_COLUMNS}"
                ),
                &[
                    &profile.telegram_id,
                    &profile.username,
                    &profile.first_name,
                    &profile.last_name,
                    &profile.language_code,
                ],
            )
            .await?;
        Ok(User::from_row(&row))
    }

    pub async fn user_by_telegram_id(&self, telegram_id: i64) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE telegram_id = $1"), &[&telegram_id])
            .await?;
        Ok(row.as_ref().map(User::from_row))
    }

    /// `auto` or the ISO-639-1 code the user pinned their recordings to.
    pub async fn transcription_language(&self, user_id: i64) -> Result<String, StoreError> {
        let client = self.client().await?;
        Ok(client.query_one("SELECT transcription_language FROM users WHERE id = $1", &[&user_id]).await?.get(0))
    }

    pub async fn set_transcription_language(&self, user_id: i64, code: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("UPDATE users SET transcription_language = $2, updated_at = now() WHERE id = $1", &[&user_id, &code]).await?;
        Ok(())
    }
}
