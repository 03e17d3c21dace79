//! The ingest pipeline: one log object → its fold → storage, exactly once.
//!
//! Used identically by the ingest Lambda, `trailsight backfill` and `trailsight replay`:
//! 1. A file already marked done (or failed) is a duplicate: nothing is read or written.
//! 2. The object is read and folded entirely in memory before any write, so a damaged file writes
//!    nothing; it is marked failed (with the reason) and never retried.
//! 3. The delta's parts are written with conditional puts: a part that exists is left alone. A
//!    retry after a crash writes only the missing parts; two concurrent deliveries write each part
//!    once between them.
//! 4. The file is marked done (a marker that expires; see the store docs).
//!
//! **Versions** (S3 objects, [`store_version`]). A file's identity is its key *and* its version:
//! the S3 version id when the bucket is versioned, else the ETag. A key's marker remembers the
//! versions (and ETags) counted under it, so a redelivery, or the same content uploaded again,
//! is a duplicate. A new version of a key that already counts something adds, per (series,
//! minute) cell, only what it holds beyond what the key's stored parts already count
//! ([`delta_minus`], clamped at zero): whatever the order in which versions arrive, what a key
//! counts is the per-cell maximum of its versions. A re-upload with more records (or the same
//! ones) therefore counts exactly its new content once; content the new version no longer holds
//! stays counted (deltas are append-only: the detector may already have judged those minutes).
//! Versions of one key are written one at a time: a version first claims the key's marker
//! (conditional on the versions committed so far), computes its difference against the key's
//! parts, writes it as parts named by (version, versions before it), and commits. A retry after
//! a crash repeats the same claim and writes the same parts; another version waits (a transient
//! error, retried) until the claim is committed or, after [`CLAIM_LEASE_SECONDS`], stale.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;

use crate::classify::ClassifyOptions;
use crate::fold::{Cell, Delta, DeltaBuilder, FoldStats, Folder};
use crate::logfile::{
    ReadError, ReadLimits, ReadStats, max_inflated, peak_inflate_memory, read_parsed,
    read_parsed_bytes,
};
use crate::minute::{MINUTES_PER_DAY, Minute};
use crate::series::SeriesKey;
use crate::store::{
    DeltaWrite, FileId, FileMark, FileMarks, KeyMark, StoreError, VERSIONS_REMEMBERED,
    VersionCommit, WriteReport,
};
use crate::topk::TopK;

/// A claim older than this is abandoned (its writer died): longer than Lambda's longest
/// timeout (15 minutes), so that the writer is gone.
pub const CLAIM_LEASE_SECONDS: i64 = 16 * 60;
/// Key markers outlive the last minute their parts hold by this much: longer than parts live
/// (35 days after their hour), so that a key's parts are never found without its marker.
pub const MARKER_TTL_DAYS: i64 = 36;
/// Attempts at claiming a key whose marker changes under us.
const CLAIM_ATTEMPTS: usize = 3;

/// The fold's memory, measured (`make bench`, `fold_memory` in BENCHMARKS.md) and rounded up:
/// per distinct series (its key, twice: the delta's and the lookup's), per (series, minute) cell
/// (the cell and its attribution strings) and per record (its `eventID`'s hash, for duplicates).
pub const FOLD_BYTES_PER_SERIES: u64 = 400;
pub const FOLD_BYTES_PER_CELL: u64 = 600;
pub const FOLD_BYTES_PER_RECORD: u64 = 24;
/// A CloudTrail record's usual size in a log file (JSON); the estimate below counts records by it.
pub const USUAL_RECORD_BYTES: u64 = 1_000;

/// What folding an object of `compressed` bytes held in memory may take, all included: the bytes
/// (the one copy), the inflated text or streaming buffer, and the fold (distinct series, at most
/// the cap; a cell and an ID per record of usual size, at most the record limit). The memory
/// budget of the ingest function reserves this much per object in flight.
pub fn peak_fold_memory(compressed: u64, limits: &ReadLimits) -> u64 {
    let records = limits
        .max_records
        .min(max_inflated(compressed, limits) / USUAL_RECORD_BYTES + 1);
    let series = (limits.max_series as u64).min(2 * records);
    compressed
        + peak_inflate_memory(compressed, limits)
        + series * FOLD_BYTES_PER_SERIES
        + records * (FOLD_BYTES_PER_CELL + FOLD_BYTES_PER_RECORD)
}

