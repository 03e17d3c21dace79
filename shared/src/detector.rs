//! The detector: judges each settled minute of every series against its baseline, opens and
//! closes episodes, and writes their Start and End records.
//!
//! It is a pure state machine: [`DetectorState::evaluate_minute`] takes one minute's cells and
//! returns the records that minute produced. Feeding the same cells in the same order gives the
//! same records whatever the schedule, so `trailsight replay` and the detect Lambda agree.
//!
//! Rules (thresholds from [`DetectorConfig`]):
//! - **Warm-up**: nothing is reported until the trail has `warmup_minutes` (24 h) of history. A key
//!   first seen after that is judged against a zero baseline (floored at one event a week).
//! - **Spike** (both insight types): the count of the minute, or of the last five, is at least
//!   `min_calls`, at least `min_ratio` × the expected count, above the week's usual peak for that
//!   window, and its upper tail probability under the baseline is below the sensitivity's alpha.
//!   It continues while minutes stay clearly high (tail below 1e-3 and twice the expected count)
//!   and ends after `cooldown_minutes` quiet minutes.
//! - **Drop** (call rate): a key active on each of the last `drop_min_active_days` days whose
//!   longest usual gap is at most `max_steady_gap_minutes` falls silent for longer than
//!   max(`min_gap_minutes`, gap factor × its longest gap). The insight starts where the silence
//!   outlasted the longest usual gap (the first missed run of a periodic job) and ends when calls
//!   resume.
//!
//! Identities: an episode's `sharedEventID` is derived from its series, kind and first minute,
//! and each record's `eventID` from that and its state ([`crate::insight::shared_event_id`],
//! [`crate::insight::event_id`]), so the same data gives the same identifiers in every run.
//! A series has at most one open episode, and two of one series, kind and start minute are rare
//! but possible, so their number among the spikes of that start is part of the identity:
//! - **drops** never share a start: a drop ends when calls resume (on time or in late data), and
//!   the next one starts after the series' last active minute, so after that one;
//! - **spikes** can: with a `cooldown_minutes` of 3 or less, a spike's 5-minute window can reach
//!   back to the start of one that just ended; and late data can find a spike whose 5-minute
//!   window begins at the start of a short spike already reported (the late minute lies after
//!   the reported one). Every ended spike is kept for a week in [`SeriesState::recurring`]; a new
//!   one counts those of its start minute ([`crate::insight::shared_event_id`]'s `occurrence`).
//!
//! A Start and an End at the same minute (a spike ending where another begins) are records of
//! different episodes: their identifiers differ by start or by state.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, Expectation, upper_tail};
use crate::config::DetectorConfig;
use crate::fold::Cell;
use crate::insight::{
    Attribution, AttributionValue, Average, InsightRecord, InsightState, RecordParts, Statistics,
    average, baseline_duration, build_record, shared_event_id,
};
use crate::minute::{MINUTES_PER_DAY, MINUTES_PER_WEEK, Minute};
use crate::series::{InsightType, SeriesKey};
use crate::topk::{TOP_REPORTED, TopK};

mod drop;
pub mod explain;
mod late;
mod learning;
mod principal;
mod spike;
#[cfg(test)]
mod test_support;
use drop::DELIVERY_PROOF_MINUTES;
pub use drop::{Delivered, note_delivered};
pub use late::{LateCells, LateReport};
pub use principal::{
    FIRST_SEEN_API, FIRST_SEEN_REGION, FIRST_SEEN_SERVICES, PrincipalProfile, Principals,
};
use spike::{Heat, heat};

/// Insight records kept in the state for `trailsight insights`.
const RECENT_KEPT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpisodeKind {
    Spike,
    Drop,
}

impl EpisodeKind {
    /// Its name in identifiers ([`crate::insight::shared_event_id`]).
    pub fn as_str(self) -> &'static str {
        match self {
            EpisodeKind::Spike => "Spike",
            EpisodeKind::Drop => "Drop",
        }
    }
}

