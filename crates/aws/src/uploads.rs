//! [`ekyc_http::uploads::UploadStore`] on S3: presigned PUTs that sign the content type and length
//! (S3 refuses any other size or type, and the URL after it expires), result documents read back
//! with a bound, and the existence check of an upload.
//!
//! Permissions it needs: `s3:PutObject` on the uploads prefix (a presigned URL carries the rights of
//! whoever signed it), `s3:GetObject` on the results prefix and `s3:ListBucket` on the bucket (the
//! existence check lists the one key, and without ListBucket S3 answers a missing key 403, not 404).
//! It never reads an uploaded image.

use crate::{describe, http_status};
use aws_sdk_s3::presigning::PresigningConfig;
use ekyc_http::uploads::{PresignedUpload, StoreError, StoreFuture, UploadStore};
use std::time::Duration;

/// Uploads and results in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Uploads {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Uploads {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3Uploads {
        S3Uploads {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl UploadStore for S3Uploads {
    fn presign_put<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        content_length: u64,
        expires: Duration,
    ) -> StoreFuture<'a, PresignedUpload> {
        Box::pin(async move {
            let config = PresigningConfig::expires_in(expires)
                .map_err(|e| StoreError::with_source("presigning configuration", e))?;
            let length = i64::try_from(content_length)
                .map_err(|_| StoreError::new("content length out of range"))?;
            let req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .content_length(length)
                .presigned(config)
                .await
                .map_err(|e| {
                    StoreError::with_source(
                        format!("presigning a PUT of s3://{}/{key}", self.bucket),
                        e,
                    )
                })?;
            let headers = req
                .headers()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect();
            Ok(PresignedUpload {
                method: req.method().to_string(),
                url: req.uri().to_string(),
                headers,
            })
        })
    }

    fn object_exists<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            // A listing of the key itself (it sorts before every longer key with that prefix):
            // needs only s3:ListBucket, not read access to the uploaded images.
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(key)
                .max_keys(1)
                .send()
                .await
                .map_err(|e| {
                    StoreError::new(format!(
                        "listing s3://{}/{key}: {}",
                        self.bucket,
                        describe(&e)
                    ))
                })?;
            Ok(out.contents().iter().any(|o| o.key() == Some(key)))
        })
    }

    fn get_object<'a>(&'a self, key: &'a str, max_bytes: u64) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            Ok(get_bounded(&self.client, &self.bucket, key, max_bytes)
                .await?
                .map(|(data, _)| data))
        })
    }
}

/// The object at `key` and its ETag (`None` when there is none); an error when it is larger than
/// `max_bytes` (by its announced length, or while it is read).
pub(crate) async fn get_bounded(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    max_bytes: u64,
) -> Result<Option<(Vec<u8>, Option<String>)>, StoreError> {
    let where_ = || format!("s3://{bucket}/{key}");
    let out = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => o,
        Err(e) if http_status(&e) == Some(404) => return Ok(None),
        Err(e) => {
            return Err(StoreError::new(format!(
                "reading {}: {}",
                where_(),
                describe(&e)
            )))
        }
    };
    let too_big = || StoreError::new(format!("{} is larger than {max_bytes} bytes", where_()));
    if out
        .content_length()
        .is_some_and(|n| u64::try_from(n).map_or(true, |n| n > max_bytes))
    {
        return Err(too_big());
    }
    let etag = out.e_tag().map(str::to_string);
    let mut body = out.body;
    let mut data = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| StoreError::with_source(format!("reading {}", where_()), e))?;
        if (data.len() + chunk.len()) as u64 > max_bytes {
            return Err(too_big());
        }
        data.extend_from_slice(&chunk);
    }
    Ok(Some((data, etag)))
}