/// Which version of an object: what a notification or a `GetObject` says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The S3 version id (absent, or `null`, in an unversioned bucket).
    pub version_id: Option<String>,
    /// The ETag, without quotes.
    pub etag: Option<String>,
}

impl ObjectVersion {
    /// Normalised: ETag quotes removed, blank values and the version id `null` dropped.
    pub fn new(version_id: Option<&str>, etag: Option<&str>) -> ObjectVersion {
        let clean = |v: Option<&str>| {
            v.map(|v| v.trim().trim_matches('"').to_owned())
                .filter(|v| !v.is_empty())
        };
        ObjectVersion {
            version_id: clean(version_id).filter(|v| v != "null"),
            etag: clean(etag),
        }
    }

    /// The version's tag: its version id, else its ETag.
    pub fn tag(&self) -> Option<&str> {
        self.version_id.as_deref().or(self.etag.as_deref())
    }

    /// Counted already under `mark` (or the mark predates versions: any version is).
    pub fn is_known(&self, mark: &KeyMark) -> bool {
        mark.legacy
            || self
                .version_id
                .as_ref()
                .is_some_and(|v| mark.versions.contains(v))
            || self.etag.as_ref().is_some_and(|e| mark.etags.contains(e))
    }
}

/// What `new` holds beyond `counted`, per (series, minute) cell, clamped at zero: counts, the
/// AWS-service part (never above the count), and each attribution value's count.
pub fn delta_minus(new: &Delta, counted: &[Delta]) -> Delta {
    let mut before: HashMap<(&SeriesKey, Minute), Vec<&Cell>> = HashMap::new();
    for delta in counted {
        for (key, minute, cell) in delta.iter() {
            before.entry((key, minute)).or_default().push(cell);
        }
    }
    let mut out = DeltaBuilder::default();
    for (key, minute, cell) in new.iter() {
        let Some(old) = before.get(&(key, minute)) else {
            out.add(key, minute, cell);
            continue;
        };
        let old = Cell::merge_all(old);
        let count = cell.count.saturating_sub(old.count);
        if count == 0 {
            continue;
        }
        out.add(
            key,
            minute,
            &Cell {
                count,
                service: cell.service.saturating_sub(old.service).min(count),
                console: cell.console.saturating_sub(old.console).min(count),
                arns: topk_minus(&cell.arns, &old.arns),
                agents: topk_minus(&cell.agents, &old.agents),
                errors: topk_minus(&cell.errors, &old.errors),
                roles: topk_minus(&cell.roles, &old.roles),
                service_values: cell.service_values.as_ref().map(|new| {
                    let old = old.service_values.as_deref().cloned().unwrap_or_default();
                    Box::new([0, 1, 2].map(|i| topk_minus(&new[i], &old[i])))
                }),
            },
        );
    }
    out.finish()
}

fn topk_minus(new: &TopK, old: &TopK) -> TopK {
    let old: HashMap<&str, u64> = old.sorted().into_iter().collect();
    let mut out = TopK::default();
    for (value, count) in new.sorted() {
        let left = count.saturating_sub(old.get(value).copied().unwrap_or(0));
        if left > 0 {
            out.add(value, left);
        }
    }
    out
}

/// The UTC hours (their first minute) a delta's cells fall in.
pub fn delta_hours(delta: &Delta) -> Vec<Minute> {
    let hours: BTreeSet<Minute> = delta
        .cells
        .keys()
        .map(|(_, minute)| minute.div_euclid(60) * 60)
        .collect();
    hours.into_iter().collect()
}

/// The marker's lists after committing `version`: appended if new, the newest kept.
fn remember(list: &[String], value: Option<&str>) -> Vec<String> {
    let mut list = list.to_vec();
    if let Some(value) = value
        && !list.iter().any(|v| v == value)
    {
        list.push(value.to_owned());
    }
    let excess = list.len().saturating_sub(VERSIONS_REMEMBERED);
    list.drain(..excess);
    list
}

/// When a key's marker may expire: [`MARKER_TTL_DAYS`] after the later of now and the last
/// minute its parts hold, never earlier than it would already.
pub fn marker_expiry(now: i64, last_minute: Option<Minute>, current: Option<i64>) -> i64 {
    let last = last_minute.map(|m| m * 60).unwrap_or(now).max(now);
    (last + MARKER_TTL_DAYS * MINUTES_PER_DAY * 60).max(current.unwrap_or(0))
}

