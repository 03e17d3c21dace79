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
use trailsight::s3key::{delivery_minute, sibling_of_logs};

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

/// What [`discover`] found: the files to read, and the entries it could not walk.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Regular files, sorted by path, each once.
    pub files: Vec<PathBuf>,
    /// Entries skipped, with the reason: a dangling symlink, a symlink loop, an unreadable folder.
    pub broken: Vec<(PathBuf, String)>,
}

/// Every regular file under `paths`, recursively, sorted by path.
///
/// Symlinks are followed, once each: every folder and file is identified by its canonical path,
/// so a symlinked folder (or a link back to an ancestor) adds nothing already seen, and a file
/// reached through two names is read once, under the first name found. A dangling symlink, a
/// loop or an unreadable entry is reported in [`Discovered::broken`] with its path and skipped;
/// it never stops the walk.
/// A path given that does not exist at all (not even as a link) is an error: most likely a typo.
pub fn discover(paths: &[PathBuf]) -> std::io::Result<Discovered> {
    let mut found = Discovered::default();
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        if let Err(e) = std::fs::symlink_metadata(path) {
            return Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ));
        }
        walk(path, &mut seen, &mut found);
    }
    found.files.sort();
    found.broken.sort();
    Ok(found)
}

fn walk(path: &Path, seen: &mut std::collections::HashSet<PathBuf>, found: &mut Discovered) {
    // canonicalize follows every link: it fails on a dangling link or a loop (ELOOP).
    let canonical = match std::fs::canonicalize(path) {
        Ok(canonical) => canonical,
        Err(e) => {
            let why = if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
                format!("broken symlink ({e})")
            } else {
                e.to_string()
            };
            found.broken.push((path.to_path_buf(), why));
            return;
        }
    };
    if !seen.insert(canonical.clone()) {
        return;
    }
    let meta = match std::fs::metadata(&canonical) {
        Ok(meta) => meta,
        Err(e) => {
            found.broken.push((path.to_path_buf(), e.to_string()));
            return;
        }
    };
    if meta.is_dir() {
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(e) => {
                found.broken.push((path.to_path_buf(), e.to_string()));
                return;
            }
        };
        let mut children: Vec<PathBuf> = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => children.push(entry.path()),
                Err(e) => found.broken.push((path.to_path_buf(), e.to_string())),
            }
        }
        // Sorted, so which of two names of one file is kept does not depend on the folder order.
        children.sort();
        for child in children {
            walk(&child, seen, found);
        }
    } else if meta.is_file() {
        found.files.push(path.to_path_buf());
    }
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
    if let Some(why) = sibling_of_logs(&text) {
        return LocalFile {
            path: path.to_path_buf(),
            delivered: named,
            result: FileResult::NotALog(why.to_owned()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_once_and_broken_ones_reported() {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("trailsight-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        std::fs::create_dir_all(data.join("sub")).expect("dirs");
        std::fs::write(data.join("a.json"), "{}").expect("file");
        std::fs::write(data.join("sub/b.json"), "{}").expect("file");
        symlink(&data, dir.join("alias")).expect("link to the folder");
        symlink(&data, data.join("sub/loop")).expect("link to an ancestor");
        symlink(dir.join("nowhere"), data.join("dangling")).expect("dangling link");
        symlink(data.join("self"), data.join("self")).expect("a link to itself");

        let found = discover(std::slice::from_ref(&dir)).expect("discover");
        let names: Vec<String> = found
            .files
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap_or(p).display().to_string())
            .collect();
        assert_eq!(names, vec!["alias/a.json", "alias/sub/b.json"]);
        let broken: Vec<&Path> = found.broken.iter().map(|(p, _)| p.as_path()).collect();
        assert_eq!(
            broken,
            vec![
                dir.join("alias/dangling").as_path(),
                dir.join("alias/self").as_path()
            ]
        );
        assert!(
            found.broken[0].1.contains("broken symlink"),
            "{:?}",
            found.broken
        );
        // The folder given twice, by two names: its files once.
        let twice = discover(&[data.clone(), dir.join("alias")]).expect("discover");
        assert_eq!(twice.files.len(), 2);
        assert!(discover(&[dir.join("missing")]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
