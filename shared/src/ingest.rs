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

use std::io::Read;

use crate::classify::ClassifyOptions;
use crate::fold::{Delta, FoldStats, Folder};
use crate::logfile::{ReadError, ReadLimits, ReadStats, read_parsed};
use crate::store::{DeltaWrite, FileId, FileMark, FileMarks, StoreError, WriteReport};

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
    let mut folder = Folder::new(options);
    let read = read_parsed(source, limits, |item| folder.add_item(item))?;
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
    },
    /// Already done or already failed earlier: nothing to do.
    Duplicate,
    /// Not a log file (by key or by content): ignored.
    NotALog { reason: String },
    /// Unreadable: recorded as failed, not retried.
    Failed { reason: String },
}

/// Checks the marker; `Some(outcome)` when the object needs no work.
pub async fn check_marker(
    file: &FileId,
    marks: &dyn FileMarks,
) -> Result<Option<IngestOutcome>, StoreError> {
    Ok(marks
        .file_mark(file)
        .await?
        .map(|_| IngestOutcome::Duplicate))
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

/// The whole pipeline for an object already in hand (local files, tests).
pub async fn ingest_object<R: Read>(
    file: &FileId,
    source: R,
    limits: &ReadLimits,
    options: ClassifyOptions,
    marks: &dyn FileMarks,
    deltas: &dyn DeltaWrite,
) -> Result<IngestOutcome, StoreError> {
    if let Some(done) = check_marker(file, marks).await? {
        return Ok(done);
    }
    store_folded(file, fold_object(source, limits, options), marks, deltas).await
}
