//! In-memory storage: the embedded store `trailsight replay` runs on. Not a mock: it keeps the
//! same exactly-once and versioning rules as the DynamoDB store. And log objects in memory
//! ([`MemoryObjects`]), for the pipelines' tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::detector::DetectorState;
use crate::fold::Delta;
use crate::ingest::ObjectVersion;
use crate::minute::Minute;
use crate::objects::{LogObjects, ObjectBody, ObjectError};
use crate::store::{
    ArrivalCursor, Arrivals, DeltaRead, DeltaWrite, FileId, FileMark, FileMarks, HourPart, KeyMark,
    StateStore, StoreError, VersionCommit, VersionedState, WriteReport, delta_parts,
};

/// One hour's delta parts, by (file, part number).
type HourParts = BTreeMap<(FileId, usize), Arc<Delta>>;

#[derive(Default)]
pub struct MemoryStore {
    /// hour → (file, part) → delta.
    deltas: Mutex<BTreeMap<Minute, HourParts>>,
    marks: Mutex<HashMap<FileId, FileMark>>,
    /// The hour of every part written, in write order (the arrival log).
    arrivals: Mutex<Vec<Minute>>,
    keys: Mutex<HashMap<FileId, KeyMark>>,
    state: Mutex<Option<(DetectorState, u64)>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, StoreError> {
        m.lock()
            .map_err(|_| StoreError::Other("memory store lock poisoned".into()))
    }

    /// (series, minute) cells stored, over every part.
    pub fn stored_cells(&self) -> usize {
        self.deltas
            .lock()
            .map(|d| {
                d.values()
                    .flat_map(|parts| parts.values())
                    .map(|delta| delta.cells.len())
                    .sum()
            })
            .unwrap_or_default()
    }

