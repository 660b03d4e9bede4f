//! Where a user is in a multi-step conversation (creating an avatar), kept
//! in Redis with a TTL: it survives restarts and leader changes, and an
//! abandoned conversation expires by itself.

use std::time::Duration;

use fred::prelude::KeysInterface;
use fred::types::Expiration;
use serde::{Deserialize, Serialize};

use crate::cache::{CacheError, Redis};

/// An unfinished conversation is forgotten after this.
pub const TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Dialogue {
    AvatarName,
    AvatarGender { name: String },
    AvatarPhotos { avatar_id: i64 },
}

fn key(redis: &Redis, user_id: i64) -> String {
    redis.key(&format!("dialogue:{user_id}"))
}

pub async fn get(redis: &Redis, user_id: i64) -> Result<Option<Dialogue>, CacheError> {
    let value: Option<String> = redis.client().get(key(redis, user_id)).await?;
    Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
}

pub async fn set(redis: &Redis, user_id: i64, dialogue: &Dialogue) -> Result<(), CacheError> {
    let value = serde_json::to_string(dialogue).unwrap_or_default();
    redis
        .client()
        .set::<(), _, _>(key(redis, user_id), value, Some(Expiration::EX(TTL.as_secs() as i64)), None, false)
        .await?;
    Ok(())
}

pub async fn clear(redis: &Redis, user_id: i64) -> Result<(), CacheError> {
    redis.client().del::<(), _>(key(redis, user_id)).await?;
    Ok(())
}
