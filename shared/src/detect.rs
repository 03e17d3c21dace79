//! The detect pipeline: settled minutes → detector → published Insight records, once.
//!
//! One run, at evaluation time `now`:
//! 1. Load the state (with its version).
//! 2. **Late data.** Hour partitions that received parts since the last run (the store's arrival
//!    log) and already have judged minutes are read again; parts not read before (the state
//!    remembers, per hour within the late window, the parts it evaluated) are late data, judged
//!    by [`DetectorState::judge_late`]: taught to the baselines, spikes inside them reported late.
//! 3. Evaluate every settled minute after the watermark, up to `now - settle` (at most
//!    `max_catchup_minutes` per run, and never past the run's deadline: a long catch-up is
//!    finished by the next runs), reading each hour's parts with one query.
//! 4. Save the new state with the new records added to its outbox, conditional on the version
//!    read: of two overlapping runs only one saves, and the other publishes nothing.
//! 5. Deliver the outbox, destination by destination ([`InsightPublish::destinations`]): each
//!    record remembers which destinations took it, so a failing archive never makes EventBridge
//!    receive a record twice. A record that failed in `delivery_attempts` runs goes to the dead
//!    letters ([`DeadLetterSink`], and a bounded list in the state); nothing waits for it.
//!    Then save the state again.
//!
//! Evaluation never waits for delivery: a record that cannot be published does not stop the
//! detector. A record is published at least once and, barring a crash between step 5's publish
//! and save, exactly once; a repeat after such a crash carries the same `eventID` and
//! `sharedEventID`, so consumers can drop it. (EventBridge offers no idempotent put; this is the
//! strongest guarantee it allows.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use async_trait::async_trait;

use crate::config::DetectorConfig;
use crate::detector::{
    DEAD_LETTERS_KEPT, DetectorState, LateCells, LateReport, Pending, note_delivered,
};
use crate::fold::Cell;
use crate::insight::InsightRecord;
use crate::minute::Minute;
use crate::series::{InsightType, SeriesKey};
use crate::store::{DeltaRead, HourPart, StateStore, StoreError};

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

/// The destination of a publisher that does not name its own.
pub const DEFAULT_DESTINATION: &str = "default";

/// Where insight records go (EventBridge, an S3 archive, stdout, a list in memory).
#[async_trait]
pub trait InsightPublish: Send + Sync {
    /// Publishes all records, or says which failed (indices into `records`).
    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)>;

    /// The destinations this publisher delivers to, each tracked separately.
    fn destinations(&self) -> Vec<String> {
        vec![DEFAULT_DESTINATION.to_owned()]
    }

    /// Publishes to one of [`Self::destinations`].
    async fn publish_to(
        &self,
        _destination: &str,
        records: &[InsightRecord],
    ) -> Result<(), (Vec<usize>, PublishError)> {
        self.publish(records).await
    }
}

/// Where records that could not be delivered are kept for a person to look at.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    async fn dead_letter(&self, letter: &Pending) -> Result<(), PublishError>;
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    /// Minutes evaluated (first, last), if any.
    pub evaluated: Option<(Minute, Minute)>,
    pub minutes: i64,
    pub series: usize,
    /// Records delivered to every destination by this run (including earlier runs' leftovers).
    pub published: Vec<InsightRecord>,
    /// Insights open after the run, per type.
    pub open: HashMap<InsightType, usize>,
    /// Minutes between `now` and the watermark.
    pub lag_minutes: i64,
    /// Late data judged by this run.
    pub late: LateReport,
    /// Hour partitions that received parts after they left the late window (not judged).
    pub late_beyond_window: usize,
    /// The run stopped at its deadline before reaching `now - settle`; the next run continues.
    pub stopped_at_deadline: bool,
    /// History arrived from before the state began: this run started rebuilding the state.
    pub rebuilding: bool,
    /// Series forgotten by this run (idle longer than `evict_idle_minutes`).
    pub evicted: u64,
    /// Principal insights: principal-minutes this run did not track, their account being at
    /// `max_principals_per_account` (their calls still count in the account's series).
    pub principals_untracked: u64,
    /// Records still waiting for a destination after this run.
    pub undelivered: usize,
    /// Records whose delivery failed in this run, and the first reason.
    pub delivery_failures: usize,
    pub delivery_error: Option<String>,
    /// Records moved to the dead letters by this run.
    pub dead_lettered: usize,
}

