//! Detector cost per run against the number of series.
//!
//! `detector_bench [--state-dir DIR] 1000 10000 100000`
//! For each N: N call-rate series, a tenth of them active in any minute; a day of history is
//! evaluated first (untimed), then five one-minute runs are timed (the default 5-minute schedule
//! evaluates 5 minutes per run), and the state is serialised as the store saves it (gzip JSON) to
//! derive read and write units per run. With `--state-dir`, that state is written to
//! `DIR/state-N.json.gz` for the run mode. Prints one JSON object per N.
//!
//! `detector_bench --eviction DAYS ONE_OFFS_PER_DAY`
//! Bounded state: 200 steady series plus ONE_OFFS_PER_DAY series a day that are called once and
//! never again, evaluated minute by minute for DAYS days, with eviction (the default 14 days idle)
//! and without. Prints, every 10 days, the series held, the state's gzip size and the time the
//! last day took to evaluate, for both.
//!
//! `detector_bench --catch-up N HOURS SECONDS`
//! A catch-up of HOURS hours at N series (a tenth active each minute, and bursts that open
//! insights) on the embedded store: one run with no deadline, then runs whose deadline is SECONDS
//! away (the next run continues where the last stopped). Prints both times, the number of runs,
//! and whether their insight records are the same (they must be).
//!
//! `detector_bench --run DIR/state-N.json.gz N`
//! One whole run as the detect Lambda does it, in a fresh process so that its peak memory is the
//! run's own: the state loaded from its gzip JSON, five minutes evaluated, the state saved again
//! as the store saves an S3 body (streamed into gzip at its fastest level). Prints the times and
//! the peak resident set (Linux: VmHWM).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use trailsight::config::DetectorConfig;
use trailsight::detect::{CollectingPublisher, DetectRun, run_detector};
use trailsight::detector::DetectorState;
use trailsight::fold::{Cell, DeltaBuilder};
use trailsight::memory::MemoryStore;
use trailsight::minute::parse_minute;
use trailsight::series::SeriesKey;
use trailsight::store::{DeltaWrite, FileId, StateStore};
use trailsight::stored;

const START: &str = "2026-03-02T00:00:00Z";
const WARM_MINUTES: i64 = 1440;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--eviction") => {
            match (
                args.get(1).and_then(|n| n.parse().ok()),
                args.get(2).and_then(|n| n.parse().ok()),
            ) {
                (Some(days), Some(per_day)) => eviction(days, per_day),
                _ => Err("usage: detector_bench --eviction DAYS ONE_OFFS_PER_DAY".into()),
            }
        }
        Some("--catch-up") => match (
            args.get(1).and_then(|n| n.parse().ok()),
            args.get(2).and_then(|n| n.parse().ok()),
            args.get(3).and_then(|n| n.parse().ok()),
        ) {
            (Some(n), Some(hours), Some(seconds)) => catch_up(n, hours, seconds),
            _ => Err("usage: detector_bench --catch-up N HOURS SECONDS".into()),
        },
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
        // The stored format, as DynamoStore writes state chunks.
        let gz = stored::encode(&state).map_err(|e| e.to_string())?;
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
    let mut state: DetectorState = stored::decode(&gz, u64::MAX).map_err(|e| e.to_string())?;
    let load_seconds = run.elapsed().as_secs_f64();
    let evaluate = Instant::now();
    for (i, cells) in inputs.iter().enumerate() {
        state.evaluate_minute(&config, start + WARM_MINUTES + 5 + i as i64, cells);
    }
    let evaluate_seconds = evaluate.elapsed().as_secs_f64();
    // As DynamoStore::save_state writes an S3 body: buffered, at gzip's fastest level.
    let save = Instant::now();
    let saved =
        stored::encode_at(&state, flate2::Compression::fast()).map_err(|e| e.to_string())?;
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

fn gzip_kb(state: &DetectorState) -> Result<f64, String> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    serde_json::to_writer(&mut gz, state).map_err(|e| e.to_string())?;
    Ok(gz.finish().map_err(|e| e.to_string())?.len() as f64 / 1024.0)
}

fn one_off_key(day: i64, i: usize) -> SeriesKey {
    SeriesKey {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        event_source: "iam.amazonaws.com".into(),
        event_name: format!("OneOff{day}x{i}"),
        error_code: None,
        principal: None,
    }
}

