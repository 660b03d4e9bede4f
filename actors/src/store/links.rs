//! Links sent to be transcribed, and what reading them found.

use super::db::Db;
use super::error::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub id: i64,
    pub user_id: i64,
    pub chat_id: i64,
    pub url: String,
    pub title: Option<String>,
    /// Seconds: stated by the site, or measured on the audio fetched.
    pub duration_seconds: Option<f64>,
    pub audio_key: Option<String>,
}

const COLUMNS: &str = "id, user_id, chat_id, url, title, duration_seconds, audio_key";

fn link(row: &tokio_postgres::Row) -> Link {
    Link {
        id: row.get(0),
        user_id: row.get(1),
        chat_id: row.get(2),
        url: row.get(3),
        title: row.get(4),
        duration_seconds: row.get(5),
        audio_key: row.get(6),
    }
}

impl Db {
    pub async fn add_link(&self, user_id: i64, chat_id: i64, url: &str) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO links (user_id, chat_id, url) VALUES ($1, $2, $3) RETURNING id",
                &[&user_id, &chat_id, &url],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The link `id` if it is `user_id`'s.
    pub async fn link_of(&self, user_id: i64, id: i64) -> Result<Option<Link>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM links WHERE id = $1 AND user_id = $2");
        Ok(client.query_opt(&sql, &[&id, &user_id]).await?.as_ref().map(link))
    }

    /// What reading the link found: its title, its length, the audio kept.
    pub async fn link_read(
        &self,
        id: i64,
        title: &str,
        duration_seconds: f64,
        audio_key: Option<&str>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE links SET title = $2, duration_seconds = $3, audio_key = $4 WHERE id = $1",
                &[&id, &title, &duration_seconds, &audio_key],
            )
            .await?;
        Ok(())
    }
}