/// An open insight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub kind: EpisodeKind,
    pub shared_event_id: String,
    pub start: Minute,
    /// Last minute that was still unusual (spikes).
    pub last_hot: Minute,
    /// Events since `start`.
    pub events: u64,
    pub arns: TopK,
    pub agents: TopK,
    pub errors: TopK,
    /// The Start record's baseline statistics, repeated in the End record.
    pub baseline_average: f64,
    pub baseline_duration: i64,
    /// The baseline's top values when the episode started (ARN, user agent, error code).
    pub baseline_tops: [TopK; 3],
    /// The largest 1-minute and 5-minute counts of the episode (spikes), remembered when it ends
    /// so that a burst that recurs stops being unusual ([`SeriesState::recurring`]).
    #[serde(default)]
    pub peak1: u64,
    #[serde(default)]
    pub peak5: u64,
    /// Events (counted) and top values of the minutes after `last_hot` (a spike cooling down):
    /// they join the episode if a later minute is unusual again, and are left out of the End
    /// otherwise, whose window ends at the last unusual minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooling: Option<Box<Cell>>,
    /// A drop not yet reported, and the minute it was found: it is reported once the trail is
    /// known to have delivered data of that account and region for a minute at or after it
    /// (so a delivery outage is never mistaken for a silence), and forgotten without a record
    /// if the key turns out to have been active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Minute>,
}

/// Everything the detector knows about one series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesState {
    pub first_seen: Minute,
    pub last_active: Option<Minute>,
    pub baseline: Baseline,
    /// (minute, count) of the last few active minutes, for 5-minute windows.
    pub recent: VecDeque<(Minute, u64, Cell)>,
    pub episode: Option<Episode>,
    /// Spans `[start, end)` of the spikes reported recently (within the late window), so that
    /// late data never reports a second insight over minutes already reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub past_spikes: Vec<(Minute, Minute)>,
    /// The spikes of the last 7 days: (start, largest 1-minute count, largest 5-minute count).
    /// Once a key has had two, a burst no larger than the second largest is its routine, not an
    /// insight: a new job is reported on its first two occurrences, never from its third.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recurring: Vec<(Minute, u64, u64)>,
}

/// How far a reader has read a store's arrival log (what it means is the store's own). Part of
/// the detector's state; the stores take and return it ([`crate::store::DeltaRead::arrivals`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrivalCursor {
    /// The memory store: entries of its log read. DynamoDB: the first arrival hour still read.
    pub position: i64,
    /// DynamoDB: the hints already taken from the arrival hours still read.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub seen: BTreeSet<String>,
}

/// The detector's whole state: what storage saves between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectorState {
    /// Last minute evaluated.
    pub watermark: Option<Minute>,
    /// First minute with any activity: warm-up counts from here.
    pub history_start: Option<Minute>,
    #[serde(with = "series_as_list")]
    pub series: BTreeMap<SeriesKey, SeriesState>,
    /// Records produced but not yet delivered to every destination (see the detect pipeline).
    pub outbox: Vec<Pending>,
    /// The latest records, newest last, for reviewing.
    pub recent: VecDeque<InsightRecord>,
    /// Records that could not be delivered after every attempt, kept until the dead-letter
    /// place accepts them (and, bounded, for `trailsight insights`).
    #[serde(default)]
    pub dead_letters: VecDeque<Pending>,
    /// Per hour partition read within the late window: the parts already evaluated, so that a
    /// part arriving later is told apart (late data).
    #[serde(default)]
    pub consumed: BTreeMap<Minute, BTreeSet<String>>,
    /// Where the store's arrival log was read up to.
    #[serde(default)]
    pub arrivals: ArrivalCursor,
    /// Series forgotten after idling longer than `evict_idle_minutes`, since the state began.
    #[serde(default)]
    pub evicted: u64,
    /// Per account and region, the latest minute of data read (see [`Episode::held`]).
    #[serde(default)]
    pub delivered: Delivered,
    /// While set, the state is being rebuilt from the table (history arrived before it began):
    /// minutes up to this one were judged before, so their records are not published again.
    #[serde(default)]
    pub rebuild_through: Option<Minute>,
    /// During a rebuild: `sharedEventID`s of insights found in history too old to report, whose
    /// End is not reported either.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub rebuild_suppressed: BTreeSet<String>,
    /// Principal insights (opt-in): the principals tracked, per account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub principals: Principals,
    /// Principal-minutes refused because their account was at `max_principals_per_account`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub principals_untracked: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Dead letters kept in the state at most (the oldest go first; they are also written to the
