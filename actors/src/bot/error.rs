//! Why handling an update failed, by what failed: the dispatcher logs and
//! counts the cause, so an operator sees "Telegram" from "database" at a glance.

use teloxide::RequestError;

use crate::blob::BlobError;
use crate::cache::CacheError;
use crate::clients::bot_api::is_transient;
use crate::clients::DownloadError;
use crate::ledger::LedgerError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("Telegram request failed: {0}")]
    Telegram(#[from] RequestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Download(#[from] DownloadError),
}

impl HandleError {
    /// The cause as a metric label: `telegram`, `database`, `redis`, `s3`, `download`.
    pub fn cause(&self) -> &'static str {
        match self {
            HandleError::Telegram(_) => "telegram",
            HandleError::Store(_) | HandleError::Ledger(_) => "database",
            HandleError::Cache(_) => "redis",
            HandleError::Blob(_) => "s3",
            HandleError::Download(_) => "download",
        }
    }

    /// Whether to apologise to the user: not when the Bot API itself is
    /// failing (the apology would fail as the reply did, after the same retries).
    pub fn worth_an_apology(&self) -> bool {
        !matches!(self, HandleError::Telegram(e) if is_transient(e))
    }
}
