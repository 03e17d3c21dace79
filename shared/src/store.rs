//! Storage, behind small capability traits. The library's pipelines take `&dyn` of exactly what
//! they use; `crate::memory` implements them in memory (the local mode), `crate::aws::dynamodb`
//! on one DynamoDB table.
//!
//! Layout, whatever the backend:
//! - **Deltas.** Each log file's fold ([`Delta`]), split by UTC hour of its minutes (and into
//!   parts when large), is written once per (file, hour, part): the write is conditional on the
//!   part not existing yet, so duplicates, concurrent deliveries and retries after a crash all
//!   leave exactly one copy. The detector reads an hour's deltas with one query, never a scan.
//! - **Key markers.** One per (bucket, key): the versions counted under the key, and the claim
//!   of the version being written. A duplicate notification costs one read, not a download; a
//!   new version of the key adds only what it holds beyond what the key already counts
//!   ([`crate::ingest`]). Markers live longer than the parts they describe.
//! - **Detector state.** One versioned document; a save succeeds only over the version it read.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;

use crate::detector::DetectorState;
use crate::fold::Delta;
use crate::minute::Minute;

/// A log file's identity: a hash of its bucket and key (hex), stable across deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub String);

impl FileId {
    pub fn new(bucket: &str, key: &str) -> Self {
        FileId(hex_digest(format!("{bucket}\n{key}").as_bytes(), 12))
    }

    /// The parts written for one version of this key, counted over `base` earlier versions:
    /// `<key id>.<version digest>.<base>`. Every attempt at the same (version, base) makes the
    /// same parts; all of a key's parts start with the key's id.
    pub fn version_parts(&self, tag: &str, base: u64) -> FileId {
        FileId(format!(
            "{}.{}.{base}",
            self.0,
            hex_digest(tag.as_bytes(), 6)
        ))
    }
}

fn hex_digest(data: &[u8], bytes: usize) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled or otherwise transient: retrying later may succeed.
    #[error("storage is throttling or unavailable: {0}")]
    Transient(String),
    /// Someone else saved the detector state since it was read.
    #[error("the detector state changed since it was read (another run is active)")]
    Conflict,
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("storage request failed: {0}")]
    Other(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}

/// What writing a file's delta did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Parts written by this call.
    pub parts_written: usize,
    /// Parts found already written (a duplicate or a retry).
    pub parts_existing: usize,
    /// Requests sent to storage.
    pub requests: usize,
}

/// Whether a file has been fully processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMark {
    /// All its deltas are written.
    Done { records: u64 },
    /// It cannot be read; it will not be retried.
    Failed { reason: String },
}

/// Versions of a key remembered on its marker, at most (the newest). Forgetting one costs a
/// download when it is notified again, never a double count (see [`crate::ingest`]).
pub const VERSIONS_REMEMBERED: usize = 32;

/// A key's marker: what its versions added, and the version being written now, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyMark {
    /// The last version's outcome; `None` while only a claim exists.
    pub status: Option<FileMark>,
    /// Versions whose parts are complete (0: none yet).
    pub seq: u64,
    /// Version tags counted (S3 version id, else ETag), newest last.
    pub versions: Vec<String>,
    /// ETags counted, newest last: the same content uploaded again is a duplicate.
    pub etags: Vec<String>,
    /// The version being written (its tag) and when it was claimed (epoch seconds).
    pub pending: Option<(String, i64)>,
    /// Written before markers knew versions (no `seq`): any version of the key is a duplicate.
    pub legacy: bool,
    /// When the marker expires (epoch seconds), if it does.
    pub expires_at: Option<i64>,
}

/// What committing a version writes on its key's marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCommit {
    pub tag: String,
    /// `seq` when the version was claimed; the commit makes it `base + 1`.
    pub base: u64,
    pub status: FileMark,
    /// The marker's new lists (bounded to [`VERSIONS_REMEMBERED`]).
    pub versions: Vec<String>,
    pub etags: Vec<String>,
    /// When the marker may expire (epoch seconds): after the key's parts.
    pub expires_at: i64,
}