/// dead-letter place when one is configured).
pub const DEAD_LETTERS_KEPT: usize = 100;

/// A record on its way out: which destinations accepted it, how many runs failed to deliver it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "PendingRepr")]
pub struct Pending {
    pub record: InsightRecord,
    /// Destinations that accepted it.
    #[serde(default)]
    pub delivered: Vec<String>,
    /// Runs whose delivery failed for at least one destination.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
}

impl Pending {
    pub fn new(record: InsightRecord) -> Self {
        Pending {
            record,
            delivered: Vec::new(),
            attempts: 0,
            last_error: None,
        }
    }
}

/// A stored outbox entry: today's form, or a bare record (states saved before delivery was
/// tracked per destination).
#[derive(Deserialize)]
#[serde(untagged)]
enum PendingRepr {
    Tracked {
        record: InsightRecord,
        #[serde(default)]
        delivered: Vec<String>,
        #[serde(default)]
        attempts: u32,
        #[serde(default)]
        last_error: Option<String>,
    },
    Bare(InsightRecord),
}

impl From<PendingRepr> for Pending {
    fn from(repr: PendingRepr) -> Self {
        match repr {
            PendingRepr::Tracked {
                record,
                delivered,
                attempts,
                last_error,
            } => Pending {
                record,
                delivered,
                attempts,
                last_error,
            },
            PendingRepr::Bare(record) => Pending::new(record),
        }
    }
}

