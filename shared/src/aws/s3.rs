//! Log objects from S3: a bounded download, the classification of its failures, and the ingest
//! pipeline ([`crate::ingest`]) for one S3 object, shared by the ingest Lambda and the backfill.
//!
//! Failures, as the callers treat them:
//! - the object is gone (`NoSuchKey`): final, reported, nothing recorded;
//! - the object exceeds the compressed-size limit: final, the file is marked failed (its
//!   `ContentLength` is checked before any byte of the body is read);
//! - throttling (`SlowDown`), 5xx, timeouts, a connection lost mid-body: transient;
//! - anything else (access denied, no such bucket): not transient, but not the object's fault
//!   either, so callers let the notification be retried (and dead-lettered) rather than drop it.
//!   (S3 answers `AccessDenied`, not `NoSuchKey`, for a missing key when the caller may not list
//!   the bucket: without `s3:ListBucket`, a deleted object is retried until it is dead-lettered.)

use aws_sdk_s3::Client;

use crate::aws::retry::{describe, is_transient};
use crate::classify::ClassifyOptions;
use crate::ingest::peak_fold_memory;
use crate::ingest::{
    FoldedObject, IngestOutcome, ObjectVersion, check_version, fold_bytes, store_version,
};
use crate::logfile::{ReadError, ReadLimits};
use crate::s3key::{KeyKind, classify_key};
use crate::store::{DeltaWrite, FileId, FileMarks, StoreError};

/// Why an object could not be downloaded.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("s3://{bucket}/{key} does not exist (deleted since it was notified?)")]
    Gone { bucket: String, key: String },
    #[error("s3://{bucket}/{key} is {size} bytes, over the limit of {limit} compressed bytes")]
    TooLarge {
        bucket: String,
        key: String,
        size: u64,
        limit: u64,
    },
    #[error("reading s3://{bucket}/{key} failed, will retry: {reason}")]
    Transient {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("reading s3://{bucket}/{key} failed: {reason}")]
    Other {
        bucket: String,
        key: String,
        reason: String,
    },
}

impl ObjectError {
    /// Worth retrying later (throttling, 5xx, network).
    pub fn is_transient(&self) -> bool {
        matches!(self, ObjectError::Transient { .. })
    }
}

/// Downloads an object whole, refusing one over `max_compressed_bytes`: by its `ContentLength`
/// before the body is read, and while reading (should the length be absent or wrong).
pub async fn get_object_bytes(
    client: &Client,
    bucket: &str,
    key: &str,
    max_compressed_bytes: u64,
) -> Result<Vec<u8>, ObjectError> {
    let object = open_object(client, bucket, key, None, max_compressed_bytes).await?;
    object.collect().await
}

/// An object whose headers have arrived and whose body has not been read yet.
pub struct OpenObject {
    bucket: String,
    key: String,
    /// The `ContentLength` S3 declared, if any.
    pub declared: Option<u64>,
    /// The version read (its version id and ETag, as S3 answered).
    pub version: ObjectVersion,
    limit: u64,
    body: aws_sdk_s3::primitives::ByteStream,
}

/// Sends the `GetObject` (of `version_id` when given, else of the current version) and checks the
/// declared length against the limit. Dropping the result closes the connection without reading
/// the body.
pub async fn open_object(
    client: &Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    max_compressed_bytes: u64,
) -> Result<OpenObject, ObjectError> {
    let request = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned));
    let output = match request.send().await {
        Ok(output) => output,
        Err(error) => {
            use aws_sdk_s3::error::ProvideErrorMetadata;
            if error.as_service_error().is_some_and(|e| e.is_no_such_key())
                || error.code() == Some("NoSuchVersion")
            {
                return Err(ObjectError::Gone {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                });
            }
            return Err(failure(bucket, key, describe(&error), is_transient(&error)));
        }
    };
    let declared = output.content_length().and_then(|n| u64::try_from(n).ok());
    if let Some(size) = declared
        && size > max_compressed_bytes
    {
        return Err(ObjectError::TooLarge {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size,
            limit: max_compressed_bytes,
        });
    }
    Ok(OpenObject {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        declared,
        version: ObjectVersion::new(output.version_id(), output.e_tag()),
        limit: max_compressed_bytes,
        body: output.body,
    })
}

impl OpenObject {
    /// Reads the body, enforcing the limit as it goes.
    pub async fn collect(mut self) -> Result<Vec<u8>, ObjectError> {
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
                    return Err(failure(&self.bucket, &self.key, reason, true));
                }
            }
        }
    }
}

fn failure(bucket: &str, key: &str, reason: String, transient: bool) -> ObjectError {
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    if transient {
        ObjectError::Transient {
            bucket,
            key,
            reason,
        }
    } else {
        ObjectError::Other {
            bucket,
            key,
            reason,
        }
    }
}

