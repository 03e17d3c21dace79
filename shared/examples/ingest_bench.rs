//! Ingest throughput, single-threaded, against the floor measured in the same run.
//!
//! `cargo run --release -p trailsight-core --example ingest_bench -- DIR [MAX_FILES]`
//! Loads the `.json.gz` files under DIR into memory, then times, on one core:
//! `gzip -dc` (the floor users know), our inflate alone, inflate + parse (records parsed in place),
//! and the full fold (classify, dedupe, count, attribute); also the boundary scanner alone (the
//! path for records the parser rejects). Prints one JSON object.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use flate2::read::MultiGzDecoder;
use trailsight::classify::ClassifyOptions;
use trailsight::ingest::fold_object;
use trailsight::logfile::{Item, ReadLimits, read_parsed, read_records};

#[path = "common/mod.rs"]
mod common;
use common::files_under;

fn seconds<F: FnMut()>(mut f: F) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("out/bench"));
    let max: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    let mut paths = Vec::new();
    files_under(&dir, &mut paths);
    paths.sort();
    paths.truncate(max);
    let files: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let compressed: usize = files.iter().map(Vec::len).sum();

    // The floor: gzip -dc over the same bytes (concatenated members decompress as one stream).
    let joined = std::env::temp_dir().join(format!("trailsight-bench-{}.gz", std::process::id()));
    std::fs::File::create(&joined)?.write_all(&files.concat())?;
    let gzip_dc = seconds(|| {
        let _ = Command::new("gzip")
            .arg("-dc")
            .arg(&joined)
            .stdout(Stdio::null())
            .status();
    });
    let _ = std::fs::remove_file(&joined);

    let mut sink = vec![0u8; 256 << 10];
    let mut inflated = 0u64;
    let inflate = seconds(|| {
        for file in &files {
            let mut d = MultiGzDecoder::new(&file[..]);
            while let Ok(n) = d.read(&mut sink) {
                if n == 0 {
                    break;
                }
                inflated += n as u64;
            }
        }
    });
    // The decompressor the reader uses for files like these (single-member gzip under
    // WHOLE_INFLATE_MAX): libdeflate, whole file into a buffer of the trailer's size.
    let mut whole = Vec::new();
    let mut decompressor = libdeflater::Decompressor::new();
    let mut inflated_whole = 0u64;
    let inflate_libdeflate = seconds(|| {
        for file in &files {
            let Some(trailer) = file.len().checked_sub(4).map(|at| &file[at..]) else {
                continue;
            };
            let size = u32::from_le_bytes(trailer.try_into().unwrap_or_default()) as usize;
            whole.resize(size, 0);
            if let Ok(n) = decompressor.gzip_decompress(file, &mut whole) {
                inflated_whole += n as u64;
            }
        }
    });
    let limits = ReadLimits::default();
    let mut records = 0u64;
    let scan = seconds(|| {
        for file in &files {
            if let Ok(stats) = read_records(&file[..], &limits, |_| {}) {
                records += stats.records;
            }
        }
    });
    let mut parsed = 0u64;
    let parse = seconds(|| {
        for file in &files {
            let _ = read_parsed(&file[..], &limits, |item| {
                if matches!(item, Item::Record(_)) {
                    parsed += 1;
                }
            });
        }
    });
    let mut cells = 0usize;
    let fold = seconds(|| {
        for file in &files {
            if let Ok(folded) = fold_object(&file[..], &limits, ClassifyOptions::default()) {
                cells += folded.delta.cells.len();
            }
        }
    });
    let mb = inflated as f64 / 1e6;
    let report = serde_json::json!({
        "files": files.len(),
        "compressed_mb": compressed as f64 / 1e6,
        "uncompressed_mb": mb,
        "records": records,
        "cells": cells,
        "inflated_whole_mb": inflated_whole as f64 / 1e6,
        "seconds": { "gzip_dc": gzip_dc, "inflate_flate2_streaming": inflate, "inflate": inflate_libdeflate, "inflate_parse": parse, "fold": fold, "inflate_boundary_scan_only": scan },
        "mb_per_s": { "gzip_dc": mb / gzip_dc, "inflate_flate2_streaming": mb / inflate, "inflate": mb / inflate_libdeflate, "fold": mb / fold },
        "events_per_s_fold": records as f64 / fold,
        "fold_vs_gzip_dc": gzip_dc / fold,
        "where_the_time_goes": {
            "inflate": inflate_libdeflate / fold,
            "parse": (parse - inflate_libdeflate).max(0.0) / fold,
            "classify_count_attribute": (fold - parse).max(0.0) / fold,
        },
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    Ok(())
}