/// A folded object, ready to store.
#[derive(Debug, Clone, Default)]
pub struct FoldedObject {
    pub delta: Delta,
    pub fold: FoldStats,
    pub read: ReadStats,
}

/// Reads and folds one object. Pure: no storage involved.
pub fn fold_object<R: Read>(
    source: R,
    limits: &ReadLimits,
    options: ClassifyOptions,
) -> Result<FoldedObject, ReadError> {
    let mut folder = Folder::new(options).with_max_series(limits.max_series);
    let read = read_parsed(source, limits, |item| folder.add_item(item))?;
    let (delta, fold) = folder.finish();
    Ok(FoldedObject { delta, fold, read })
}

/// [`fold_object`] of an object already in memory, read in place (no second copy of it).
pub fn fold_bytes(
    bytes: &[u8],
    limits: &ReadLimits,
    options: ClassifyOptions,
) -> Result<FoldedObject, ReadError> {
    let mut folder = Folder::new(options).with_max_series(limits.max_series);
    let read = read_parsed_bytes(bytes, limits, |item| folder.add_item(item))?;
    let (delta, fold) = folder.finish();
    Ok(FoldedObject { delta, fold, read })
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// Folded and stored (possibly completing an earlier, interrupted attempt).
    Stored {
        records: u64,
        counted: u64,
        cells: usize,
        write: WriteReport,
        /// Events this version holds that earlier versions of its key already counted.
        recounted: u64,
        /// Records counted in the overflow series: the file had more distinct series than
        /// its cap ([`crate::fold::overflow_series`]).
        overflow: u64,
    },
    /// Already done or already failed earlier: nothing to do.
    Duplicate,
    /// Not a log file (by key or by content): ignored.
    NotALog { reason: String },
    /// Unreadable: recorded as failed, not retried.
    Failed { reason: String },
}

/// Stores a fold result (or records the failure) and marks the file.
pub async fn store_folded(
    file: &FileId,
    folded: Result<FoldedObject, ReadError>,
    marks: &dyn FileMarks,
    deltas: &dyn DeltaWrite,
) -> Result<IngestOutcome, StoreError> {
    match folded {
        Ok(object) => {
            let write = deltas.write_delta(file, &object.delta).await?;
            marks
                .set_file_mark(
                    file,
                    &FileMark::Done {
                        records: object.fold.records,
                    },
                )
                .await?;
            Ok(IngestOutcome::Stored {
                records: object.fold.records,
                counted: object.fold.counted,
                cells: object.delta.cells.len(),
                write,
                recounted: 0,
                overflow: object.fold.overflow,
            })
        }
        Err(error) if error.is_not_a_log() => Ok(IngestOutcome::NotALog {
            reason: error.to_string(),
        }),
        Err(ReadError::Io(error)) => Err(StoreError::Transient(format!(
            "reading the object failed: {error}"
        ))),
        Err(error) => {
            let reason = error.to_string();
            marks
                .set_file_mark(
                    file,
                    &FileMark::Failed {
                        reason: reason.clone(),
                    },
                )
                .await?;
            Ok(IngestOutcome::Failed { reason })
        }
    }
}

/// Checks a key's marker (eventually consistent: a stale miss only costs a download);
/// `Some(Duplicate)` when `version` is counted already.
pub async fn check_version(
    key: &FileId,
    version: &ObjectVersion,
    marks: &dyn FileMarks,
) -> Result<Option<IngestOutcome>, StoreError> {
    Ok(marks
        .key_mark(key, false)
        .await?
        .filter(|mark| version.is_known(mark))
        .map(|_| IngestOutcome::Duplicate))
}

