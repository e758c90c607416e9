//! [`ekyc_http::sessions::SessionBackend`] on S3: a session is one JSON object, created with
//! `If-None-Match: *` and replaced with `If-Match` on the ETag it was read with, so a session is
//! consumed once even when two Lambda instances receive its verify call at the same moment (S3
//! answers the second conditional write 412). Failure markers are empty objects, listed per client.
//!
//! Objects are encrypted at rest by the bucket's default encryption (template.yaml: SSE-S3).
//!
//! Permissions it needs: `s3:GetObject` and `s3:PutObject` on the sessions prefix, and
//! `s3:ListBucket` on the bucket (the failure count lists the client's markers). A lifecycle rule
//! on the prefix removes the objects after the retention period.

use crate::uploads::get_bounded;
use crate::{describe, http_status};
use aws_sdk_s3::primitives::ByteStream;
use ekyc_http::sessions::SessionBackend;
use ekyc_http::uploads::{StoreError, StoreFuture};

/// Sessions in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Sessions {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Sessions {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3Sessions {
        S3Sessions {
            client,
            bucket: bucket.into(),
        }
    }

    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
    }
}

impl SessionBackend for S3Sessions {
    fn create<'a>(&'a self, key: &'a str, body: Vec<u8>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            match self.put(key, body).if_none_match("*").send().await {
                Ok(_) => Ok(true),
                Err(e) if matches!(http_status(&e), Some(412 | 409)) => Ok(false),
                Err(e) => Err(StoreError::new(format!(
                    "creating s3://{}/{key}: {}",
                    self.bucket,
                    describe(&e)
                ))),
            }
        })
    }

    fn read<'a>(
        &'a self,
        key: &'a str,
        max_bytes: u64,
    ) -> StoreFuture<'a, Option<(Vec<u8>, String)>> {
        Box::pin(async move {
            match get_bounded(&self.client, &self.bucket, key, max_bytes).await? {
                None => Ok(None),
                Some((data, Some(etag))) => Ok(Some((data, etag))),
                Some((_, None)) => Err(StoreError::new(format!(
                    "s3://{}/{key} has no ETag",
                    self.bucket
                ))),
            }
        })
    }

    fn replace<'a>(&'a self, key: &'a str, body: Vec<u8>, etag: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            match self.put(key, body).if_match(etag).send().await {
                Ok(_) => Ok(true),
                Err(e) if matches!(http_status(&e), Some(412 | 409 | 404)) => Ok(false),
                Err(e) => Err(StoreError::new(format!(
                    "replacing s3://{}/{key}: {}",
                    self.bucket,
                    describe(&e)
                ))),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str, max: usize) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .max_keys(i32::try_from(max).unwrap_or(1000).min(1000))
                .send()
                .await
                .map_err(|e| {
                    StoreError::new(format!(
                        "listing s3://{}/{prefix}: {}",
                        self.bucket,
                        describe(&e)
                    ))
                })?;
            Ok(out
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string))
                .collect())
        })
    }
}