/// Bounds the memory that objects in flight hold: an object reserves what folding it may take
/// ([`peak_fold_memory`]: its compressed bytes, held once; its whole inflated text when it is
/// small enough to be inflated at once, else the streaming buffer; the fold's series, cells and
/// record IDs) from the budget, once its length is known and until its fold is done. An object
/// larger than the whole budget waits until it can have all of it, so it runs alone.
#[derive(Debug)]
pub struct MemoryBudget {
    semaphore: tokio::sync::Semaphore,
    /// In KiB, the semaphore's unit.
    capacity: u32,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> MemoryBudget {
        let capacity = u32::try_from((bytes >> 10).max(1)).unwrap_or(u32::MAX >> 4);
        MemoryBudget {
            semaphore: tokio::sync::Semaphore::new(capacity as usize),
            capacity,
        }
    }

    /// Waits until `bytes` (all of it, if more than the budget) can be held.
    async fn reserve(&self, bytes: u64) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let wanted = (bytes >> 10).max(1);
        let kib = u32::try_from(wanted).unwrap_or(u32::MAX).min(self.capacity);
        // The semaphore is never closed; a failure would only mean no bound.
        self.semaphore.acquire_many(kib).await.ok()
    }
}

/// Why one S3 object could not be ingested now.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("folding s3://{bucket}/{key} failed: {reason}")]
    Fold {
        bucket: String,
        key: String,
        reason: String,
    },
}

impl IngestError {
    /// Worth retrying later: throttling, 5xx, network.
    pub fn is_transient(&self) -> bool {
        match self {
            IngestError::Object(error) => error.is_transient(),
            IngestError::Store(error) => error.is_retryable(),
            IngestError::Fold { .. } => false,
        }
    }

    /// The notification should be dropped: retrying can never help (the object is gone).
    pub fn is_final(&self) -> bool {
        matches!(self, IngestError::Object(ObjectError::Gone { .. }))
    }
}

/// What the pipeline needs to ingest objects from S3.
#[derive(Clone, Copy)]
pub struct ObjectIngest<'a> {
    pub s3: &'a Client,
    pub limits: &'a ReadLimits,
    pub options: ClassifyOptions,
    pub marks: &'a dyn FileMarks,
    pub deltas: &'a dyn DeltaWrite,
    /// Bounds the memory of the objects in flight, when several run at once.
    pub budget: Option<&'a MemoryBudget>,
}

impl ObjectIngest<'_> {
    /// The pipeline for one object (key already URL-decoded): classify its key, check its
    /// marker, open it (the version the notification names, else the current one), check the
    /// marker against the version S3 answered with, download and fold it (on the blocking pool),
    /// store what it adds to its key ([`store_version`]).
    pub async fn ingest(
        &self,
        bucket: &str,
        key: &str,
        notified: &ObjectVersion,
    ) -> Result<IngestOutcome, IngestError> {
        if let KeyKind::Skip(why) = classify_key(key) {
            return Ok(IngestOutcome::NotALog {
                reason: why.to_owned(),
            });
        }
        let file = FileId::new(bucket, key);
        if let Some(done) = check_version(&file, notified, self.marks).await? {
            return Ok(done);
        }
        let limit = self.limits.max_compressed_bytes;
        let opened = open_object(self.s3, bucket, key, notified.version_id.as_deref(), limit).await;
        let mut version = notified.clone();
        if let Ok(object) = &opened {
            version = ObjectVersion {
                version_id: object.version.version_id.clone(),
                etag: object.version.etag.clone().or(version.etag),
            };
            if object.version != *notified
                && let Some(done) = check_version(&file, &version, self.marks).await?
            {
                return Ok(done);
            }
        }
        let folded = match opened {
            Ok(object) => {
                let reservation = match self.budget {
                    Some(budget) => {
                        let compressed = object.declared.unwrap_or(limit);
                        budget
                            .reserve(peak_fold_memory(compressed, self.limits))
                            .await
                    }
                    None => None,
                };
                let folded = match object.collect().await {
                    Ok(bytes) => self.fold(bucket, key, bytes).await?,
                    Err(ObjectError::TooLarge { limit, .. }) => {
                        Err(ReadError::CompressedTooLarge(limit))
                    }
                    Err(error) => return Err(error.into()),
                };
                drop(reservation);
                folded
            }
            Err(ObjectError::TooLarge { limit, .. }) => Err(ReadError::CompressedTooLarge(limit)),
            Err(error) => return Err(error.into()),
        };
        let now = chrono::Utc::now().timestamp();
        Ok(store_version(&file, &version, folded, self.marks, self.deltas, now).await?)
    }

    async fn fold(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<Result<FoldedObject, ReadError>, IngestError> {
        let (limits, options) = (*self.limits, self.options);
        tokio::task::spawn_blocking(move || fold_bytes(&bytes, &limits, options))
            .await
            .map_err(|e| IngestError::Fold {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_budget_holds_back_objects_that_do_not_fit() {
        let budget = MemoryBudget::new(1 << 20);
        let first = budget.reserve(600 << 10).await;
        let second = budget.reserve(400 << 10).await;
        assert!(first.is_some() && second.is_some());
        // 600 + 400 KiB reserved: another 200 KiB must wait.
        let waiting = tokio::time::timeout(Duration::from_millis(50), budget.reserve(200 << 10));
        assert!(waiting.await.is_err());
        drop(first);
        assert!(budget.reserve(100 << 10).await.is_some());
        // Larger than the whole budget: gets all of it, once it is free.
        drop(second);
        assert!(budget.reserve(10 << 20).await.is_some());
    }
}
