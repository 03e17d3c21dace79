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

use aws_sdk_s3::Client;

use crate::aws::retry::{describe, is_transient};
use crate::classify::ClassifyOptions;
use crate::ingest::{FoldedObject, IngestOutcome, check_marker, fold_object, store_folded};
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
    let failure = |reason: String, transient: bool| {
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
    };
    let too_large = |size: u64| ObjectError::TooLarge {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size,
        limit: max_compressed_bytes,
    };
    let output = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(output) => output,
        Err(error) => {
            if error.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                return Err(ObjectError::Gone {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                });
            }
            return Err(failure(describe(&error), is_transient(&error)));
        }
    };
    let declared = output.content_length().and_then(|n| u64::try_from(n).ok());
    if let Some(size) = declared
        && size > max_compressed_bytes
    {
        // Dropping the body closes the connection without reading it.
        return Err(too_large(size));
    }
    let mut body = output.body;
    let capacity = declared.unwrap_or(0).min(max_compressed_bytes);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => {
                if (bytes.len() + chunk.len()) as u64 > max_compressed_bytes {
                    return Err(too_large((bytes.len() + chunk.len()) as u64));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(error) => {
                return Err(failure(
                    format!("the body broke off after {} bytes: {error}", bytes.len()),
                    true,
                ));
            }
        }
    }
    Ok(bytes)
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
}

impl ObjectIngest<'_> {
    /// The pipeline for one object (key already URL-decoded): classify its key, check its marker,
    /// download it, fold it (on the blocking pool), store the fold and mark the file.
    pub async fn ingest(&self, bucket: &str, key: &str) -> Result<IngestOutcome, IngestError> {
        if let KeyKind::Skip(why) = classify_key(key) {
            return Ok(IngestOutcome::NotALog {
                reason: why.to_owned(),
            });
        }
        let file = FileId::new(bucket, key);
        if let Some(done) = check_marker(&file, self.marks).await? {
            return Ok(done);
        }
        let folded = match get_object_bytes(self.s3, bucket, key, self.limits.max_compressed_bytes)
            .await
        {
            Ok(bytes) => self.fold(bucket, key, bytes).await?,
            Err(ObjectError::TooLarge { limit, .. }) => Err(ReadError::CompressedTooLarge(limit)),
            Err(error) => return Err(error.into()),
        };
        Ok(store_folded(&file, folded, self.marks, self.deltas).await?)
    }

    async fn fold(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<Result<FoldedObject, ReadError>, IngestError> {
        let (limits, options) = (*self.limits, self.options);
        tokio::task::spawn_blocking(move || fold_object(bytes.as_slice(), &limits, options))
            .await
            .map_err(|e| IngestError::Fold {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                reason: e.to_string(),
            })
    }
}