#[async_trait]
pub trait FileMarks: Send + Sync {
    /// The last outcome recorded for `file` (a key's marker, or a local file's).
    async fn file_mark(&self, file: &FileId) -> Result<Option<FileMark>, StoreError>;
    /// Records `mark` for a file that has no versions (local files).
    async fn set_file_mark(&self, file: &FileId, mark: &FileMark) -> Result<(), StoreError>;
    /// The key's marker; `consistent` reads see every committed version.
    async fn key_mark(&self, key: &FileId, consistent: bool)
    -> Result<Option<KeyMark>, StoreError>;
    /// Claims the key for writing version `tag` over `base` committed versions: succeeds (true)
    /// when the marker's `seq` is still `base` and no other version's claim newer than
    /// `stale_before` (epoch seconds) holds it. A claim keeps other versions of the key from
    /// writing until it is committed or goes stale.
    async fn claim_version(
        &self,
        key: &FileId,
        tag: &str,
        base: u64,
        now: i64,
        stale_before: i64,
    ) -> Result<bool, StoreError>;
    /// Commits a claimed version (false: the claim was lost, nothing written).
    async fn commit_version(
        &self,
        key: &FileId,
        commit: &VersionCommit,
    ) -> Result<bool, StoreError>;
    /// Every stored part of `key` (any version) holding minutes of the `hours`, except the parts
    /// named `except` (the version being written).
    async fn key_parts(
        &self,
        key: &FileId,
        hours: &[Minute],
        except: &FileId,
    ) -> Result<Vec<Delta>, StoreError>;
}

#[async_trait]
pub trait DeltaWrite: Send + Sync {
    /// Writes every part of `delta` that is not already stored for `file`.
    async fn write_delta(&self, file: &FileId, delta: &Delta) -> Result<WriteReport, StoreError>;
}

/// A stored delta part, with its identity within its hour (`<file id>#<part>`).
#[derive(Debug, Clone, PartialEq)]
pub struct HourPart {
    pub id: String,
    /// Shared: the embedded store hands out its own parts without copying them (a replay reads
    /// an hour's parts at every run).
    pub delta: Arc<Delta>,
}

/// How far a reader has read a store's arrival log: part of the detector's state.
pub use crate::detector::ArrivalCursor;

/// Hour partitions that received parts since a cursor, and the cursor after them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arrivals {
    pub hours: BTreeSet<Minute>,
    pub cursor: ArrivalCursor,
}

#[async_trait]
pub trait DeltaRead: Send + Sync {
    /// Every stored delta part holding minutes of the hour that starts at `hour`, with its id.
    async fn read_hour_parts(&self, hour: Minute) -> Result<Vec<HourPart>, StoreError>;

    /// Every stored delta part holding minutes of the hour that starts at `hour`.
    async fn read_hour(&self, hour: Minute) -> Result<Vec<Delta>, StoreError> {
        Ok(self
            .read_hour_parts(hour)
            .await?
            .into_iter()
            .map(|p| Arc::unwrap_or_clone(p.delta))
            .collect())
    }

    /// Hour partitions that received parts since `cursor` and may hold minutes the detector has
    /// already judged (late data); `now` is the evaluation time. Stores may name more hours than
    /// needed (the detector tells late parts apart itself), never fewer.
    async fn arrivals(&self, cursor: &ArrivalCursor, now: Minute) -> Result<Arrivals, StoreError>;
}

/// The detector state and its version (0 when none was ever saved).
pub struct VersionedState {
    pub state: DetectorState,
    pub version: u64,
}

#[async_trait]
pub trait StateStore: Send + Sync {
    async fn load_state(&self) -> Result<VersionedState, StoreError>;
    /// Saves `state` if the stored version is still `expected`; returns the new version.
    async fn save_state(&self, state: &DetectorState, expected: u64) -> Result<u64, StoreError>;
    /// [`StateStore::save_state`] for a state the caller is done with: stores that keep the
    /// state itself (the memory store) take it without copying it.
    async fn save_state_owned(
        &self,
        state: DetectorState,
        expected: u64,
    ) -> Result<u64, StoreError> {
        self.save_state(&state, expected).await
    }
    /// Hands back a loaded state that did not change (nothing to save). Stores that copy the
    /// state on load need do nothing; the memory store, which lends it out, takes it back.
    async fn release_state(&self, _state: DetectorState, _version: u64) {}
}

/// Cells per stored part. The storage layout is shared by both stores: a file's delta is stored
/// in parts, by UTC hour, then by size (the DynamoDB store's items stay under 400 KB).
pub const CELLS_PER_PART: usize = 500;

/// Splits a file's delta into its stored parts: by hour, then by size.
pub fn delta_parts(delta: &Delta) -> Vec<(Minute, usize, Delta)> {
    let mut parts = Vec::new();
    for (hour, hour_delta) in delta.split_by_hour() {
        for (i, part) in hour_delta
            .split_by_cells(CELLS_PER_PART)
            .into_iter()
            .enumerate()
        {
            parts.push((hour, i, part));
        }
    }
    parts
}