mod series_as_list {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<SeriesKey, SeriesState>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<SeriesKey, SeriesState>, D::Error> {
        Ok(Vec::<(SeriesKey, SeriesState)>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

impl DetectorState {
    /// Starts over from `from_hour` (history arrived before the state began: a backfill after
    /// the first runs): baselines and episodes are rebuilt from the table, minute by minute, up
    /// to the present, and only what was never reported is reported ([`Self::rebuilt`]). The
    /// outbox, the recent records, the dead letters and the arrival cursor are kept.
    pub fn start_rebuild(&mut self, from_hour: Minute) {
        let through = self.watermark.max(self.rebuild_through);
        let old = std::mem::take(self);
        *self = DetectorState {
            watermark: Some(from_hour - 1),
            outbox: old.outbox,
            recent: old.recent,
            dead_letters: old.dead_letters,
            arrivals: old.arrivals,
            evicted: old.evicted,
            rebuild_through: through,
            ..DetectorState::default()
        };
    }

    /// Filters the records of minutes evaluated during a rebuild: a Start already reported (the
    /// same series and `eventTime` among the recent records) is not reported again and the
    /// episode takes the reported `sharedEventID`; an insight older than `alert_from` is history,
    /// not reported (nor its End); the rest (what late history revealed) is reported. Ends the
    /// rebuild once the watermark has caught up.
    ///
    /// `records` are what [`Self::evaluate_minute`] just returned, so the last `records.len()` of
    /// the recent records: they are compared with the records before them only (a record
    /// reported before the rebuild has the same `eventID` as its recomputed self).
    pub fn rebuilt(
        &mut self,
        records: Vec<InsightRecord>,
        alert_from: Minute,
    ) -> Vec<InsightRecord> {
        let Some(through) = self.rebuild_through else {
            return records;
        };
        let own = self.recent.len().saturating_sub(records.len());
        debug_assert!(records.len() > RECENT_KEPT || self.recent.range(own..).eq(records.iter()));
        let mut kept = Vec::new();
        for record in records {
            let key = record.series();
            let shared = record.shared_event_id.clone();
            let earlier = || self.recent.range(..own);
            let reported = earlier()
                .find(|r| {
                    r.insight_details.state == record.insight_details.state
                        && r.event_time == record.event_time
                        && r.series() == key
                })
                .map(|r| r.shared_event_id.clone());
            match record.insight_details.state {
                crate::insight::InsightState::Start => {
                    if let Some(previous_id) = reported {
                        if let Some(episode) = self
                            .series
                            .get_mut(&key)
                            .and_then(|s| s.episode.as_mut())
                            .filter(|e| e.shared_event_id == shared)
                        {
                            episode.shared_event_id = previous_id;
                        }
                    } else if crate::minute::parse_minute(&record.event_time)
                        .is_some_and(|m| m < alert_from)
                    {
                        self.rebuild_suppressed.insert(shared);
                    } else {
                        kept.push(record);
                    }
                }
                crate::insight::InsightState::End => {
                    let ended_before = earlier().any(|r| {
                        r.insight_details.state == crate::insight::InsightState::End
                            && r.shared_event_id == shared
                    });
                    if reported.is_none()
                        && !ended_before
                        && !self.rebuild_suppressed.contains(&shared)
                    {
                        kept.push(record);
                    }
                }
            }
        }
        // Only what is reported stays among the recent records.
        self.recent.truncate(own);
        self.recent.extend(kept.iter().cloned());
        if self.watermark.is_some_and(|w| w >= through) {
            self.rebuild_through = None;
            self.rebuild_suppressed.clear();
        }
        kept
    }

    /// Forgets series idle for `evict_idle_minutes` with no open insight (checked once a day),
    /// and the spans of reported spikes older than the late window.
    fn evict_idle(&mut self, config: &DetectorConfig, minute: Minute) {
        let before = self.series.len();
        self.series.retain(|key, state| {
            let idle_since = state.last_active.unwrap_or(state.first_seen);
            let keep = state.episode.is_some() || minute - idle_since < config.evict_idle_minutes;
            if !keep {
                tracing::debug!(series = %key, idle_minutes = minute - idle_since, "Series evicted.");
            }
            keep
        });
        self.evicted += (before - self.series.len()) as u64;
        self.evict_idle_principals(config, minute);
        let proof_from = minute - config.drop_hold_minutes - 2 * DELIVERY_PROOF_MINUTES;
        for regions in self.delivered.values_mut() {
            for buckets in regions.values_mut() {
                buckets.retain(|b| *b >= proof_from);
            }
        }
        let horizon = minute - config.late_window_minutes - config.cooldown_minutes;
        for state in self.series.values_mut() {
            state.past_spikes.retain(|(_, end)| *end >= horizon);
        }
    }

    /// Open episodes, by series.
    pub fn open(&self) -> impl Iterator<Item = (&SeriesKey, &Episode)> {
        self.series
            .iter()
            .filter_map(|(k, s)| Some((k, s.episode.as_ref()?)))
    }

    /// Evaluates one minute. `cells` holds the minute's activity per series (absent = none).
    pub fn evaluate_minute(
        &mut self,
        config: &DetectorConfig,
        minute: Minute,
        cells: &HashMap<SeriesKey, Cell>,
    ) -> Vec<InsightRecord> {
        if self.watermark.is_some_and(|w| minute <= w) {
            return Vec::new();
        }
        if self.history_start.is_none() && !cells.is_empty() {
            self.history_start = Some(minute);
        }
        let warm = self
            .history_start
            .is_some_and(|start| minute - start >= config.warmup_minutes);
        let principals = self.prepare_principals(config, minute, cells, warm);
        for key in cells.keys() {
            if principals.refused.contains(key) {
                continue;
            }
            note_delivered(&mut self.delivered, key, minute);
            if !self.series.contains_key(key) {
                self.series.insert(
                    key.clone(),
                    SeriesState {
                        first_seen: minute,
                        ..SeriesState::default()
                    },
                );
            }
        }
        let mut out = principals.records;
        let day_begins = minute.rem_euclid(MINUTES_PER_DAY) == 0;
        let hour_ends = (minute + 1).rem_euclid(60) == 0;
        if day_begins {
            self.evict_idle(config, minute);
        }
        for (key, state) in &mut self.series {
            let cell = if cells.is_empty() {
                None
            } else {
                cells.get(key)
            };
            let judged = warm
                && config.api_filter.admits(key)
                && principal::judges(config, &self.principals, key, state, minute);
            drop::confirm(config, &self.delivered, key, state, minute, &mut out);
            state.evaluate(
                config,
                Arrival {
                    key,
                    minute,
                    cell,
                    judged,
                    floor: principals.floors.get(key).copied(),
                },
                &mut out,
            );
            drop::confirm(config, &self.delivered, key, state, minute, &mut out);
            if hour_ends {
                state.baseline.close_hour(minute);
            }
        }
        if config.principal_insights {
            self.note_principal_bursts(minute, cells);
        }
        self.watermark = Some(minute);
        self.remember(&out);
        out
    }
}

fn counted(config: &DetectorConfig, cell: &Cell) -> u64 {
    if config.ignore_aws_service_callers {
        cell.count.saturating_sub(cell.service)
    } else {
        cell.count
    }
}

/// The cell as the detector counts it: without AWS services' events (count and values) under
/// `ignore_aws_service_callers`.
fn counted_cell<'a>(config: &DetectorConfig, cell: &'a Cell) -> std::borrow::Cow<'a, Cell> {
    if config.ignore_aws_service_callers && cell.service > 0 {
        std::borrow::Cow::Owned(cell.without_services())
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// A series' minute as it reaches the detector.
struct Arrival<'a> {
    key: &'a SeriesKey,
    minute: Minute,
    /// Its cell (none: no activity).
    cell: Option<&'a Cell>,
    /// Whether insights may open (the trail is warm and the API admitted).
    judged: bool,
    /// Principal series: the account's bar for the API (its 1- and 5-minute peaks), which a
    /// principal's spike must clear too.
    floor: Option<(u64, u64)>,
}

/// The minute being judged, as the rules see it.
struct Judged<'a> {
    key: &'a SeriesKey,
    minute: Minute,
    /// Its cell as counted ([`counted_cell`]).
    cell: Option<&'a Cell>,
    /// Its count.
    x: u64,
    /// Its count and those of the active minutes of the four before.
    x5: u64,
    /// The baseline's expectation for it.
    expected: Expectation,
    heat: Heat,
    /// Whether insights may open.
    judged: bool,
}

impl Judged<'_> {
    fn day(&self) -> i64 {
        self.minute.div_euclid(MINUTES_PER_DAY)
    }
}

