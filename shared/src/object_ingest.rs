//! The ingest pipeline for one log object, shared by the ingest Lambda and the backfill: classify
//! its key, check its marker, open it (through [`LogObjects`]), check the marker against the
//! version the store answered with, download and fold it on the blocking pool within a memory
//! budget, store what it adds to its key ([`store_version`]).

use crate::classify::ClassifyOptions;
use crate::ingest::peak_fold_memory;
use crate::ingest::{
    FoldedObject, IngestOutcome, ObjectVersion, check_version, fold_bytes, store_version,
};
use crate::logfile::{ReadError, ReadLimits};
use crate::objects::{LogObjects, ObjectError};
use crate::s3key::{KeyKind, classify_key};
use crate::store::{DeltaWrite, FileId, FileMarks, StoreError};

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

/// What the pipeline needs to ingest log objects.
#[derive(Clone, Copy)]
pub struct ObjectIngest<'a> {
    pub objects: &'a dyn LogObjects,
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
        let opened = self
            .objects
            .open(bucket, key, notified.version_id.as_deref(), limit)
            .await;
        let mut version = notified.clone();
        if let Ok(object) = &opened {
            version = ObjectVersion {
                version_id: object.version().version_id.clone(),
                etag: object.version().etag.clone().or(version.etag),
            };
            if object.version() != notified
                && let Some(done) = check_version(&file, &version, self.marks).await?
            {
                return Ok(done);
            }
        }
        let folded = match opened {
            Ok(object) => {
                let reservation = match self.budget {
                    Some(budget) => {
                        let compressed = object.declared().unwrap_or(limit);
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