fn eviction(days: i64, per_day: usize) -> Result<(), String> {
    let start = parse_minute(START).ok_or("bad start minute")?;
    let steady = series_keys(200);
    let evicting = DetectorConfig::default();
    let keeping = DetectorConfig {
        evict_idle_minutes: i64::MAX / 4,
        ..DetectorConfig::default()
    };
    let mut states = [DetectorState::default(), DetectorState::default()];
    let mut day_seconds = [0.0f64; 2];
    for day in 0..days {
        for (which, config) in [&evicting, &keeping].into_iter().enumerate() {
            let timer = Instant::now();
            for minute in start + day * 1440..start + (day + 1) * 1440 {
                let mut cells = cells_for(&steady, minute);
                let offset = minute - (start + day * 1440) - 600;
                if (0..per_day as i64).contains(&offset) {
                    cells.insert(
                        one_off_key(day, offset as usize),
                        Cell {
                            count: 1,
                            ..Cell::default()
                        },
                    );
                }
                states[which].evaluate_minute(config, minute, &cells);
            }
            day_seconds[which] = timer.elapsed().as_secs_f64();
        }
        if (day + 1) % 10 == 0 {
            println!(
                "{}",
                serde_json::json!({
                    "day": day + 1,
                    "one_offs_per_day": per_day,
                    "series_evicting": states[0].series.len(),
                    "series_keeping": states[1].series.len(),
                    "evicted": states[0].evicted,
                    "state_gzip_kb_evicting": gzip_kb(&states[0])?,
                    "state_gzip_kb_keeping": gzip_kb(&states[1])?,
                    "day_seconds_evicting": day_seconds[0],
                    "day_seconds_keeping": day_seconds[1],
                })
            );
        }
    }
    Ok(())
}

/// Writes `hours` of `keys`' cells (and bursts) to a fresh memory store, one "file" an hour, and
/// a state whose watermark is just before `start`.
async fn catch_up_store(keys: &[SeriesKey], start: i64, hours: i64) -> Result<MemoryStore, String> {
    let store = MemoryStore::new();
    for hour in 0..hours {
        let mut builder = DeltaBuilder::default();
        for minute in start + hour * 60..start + (hour + 1) * 60 {
            let mut cells = cells_for(keys, minute);
            // Every 29 minutes after the warm-up, one key bursts.
            if minute - start >= 70 && (minute - start) % 29 == 0 {
                let key = &keys[(minute as usize * 7919) % keys.len()];
                cells.insert(
                    key.clone(),
                    Cell {
                        count: 60,
                        ..Cell::default()
                    },
                );
            }
            for (key, cell) in &cells {
                builder.add(key, minute, cell);
            }
        }
        store
            .write_delta(&FileId(format!("hour-{hour}")), &builder.finish())
            .await
            .map_err(|e| e.to_string())?;
    }
    let state = DetectorState {
        watermark: Some(start - 1),
        ..DetectorState::default()
    };
    store
        .save_state(&state, 0)
        .await
        .map_err(|e| e.to_string())?;
    Ok(store)
}

fn catch_up(n: usize, hours: i64, seconds: u64) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let start = parse_minute(START).ok_or("bad start minute")?;
        let keys = series_keys(n);
        let config = DetectorConfig {
            warmup_minutes: 60,
            max_catchup_minutes: hours * 60 + 60,
            ..DetectorConfig::default()
        };
        let now = start + hours * 60 + config.settle_minutes;
        let whole = CollectingPublisher::default();
        let timer = Instant::now();
        {
            let store = catch_up_store(&keys, start, hours).await?;
            run_detector(&config, now, &store, &store, &whole)
                .await
                .map_err(|e| e.to_string())?;
        }
        let one_run_seconds = timer.elapsed().as_secs_f64();
        let cut = CollectingPublisher::default();
        let store = catch_up_store(&keys, start, hours).await?;
        let timer = Instant::now();
        let mut runs = 0;
        loop {
            runs += 1;
            let report = DetectRun {
                deltas: &store,
                states: &store,
                publisher: &cut,
                dead_letters: None,
                deadline: Some(Instant::now() + std::time::Duration::from_secs(seconds)),
            }
            .run(&config, now)
            .await
            .map_err(|e| e.to_string())?;
            if !report.stopped_at_deadline {
                break;
            }
        }
        let cut_seconds = timer.elapsed().as_secs_f64();
        let comparable = |p: CollectingPublisher| -> Vec<String> {
            let mut out: Vec<String> = p
                .records
                .into_inner()
                .unwrap_or_default()
                .iter()
                .map(|r| serde_json::to_string(&r.without_ids()).unwrap_or_default())
                .collect();
            out.sort();
            out
        };
        let (a, b) = (comparable(whole), comparable(cut));
        println!(
            "{}",
            serde_json::json!({
                "series": n,
                "catch_up_minutes": hours * 60,
                "one_run_seconds": one_run_seconds,
                "deadline_seconds": seconds,
                "cut_runs": runs,
                "cut_runs_seconds": cut_seconds,
                "records": a.len(),
                "same_records": a == b,
            })
        );
        if a != b {
            return Err("the cut runs' records differ from the one run's".into());
        }
        Ok(())
    })
}

fn series_keys(n: usize) -> Vec<SeriesKey> {
    (0..n)
        .map(|i| SeriesKey {
            account: "111122223333".into(),
            region: ["us-east-1", "eu-west-1"][i % 2].into(),
            event_source: format!("svc{}.amazonaws.com", i % 97),
            event_name: format!("PutThing{i}"),
            error_code: None,
            principal: None,
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