impl SeriesState {
    /// Judges one minute of the series: the spike rule ([`spike`]), what the baseline learns
    /// ([`learning`]) and the drop rule ([`drop`]), then keeps the minute for 5-minute windows.
    fn evaluate(
        &mut self,
        config: &DetectorConfig,
        arrival: Arrival,
        out: &mut Vec<InsightRecord>,
    ) {
        let Arrival {
            key,
            minute,
            cell,
            judged,
            floor,
        } = arrival;
        let counted_view = cell.map(|c| counted_cell(config, c));
        let cell = counted_view.as_deref();
        let x = cell.map(|c| counted(config, c)).unwrap_or(0);
        let idle = x == 0
            && self.episode.is_none()
            && self.recent.back().is_none_or(|(m, _, _)| *m <= minute - 5);
        if idle {
            // An idle minute of a quiet key: zero teaches nothing and no spike can open; only a
            // drop can.
            self.recent.clear();
            drop::judge_silence(config, self, key, minute, judged);
            return;
        }
        let expected = self.baseline.expect(minute);
        while self
            .recent
            .front()
            .is_some_and(|(m, _, _)| *m <= minute - 5)
        {
            self.recent.pop_front();
        }
        let x5 = x + self.recent.iter().map(|(_, c, _)| *c).sum::<u64>();
        let now = Judged {
            key,
            minute,
            cell,
            x,
            x5,
            expected,
            heat: {
                let (bar1, bar5) = self.bar(key, minute);
                let (floor1, floor5) = floor.unwrap_or_default();
                let min_calls = if key.principal.is_some() {
                    config.principal_min_calls
                } else {
                    config.min_calls
                };
                heat(
                    config,
                    min_calls,
                    x,
                    x5,
                    expected,
                    (bar1.max(floor1), bar5.max(floor5)),
                )
            },
            judged,
        };

        learning::learn_events(&mut self.baseline, &now);
        spike::judge(config, self, &now, out);
        learning::learn_rate(config, self, &now);
        learning::learn_rhythm(self, &now);
        drop::judge(config, self, &now, out);

        if let Some(cell) = cell
            && x > 0
        {
            self.last_active = Some(minute);
            self.recent.push_back((minute, x, cell.clone()));
        }
    }
}

