//! Detector cost per run against the number of series.
//!
//! `cargo run --release -p trailsight-core --example detector_bench -- 1000 10000 100000`
//! For each N: N call-rate series, a tenth of them active in any minute; a day of history is
//! evaluated first (untimed), then five one-minute runs are timed (the default 5-minute schedule
//! evaluates 5 minutes per run), and the state is serialised as the DynamoDB store saves it
//! (gzip JSON) to derive read and write units per run. Then one whole run as the detect Lambda
//! does it, timed and with its peak memory (Linux: VmHWM, reset first through
//! /proc/self/clear_refs): the state loaded from its gzip JSON, five minutes evaluated, the state
//! saved again (streamed into gzip). Prints one JSON object per N.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Instant;

use trailsight::config::DetectorConfig;
use trailsight::detector::DetectorState;
use trailsight::fold::Cell;
use trailsight::minute::parse_minute;
use trailsight::series::SeriesKey;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        sizes
    };
    let config = DetectorConfig::default();
    let start = parse_minute("2026-03-02T00:00:00Z").unwrap_or_default();
    for n in sizes {
        let keys: Vec<SeriesKey> = (0..n)
            .map(|i| SeriesKey {
                account: "111122223333".into(),
                region: ["us-east-1", "eu-west-1"][i % 2].into(),
                event_source: format!("svc{}.amazonaws.com", i % 97),
                event_name: format!("PutThing{i}"),
                error_code: None,
            })
            .collect();
        let cells_for = |minute: i64| -> HashMap<SeriesKey, Cell> {
            let mut cells = HashMap::new();
            for (i, key) in keys.iter().enumerate() {
                // Each series is active in one minute of ten, staggered.
                if (i as i64 + minute) % 10 == 0 {
                    let mut cell = Cell {
                        count: 1 + (i as u64 + minute as u64) % 3,
                        ..Cell::default()
                    };
                    cell.arns.add(
                        "arn:aws:sts::111122223333:assumed-role/app/worker",
                        cell.count,
                    );
                    cell.errors.add("null", cell.count);
                    cells.insert(key.clone(), cell);
                }
            }
            cells
        };
        let mut state = DetectorState::default();
        let warm = Instant::now();
        for minute in start..start + 1440 {
            state.evaluate_minute(&config, minute, &cells_for(minute));
        }
        let warm_seconds = warm.elapsed().as_secs_f64();
        let inputs: Vec<HashMap<SeriesKey, Cell>> =
            (0..5).map(|i| cells_for(start + 1440 + i)).collect();
        let timed = Instant::now();
        for (i, cells) in inputs.iter().enumerate() {
            state.evaluate_minute(&config, start + 1440 + i as i64, cells);
        }
        let run_seconds = timed.elapsed().as_secs_f64();
        let serialise = Instant::now();
        let json = serde_json::to_vec(&state).unwrap_or_default();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&json);
        let gz = gz.finish().unwrap_or_default();
        let serialise_seconds = serialise.elapsed().as_secs_f64();
        let kb = gz.len() as f64 / 1024.0;
        let json_mb = json.len() as f64 / 1e6;

        // One run as detect does it, from the saved state alone.
        drop(state);
        drop(json);
        reset_peak_rss();
        let baseline_rss_mb = peak_rss_mb();
        let run = Instant::now();
        let mut loaded_json = Vec::new();
        let _ = flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut loaded_json);
        let mut state: DetectorState = match serde_json::from_slice(&loaded_json) {
            Ok(state) => state,
            Err(error) => {
                eprintln!("state does not load back: {error}");
                std::process::exit(1);
            }
        };
        drop(loaded_json);
        let load_seconds = run.elapsed().as_secs_f64();
        for (i, cells) in inputs.iter().enumerate() {
            state.evaluate_minute(&config, start + 1445 + i as i64, cells);
        }
        let mut saved = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = serde_json::to_writer(&mut saved, &state);
        let saved = saved.finish().unwrap_or_default();
        let run_seconds_whole = run.elapsed().as_secs_f64();
        let run_peak_rss_mb = peak_rss_mb();
        drop(saved);
        println!(
            "{}",
            serde_json::json!({
                "series": n,
                "active_per_minute": n / 10,
                "evaluate_5_minutes_seconds": run_seconds,
                "per_series_minute_ns": run_seconds * 1e9 / (n as f64 * 5.0),
                "warm_day_seconds": warm_seconds,
                "state_json_mb": json_mb,
                "state_gzip_kb": kb,
                "serialise_seconds": serialise_seconds,
                "state_read_units_consistent": (kb / 4.0).ceil(),
                "state_write_units": kb.ceil(),
                "run_load_seconds": load_seconds,
                "run_seconds": run_seconds_whole,
                "run_peak_rss_mb": run_peak_rss_mb,
                "run_peak_rss_above_baseline_mb": run_peak_rss_mb - baseline_rss_mb,
            })
        );
    }
}

/// Resets the process's peak resident set (VmHWM) to its current size (Linux 4.0+).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set in MB since the last reset (0 where /proc is not Linux's).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
