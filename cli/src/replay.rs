//! `trailsight replay`: the Lambdas' pipeline on files from disk, with the embedded store.

use std::collections::BTreeMap;

use trailsight::config::DetectorConfig;
use trailsight::detect::{CollectingPublisher, run_detector};
use trailsight::fold::FoldStats;
use trailsight::ingest::{IngestOutcome, store_folded};
use trailsight::insight::{InsightRecord, InsightState};
use trailsight::memory::MemoryStore;
use trailsight::minute::{Minute, parse_minute};
use trailsight::store::FileId;

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
            run_detector(config, delivered, &store, &store, &publisher).await?;
            report.detector_runs += 1;
        }
    }
    // Runs are bounded (max_catchup_minutes); after the last delivery, catch up completely.
    if let Some(now) = last_delivery {
        while run_detector(config, now, &store, &store, &publisher)
            .await?
            .minutes
            > 0
        {
            report.detector_runs += 1;
        }
    }
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
