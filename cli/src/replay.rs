//! `trailsight replay`: the Lambdas' pipeline on files from disk, with the embedded store.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;

use trailsight::config::DetectorConfig;
use trailsight::detect::{CollectingPublisher, run_detector};
use trailsight::fold::FoldStats;
use trailsight::ingest::{IngestOutcome, store_folded};
use trailsight::insight::{InsightRecord, InsightState};
use trailsight::memory::MemoryStore;
use trailsight::minute::{Minute, parse_minute};
use trailsight::store::{FileId, StateStore};

use crate::local::{FileResult, LocalFile};

/// What a replay saw and found.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub files_read: usize,
    pub files_not_logs: usize,
    pub files_damaged: Vec<(String, String)>,
    pub fold: FoldStats,
    pub detector_runs: usize,
    pub records: Vec<InsightRecord>,
    /// Events dated after [`future_limit`] (skipped: no detector catches up to year 2124), and
    /// the files holding them.
    pub future_events: u64,
    pub future_files: Vec<String>,
    /// What the detector cost (`replay --stats`).
    pub cost: DetectorCost,
}

/// What the detector's work and state came to over a replay: the figures `make bench` and
/// docs/COST.md take for principal insights, and what a user can measure on their own logs.
#[derive(Debug, Default, Serialize)]
pub struct DetectorCost {
    /// Time spent in detector runs (storage in memory: the evaluation itself).
    pub detect_seconds: f64,
    /// Minutes evaluated, over all runs.
    pub minutes_evaluated: i64,
    /// Series in the final state, and of them per-principal ones.
    pub series: usize,
    pub principal_series: usize,
    /// Principals tracked in the final state, all accounts.
    pub principals: usize,
    /// Principal-minutes not tracked, their account being at its cap of principals.
    pub principals_untracked: u64,
    /// The final state as the S3 store saves it: JSON, and gzip at the fastest level.
    pub state_json_bytes: usize,
    pub state_gzip_bytes: usize,
    /// (series, minute) cells stored by ingest, over every file.
    pub stored_cells: usize,
}

/// Events dated more than a day after this machine's clock are skipped: CloudTrail does not
/// write the future, and judging it would make the detector catch up minute by minute to it.
pub fn future_limit() -> Minute {
    chrono::Utc::now().timestamp().div_euclid(60) + trailsight::minute::MINUTES_PER_DAY
}

/// Drops the cells of `folded` dated after `limit`; returns the events dropped.
fn skip_future(folded: &mut trailsight::ingest::FoldedObject, limit: Minute) -> u64 {
    let events: u64 = folded
        .delta
        .iter()
        .filter(|(_, minute, _)| *minute > limit)
        .map(|(_, _, cell)| cell.count)
        .sum();
    if events > 0 {
        folded.delta.retain_minutes(|minute| minute <= limit);
        folded.fold.last_minute = folded.fold.last_minute.map(|m| m.min(limit));
    }
    events
}

/// Replays files (already folded, in delivery order) through the store and the detector, running
/// the detector at every delivery minute: the detector itself evaluates minute by minute.
pub async fn replay(
    files: Vec<LocalFile>,
    config: &DetectorConfig,
) -> anyhow::Result<ReplayReport> {
    let store = MemoryStore::new();
    let publisher = CollectingPublisher::default();
    let mut report = ReplayReport::default();
    let limit = future_limit();
    // Files grouped by delivery minute: the detector at minute T sees what was delivered by T.
    let mut by_delivery: BTreeMap<Minute, Vec<LocalFile>> = BTreeMap::new();
    for file in files {
        match file.result {
            FileResult::NotALog(_) => report.files_not_logs += 1,
            FileResult::Damaged(error) => {
                eprintln!(
                    "skipped damaged file {}: {}",
                    crate::terminal::path(&file.path),
                    crate::terminal::escape(&error.to_string())
                );
                report
                    .files_damaged
                    .push((file.path.display().to_string(), error.to_string()));
            }
            FileResult::Folded(_) => {
                // A file named for no delivery time is delivered at its last event: never
                // after the limit.
                let delivered = file.delivered.map(|d| d.min(limit));
                by_delivery
                    .entry(delivered.unwrap_or(Minute::MIN))
                    .or_default()
                    .push(file)
            }
        }
    }
    let last_delivery = by_delivery
        .keys()
        .next_back()
        .copied()
        .filter(|m| *m != Minute::MIN);
    for (delivered, group) in by_delivery {
        for file in group {
            let FileResult::Folded(mut folded) = file.result else {
                continue;
            };
            let future = skip_future(&mut folded, limit);
            if future > 0 {
                eprintln!(
                    "skipped {future} events dated after {} in {}",
                    trailsight::minute::format_minute(limit),
                    crate::terminal::path(&file.path)
                );
                report.future_events += future;
                report.future_files.push(file.path.display().to_string());
            }
            report.files_read += 1;
            report.fold.merge(&folded.fold);
            let id = FileId::new("local", &file.path.to_string_lossy());
            match store_folded(&id, Ok(folded), &store, &store).await? {
                IngestOutcome::Stored { .. } | IngestOutcome::Duplicate => {}
                other => anyhow::bail!(
                    "unexpected outcome for {}: {other:?}",
                    crate::terminal::path(&file.path)
                ),
            }
        }
        if delivered != Minute::MIN {
            let started = Instant::now();
            let run = run_detector(config, delivered, &store, &store, &publisher).await?;
            report.cost.detect_seconds += started.elapsed().as_secs_f64();
            report.cost.minutes_evaluated += run.minutes;
            report.detector_runs += 1;
        }
    }
    // Runs are bounded (max_catchup_minutes); after the last delivery, catch up completely.
    if let Some(now) = last_delivery {
        loop {
            let started = Instant::now();
            let run = run_detector(config, now, &store, &store, &publisher).await?;
            report.cost.detect_seconds += started.elapsed().as_secs_f64();
            if run.minutes == 0 {
                break;
            }
            report.cost.minutes_evaluated += run.minutes;
            report.detector_runs += 1;
        }
    }
    let state = store.load_state().await?.state;
    let cost = &mut report.cost;
    cost.series = state.series.len();
    cost.principal_series = state
        .series
        .keys()
        .filter(|k| k.principal.is_some())
        .count();
    cost.principals = state.principals.values().map(|p| p.len()).sum();
    cost.principals_untracked = state.principals_untracked;
    let json = serde_json::to_vec(&state)?;
    cost.state_json_bytes = json.len();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&json)?;
    cost.state_gzip_bytes = gz.finish()?.len();
    cost.stored_cells = store.stored_cells();
    let mut records = publisher.records.into_inner().unwrap_or_default();
    sort_records(&mut records);
    report.records = records;
    Ok(report)
}

/// Order of output: `eventTime`, then Start before End, then key.
pub fn sort_records(records: &mut [InsightRecord]) {
    records.sort_by(|a, b| {
        let time = |r: &InsightRecord| parse_minute(&r.event_time).unwrap_or_default();
        let state = |r: &InsightRecord| matches!(r.insight_details.state, InsightState::End);
        time(a)
            .cmp(&time(b))
            .then_with(|| state(a).cmp(&state(b)))
            .then_with(|| a.series().cmp(&b.series()))
    });
}
