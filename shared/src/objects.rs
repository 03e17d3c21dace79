//! Log objects, behind a port: where the ingest pipeline ([`crate::object_ingest`]) reads a
//! file from and where the backfill ([`crate::backfill`]) lists a trail's files. Implemented on
//! S3 by `aws::s3::S3Objects` and in memory by [`crate::memory::MemoryObjects`].
//!
//! Failures, as the callers treat them ([`ObjectError`]):
//! - the object is gone (`NoSuchKey`, `NoSuchVersion`): final, reported, nothing recorded;
//! - the object exceeds the compressed-size limit: final, the file is marked failed (the
//!   declared length is checked before any byte of the body is read, and again while reading);
//! - throttling, 5xx, timeouts, a connection lost mid-body: transient;
//! - anything else (access denied, no such bucket): not transient, but not the object's fault
//!   either, so callers let the notification be retried (and dead-lettered) rather than drop it.
//!   (S3 answers `AccessDenied`, not `NoSuchKey`, for a missing key when the caller may not list
//!   the bucket: without `s3:ListBucket`, a deleted object is retried until it is dead-lettered.)

use async_trait::async_trait;

use crate::ingest::ObjectVersion;

/// Why an object could not be read, or a folder listed.
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
    /// A failure that is not the object's: [`ObjectError::Transient`] or [`ObjectError::Other`].
    pub fn failed(bucket: &str, key: &str, reason: String, transient: bool) -> ObjectError {
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

    /// Worth retrying later (throttling, 5xx, network).
    pub fn is_transient(&self) -> bool {
        matches!(self, ObjectError::Transient { .. })
    }
}

/// An object whose headers have arrived and whose body has not been read yet. Dropping it
/// closes the connection without reading the body.
#[async_trait]
pub trait ObjectBody: Send {
    /// The length the store declared, if any.
    fn declared(&self) -> Option<u64>;
    /// The version read (its version id and ETag, as the store answered).
    fn version(&self) -> &ObjectVersion;
    /// Reads the body, refusing more bytes than the limit it was opened with.
    async fn collect(self: Box<Self>) -> Result<Vec<u8>, ObjectError>;
}

/// Reading and listing log objects.
#[async_trait]
pub trait LogObjects: Send + Sync {
    /// Opens `key` (its `version_id` when given, else the current version), refusing an object
    /// that declares more than `limit` bytes.
    async fn open(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        limit: u64,
    ) -> Result<Box<dyn ObjectBody>, ObjectError>;

    /// The "folders" directly under `dir` (each ending in `/`).
    async fn list_dirs(&self, bucket: &str, dir: &str) -> Result<Vec<String>, ObjectError>;

    /// Every key under `dir`.
    async fn list_keys(&self, bucket: &str, dir: &str) -> Result<Vec<String>, ObjectError>;
}

/// Downloads an object whole, refusing one over `limit` bytes.
pub async fn read_object(
    objects: &dyn LogObjects,
    bucket: &str,
    key: &str,
    limit: u64,
) -> Result<Vec<u8>, ObjectError> {
    objects
        .open(bucket, key, None, limit)
        .await?
        .collect()
        .await
}