/// Stores one version of an S3 object (see the module docs): claims its key, writes what it adds
/// to the key's parts, commits. `now` is epoch seconds.
pub async fn store_version(
    key: &FileId,
    version: &ObjectVersion,
    folded: Result<FoldedObject, ReadError>,
    marks: &dyn FileMarks,
    deltas: &dyn DeltaWrite,
    now: i64,
) -> Result<IngestOutcome, StoreError> {
    let status = match &folded {
        Ok(object) => FileMark::Done {
            records: object.fold.records,
        },
        Err(error) if error.is_not_a_log() => {
            return Ok(IngestOutcome::NotALog {
                reason: error.to_string(),
            });
        }
        Err(ReadError::Io(error)) => {
            return Err(StoreError::Transient(format!(
                "reading the object failed: {error}"
            )));
        }
        Err(error) => FileMark::Failed {
            reason: error.to_string(),
        },
    };
    let tag = version.tag().unwrap_or("unversioned").to_owned();
    let Some(mark) = claim(key, version, &tag, marks, now).await? else {
        return Ok(IngestOutcome::Duplicate);
    };
    let parts = key.version_parts(&tag, mark.seq);
    let (outcome, last_minute) = match folded {
        Ok(object) => {
            let counted = marks
                .key_parts(key, &delta_hours(&object.delta), &parts)
                .await?;
            let total = |d: &Delta| d.cells.values().map(|c| c.count).sum::<u64>();
            // The usual case, a key seen once: the fold itself, not a copy of it.
            let (added, recounted) = if counted.is_empty() {
                (object.delta, 0)
            } else {
                let added = delta_minus(&object.delta, &counted);
                let recounted = total(&object.delta) - total(&added);
                (added, recounted)
            };
            drop(counted);
            let write = deltas.write_delta(&parts, &added).await?;
            let outcome = IngestOutcome::Stored {
                records: object.fold.records,
                counted: object.fold.counted,
                cells: added.cells.len(),
                write,
                recounted,
                overflow: object.fold.overflow,
            };
            (outcome, object.fold.last_minute)
        }
        Err(error) => (
            IngestOutcome::Failed {
                reason: error.to_string(),
            },
            None,
        ),
    };
    let commit = VersionCommit {
        tag: tag.clone(),
        base: mark.seq,
        status,
        versions: remember(&mark.versions, Some(&tag)),
        etags: remember(&mark.etags, version.etag.as_deref()),
        expires_at: marker_expiry(now, last_minute, mark.expires_at),
    };
    if !marks.commit_version(key, &commit).await? {
        // The same version delivered twice at once: the other delivery committed it (each part
        // was written once between the two).
        if let Some(mark) = marks.key_mark(key, true).await?
            && version.is_known(&mark)
        {
            return Ok(outcome);
        }
        return Err(StoreError::Transient(format!(
            "version {tag} lost its claim on the key's marker (stale after {CLAIM_LEASE_SECONDS} s?)"
        )));
    }
    Ok(outcome)
}