fn merge_cell(episode: &mut Episode, cell: &Cell) {
    episode.arns.merge(&cell.arns);
    episode.agents.merge(&cell.agents);
    episode.errors.merge(&cell.errors);
}

/// The baseline window's events and events per value (ARN, user agent, error code): from its
/// start up to (not including) `start`, given that the daily totals already hold every minute up
/// to `now` (whose own count and cell are `current`).
fn baseline_window(
    state: &SeriesState,
    start: Minute,
    now: Minute,
    current: Option<(u64, &Cell)>,
) -> (u64, [TopK; 3]) {
    let start_day = start.div_euclid(MINUTES_PER_DAY);
    let through_start_day = state.baseline.daily_events.sum_in(start_day - 7, start_day);
    let mut values = state.baseline.values_in(start_day - 7, start_day);
    let on_start_day = |m: Minute| m.div_euclid(MINUTES_PER_DAY) == start_day;
    let mut after = 0;
    let recent = state
        .recent
        .iter()
        .filter(|(m, _, _)| *m >= start && *m < now)
        .map(|(m, c, cell)| (*m, *c, cell));
    for (m, count, cell) in recent.chain(current.map(|(c, cell)| (now, c, cell))) {
        if !on_start_day(m) {
            continue;
        }
        after += count;
        for (top, minute_top) in values
            .iter_mut()
            .zip([&cell.arns, &cell.agents, &cell.errors])
        {
            for (value, n) in minute_top.sorted() {
                top.subtract(value, n);
            }
        }
    }
    (through_start_day.saturating_sub(after), values)
}

fn new_episode(
    kind: EpisodeKind,
    key: &SeriesKey,
    state: &SeriesState,
    start: Minute,
    now: Minute,
    current: Option<(u64, &Cell)>,
) -> Episode {
    let duration = baseline_duration(start);
    let (events, baseline_tops) = baseline_window(state, start, now, current);
    // Spikes of this series that started at the same minute and ended (see the module's
    // "Identities"); drops never share a start.
    let occurrence = match kind {
        EpisodeKind::Spike => state
            .recurring
            .iter()
            .filter(|(s, _, _)| *s == start)
            .count(),
        EpisodeKind::Drop => 0,
    };
    Episode {
        kind,
        shared_event_id: shared_event_id(key, kind.as_str(), start, occurrence),
        start,
        last_hot: start,
        events: 0,
        arns: TopK::default(),
        agents: TopK::default(),
        errors: TopK::default(),
        baseline_average: average(events, duration),
        baseline_duration: duration,
        baseline_tops,
        peak1: 0,
        peak5: 0,
        cooling: None,
        held: None,
    }
}

fn attribution_list(top: &TopK, minutes: i64) -> Vec<AttributionValue> {
    top.sorted()
        .into_iter()
        .take(TOP_REPORTED)
        .map(|(value, count)| AttributionValue {
            value: value.to_owned(),
            average: average(count, minutes),
        })
        .collect()
}