    /// Hours holding deltas.
    pub fn hours(&self) -> Vec<Minute> {
        self.deltas
            .lock()
            .map(|d| d.keys().copied().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl DeltaWrite for MemoryStore {
    async fn write_delta(&self, file: &FileId, delta: &Delta) -> Result<WriteReport, StoreError> {
        let mut report = WriteReport::default();
        let mut deltas = Self::lock(&self.deltas)?;
        for (hour, i, part) in delta_parts(delta) {
            report.requests += 1;
            let slot = deltas.entry(hour).or_default();
            let id = (file.clone(), i);
            match slot.entry(id) {
                std::collections::btree_map::Entry::Occupied(_) => report.parts_existing += 1,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(Arc::new(part));
                    report.parts_written += 1;
                    Self::lock(&self.arrivals)?.push(hour);
                }
            }
        }
        Ok(report)
    }
}

#[async_trait]
impl DeltaRead for MemoryStore {
    async fn read_hour_parts(&self, hour: Minute) -> Result<Vec<HourPart>, StoreError> {
        let deltas = Self::lock(&self.deltas)?;
        Ok(deltas
            .get(&hour)
            .map(|parts| {
                parts
                    .iter()
                    .map(|((file, i), delta)| HourPart {
                        id: format!("{file}#{i}"),
                        delta: Arc::clone(delta),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every hour written to since the cursor (the log is exact: nothing is missed).
    async fn arrivals(&self, cursor: &ArrivalCursor, _now: Minute) -> Result<Arrivals, StoreError> {
        let log = Self::lock(&self.arrivals)?;
        let from = usize::try_from(cursor.position).unwrap_or(0).min(log.len());
        Ok(Arrivals {
            hours: log[from..].iter().copied().collect(),
            cursor: ArrivalCursor {
                position: log.len() as i64,
                seen: Default::default(),
            },
        })
    }
}

#[async_trait]
impl FileMarks for MemoryStore {
    async fn file_mark(&self, file: &FileId) -> Result<Option<FileMark>, StoreError> {
        if let Some(mark) = Self::lock(&self.marks)?.get(file) {
            return Ok(Some(mark.clone()));
        }
        Ok(Self::lock(&self.keys)?
            .get(file)
            .and_then(|mark| mark.status.clone()))
    }

    async fn set_file_mark(&self, file: &FileId, mark: &FileMark) -> Result<(), StoreError> {
        Self::lock(&self.marks)?.insert(file.clone(), mark.clone());
        Ok(())
    }

    async fn key_mark(&self, key: &FileId, _: bool) -> Result<Option<KeyMark>, StoreError> {
        Ok(Self::lock(&self.keys)?.get(key).cloned())
    }

    async fn claim_version(
        &self,
        key: &FileId,
        tag: &str,
        base: u64,
        now: i64,
        stale_before: i64,
    ) -> Result<bool, StoreError> {
        let mut keys = Self::lock(&self.keys)?;
        let mark = keys.entry(key.clone()).or_default();
        let free = match &mark.pending {
            None => true,
            Some((other, since)) => other == tag || *since < stale_before,
        };
        if mark.legacy || mark.seq != base || !free {
            return Ok(false);
        }
        mark.pending = Some((tag.to_owned(), now));
        Ok(true)
    }

    async fn commit_version(
        &self,
        key: &FileId,
        commit: &VersionCommit,
    ) -> Result<bool, StoreError> {
        let mut keys = Self::lock(&self.keys)?;
        let Some(mark) = keys.get_mut(key) else {
            return Ok(false);
        };
        if mark.seq != commit.base
            || mark.pending.as_ref().map(|p| p.0.as_str()) != Some(&commit.tag)
        {
            return Ok(false);
        }
        *mark = KeyMark {
            status: Some(commit.status.clone()),
            seq: commit.base + 1,
            versions: commit.versions.clone(),
            etags: commit.etags.clone(),
            pending: None,
            legacy: false,
            expires_at: Some(commit.expires_at),
        };
        Ok(true)
    }

    async fn key_parts(
        &self,
        key: &FileId,
        hours: &[Minute],
        except: &FileId,
    ) -> Result<Vec<Delta>, StoreError> {
        let deltas = Self::lock(&self.deltas)?;
        Ok(hours
            .iter()
            .filter_map(|hour| deltas.get(hour))
            .flat_map(|parts| parts.iter())
            .filter(|((file, _), _)| file.0.starts_with(&key.0) && file != except)
            .map(|(_, delta)| Delta::clone(delta))
            .collect())
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    /// Hands the state out without copying it; `save_state` or `release_state` puts it back (the
    /// embedded mode has one detector, and the detect pipeline always does one or the other).
    async fn load_state(&self) -> Result<VersionedState, StoreError> {
        let mut slot = Self::lock(&self.state)?;
        Ok(match slot.take() {
            Some((state, version)) => {
                *slot = Some((DetectorState::default(), version));
                VersionedState { state, version }
            }
            None => VersionedState {
                state: DetectorState::default(),
                version: 0,
            },
        })
    }

    async fn release_state(&self, state: DetectorState, version: u64) {
        if let Ok(mut slot) = self.state.lock()
            && slot.as_ref().is_some_and(|(_, v)| *v == version)
        {
            *slot = Some((state, version));
        }
    }

    async fn save_state(&self, state: &DetectorState, expected: u64) -> Result<u64, StoreError> {
        let mut slot = Self::lock(&self.state)?;
        let current = slot.as_ref().map(|(_, v)| *v).unwrap_or(0);
        if current != expected {
            return Err(StoreError::Conflict);
        }
        *slot = Some((state.clone(), expected + 1));
        Ok(expected + 1)
    }

    async fn save_state_owned(
        &self,
        state: DetectorState,
        expected: u64,
    ) -> Result<u64, StoreError> {
        let mut slot = Self::lock(&self.state)?;
        let current = slot.as_ref().map(|(_, v)| *v).unwrap_or(0);
        if current != expected {
            return Err(StoreError::Conflict);
        }
        *slot = Some((state, expected + 1));
        Ok(expected + 1)
    }
}

/// Log objects in memory ([`LogObjects`]): bucket → key → (content, ETag). The backfill and the
/// object pipeline run on it in tests, with S3's listing rules (sorted keys, `/`-delimited
/// folders).
/// (bucket, key) → (content, ETag).
type ObjectMap = BTreeMap<(String, String), (Vec<u8>, String)>;

#[derive(Default)]
pub struct MemoryObjects {
    objects: Mutex<ObjectMap>,
}

impl MemoryObjects {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `content` under `key` (its ETag is a hash of the content, as S3's is for a simple
    /// upload).
    pub fn put(&self, bucket: &str, key: &str, content: Vec<u8>) {
        use sha2::Digest;
        let etag = format!("\"{:x}\"", sha2::Sha256::digest(&content));
        if let Ok(mut objects) = self.objects.lock() {
            objects.insert((bucket.to_owned(), key.to_owned()), (content, etag));
        }
    }

    fn under(&self, bucket: &str, dir: &str) -> Result<Vec<String>, ObjectError> {
        let objects = self.objects.lock().map_err(|_| {
            ObjectError::failed(bucket, dir, "memory objects lock poisoned".into(), false)
        })?;
        Ok(objects
            .keys()
            .filter(|(b, key)| b == bucket && key.starts_with(dir))
            .map(|(_, key)| key.clone())
            .collect())
    }
}

struct MemoryBody {
    content: Vec<u8>,
    version: ObjectVersion,
}

#[async_trait]
impl ObjectBody for MemoryBody {
    fn declared(&self) -> Option<u64> {
        Some(self.content.len() as u64)
    }

    fn version(&self) -> &ObjectVersion {
        &self.version
    }

    async fn collect(self: Box<Self>) -> Result<Vec<u8>, ObjectError> {
        Ok(self.content)
    }
}

#[async_trait]
impl LogObjects for MemoryObjects {
    async fn open(
        &self,
        bucket: &str,
        key: &str,
        _version_id: Option<&str>,
        limit: u64,
    ) -> Result<Box<dyn ObjectBody>, ObjectError> {
        let found = self
            .objects
            .lock()
            .map_err(|_| {
                ObjectError::failed(bucket, key, "memory objects lock poisoned".into(), false)
            })?
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned();
        let Some((content, etag)) = found else {
            return Err(ObjectError::Gone {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            });
        };
        if content.len() as u64 > limit {
            return Err(ObjectError::TooLarge {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                size: content.len() as u64,
                limit,
            });
        }
        Ok(Box::new(MemoryBody {
            content,
            version: ObjectVersion::new(None, Some(&etag)),
        }))
    }

    async fn list_dirs(&self, bucket: &str, dir: &str) -> Result<Vec<String>, ObjectError> {
        let dirs: std::collections::BTreeSet<String> = self
            .under(bucket, dir)?
            .into_iter()
            .filter_map(|key| {
                let rest = &key[dir.len()..];
                rest.find('/').map(|end| format!("{dir}{}", &rest[..=end]))
            })
            .collect();
        Ok(dirs.into_iter().collect())
    }

    async fn list_keys(&self, bucket: &str, dir: &str) -> Result<Vec<String>, ObjectError> {
        self.under(bucket, dir)
    }
}
