//! What every FAL step holds: the services, the Bot API and FAL clients,
//! and links FAL can fetch our files by.

use crate::blob::Blob;
use crate::chat::Lang;
use crate::clients::fal::Fal;
use crate::clients::{ClientError, TgBot};
use crate::jobs::{Job, JobError};
use crate::services::Services;
use crate::settings::S3Settings;

#[derive(Clone)]
pub struct FalJobs {
    pub(super) services: Services,
    pub(super) bot: TgBot,
    pub(super) fal: Fal,
    /// Presigns links on `s3.public_endpoint`, when one is set.
    public_blob: Option<Blob>,
}

impl FalJobs {
    pub fn new(services: Services) -> Result<Self, ClientError> {
        let settings = &services.settings;
        let public_blob = if settings.s3.public_endpoint.is_empty() {
            None
        } else {
            let public = S3Settings { endpoint: settings.s3.public_endpoint.clone(), ..settings.s3.clone() };
            Some(Blob::new(&public).map_err(|e| ClientError::Http(e.to_string()))?)
        };
        Ok(Self { bot: services.telegram.clone(), fal: Fal::new(&settings.fal), public_blob, services })
    }

    /// A URL FAL can download `key` from: presigned on the public S3
    /// endpoint, or a signed `/files/{token}` link on the webhook listener.
    pub(super) async fn public_link(&self, key: &str) -> Result<String, JobError> {
        let fal = &self.services.settings.fal;
        if let Some(blob) = &self.public_blob {
            return Ok(blob.presigned_get(key, fal.file_link_ttl).await?);
        }
        let (base, secret) = (fal.files_base(), fal.files_secret.expose());
        if base.is_empty() || secret.is_empty() {
            return Err(JobError::Broken(
                "FAL cannot fetch files: set fal.public_url (or fal.webhook_url) and fal.files_secret, or s3.public_endpoint".into(),
            ));
        }
        let expires = chrono::Utc::now().timestamp() + fal.file_link_ttl.as_secs() as i64;
        Ok(format!("{base}/files/{}", crate::clients::fal::files::sign(secret.as_bytes(), key, expires)))
    }
}

pub(super) fn lang_of(job: &Job) -> Lang {
    Lang::from_code(job.language())
}
