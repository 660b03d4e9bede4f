//! The handles every actor shares: settings, PostgreSQL, Redis, S3 and the
//! one throttled Bot API client of the process, its send budget shared
//! through Redis with every other process of the bot (Telegram's limits are per bot).

use std::sync::Arc;

use crate::blob::{Blob, BlobError};
use crate::cache::{CacheError, Redis};
use crate::clients::{telegram_bot, ClientError, TgBot};
use crate::settings::Settings;
use crate::store::{Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Cheap to clone; building it never touches the network (the pool and the
/// Redis client connect lazily and keep retrying on their own). Build it
/// inside the runtime: the bot's throttle runs as a task.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub redis: Redis,
    pub blob: Blob,
    pub telegram: TgBot,
}

impl Services {
    pub fn new(settings: Arc<Settings>) -> Result<Self, ServicesError> {
        let redis = Redis::connect(&settings.redis)?;
        let telegram = telegram_bot(&settings.telegram)?;
        crate::clients::flood::share_through(redis.clone(), &settings.telegram);
        Ok(Self { db: Db::new(&settings.database)?, redis, blob: Blob::new(&settings.s3)?, telegram, settings })
    }

    pub fn instance_id(&self) -> &str {
        &self.settings.instance_id
    }
}