fn attributions(
    key: &SeriesKey,
    insight: [&TopK; 3],
    insight_minutes: i64,
    baseline: [&TopK; 3],
    baseline_minutes: i64,
) -> Vec<Attribution> {
    // A principal's service-wide series counts the APIs where the others count error codes.
    let third = if key.is_service_wide() {
        "eventName"
    } else {
        "errorCode"
    };
    let names = ["userIdentityArn", "userAgent", third];
    let kept = if key.insight_type() == InsightType::ApiErrorRateInsight {
        2
    } else {
        3
    };
    (0..kept)
        .map(|i| Attribution {
            attribute: names[i].to_owned(),
            insight: attribution_list(insight[i], insight_minutes),
            baseline: attribution_list(baseline[i], baseline_minutes),
        })
        .collect()
}

/// The Start record: its insight statistics are the first minute's (`first_count` events counted,
/// values in `first_minute`).
fn start_record(
    key: &SeriesKey,
    episode: &Episode,
    first_count: u64,
    first_minute: &Cell,
) -> InsightRecord {
    let [arns, agents, errors] = &episode.baseline_tops;
    let mut record = build_record(RecordParts {
        key,
        state: InsightState::Start,
        event_time: episode.start,
        shared_event_id: &episode.shared_event_id,
        statistics: Statistics {
            baseline: Average {
                average: episode.baseline_average,
            },
            insight: Average {
                average: average(first_count, 1),
            },
            insight_duration: 1,
            baseline_duration: episode.baseline_duration,
        },
        attributions: attributions(
            key,
            [
                &first_minute.arns,
                &first_minute.agents,
                &first_minute.errors,
            ],
            1,
            [arns, agents, errors],
            episode.baseline_duration,
        ),
    });
    name_top_api(key, &mut record, &first_minute.errors);
    record
}

/// A principal's service-wide record names its top API (its cells count APIs in `errors`).
fn name_top_api(key: &SeriesKey, record: &mut InsightRecord, apis: &TopK) {
    if key.is_service_wide()
        && let Some((api, _)) = apis.sorted().into_iter().next()
    {
        record.insight_details.event_name = api.to_owned();
        crate::insight::fit_record(record);
    }
}

