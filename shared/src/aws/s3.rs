//! Log objects on S3 ([`LogObjects`]): `GetObject` with the size limit checked on the declared
//! length before the body is read and again while it streams, and the `ListObjectsV2` listings
//! the backfill walks. The failures' meaning is in [`crate::objects`].

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::aws::retry::{describe, is_transient};
use crate::ingest::ObjectVersion;
use crate::objects::{LogObjects, ObjectBody, ObjectError};

/// [`LogObjects`] on S3.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
}

impl S3Objects {
    pub fn new(client: Client) -> S3Objects {
        S3Objects { client }
    }
}

/// An S3 object whose headers have arrived and whose body has not been read yet.
struct S3Body {
    bucket: String,
    key: String,
    declared: Option<u64>,
    version: ObjectVersion,
    limit: u64,
    body: aws_sdk_s3::primitives::ByteStream,
}

#[async_trait]
impl LogObjects for S3Objects {
    /// Sends the `GetObject` and checks the declared length against the limit.
    async fn open(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        limit: u64,
    ) -> Result<Box<dyn ObjectBody>, ObjectError> {
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned));
        let output = match request.send().await {
            Ok(output) => output,
            Err(error) => {
                if error.as_service_error().is_some_and(|e| e.is_no_such_key())
                    || error.code() == Some("NoSuchVersion")
                {
                    return Err(ObjectError::Gone {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    });
                }
                return Err(ObjectError::failed(
                    bucket,
                    key,
                    describe(&error),
                    is_transient(&error),
                ));
            }
        };
        let declared = output.content_length().and_then(|n| u64::try_from(n).ok());
        if let Some(size) = declared
            && size > limit
        {
            return Err(ObjectError::TooLarge {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                size,
                limit,
            });
        }
        Ok(Box::new(S3Body {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            declared,
            version: ObjectVersion::new(output.version_id(), output.e_tag()),
            limit,
            body: output.body,
        }))
    }

    async fn list_dirs(&self, bucket: &str, dir: &str) -> Result<Vec<String>, ObjectError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(dir)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut dirs = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| list_error(bucket, dir, &e))?;
            dirs.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
        }
        Ok(dirs)
    }

    async fn list_keys(&self, bucket: &str, dir: &str) -> Result<Vec<String>, ObjectError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(dir)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| list_error(bucket, dir, &e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        Ok(keys)
    }
}

#[async_trait]
impl ObjectBody for S3Body {
    fn declared(&self) -> Option<u64> {
        self.declared
    }

    fn version(&self) -> &ObjectVersion {
        &self.version
    }

    async fn collect(mut self: Box<Self>) -> Result<Vec<u8>, ObjectError> {
        let capacity = self.declared.unwrap_or(0).min(self.limit);
        let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        loop {
            match self.body.try_next().await {
                Ok(Some(chunk)) => {
                    let size = (bytes.len() + chunk.len()) as u64;
                    if size > self.limit {
                        return Err(ObjectError::TooLarge {
                            bucket: self.bucket,
                            key: self.key,
                            size,
                            limit: self.limit,
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(bytes),
                Err(error) => {
                    let reason = format!("the body broke off after {} bytes: {error}", bytes.len());
                    return Err(ObjectError::failed(&self.bucket, &self.key, reason, true));
                }
            }
        }
    }
}

fn list_error<E>(bucket: &str, dir: &str, error: &SdkError<E, HttpResponse>) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let reason = format!("listing failed: {}", describe(error));
    ObjectError::failed(bucket, dir, reason, is_transient(error))
}
