//! Detector cost per run against the number of series.
//!
//! `detector_bench [--state-dir DIR] 1000 10000 100000`
//! For each N: N call-rate series, a tenth of them active in any minute; a day of history is
//! evaluated first (untimed), then five one-minute runs are timed (the default 5-minute schedule
//! evaluates 5 minutes per run), and the state is serialised as the store saves it (gzip JSON) to
//! derive read and write units per run. With `--state-dir`, that state is written to
//! `DIR/state-N.json.gz` for the run mode. Prints one JSON object per N.
//!
//! `detector_bench --run DIR/state-N.json.gz N`
//! One whole run as the detect Lambda does it, in a fresh process so that its peak memory is the
//! run's own: the state loaded from its gzip JSON, five minutes evaluated, the state saved again
//! as the store saves an S3 body (streamed into gzip at its fastest level). Prints the times and
//! the peak resident set (Linux: VmHWM).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use trailsight::config::DetectorConfig;
use trailsight::detector::DetectorState;
use trailsight::fold::Cell;
use trailsight::minute::parse_minute;
use trailsight::series::SeriesKey;

const START: &str = "2026-03-02T00:00:00Z";
const WARM_MINUTES: i64 = 1440;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--run") => match (args.get(1), args.get(2).and_then(|n| n.parse().ok())) {
            (Some(path), Some(n)) => run_once(&PathBuf::from(path), n),
            _ => Err("usage: detector_bench --run STATE_FILE N".into()),
        },
        _ => sizes(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("detector_bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn sizes(args: &[String]) -> Result<(), String> {
    let mut state_dir = None;
    let mut sizes = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--state-dir" {
            state_dir = it.next().map(PathBuf::from);
        } else {
            sizes.push(arg.parse::<usize>().map_err(|e| format!("{arg}: {e}"))?);
        }
    }
    if sizes.is_empty() {
        sizes = vec![1_000, 10_000, 100_000];
    }
    let config = DetectorConfig::default();
    let start = parse_minute(START).ok_or("bad start minute")?;
    for n in sizes {
        let keys = series_keys(n);
        let mut state = DetectorState::default();
        let warm = Instant::now();
        for minute in start..start + WARM_MINUTES {
            state.evaluate_minute(&config, minute, &cells_for(&keys, minute));
        }
        let warm_seconds = warm.elapsed().as_secs_f64();
        let inputs: Vec<HashMap<SeriesKey, Cell>> = (0..5)
            .map(|i| cells_for(&keys, start + WARM_MINUTES + i))
            .collect();
        let timed = Instant::now();
        for (i, cells) in inputs.iter().enumerate() {
            state.evaluate_minute(&config, start + WARM_MINUTES + i as i64, cells);
        }
        let run_seconds = timed.elapsed().as_secs_f64();
        let serialise = Instant::now();
        let json = serde_json::to_vec(&state).map_err(|e| e.to_string())?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&json).map_err(|e| e.to_string())?;
        let gz = gz.finish().map_err(|e| e.to_string())?;
        let serialise_seconds = serialise.elapsed().as_secs_f64();
        let kb = gz.len() as f64 / 1024.0;
        if let Some(dir) = &state_dir {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(format!("state-{n}.json.gz")), &gz)
                .map_err(|e| e.to_string())?;
        }
        println!(
            "{}",
            serde_json::json!({
                "series": n,
                "active_per_minute": n / 10,
                "evaluate_5_minutes_seconds": run_seconds,
                "per_series_minute_ns": run_seconds * 1e9 / (n as f64 * 5.0),
                "warm_day_seconds": warm_seconds,
                "state_json_mb": json.len() as f64 / 1e6,
                "state_gzip_kb": kb,
                "serialise_seconds": serialise_seconds,
                "state_read_units_consistent": (kb / 4.0).ceil(),
                "state_write_units": kb.ceil(),
            })
        );
    }
    Ok(())
}

/// One detect run from a saved state, as `DynamoStore::load_state` and `save_state` do it.
fn run_once(path: &PathBuf, n: usize) -> Result<(), String> {
    let config = DetectorConfig::default();
    let start = parse_minute(START).ok_or("bad start minute")?;
    let keys = series_keys(n);
    let inputs: Vec<HashMap<SeriesKey, Cell>> = (0..5)
        .map(|i| cells_for(&keys, start + WARM_MINUTES + 5 + i))
        .collect();
    drop(keys);
    let inputs_rss_mb = peak_rss_mb();
    let gz = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let run = Instant::now();
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut json)
        .map_err(|e| e.to_string())?;
    let mut state: DetectorState = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    drop(json);
    let load_seconds = run.elapsed().as_secs_f64();
    let evaluate = Instant::now();
    for (i, cells) in inputs.iter().enumerate() {
        state.evaluate_minute(&config, start + WARM_MINUTES + 5 + i as i64, cells);
    }
    let evaluate_seconds = evaluate.elapsed().as_secs_f64();
    // As DynamoStore::save_state writes an S3 body: buffered, at gzip's fastest level.
    let save = Instant::now();
    let mut saved = std::io::BufWriter::with_capacity(
        64 << 10,
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()),
    );
    serde_json::to_writer(&mut saved, &state).map_err(|e| e.to_string())?;
    let saved = saved
        .into_inner()
        .map_err(|e| e.error().to_string())?
        .finish()
        .map_err(|e| e.to_string())?;
    let save_seconds = save.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "series": n,
            "run_seconds": run.elapsed().as_secs_f64(),
            "load_seconds": load_seconds,
            "evaluate_5_minutes_seconds": evaluate_seconds,
            "save_seconds": save_seconds,
            "saved_gzip_kb": saved.len() as f64 / 1024.0,
            "peak_rss_mb": peak_rss_mb(),
            "inputs_rss_mb": inputs_rss_mb,
        })
    );
    Ok(())
}

fn series_keys(n: usize) -> Vec<SeriesKey> {
    (0..n)
        .map(|i| SeriesKey {
            account: "111122223333".into(),
            region: ["us-east-1", "eu-west-1"][i % 2].into(),
            event_source: format!("svc{}.amazonaws.com", i % 97),
            event_name: format!("PutThing{i}"),
            error_code: None,
        })
        .collect()
}

/// Each series is active in one minute of ten, staggered.
fn cells_for(keys: &[SeriesKey], minute: i64) -> HashMap<SeriesKey, Cell> {
    let mut cells = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
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
}

/// The process's peak resident set in MB (0 where /proc is not Linux's).
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