/// Claims `key` for `tag`; `None` when the version is counted already.
async fn claim(
    key: &FileId,
    version: &ObjectVersion,
    tag: &str,
    marks: &dyn FileMarks,
    now: i64,
) -> Result<Option<KeyMark>, StoreError> {
    let stale_before = now - CLAIM_LEASE_SECONDS;
    for _ in 0..CLAIM_ATTEMPTS {
        let mark = marks.key_mark(key, true).await?.unwrap_or_default();
        if version.is_known(&mark) {
            return Ok(None);
        }
        if let Some((other, since)) = &mark.pending
            && other != tag
            && *since >= stale_before
        {
            return Err(StoreError::Transient(format!(
                "another version ({other}) of this key is being written; retry later"
            )));
        }
        if marks
            .claim_version(key, tag, mark.seq, now, stale_before)
            .await?
        {
            return Ok(Some(mark));
        }
    }
    Err(StoreError::Transient(
        "the key's marker kept changing while claiming it; retry later".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::Folder;
    use crate::memory::MemoryStore;
    use crate::store::DeltaRead;

    const NOW: i64 = 1_772_460_000; // 2026-03-02T14:00Z

    fn record(id: usize, minute: usize, name: &str) -> String {
        format!(
            r#"{{"eventID":"{id}","eventTime":"2026-03-02T14:{minute:02}:10Z","eventSource":"ec2.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false,"userIdentity":{{"arn":"arn:{id}"}}}}"#
        )
    }

    fn folded(records: &[String]) -> FoldedObject {
        let mut folder = Folder::new(ClassifyOptions::default());
        for r in records {
            folder.add_json(r.as_bytes());
        }
        let (delta, fold) = folder.finish();
        FoldedObject {
            delta,
            fold,
            read: ReadStats::default(),
        }
    }

    /// Every stored count, by (series, minute).
    async fn counts(store: &MemoryStore) -> BTreeMap<(String, Minute), u64> {
        let mut out = BTreeMap::new();
        for hour in store.hours() {
            for delta in store.read_hour(hour).await.unwrap() {
                for (key, minute, cell) in delta.iter() {
                    *out.entry((key.to_string(), minute)).or_default() += cell.count;
                }
            }
        }
        out
    }

    fn expected(object: &FoldedObject) -> BTreeMap<(String, Minute), u64> {
        object
            .delta
            .iter()
            .map(|(k, m, c)| ((k.to_string(), m), c.count))
            .collect()
    }

    async fn store(
        store: &MemoryStore,
        version: &ObjectVersion,
        object: &FoldedObject,
    ) -> Result<IngestOutcome, StoreError> {
        let key = FileId::new("bucket", "key");
        store_version(&key, version, Ok(object.clone()), store, store, NOW).await
    }

    fn v(id: Option<&str>, etag: &str) -> ObjectVersion {
        ObjectVersion::new(id, Some(etag))
    }

    use std::collections::BTreeMap;

    #[test]
    fn versions_are_normalised() {
        let version = ObjectVersion::new(Some("null"), Some("\"abc\""));
        assert_eq!(version.version_id, None);
        assert_eq!(version.tag(), Some("abc"));
        assert_eq!(ObjectVersion::new(Some(" "), None).tag(), None);
        let mark = KeyMark {
            versions: vec!["v1".into()],
            etags: vec!["abc".into()],
            seq: 1,
            ..KeyMark::default()
        };
        assert!(v(Some("v1"), "zzz").is_known(&mark));
        assert!(v(Some("v9"), "abc").is_known(&mark), "same content");
        assert!(!v(Some("v9"), "zzz").is_known(&mark));
        let legacy = KeyMark {
            legacy: true,
            ..KeyMark::default()
        };
        assert!(ObjectVersion::default().is_known(&legacy));
    }

    #[test]
    fn the_difference_is_per_cell_and_clamped() {
        let old = folded(&[record(1, 1, "A"), record(2, 1, "A"), record(3, 2, "A")]);
        let new = folded(&[
            record(1, 1, "A"),
            record(4, 2, "A"),
            record(5, 2, "A"),
            record(6, 3, "B"),
        ]);
        let added = delta_minus(&new.delta, std::slice::from_ref(&old.delta));
        let got: Vec<(String, Minute, u64)> = added
            .iter()
            .map(|(k, m, c)| (k.event_name.clone(), m, c.count))
            .collect();
        let minute = |m: i64| crate::minute::parse_minute("2026-03-02T14:00:00Z").unwrap() + m;
        // Minute 1: 1 < 2 counted (nothing); minute 2: 2 - 1; minute 3: new series.
        assert_eq!(
            got,
            vec![("A".into(), minute(2), 1), ("B".into(), minute(3), 1)]
        );
        let cell = added.iter().next().unwrap().2;
        // arn:4 and arn:5 are new (one count each over nothing), arn:3 is not in the new file.
        assert_eq!(cell.arns.sorted(), vec![("arn:4", 1), ("arn:5", 1)]);
        assert!(delta_minus(&old.delta, std::slice::from_ref(&old.delta)).is_empty());
        assert_eq!(delta_minus(&old.delta, &[]), old.delta);
    }

    #[test]
    fn the_fold_budget_counts_the_bytes_once_and_the_fold() {
        let limits = ReadLimits::default();
        let small = peak_fold_memory(100 << 10, &limits);
        let read = (100 << 10) + peak_inflate_memory(100 << 10, &limits);
        // 100 KiB may inflate 100-fold: 10,241 records of usual size, series capped at 10,000.
        let records = 100 * (100 << 10) / USUAL_RECORD_BYTES + 1;
        assert_eq!(records, 10_241);
        assert_eq!(
            small,
            read + 10_000 * FOLD_BYTES_PER_SERIES
                + records * (FOLD_BYTES_PER_CELL + FOLD_BYTES_PER_RECORD)
        );
        let capped = ReadLimits {
            max_series: 10,
            max_records: 100,
            ..limits
        };
        assert_eq!(
            peak_fold_memory(100 << 10, &capped),
            read + 10 * FOLD_BYTES_PER_SERIES + 100 * (FOLD_BYTES_PER_CELL + FOLD_BYTES_PER_RECORD)
        );
        assert!(peak_fold_memory(48 << 20, &limits) > 48 << 20);
    }

    #[test]
    fn markers_outlive_parts() {
        let hour = NOW / 60 + 600;
        let expiry = marker_expiry(NOW, Some(hour), None);
        assert_eq!(expiry, hour * 60 + MARKER_TTL_DAYS * 86_400);
        assert!(expiry > (hour + 35 * 1440) * 60);
        assert_eq!(marker_expiry(NOW, None, None), NOW + 36 * 86_400);
        assert_eq!(marker_expiry(NOW, None, Some(NOW * 2)), NOW * 2);
        let list: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let kept = remember(&list, Some("new"));
        assert_eq!(kept.len(), VERSIONS_REMEMBERED);
        assert_eq!(kept.last().map(String::as_str), Some("new"));
    }

    #[tokio::test]
    async fn a_reupload_counts_its_new_content_once() {
        let memory = MemoryStore::new();
        let first = folded(&[record(1, 1, "A"), record(2, 2, "A")]);
        let more = folded(&[
            record(1, 1, "A"),
            record(2, 2, "A"),
            record(3, 2, "A"),
            record(4, 5, "B"),
        ]);
        assert!(matches!(
            store(&memory, &v(Some("v1"), "e1"), &first).await.unwrap(),
            IngestOutcome::Stored { recounted: 0, .. }
        ));
        // The same version again, and the same content uploaded as a new version: duplicates.
        for again in [v(Some("v1"), "e1"), v(Some("v1b"), "e1")] {
            assert_eq!(
                store(&memory, &again, &first).await.unwrap(),
                IngestOutcome::Duplicate
            );
        }
        // New content under the key: only what it adds.
        match store(&memory, &v(Some("v2"), "e2"), &more).await.unwrap() {
            IngestOutcome::Stored {
                recounted, cells, ..
            } => assert_eq!((recounted, cells), (2, 2)),
            other => panic!("{other:?}"),
        }
        assert_eq!(counts(&memory).await, expected(&more));
        // An older version notified late: counted already, whether remembered or not.
        assert_eq!(
            store(&memory, &v(Some("v1"), "e1"), &first).await.unwrap(),
            IngestOutcome::Duplicate
        );
        match store(&memory, &v(Some("v1-copy"), "e1-multipart"), &first)
            .await
            .unwrap()
        {
            IngestOutcome::Stored {
                recounted, cells, ..
            } => assert_eq!((recounted, cells), (2, 0)),
            other => panic!("{other:?}"),
        }
        assert_eq!(counts(&memory).await, expected(&more));
        let mark = memory
            .key_mark(&FileId::new("bucket", "key"), true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(mark.seq, 3);
        assert_eq!(mark.versions, ["v1", "v2", "v1-copy"]);
        assert_eq!(mark.pending, None);
    }

    #[tokio::test]
    async fn versions_wait_for_a_claim_and_take_over_a_stale_one() {
        let memory = MemoryStore::new();
        let key = FileId::new("bucket", "key");
        let object = folded(&[record(1, 1, "A")]);
        // A writer of v1 claimed the key and died.
        assert!(
            memory
                .claim_version(&key, "v1", 0, NOW, NOW - CLAIM_LEASE_SECONDS)
                .await
                .unwrap()
        );
        let busy = store(&memory, &v(Some("v2"), "e2"), &object).await;
        assert!(matches!(busy, Err(StoreError::Transient(_))), "{busy:?}");
        // Its own retry continues the claim.
        assert!(matches!(
            store(&memory, &v(Some("v1"), "e1"), &object).await.unwrap(),
            IngestOutcome::Stored { .. }
        ));
        // A claim left for longer than the lease is taken over.
        memory
            .claim_version(&key, "v3", 1, NOW - CLAIM_LEASE_SECONDS - 1, 0)
            .await
            .unwrap();
        let bigger = folded(&[record(1, 1, "A"), record(2, 1, "A")]);
        assert!(matches!(
            store(&memory, &v(Some("v4"), "e4"), &bigger).await.unwrap(),
            IngestOutcome::Stored { recounted: 1, .. }
        ));
        assert_eq!(counts(&memory).await, expected(&bigger));
    }

    #[tokio::test]
    async fn an_unreadable_version_is_marked_failed() {
        let memory = MemoryStore::new();
        let key = FileId::new("bucket", "key");
        let outcome = store_version(
            &key,
            &v(None, "e1"),
            Err(ReadError::CompressedTooLarge(10)),
            &memory,
            &memory,
            NOW,
        )
        .await
        .unwrap();
        assert!(matches!(outcome, IngestOutcome::Failed { .. }));
        assert!(matches!(
            memory.file_mark(&key).await.unwrap(),
            Some(FileMark::Failed { .. })
        ));
        assert_eq!(
            check_version(&key, &v(None, "e1"), &memory).await.unwrap(),
            Some(IngestOutcome::Duplicate)
        );
    }
}