/// What a run works on. [`run_detector`] is the common case (no dead-letter place, no deadline).
pub struct DetectRun<'a> {
    pub deltas: &'a dyn DeltaRead,
    pub states: &'a dyn StateStore,
    pub publisher: &'a dyn InsightPublish,
    pub dead_letters: Option<&'a dyn DeadLetterSink>,
    /// No minute is evaluated after this instant (the function's deadline, less the time to save
    /// and deliver).
    pub deadline: Option<Instant>,
}

/// Runs the detector once at `now`.
pub async fn run_detector(
    config: &DetectorConfig,
    now: Minute,
    deltas: &dyn DeltaRead,
    states: &dyn StateStore,
    publisher: &dyn InsightPublish,
) -> Result<RunReport, DetectError> {
    DetectRun {
        deltas,
        states,
        publisher,
        dead_letters: None,
        deadline: None,
    }
    .run(config, now)
    .await
}

/// One hour partition's parts, merged per (series, minute) independently of storage order.
type MinuteCells = BTreeMap<Minute, HashMap<SeriesKey, Cell>>;

fn merge_cells<'p>(
    parts: impl Iterator<Item = &'p HourPart>,
    keep: impl Fn(Minute) -> bool,
) -> MinuteCells {
    let mut lists: BTreeMap<Minute, HashMap<&SeriesKey, Vec<&Cell>>> = BTreeMap::new();
    for part in parts {
        for (key, minute, cell) in part.delta.iter() {
            if keep(minute) {
                lists
                    .entry(minute)
                    .or_default()
                    .entry(key)
                    .or_default()
                    .push(cell);
            }
        }
    }
    lists
        .into_iter()
        .map(|(minute, cells)| {
            let merged = cells
                .into_iter()
                .map(|(key, list)| (key.clone(), Cell::merge_all(&list)))
                .collect();
            (minute, merged)
        })
        .collect()
}

/// Notes, per account and region, the minutes (up to `now`) the parts hold data for: the proof
/// of delivery that held drops wait for.
fn note_delivered_parts(state: &mut DetectorState, parts: &[HourPart], now: Minute) {
    for part in parts {
        // Cells are in (series, minute) order: their 10-minute buckets come out sorted.
        let mut seen: Vec<(u32, Minute)> = part
            .delta
            .cells
            .keys()
            .filter(|(_, minute)| *minute <= now)
            .map(|(index, minute)| (*index, minute - minute.rem_euclid(10)))
            .collect();
        seen.dedup();
        for (index, bucket) in seen {
            if let Some(key) = part.delta.series.get(index as usize) {
                note_delivered(&mut state.delivered, key, bucket);
            }
        }
    }
}

/// Finds the late data in one hour's parts: cells at or before the watermark `w` from parts the
/// state has not evaluated. Marks every part as evaluated through `w`.
fn take_late(
    state: &mut DetectorState,
    hour: Minute,
    parts: &[HourPart],
    w: Minute,
    late: &mut BTreeMap<SeriesKey, LateCells>,
) {
    let consumed = state.consumed.entry(hour).or_default();
    let fresh: Vec<&HourPart> = parts.iter().filter(|p| !consumed.contains(&p.id)).collect();
    consumed.extend(parts.iter().map(|p| p.id.clone()));
    let judged = |m: Minute| m <= w;
    let new = merge_cells(fresh.into_iter(), judged);
    if new.is_empty() {
        return;
    }
    let full = merge_cells(parts.iter(), judged);
    let mut touched = BTreeSet::new();
    for (minute, cells) in new {
        for (key, cell) in cells {
            touched.insert(key.clone());
            late.entry(key).or_default().new.insert(minute, cell);
        }
    }
    for (minute, cells) in full {
        for (key, cell) in cells {
            if touched.contains(&key) {
                late.entry(key).or_default().full.insert(minute, cell);
            }
        }
    }
}