fn end_record(key: &SeriesKey, episode: &Episode, duration: i64) -> InsightRecord {
    let duration = duration.max(1);
    let [arns, agents, errors] = &episode.baseline_tops;
    let mut record = build_record(RecordParts {
        key,
        state: InsightState::End,
        event_time: episode.start + duration,
        shared_event_id: &episode.shared_event_id,
        statistics: Statistics {
            baseline: Average {
                average: episode.baseline_average,
            },
            insight: Average {
                average: if episode.kind == EpisodeKind::Drop {
                    0.0
                } else {
                    average(episode.events, duration)
                },
            },
            insight_duration: duration,
            baseline_duration: episode.baseline_duration,
        },
        attributions: attributions(
            key,
            [&episode.arns, &episode.agents, &episode.errors],
            duration,
            [arns, agents, errors],
            episode.baseline_duration,
        ),
    });
    name_top_api(key, &mut record, &episode.errors);
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insight::{event_id, shared_event_id};

    fn key() -> SeriesKey {
        SeriesKey {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            event_source: "iam.amazonaws.com".into(),
            event_name: "CreateUser".into(),
            error_code: None,
            principal: None,
        }
    }

    const START: Minute = 29_540_000;

    #[test]
    fn an_episode_is_named_by_its_series_kind_and_start() {
        let key = key();
        let fresh = SeriesState::default();
        let spike = new_episode(EpisodeKind::Spike, &key, &fresh, START, START, None);
        assert_eq!(
            spike.shared_event_id,
            shared_event_id(&key, "Spike", START, 0)
        );
        let again = new_episode(EpisodeKind::Spike, &key, &fresh, START, START + 3, None);
        assert_eq!(again.shared_event_id, spike.shared_event_id);
        let drop = new_episode(EpisodeKind::Drop, &key, &fresh, START, START, None);
        assert_ne!(drop.shared_event_id, spike.shared_event_id);
        // A spike of a start minute that an ended spike already had is told apart.
        let after_one = SeriesState {
            recurring: vec![(START, 40, 90), (START - 600, 40, 90)],
            ..SeriesState::default()
        };
        let second = new_episode(EpisodeKind::Spike, &key, &after_one, START, START + 9, None);
        assert_eq!(
            second.shared_event_id,
            shared_event_id(&key, "Spike", START, 1)
        );
        assert_ne!(second.shared_event_id, spike.shared_event_id);
        let later = new_episode(
            EpisodeKind::Spike,
            &key,
            &after_one,
            START + 1,
            START + 9,
            None,
        );
        assert_eq!(
            later.shared_event_id,
            shared_event_id(&key, "Spike", START + 1, 0)
        );
        // Start and End records: one sharedEventID, an eventID each.
        let start = start_record(&key, &spike, 5, &Cell::default());
        let end = end_record(&key, &spike, 4);
        assert_eq!(start.shared_event_id, end.shared_event_id);
        assert_eq!(
            start.event_id,
            event_id(&spike.shared_event_id, InsightState::Start)
        );
        assert_eq!(
            end.event_id,
            event_id(&spike.shared_event_id, InsightState::End)
        );
    }

    #[test]
    fn a_rebuild_does_not_report_again_what_it_recomputes_with_the_same_ids() {
        let key = key();
        let episode = new_episode(
            EpisodeKind::Spike,
            &key,
            &SeriesState::default(),
            START,
            START,
            None,
        );
        let start = start_record(&key, &episode, 5, &Cell::default());
        let mut state = DetectorState {
            watermark: Some(START),
            rebuild_through: Some(START + 100),
            ..DetectorState::default()
        };
        state.remember(std::slice::from_ref(&start));
        state.series.insert(
            key.clone(),
            SeriesState {
                episode: Some(episode.clone()),
                ..SeriesState::default()
            },
        );
        // The rebuild evaluates the minute again: the same Start, the same eventID.
        state.remember(std::slice::from_ref(&start));
        assert!(state.rebuilt(vec![start.clone()], START - 10).is_empty());
        assert_eq!(state.recent, VecDeque::from([start.clone()]));
        // Its End was never reported: it is.
        let end = end_record(&key, &episode, 4);
        state.remember(std::slice::from_ref(&end));
        assert_eq!(
            state.rebuilt(vec![end.clone()], START - 10),
            vec![end.clone()]
        );
        assert_eq!(state.recent, VecDeque::from([start.clone(), end.clone()]));
        // Evaluated again (a second rebuild): nothing.
        state.remember(std::slice::from_ref(&end));
        assert!(state.rebuilt(vec![end.clone()], START - 10).is_empty());
        assert_eq!(state.recent.len(), 2);
    }

    #[test]
    fn a_rebuilt_episode_keeps_an_identifier_reported_by_an_earlier_version() {
        // Records published before identifiers were derived carry random ones: the rebuilt
        // episode takes the reported one, so its End pairs with the Start consumers saw.
        let key = key();
        let episode = new_episode(
            EpisodeKind::Spike,
            &key,
            &SeriesState::default(),
            START,
            START,
            None,
        );
        let recomputed = start_record(&key, &episode, 5, &Cell::default());
        let mut reported = recomputed.clone();
        reported.shared_event_id = "0b6f3f5e-6b1e-4a53-9a52-6f1d7f3b2c11".into();
        reported.event_id = "5d7c1e2a-8f43-4c0e-b1a6-3e2f9d8c7b65".into();
        let mut state = DetectorState {
            watermark: Some(START),
            rebuild_through: Some(START + 100),
            ..DetectorState::default()
        };
        state.remember(std::slice::from_ref(&reported));
        state.series.insert(
            key.clone(),
            SeriesState {
                episode: Some(episode),
                ..SeriesState::default()
            },
        );
        state.remember(std::slice::from_ref(&recomputed));
        assert!(state.rebuilt(vec![recomputed], START - 10).is_empty());
        assert_eq!(state.recent, VecDeque::from([reported.clone()]));
        let open = state.series[&key].episode.as_ref().unwrap();
        assert_eq!(open.shared_event_id, reported.shared_event_id);
    }
}
