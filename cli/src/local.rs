//! Log files on disk: discovery, folding (in parallel) and delivery order.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use trailsight::classify::ClassifyOptions;
use trailsight::ingest::{FoldedObject, fold_object};
use trailsight::logfile::{ReadError, ReadLimits};
use trailsight::minute::Minute;
use trailsight::s3key::delivery_minute;

/// Path fragments of CloudTrail objects that are not log files.
const SIBLING_FOLDERS: [&str; 4] = [
    "CloudTrail-Digest",
    "CloudTrail-Insight",
    "CloudTrail-NetworkActivity",
    "CloudTrail-Aggregated",
];

/// One file's fate.
pub enum FileResult {
    Folded(FoldedObject),
    /// Not a log file (digest, Insight output, a LICENSE...): ignored.
    NotALog(#[allow(dead_code)] String),
    /// Damaged: reported, skipped, and the exit status says so.
    Damaged(ReadError),
}

pub struct LocalFile {
    pub path: PathBuf,
    /// Delivery minute: from the CloudTrail file name, else the file's last event minute.
    pub delivered: Option<Minute>,
    pub result: FileResult,
}

/// Every regular file under `paths`, recursively, sorted by path.
pub fn discover(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        walk(path, &mut files)?;
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            walk(&entry?.path(), out)?;
        }
    } else if meta.is_file() {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Folds every file (two threads; the machine's cores), with a progress bar on a terminal.
pub fn fold_files(
    files: Vec<PathBuf>,
    limits: &ReadLimits,
    options: ClassifyOptions,
) -> Vec<LocalFile> {
    let progress = if files.len() >= 200 {
        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} reading {pos}/{len} files {wide_bar} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<LocalFile>>> =
        Mutex::new((0..files.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let file = fold_file(path, limits, options);
                    if let Ok(mut results) = results.lock() {
                        results[i] = Some(file);
                    }
                    progress.inc(1);
                }
            });
        }
    });
    progress.finish_and_clear();
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

fn fold_file(path: &Path, limits: &ReadLimits, options: ClassifyOptions) -> LocalFile {
    let text = path.to_string_lossy();
    let named = delivery_minute(&text);
    if let Some(folder) = SIBLING_FOLDERS.iter().find(|f| text.contains(*f)) {
        return LocalFile {
            path: path.to_path_buf(),
            delivered: named,
            result: FileResult::NotALog(format!("{folder} file")),
        };
    }
    let result = match File::open(path) {
        Ok(file) => match fold_object(BufReader::with_capacity(256 << 10, file), limits, options) {
            // Records that are not CloudTrail events at all; records with refused identifiers
            // (a crafted account or region) make a log file with unusable records instead.
            Ok(folded)
                if folded.fold.records > 0
                    && folded.fold.records == not_events(&folded.fold) + folded.fold.malformed =>
            {
                FileResult::NotALog("no CloudTrail events in it".into())
            }
            Ok(folded) => FileResult::Folded(folded),
            Err(e) if e.is_not_a_log() => FileResult::NotALog(e.to_string()),
            Err(e) => FileResult::Damaged(e),
        },
        Err(e) => FileResult::Damaged(ReadError::Io(e)),
    };
    let delivered = named.or(match &result {
        FileResult::Folded(folded) => folded.fold.last_minute,
        _ => None,
    });
    LocalFile {
        path: path.to_path_buf(),
        delivered,
        result,
    }
}

/// Records that are no CloudTrail events: fields missing or an unreadable time.
fn not_events(fold: &trailsight::fold::FoldStats) -> u64 {
    ["missing_fields", "event_time"]
        .iter()
        .filter_map(|reason| fold.unusable_reasons.get(*reason))
        .sum()
}

/// Sorts files into delivery order (delivery minute, then path).
pub fn delivery_order(files: &mut [LocalFile]) {
    files.sort_by(|a, b| {
        a.delivered
            .cmp(&b.delivered)
            .then_with(|| a.path.cmp(&b.path))
    });
}
