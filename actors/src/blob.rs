//! S3 (MinIO in production, SeaweedFS in development): the bytes.
//! Keys are `{kind}/{user_id}/{id}/...`.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls;
use bytes::Bytes;

use crate::settings::S3Settings;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("s3.endpoint is not a valid URL: {0}")]
    InvalidEndpoint(String),
    #[error("S3 request {op} failed for {key}: {message}")]
    Request { op: &'static str, key: String, message: String },
}

impl BlobError {
    fn request<E: std::error::Error>(op: &'static str, key: &str, err: E) -> Self {
        // The SDK's Display is terse ("service error"); the source chain says what happened.
        BlobError::Request { op, key: key.to_owned(), message: crate::error::chain(&err) }
    }
}

/// An image's file extension and content type, from its first bytes:
/// a JPEG is never stored or sent under a `.png` name.
pub fn image_kind(bytes: &[u8]) -> (&'static str, &'static str) {
    if bytes.starts_with(b"\x89PNG") {
        ("png", "image/png")
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        ("webp", "image/webp")
    } else {
        ("jpg", "image/jpeg")
    }
}

/// Every method takes keys without `s3.key_prefix`; the prefix is added here.
#[derive(Clone)]
pub struct Blob {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl Blob {
    pub fn new(settings: &S3Settings) -> Result<Self, BlobError> {
        let endpoint = settings.endpoint_url();
        url::Url::parse(&endpoint).map_err(|e| BlobError::InvalidEndpoint(e.to_string()))?;
        let credentials =
            Credentials::new(settings.access_key.expose(), settings.secret_key.expose(), None, None, "aishad-settings");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(true)
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
                    .build_https(),
            )
            .build();
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: settings.bucket.clone(),
            prefix: settings.key_prefix.clone(),
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless it exists; safe to call from every replica at once.
    pub async fn ensure_bucket(&self) -> Result<(), BlobError> {
        if self.client.head_bucket().bucket(&self.bucket).send().await.is_ok() {
            return Ok(());
        }
        match self.client.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let service = err.as_service_error();
                if service.is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()) {
                    Ok(())
                } else {
                    Err(BlobError::request("create_bucket", &self.bucket, err))
                }
            }
        }
    }

    pub async fn ping(&self) -> Result<(), BlobError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| BlobError::request("head_bucket", &self.bucket, e))
    }

    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), BlobError> {
        self.put_body(key, ByteStream::from(body), content_type).await
    }

    /// Uploads a file from disk as it is read (a LoRA of 300 MB never sits in memory).
    pub async fn put_file(&self, key: &str, path: &std::path::Path, content_type: &str) -> Result<(), BlobError> {
        let body = ByteStream::from_path(path).await.map_err(|e| BlobError::request("put_object", key, e))?;
        self.put_body(key, body, content_type).await
    }

    async fn put_body(&self, key: &str, body: ByteStream, content_type: &str) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| BlobError::request("put_object", key, e))
    }

    /// An object's length and its bytes as they arrive.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<
        (Option<i64>, impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static),
        BlobError,
    > {
        let object = self.object(key).await?;
        let length = object.content_length;
        let chunks = futures::stream::unfold(object.body, |mut body| async move {
            body.next().await.map(|chunk| (chunk.map_err(std::io::Error::other), body))
        });
        Ok((length, chunks))
    }

    async fn object(&self, key: &str) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, BlobError> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
            .map_err(|e| BlobError::request("get_object", key, e))
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let object = self.object(key).await?;
        let data = object.body.collect().await.map_err(|e| BlobError::request("get_object", key, e))?;
        Ok(data.into_bytes())
    }

    /// An object's bytes, or `None` when there is no such key.
    pub async fn get_if_any(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        match self.client.get_object().bucket(&self.bucket).key(self.full(key)).send().await {
            Ok(object) => {
                let data = object.body.collect().await.map_err(|e| BlobError::request("get_object", key, e))?;
                Ok(Some(data.into_bytes()))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(e) => Err(BlobError::request("get_object", key, e)),
        }
    }

    /// Writes an object to `path` as it arrives (a 200 MB recording never sits in memory); its length.
    pub async fn get_file(&self, key: &str, path: &std::path::Path) -> Result<u64, BlobError> {
        use futures::TryStreamExt;
        use tokio::io::AsyncWriteExt;
        let io = |e: std::io::Error| BlobError::request("get_object", key, e);
        let (_, chunks) = self.get_stream(key).await?;
        let mut chunks = std::pin::pin!(chunks);
        let mut out = tokio::io::BufWriter::new(tokio::fs::File::create(path).await.map_err(io)?);
        let mut written = 0u64;
        while let Some(chunk) = chunks.try_next().await.map_err(io)? {
            written += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(io)?;
        }
        out.flush().await.map_err(io)?;
        Ok(written)
    }

    /// Deletes every object whose key starts with `prefix` (a user's
    /// `audio/{user_id}/`, say); how many were deleted.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, BlobError> {
        let full = self.full(prefix);
        let strip = self.full("");
        let mut deleted = 0;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| BlobError::request("list_objects_v2", prefix, e))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(strip.as_str())) {
                    self.delete(key).await?;
                    deleted += 1;
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(deleted),
            }
        }
    }

    /// A GET URL for `key` that works without credentials for `ttl`.
    pub async fn presigned_get(&self, key: &str, ttl: std::time::Duration) -> Result<String, BlobError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
            .map_err(|e| BlobError::request("presign", key, e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .presigned(config)
            .await
            .map_err(|e| BlobError::request("presign", key, e))?;
        Ok(request.uri().to_owned())
    }

    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| BlobError::request("delete_object", key, e))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn images_are_named_by_their_bytes() {
        assert_eq!(super::image_kind(b"\xff\xd8\xff\xe0JFIF"), ("jpg", "image/jpeg"));
        assert_eq!(super::image_kind(b"\x89PNG\r\n\x1a\n"), ("png", "image/png"));
        assert_eq!(super::image_kind(b"RIFF\0\0\0\0WEBPVP8 "), ("webp", "image/webp"));
    }
}
