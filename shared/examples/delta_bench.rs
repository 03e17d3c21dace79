//! What ingest writes per log file, counted as the DynamoDB store writes it (one conditional put
//! per (file, hour, part), each part gzip JSON; plus one marker put and one marker get).
//!
//! `cargo run --release -p trailsight-core --example delta_bench -- DIR [--principal-insights]`
//! Prints the distribution of requests and write units per file and per 1,000 events, and checks
//! the bound "writes per file ≤ distinct (series, hour) cells the file touches". With
//! `--principal-insights`, files are folded as ingest folds them with principal insights on
//! (every management event also in its caller's series).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use trailsight::classify::ClassifyOptions;
use trailsight::ingest::fold_object;
use trailsight::logfile::ReadLimits;
use trailsight::store::delta_parts;
use trailsight::stored;

#[path = "common/mod.rs"]
mod common;
use common::files_under;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let principal_insights = args.iter().any(|a| a == "--principal-insights");
    let dir = PathBuf::from(
        args.iter()
            .find(|a| !a.starts_with("--"))
            .cloned()
            .unwrap_or_else(|| "out/bench-data".into()),
    );
    let options = ClassifyOptions {
        principal_insights,
        ..ClassifyOptions::default()
    };
    let mut paths = Vec::new();
    files_under(&dir, &mut paths);
    paths.sort();
    let (
        mut requests,
        mut wcu,
        mut cells_total,
        mut bytes_total,
        mut counted_total,
        mut records_total,
    ) = (vec![], vec![], 0usize, 0usize, 0u64, 0u64);
    let mut bound_violations = 0;
    for path in &paths {
        let Ok(file) = std::fs::File::open(path) else {
            continue;
        };
        let Ok(folded) = fold_object(
            std::io::BufReader::new(file),
            &ReadLimits::default(),
            options,
        ) else {
            continue;
        };
        let series_hours: HashSet<(u32, i64)> = folded
            .delta
            .cells
            .keys()
            .map(|(i, m)| (*i, m.div_euclid(60)))
            .collect();
        let parts = delta_parts(&folded.delta);
        let mut units = 2.0; // marker put (small item) + marker get (consistent read, 1 RCU)
        for (_, _, part) in &parts {
            let stored = stored::encode(part).map(|b| b.len()).unwrap_or(0);
            let bytes = stored + 60; // + keys and attribute names
            bytes_total += bytes;
            units += (bytes as f64 / 1024.0).ceil();
        }
        if parts.len() > series_hours.len().max(1) {
            bound_violations += 1;
        }
        requests.push(parts.len() as f64 + 2.0);
        wcu.push(units);
        cells_total += folded.delta.cells.len();
        counted_total += folded.fold.counted;
        records_total += folded.fold.records;
    }
    requests.sort_by(f64::total_cmp);
    wcu.sort_by(f64::total_cmp);
    let files = requests.len() as f64;
    let total_units: f64 = wcu.iter().sum();
    let report = serde_json::json!({
        "principal_insights": principal_insights,
        "files": requests.len(),
        "records": records_total,
        "counted_events": counted_total,
        "cells": cells_total,
        "requests_per_file": { "p50": percentile(&requests, 0.5), "p90": percentile(&requests, 0.9), "max": percentile(&requests, 1.0), "mean": requests.iter().sum::<f64>() / files },
        "write_units_per_file": { "p50": percentile(&wcu, 0.5), "p90": percentile(&wcu, 0.9), "max": percentile(&wcu, 1.0), "mean": total_units / files },
        "write_units_per_1000_events": total_units * 1000.0 / records_total.max(1) as f64,
        "stored_bytes_per_cell": bytes_total as f64 / cells_total.max(1) as f64,
        "cells_per_counted_event": cells_total as f64 / counted_total.max(1) as f64,
        "cells_per_record": cells_total as f64 / records_total.max(1) as f64,
        "files_with_more_part_writes_than_series_hours": bound_violations,
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
}