impl DetectRun<'_> {
    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Runs the detector once at `now`.
    pub async fn run(
        &self,
        config: &DetectorConfig,
        now: Minute,
    ) -> Result<RunReport, DetectError> {
        let loaded = self.states.load_state().await?;
        let mut state = loaded.state;
        let mut version = loaded.version;
        let mut report = RunReport::default();
        let mut records = Vec::new();
        let mut changed = false;
        let evicted_before = state.evicted;
        let untracked_before = state.principals_untracked;

        let target = now - config.settle_minutes;
        // Hours that received parts since the last run (late data, or a backfill).
        let mut arrived = BTreeSet::new();
        if let Some(w) = state.watermark {
            let arrivals = self.deltas.arrivals(&state.arrivals, now).await?;
            if arrivals.cursor != state.arrivals {
                state.arrivals = arrivals.cursor;
                changed = true;
            }
            arrived = arrivals.hours;
            // History from before the state began: start over from it (see docs/DETECTION.md).
            let began = state.history_start.map(|s| s.div_euclid(60) * 60);
            let oldest = w - config.max_catchup_minutes;
            if let Some(&earliest) = arrived
                .iter()
                .find(|h| **h <= w && **h + 59 > oldest && began.is_none_or(|b| **h < b))
            {
                tracing::warn!(
                    from = crate::minute::format_minute(earliest),
                    through = crate::minute::format_minute(w),
                    "History arrived from before the detector's state began: rebuilding the state from the table."
                );
                state.start_rebuild(earliest.max(oldest.div_euclid(60) * 60));
                report.rebuilding = true;
                changed = true;
            }
        }
        let from = match state.watermark {
            Some(w) => w + 1,
            None => target - config.max_catchup_minutes + 1,
        };
        let to = target.min(from + config.max_catchup_minutes - 1);
        let first_hour = from.div_euclid(60) * 60;
        let mut first_parts: Option<Vec<HourPart>> = None;

        // Late data: hours already judged that received parts since the last run.
        if let Some(w) = state.watermark.filter(|_| !report.rebuilding) {
            let window_start = w - config.late_window_minutes;
            let mut late = BTreeMap::new();
            let mut hours: BTreeSet<Minute> = arrived.into_iter().filter(|h| *h <= w).collect();
            if first_hour <= w && from <= to {
                hours.insert(first_hour);
            }
            for hour in hours {
                if hour + 59 < window_start {
                    report.late_beyond_window += 1;
                    tracing::warn!(
                        hour = crate::minute::format_minute(hour),
                        late_window_minutes = config.late_window_minutes,
                        "Parts arrived for an hour older than the late window: not judged."
                    );
                    continue;
                }
                let parts = self.deltas.read_hour_parts(hour).await?;
                note_delivered_parts(&mut state, &parts, now);
                take_late(&mut state, hour, &parts, w, &mut late);
                if hour == first_hour {
                    first_parts = Some(parts);
                }
            }
            if !late.is_empty() {
                records.extend(state.judge_late(config, late, &mut report.late));
                changed = true;
            }
        }

        // Settled minutes after the watermark, hour by hour, until done or out of time.
        let mut last = None;
        if from <= to {
            let mut hour = first_hour;
            'hours: while hour <= to {
                let parts = match first_parts.take().filter(|_| hour == first_hour) {
                    Some(parts) => parts,
                    None => self.deltas.read_hour_parts(hour).await?,
                };
                note_delivered_parts(&mut state, &parts, now);
                // Read: whatever the watermark reaches of this hour, these parts are in it.
                let consumed = state.consumed.entry(hour).or_default();
                consumed.extend(parts.iter().map(|p| p.id.clone()));
                let by_minute = merge_cells(parts.iter(), |m| m >= from && m <= to);
                let empty = HashMap::new();
                for minute in hour.max(from)..=(hour + 59).min(to) {
                    // At least one minute per run, so that every run makes progress.
                    if last.is_some() && self.out_of_time() {
                        report.stopped_at_deadline = true;
                        break 'hours;
                    }
                    let cells = by_minute.get(&minute).unwrap_or(&empty);
                    let found = state.evaluate_minute(config, minute, cells);
                    let alert_from = now - config.late_window_minutes;
                    records.extend(state.rebuilt(found, alert_from));
                    last = Some(minute);
                }
                hour += 60;
            }
        }
        if let Some(last) = last {
            report.evaluated = Some((from, last));
            report.minutes = last - from + 1;
            changed = true;
        }
        if let Some(w) = state.watermark {
            let keep_from = w - config.late_window_minutes - 60;
            state.consumed.retain(|hour, _| *hour >= keep_from);
        }
        report.evicted = state.evicted - evicted_before;
        report.principals_untracked = state.principals_untracked.saturating_sub(untracked_before);
        report.series = state.series.len();
        for (key, _) in state.open() {
            *report.open.entry(key.insight_type()).or_default() += 1;
        }
        report.lag_minutes = state.watermark.map(|w| now - w).unwrap_or(0);

        if records.is_empty() && state.outbox.is_empty() {
            if changed {
                self.states.save_state_owned(state, version).await?;
            } else {
                self.states.release_state(state, version).await;
            }
            return Ok(report);
        }
        state.outbox.extend(records.into_iter().map(Pending::new));
        version = self.states.save_state(&state, version).await?;
        self.deliver(config, &mut state, &mut report).await;
        self.states.save_state_owned(state, version).await?;
        Ok(report)
    }

    /// Delivers the outbox to every destination (see the module).
    async fn deliver(
        &self,
        config: &DetectorConfig,
        state: &mut DetectorState,
        report: &mut RunReport,
    ) {
        let destinations = self.publisher.destinations();
        let mut failed = vec![false; state.outbox.len()];
        for destination in &destinations {
            let due: Vec<usize> = (0..state.outbox.len())
                .filter(|&i| !state.outbox[i].delivered.contains(destination))
                .collect();
            if due.is_empty() {
                continue;
            }
            let batch: Vec<InsightRecord> = due
                .iter()
                .map(|&i| state.outbox[i].record.clone())
                .collect();
            let rejected: Vec<usize> = match self.publisher.publish_to(destination, &batch).await {
                Ok(()) => Vec::new(),
                Err((rejected, error)) => {
                    let reason = format!("{destination}: {error}");
                    tracing::warn!(
                        destination,
                        failed = rejected.len(),
                        error = %error,
                        "Insight records not delivered; they stay in the outbox."
                    );
                    for &j in &rejected {
                        if let Some(&i) = due.get(j) {
                            failed[i] = true;
                            state.outbox[i].last_error = Some(reason.clone());
                        }
                    }
                    report.delivery_error.get_or_insert(reason);
                    rejected
                }
            };
            for (j, &i) in due.iter().enumerate() {
                if !rejected.contains(&j) {
                    state.outbox[i].delivered.push(destination.clone());
                }
            }
        }
        let outbox = std::mem::take(&mut state.outbox);
        for (entry, failed) in outbox.into_iter().zip(failed) {
            let done = destinations.iter().all(|d| entry.delivered.contains(d));
            if done {
                report.published.push(entry.record);
                continue;
            }
            let mut entry = entry;
            if failed {
                report.delivery_failures += 1;
                entry.attempts += 1;
            }
            if entry.attempts < config.delivery_attempts {
                state.outbox.push(entry);
                continue;
            }
            // Out of attempts: to the dead letters, so that nothing waits for it.
            report.dead_lettered += 1;
            tracing::error!(
                event_id = entry.record.event_id,
                attempts = entry.attempts,
                error = entry.last_error.as_deref().unwrap_or(""),
                "Insight record dead-lettered after every delivery attempt."
            );
            if let Some(sink) = self.dead_letters
                && let Err(error) = sink.dead_letter(&entry).await
            {
                tracing::error!(%error, event_id = entry.record.event_id,
                    "Dead-letter place unavailable; the record is kept in the detector state.");
            }
            if state.dead_letters.len() == DEAD_LETTERS_KEPT {
                state.dead_letters.pop_front();
            }
            state.dead_letters.push_back(entry);
        }
        report.undelivered = state.outbox.len();
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
