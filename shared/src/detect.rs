//! The detect pipeline: settled minutes → detector → published Insight records, once.
//!
//! One run, at evaluation time `now`:
//! 1. Load the state (with its version). Records left in its outbox by a run that died before
//!    confirming them are published first, with their original `eventID`s.
//! 2. Evaluate every settled minute after the watermark, up to `now - settle` (at most
//!    `max_catchup_minutes` per run), reading each hour's deltas with one query.
//! 3. Save the new state with the new records in its outbox, conditional on the version read: of
//!    two overlapping runs only one saves, and the other publishes nothing.
//! 4. Publish the outbox, then save the state with the outbox emptied.
//!
//! A record is therefore published at least once and, barring a crash between steps 4's publish
//! and save, exactly once; a repeat after such a crash carries the same `eventID` and
//! `sharedEventID`, so consumers can drop it. (EventBridge offers no idempotent put; this is the
//! strongest guarantee it allows.)

use std::collections::HashMap;

use async_trait::async_trait;

use crate::config::DetectorConfig;
use crate::detector::DetectorState;
use crate::fold::Cell;
use crate::insight::InsightRecord;
use crate::minute::Minute;
use crate::series::{InsightType, SeriesKey};
use crate::store::{DeltaRead, StateStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{failed} of {total} insight records could not be published: {reason}")]
    Partial {
        failed: usize,
        total: usize,
        reason: String,
    },
    #[error("publishing failed: {0}")]
    Failed(String),
}

/// Where insight records go (EventBridge, an S3 archive, stdout, a list in memory).
#[async_trait]
pub trait InsightPublish: Send + Sync {
    /// Publishes all records, or says which failed (indices into `records`).
    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)>;
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    /// Minutes evaluated (first, last), if any.
    pub evaluated: Option<(Minute, Minute)>,
    pub minutes: i64,
    pub series: usize,
    /// Records published by this run (including any recovered from the outbox).
    pub published: Vec<InsightRecord>,
    /// Insights open after the run, per type.
    pub open: HashMap<InsightType, usize>,
    /// Minutes between `now` and the watermark.
    pub lag_minutes: i64,
    /// Delta cells for minutes already evaluated (arrived later than the settle delay).
    pub late_cells: u64,
}

/// Runs the detector once at `now`.
pub async fn run_detector(
    config: &DetectorConfig,
    now: Minute,
    deltas: &dyn DeltaRead,
    states: &dyn StateStore,
    publisher: &dyn InsightPublish,
) -> Result<RunReport, DetectError> {
    let loaded = states.load_state().await?;
    let mut state = loaded.state;
    let mut version = loaded.version;
    let mut report = RunReport::default();

    if !state.outbox.is_empty() {
        version = publish_outbox(&mut state, version, states, publisher, &mut report).await?;
    }

    let target = now - config.settle_minutes;
    let from = match state.watermark {
        Some(w) => w + 1,
        None => target - config.max_catchup_minutes + 1,
    };
    let to = target.min(from + config.max_catchup_minutes - 1);
    let mut records = Vec::new();
    if from <= to {
        let mut hour = from.div_euclid(60) * 60;
        while hour <= to {
            let hour_deltas = deltas.read_hour(hour).await?;
            let mut parts: HashMap<Minute, HashMap<&SeriesKey, Vec<&Cell>>> = HashMap::new();
            for delta in &hour_deltas {
                for (key, minute, cell) in delta.iter() {
                    if state.watermark.is_some_and(|w| minute <= w) {
                        report.late_cells += 1;
                        continue;
                    }
                    parts
                        .entry(minute)
                        .or_default()
                        .entry(key)
                        .or_default()
                        .push(cell);
                }
            }
            // Merged independently of storage order, so every store gives the same cells.
            let by_minute: HashMap<Minute, HashMap<SeriesKey, Cell>> = parts
                .into_iter()
                .map(|(minute, cells)| {
                    (
                        minute,
                        cells
                            .into_iter()
                            .map(|(key, list)| (key.clone(), Cell::merge_all(&list)))
                            .collect(),
                    )
                })
                .collect();
            let empty = HashMap::new();
            for minute in hour.max(from)..=(hour + 59).min(to) {
                let cells = by_minute.get(&minute).unwrap_or(&empty);
                records.extend(state.evaluate_minute(config, minute, cells));
            }
            hour += 60;
        }
        report.evaluated = Some((from, to));
        report.minutes = to - from + 1;
    }
    report.series = state.series.len();
    for (key, _) in state.open() {
        *report.open.entry(key.insight_type()).or_default() += 1;
    }
    report.lag_minutes = state.watermark.map(|w| now - w).unwrap_or(0);

    if records.is_empty() {
        if report.minutes > 0 {
            states.save_state(&state, version).await?;
        } else {
            states.release_state(state, version).await;
        }
        return Ok(report);
    }
    state.outbox = records;
    version = states.save_state(&state, version).await?;
    publish_outbox(&mut state, version, states, publisher, &mut report).await?;
    Ok(report)
}

async fn publish_outbox(
    state: &mut DetectorState,
    version: u64,
    states: &dyn StateStore,
    publisher: &dyn InsightPublish,
    report: &mut RunReport,
) -> Result<u64, DetectError> {
    let outbox = std::mem::take(&mut state.outbox);
    match publisher.publish(&outbox).await {
        Ok(()) => {
            report.published.extend(outbox);
            Ok(states.save_state(state, version).await?)
        }
        Err((failed, error)) => {
            // Keep what failed for the next run; what went out is done.
            for (i, record) in outbox.into_iter().enumerate() {
                if failed.contains(&i) {
                    state.outbox.push(record);
                } else {
                    report.published.push(record);
                }
            }
            states.save_state(state, version).await?;
            Err(error.into())
        }
    }
}

/// Collects records in memory (replay, tests).
#[derive(Default)]
pub struct CollectingPublisher {
    pub records: std::sync::Mutex<Vec<InsightRecord>>,
}

#[async_trait]
impl InsightPublish for CollectingPublisher {
    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)> {
        match self.records.lock() {
            Ok(mut list) => {
                list.extend_from_slice(records);
                Ok(())
            }
            Err(_) => Err((
                (0..records.len()).collect(),
                PublishError::Failed("collector lock poisoned".into()),
            )),
        }
    }
}
