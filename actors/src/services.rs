//! The handles every actor shares: settings, PostgreSQL, Redis, S3.

use std::sync::Arc;

use crate::blob::{Blob, BlobError};
use crate::cache::{CacheError, Redis};
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
}

/// Cheap to clone; building it never touches the network (the pool and the
/// Redis client connect lazily and keep retrying on their own).
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub redis: Redis,
    pub blob: Blob,
}

impl Services {
    pub fn new(settings: Arc<Settings>) -> Result<Self, ServicesError> {
        Ok(Self {
            db: Db::new(&settings.database)?,
            redis: Redis::connect(&settings.redis)?,
            blob: Blob::new(&settings.s3)?,
            settings,
        })
    }

    pub fn instance_id(&self) -> &str {
        &self.settings.instance_id
    }
}
