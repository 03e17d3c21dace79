//! What the benchmark examples share (included with `#[path]`; not an example itself).

use std::path::{Path, PathBuf};

/// Every `.json.gz` file under `dir`, recursively (unsorted).
pub fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.to_string_lossy().ends_with(".json.gz") {
            out.push(path);
        }
    }
}
