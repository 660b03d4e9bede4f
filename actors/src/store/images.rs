//! Generated images (the gallery) and avatars with their training photos.

use super::db::Db;
use super::error::{text_column, text_enum, StoreError};
use deadpool_postgres::GenericClient;

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: i64,
    pub request_id: String,
    pub n: i32,
    pub prompt: String,
    pub model: String,
    pub aspect_ratio: Option<String>,
    pub key: String,
    pub telegram_file_id: Option<String>,
    pub favourite: bool,
}

const IMAGE_COLUMNS: &str = "id, request_id, n, prompt, model, aspect_ratio, key, telegram_file_id, favourite";

fn image(r: &tokio_postgres::Row) -> Image {
    Image {
        id: r.get(0),
        request_id: r.get(1),
        n: r.get(2),
        prompt: r.get(3),
        model: r.get(4),
        aspect_ratio: r.get(5),
        key: r.get(6),
        telegram_file_id: r.get(7),
        favourite: r.get(8),
    }
}

text_enum! {
    /// Where an avatar stands (`avatars.state`).
    pub enum AvatarState {
        /// Its photos being sent.
        Collecting = "collecting",
        /// Paid for, its training not yet at FAL.
        Queued = "queued",
        Training = "training",
        Ready = "ready",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl AvatarState {
    /// Not yet ready, failed or cancelled: what a cancel stops.
    pub const UNDER_WAY: [AvatarState; 3] = [AvatarState::Collecting, AvatarState::Queued, AvatarState::Training];
}

#[derive(Debug, Clone, PartialEq)]
pub struct Avatar {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub gender: String,
    pub state: AvatarState,
    pub is_main: bool,
    pub trigger_phrase: String,
    pub lora_key: Option<String>,
    pub photos: i64,
}

const AVATAR_COLUMNS: &str = "a.id, a.user_id, a.name, a.gender, a.state, a.is_main, a.trigger_phrase, a.lora_key, \
                              (SELECT count(*) FROM avatar_photos p WHERE p.avatar_id = a.id)";

fn avatar(r: &tokio_postgres::Row) -> Result<Avatar, StoreError> {
    Ok(Avatar {
        id: r.get(0),
        user_id: r.get(1),
        name: r.get(2),
        gender: r.get(3),
        state: text_column(r, "state", AvatarState::parse)?,
        is_main: r.get(5),
        trigger_phrase: r.get(6),
        lora_key: r.get(7),
        photos: r.get(8),
    })
}

/// An image as the delivery stores it, once its bytes are in S3.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    pub user_id: i64,
    pub request_id: &'a str,
    pub n: i32,
    pub avatar_id: Option<i64>,
    pub prompt: &'a str,
    pub model: &'a str,
    pub aspect_ratio: Option<&'a str>,
    pub key: String,
}

/// Adds an image to the gallery (once per request and position), in the caller's transaction.
pub async fn add_image(client: &impl GenericClient, i: &NewImage<'_>) -> Result<Image, StoreError> {
    client
        .execute(
            "INSERT INTO images (user_id, request_id, n, avatar_id, prompt, model, aspect_ratio, key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (request_id, n) DO NOTHING",
            &[&i.user_id, &i.request_id, &i.n, &i.avatar_id, &i.prompt, &i.model, &i.aspect_ratio, &i.key],
        )
        .await?;
    let row = client
        .query_one(
            &format!("SELECT {IMAGE_COLUMNS} FROM images WHERE request_id = $1 AND n = $2"),
            &[&i.request_id, &i.n],
        )
        .await?;
    Ok(image(&row))
}

/// A trained avatar: its files, ready, and the main one if the user has
/// none; in the caller's transaction. False when it was not waiting for them.
pub async fn avatar_ready(
    tx: &impl GenericClient,
    id: i64,
    lora_key: &str,
    config_key: Option<&str>,
) -> Result<bool, StoreError> {
    let row = tx
        .query_opt(
            "UPDATE avatars SET state = 'ready', lora_key = $2, config_key = $3, updated_at = now()
             WHERE id = $1 AND state IN ('queued', 'training') RETURNING user_id",
            &[&id, &lora_key, &config_key],
        )
        .await?;
    let Some(row) = row else { return Ok(false) };
    let user_id: i64 = row.get(0);
    tx.execute(
        "UPDATE avatars SET is_main = true WHERE id = $1
         AND NOT EXISTS (SELECT 1 FROM avatars WHERE user_id = $2 AND is_main)",
        &[&id, &user_id],
    )
    .await?;
    Ok(true)
}

impl Db {
    /// The images a FAL request produced, in order.
    pub async fn images_of_request(&self, request_id: &str) -> Result<Vec<Image>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {IMAGE_COLUMNS} FROM images WHERE request_id = $1 ORDER BY n"), &[&request_id])
            .await?;
        Ok(rows.iter().map(image).collect())
    }

    pub async fn set_image_file_id(&self, id: i64, file_id: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("UPDATE images SET telegram_file_id = $2 WHERE id = $1", &[&id, &file_id]).await?;
        Ok(())
    }

    /// The user's `index`-th image, newest first, and how many there are.
    pub async fn gallery_page(&self, user_id: i64, index: i64) -> Result<(Option<Image>, i64), StoreError> {
        let client = self.client().await?;
        let total: i64 = client
            .query_one("SELECT count(*) FROM images WHERE user_id = $1 AND deleted_at IS NULL", &[&user_id])
            .await?
            .get(0);
        let row = client
            .query_opt(
                &format!("SELECT {IMAGE_COLUMNS} FROM images WHERE user_id = $1 AND deleted_at IS NULL ORDER BY id DESC OFFSET $2 LIMIT 1"),
                &[&user_id, &index.max(0)],
            )
            .await?;
        Ok((row.as_ref().map(image), total))
    }

    pub async fn image_of(&self, user_id: i64, id: i64) -> Result<Option<Image>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"),
                &[&id, &user_id],
            )
            .await?;
        Ok(row.as_ref().map(image))
    }

    /// Flips the favourite flag; returns the new value.
    pub async fn toggle_favourite(&self, user_id: i64, id: i64) -> Result<Option<bool>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "UPDATE images SET favourite = NOT favourite WHERE id = $1 AND user_id = $2 RETURNING favourite",
                &[&id, &user_id],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn delete_image(&self, user_id: i64, id: i64) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "UPDATE images SET deleted_at = now() WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL RETURNING key",
                &[&id, &user_id],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn create_avatar(
        &self,
        user_id: i64,
        name: &str,
        gender: &str,
        trigger: &str,
    ) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO avatars (user_id, name, gender, trigger_phrase) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&user_id, &name, &gender, &trigger],
            )
            .await?;
        Ok(row.get(0))
    }

    pub async fn avatar_of(&self, user_id: i64, id: i64) -> Result<Option<Avatar>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {AVATAR_COLUMNS} FROM avatars a WHERE a.id = $1 AND a.user_id = $2"),
                &[&id, &user_id],
            )
            .await?;
        row.as_ref().map(avatar).transpose()
    }

    pub async fn avatars(&self, user_id: i64) -> Result<Vec<Avatar>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {AVATAR_COLUMNS} FROM avatars a WHERE a.user_id = $1 AND a.state <> 'cancelled' ORDER BY a.id DESC LIMIT 20"), &[&user_id])
            .await?;
        rows.iter().map(avatar).collect()
    }

    pub async fn main_avatar(&self, user_id: i64) -> Result<Option<Avatar>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {AVATAR_COLUMNS} FROM avatars a WHERE a.user_id = $1 AND a.is_main AND a.state = 'ready'"
                ),
                &[&user_id],
            )
            .await?;
        row.as_ref().map(avatar).transpose()
    }

    /// Adds a photo (key `{prefix}{n}{suffix}`) unless its content is already
    /// there; `Ok(None)` for a duplicate.
    pub async fn add_avatar_photo(
        &self,
        avatar_id: i64,
        (prefix, suffix): (&str, &str),
        sha256: &str,
        width: i32,
        height: i32,
    ) -> Result<Option<(i32, String)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "INSERT INTO avatar_photos (avatar_id, n, key, sha256, width, height)
                 SELECT $1, COALESCE(max(n), 0) + 1, $2 || (COALESCE(max(n), 0) + 1)::text || $6, $3, $4, $5
                 FROM avatar_photos WHERE avatar_id = $1
                 ON CONFLICT DO NOTHING RETURNING n, key",
                &[&avatar_id, &prefix, &sha256, &width, &height, &suffix],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    pub async fn remove_avatar_photo(&self, avatar_id: i64, n: i32) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("DELETE FROM avatar_photos WHERE avatar_id = $1 AND n = $2", &[&avatar_id, &n]).await?;
        Ok(())
    }

    pub async fn avatar_photo_keys(&self, avatar_id: i64) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client.query("SELECT key FROM avatar_photos WHERE avatar_id = $1 ORDER BY n", &[&avatar_id]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Moves an avatar between states; false when it was not in `from`.
    pub async fn set_avatar_state(
        &self,
        id: i64,
        from: &[AvatarState],
        to: AvatarState,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let (from, to): (Vec<&str>, &str) = (from.iter().map(|s| s.as_str()).collect(), to.as_str());
        let n = client
            .execute(
                "UPDATE avatars SET state = $3, error = $4, updated_at = now() WHERE id = $1 AND state = ANY($2)",
                &[&id, &from, &to, &error],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn set_main_avatar(&self, user_id: i64, id: i64) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("UPDATE avatars SET is_main = false WHERE user_id = $1 AND is_main", &[&user_id]).await?;
        let n = tx
            .execute(
                "UPDATE avatars SET is_main = true WHERE id = $1 AND user_id = $2 AND state = 'ready'",
                &[&id, &user_id],
            )
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn set_archive_key(&self, id: i64, key: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("UPDATE avatars SET archive_key = $2 WHERE id = $1", &[&id, &key]).await?;
        Ok(())
    }

    pub async fn aspect_ratio(&self, user_id: i64) -> Result<String, StoreError> {
        let client = self.client().await?;
        Ok(client.query_one("SELECT aspect_ratio FROM users WHERE id = $1", &[&user_id]).await?.get(0))
    }

    pub async fn set_aspect_ratio(&self, user_id: i64, aspect: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("UPDATE users SET aspect_ratio = $2 WHERE id = $1", &[&user_id, &aspect]).await?;
        Ok(())
    }
}
