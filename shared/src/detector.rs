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

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, upper_tail};
use crate::config::DetectorConfig;
use crate::fold::Cell;
use crate::insight::{
    Attribution, AttributionValue, Average, InsightRecord, InsightState, RecordParts, Statistics,
    average, baseline_duration, build_record,
};
use crate::minute::{MINUTES_PER_DAY, Minute};
use crate::series::{InsightType, SeriesKey};
use crate::topk::{TOP_REPORTED, TopK};

/// A key is regular when its longest gap is at most this many times its average spacing.
const MAX_IRREGULARITY: f64 = 2.0;
/// Tail probability under which a minute keeps an open spike going.
const CONTINUE_ALPHA: f64 = 1e-3;
/// Insight records kept in the state for `trailsight insights`.
const RECENT_KEPT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpisodeKind {
    Spike,
    Drop,
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
    /// Records produced but not yet known to be published (see the detect pipeline).
    pub outbox: Vec<InsightRecord>,
    /// The latest records, newest last, for reviewing.
    pub recent: VecDeque<InsightRecord>,
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
        for key in cells.keys() {
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
        let warm = self
            .history_start
            .is_some_and(|start| minute - start >= config.warmup_minutes);
        let mut out = Vec::new();
        let day_begins = minute.rem_euclid(MINUTES_PER_DAY) == 0;
        let hour_ends = (minute + 1).rem_euclid(60) == 0;
        for (key, state) in &mut self.series {
            if day_begins {
                state.baseline.close_day();
            }
            let cell = if cells.is_empty() {
                None
            } else {
                cells.get(key)
            };
            let judged = warm && config.api_filter.admits(key);
            evaluate_series(config, key, state, minute, cell, judged, &mut out);
            if hour_ends {
                state.baseline.close_hour(minute);
            }
        }
        self.watermark = Some(minute);
        for record in &out {
            if self.recent.len() == RECENT_KEPT {
                self.recent.pop_front();
            }
            self.recent.push_back(record.clone());
        }
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

fn evaluate_series(
    config: &DetectorConfig,
    key: &SeriesKey,
    state: &mut SeriesState,
    minute: Minute,
    cell: Option<&Cell>,
    judged: bool,
    out: &mut Vec<InsightRecord>,
) {
    let x = cell.map(|c| counted(config, c)).unwrap_or(0);
    if x == 0
        && state.episode.is_none()
        && state.recent.back().is_none_or(|(m, _, _)| *m <= minute - 5)
    {
        // An idle minute of a quiet key: zero teaches nothing and no spike can open; only a drop can.
        state.recent.clear();
        if judged && key.insight_type() == InsightType::ApiCallRateInsight {
            maybe_open_drop(config, key, state, minute, out);
        }
        return;
    }
    let day = minute.div_euclid(MINUTES_PER_DAY);
    let expected = state.baseline.expect(minute);
    while state
        .recent
        .front()
        .is_some_and(|(m, _, _)| *m <= minute - 5)
    {
        state.recent.pop_front();
    }
    let x5 = x + state.recent.iter().map(|(_, c, _)| *c).sum::<u64>();
    let (peak1, peak5) = state.baseline.peaks(minute);
    let sensitivity = config.sensitivity;
    let hot1 = x >= config.min_calls
        && x as f64 >= sensitivity.min_ratio() * expected.mean
        && x > peak1
        && upper_tail(x, expected.mean, expected.variance) < sensitivity.alpha();
    let hot5 = x5 >= config.min_calls
        && x5 as f64 >= sensitivity.min_ratio() * 5.0 * expected.mean
        && x5 > peak5
        && upper_tail(x5, 5.0 * expected.mean, 5.0 * expected.variance) < sensitivity.alpha();
    let still_hot = x >= 2
        && x as f64 >= 2.0 * expected.mean
        && upper_tail(x, expected.mean, expected.variance) < CONTINUE_ALPHA;

    // Events count toward the contract's baseline average whatever they are.
    if x > 0 {
        state.baseline.daily_events.add(day, x);
        state.baseline.daily_active_minutes.add(day, 1);
    }

    let in_spike = matches!(&state.episode, Some(e) if e.kind == EpisodeKind::Spike);
    if in_spike {
        let episode = state
            .episode
            .as_mut()
            .filter(|e| e.kind == EpisodeKind::Spike);
        if let Some(episode) = episode {
            if hot1 || hot5 || still_hot {
                episode.last_hot = minute;
            }
            if let Some(cell) = cell {
                episode.events += x;
                merge_cell(episode, cell);
            }
            if minute - episode.last_hot >= config.cooldown_minutes {
                let episode = state.episode.take();
                if let Some(episode) = episode {
                    out.push(end_record(
                        key,
                        &episode,
                        episode.last_hot - episode.start + 1,
                    ));
                }
            }
        }
    } else if judged && (hot1 || hot5) && state.episode.is_none() {
        // The spike starts at its first active minute inside the window that triggered it.
        let start = if hot1 {
            minute
        } else {
            state.recent.front().map(|(m, _, _)| *m).unwrap_or(minute)
        };
        let mut episode = new_episode(EpisodeKind::Spike, state, start, minute, x);
        let mut first_minute = Cell::default();
        for (m, c, recent_cell) in state.recent.iter().filter(|(m, _, _)| *m >= start) {
            episode.events += c;
            merge_cell(&mut episode, recent_cell);
            if *m == start {
                first_minute = recent_cell.clone();
            }
        }
        if let Some(cell) = cell {
            episode.events += x;
            merge_cell(&mut episode, cell);
            if start == minute {
                first_minute = cell.clone();
            }
        }
        episode.last_hot = minute;
        out.push(start_record(key, &episode, &first_minute));
        state.episode = Some(episode);
    }

    // Learning: spike minutes teach the expected rate, not their own.
    let spiking = matches!(&state.episode, Some(e) if e.kind == EpisodeKind::Spike);
    state
        .baseline
        .learn_minute(if spiking { expected.mean } else { x as f64 });
    if !spiking {
        state.baseline.daily_peak_1m.raise(day, x);
        state.baseline.daily_peak_5m.raise(day, x5);
        if let Some(cell) = cell {
            state.baseline.learn_attributions(cell);
        }
    }

    // Rhythm and drops (call-rate series only).
    if key.insight_type() == InsightType::ApiCallRateInsight {
        if x > 0 {
            if let Some(Episode {
                kind: EpisodeKind::Drop,
                ..
            }) = &state.episode
            {
                if let Some(episode) = state.episode.take() {
                    out.push(end_record(key, &episode, minute - episode.start));
                }
            } else if let Some(last) = state.last_active {
                state
                    .baseline
                    .daily_max_gap
                    .raise(day, (minute - last) as u64);
            }
        } else if judged && state.episode.is_none() {
            maybe_open_drop(config, key, state, minute, out);
        }
    }

    if let Some(cell) = cell
        && x > 0
    {
        state.last_active = Some(minute);
        state.recent.push_back((minute, x, cell.clone()));
    }
}

/// Opens a drop when a steady key has been silent for longer than its rhythm allows.
fn maybe_open_drop(
    config: &DetectorConfig,
    key: &SeriesKey,
    state: &mut SeriesState,
    minute: Minute,
    out: &mut Vec<InsightRecord>,
) {
    let Some(last) = state.last_active else {
        return;
    };
    let silent = minute - last;
    // A drop needs activity on each of the previous days: two days after the last call, never.
    let horizon =
        (last.div_euclid(MINUTES_PER_DAY) + config.drop_min_active_days as i64) * MINUTES_PER_DAY;
    if silent < config.min_gap_minutes || minute >= horizon {
        return;
    }
    let day = minute.div_euclid(MINUTES_PER_DAY);
    let longest = state.baseline.longest_gap(minute) as i64;
    if longest == 0 {
        return;
    }
    let threshold = (config.min_gap_minutes as f64)
        .max(config.sensitivity.gap_factor() * longest as f64) as i64;
    if silent < threshold
        || minute - state.first_seen < config.drop_min_active_days as i64 * MINUTES_PER_DAY
    {
        return;
    }
    if !(1..=config.drop_min_active_days as i64)
        .all(|back| state.baseline.daily_events.get(day - back) > 0)
    {
        return;
    }
    // Two ways to be sure the silence is unusual: a regular key (a job every few minutes up to
    // hourly) missed several runs; or, for any key, so many calls were expected that silence is
    // as unlikely as a spike must be.
    let regular = longest <= config.max_steady_gap_minutes
        && state.baseline.irregularity(minute, longest as u64) <= MAX_IRREGULARITY;
    // The hour-of-day rates do not know weekends: a quiet Saturday night would look like a drop,
    // so silence must be far less likely than a spike (alpha squared).
    let unlikely = || {
        let expected = state.baseline.expected_between(last + 1, minute);
        (-expected).exp() < config.sensitivity.alpha().powi(2)
    };
    if !regular && !unlikely() {
        return;
    }
    // The silence became unusual once it outlasted the longest usual gap: the drop starts there.
    let start = (last + longest + 1).min(minute);
    let episode = new_episode(EpisodeKind::Drop, state, start, minute, 0);
    out.push(start_record(key, &episode, &Cell::default()));
    state.episode = Some(episode);
}

fn merge_cell(episode: &mut Episode, cell: &Cell) {
    episode.arns.merge(&cell.arns);
    episode.agents.merge(&cell.agents);
    episode.errors.merge(&cell.errors);
}

/// Events of the series from the baseline window's start up to (not including) `start`, given that
/// the daily totals already hold every minute up to `now` (whose own count is `current`).
fn baseline_events(state: &SeriesState, start: Minute, now: Minute, current: u64) -> u64 {
    let start_day = start.div_euclid(MINUTES_PER_DAY);
    let through_start_day = state.baseline.daily_events.sum_in(start_day - 7, start_day);
    let on_start_day = |m: Minute| m.div_euclid(MINUTES_PER_DAY) == start_day;
    let mut after: u64 = state
        .recent
        .iter()
        .filter(|(m, _, _)| *m >= start && *m < now && on_start_day(*m))
        .map(|(_, c, _)| *c)
        .sum();
    if on_start_day(now) {
        after += current;
    }
    through_start_day.saturating_sub(after)
}

fn new_episode(
    kind: EpisodeKind,
    state: &SeriesState,
    start: Minute,
    now: Minute,
    current: u64,
) -> Episode {
    let duration = baseline_duration(start);
    let events = baseline_events(state, start, now, current);
    let b = &state.baseline;
    Episode {
        kind,
        shared_event_id: uuid::Uuid::new_v4().to_string(),
        start,
        last_hot: start,
        events: 0,
        arns: TopK::default(),
        agents: TopK::default(),
        errors: TopK::default(),
        baseline_average: average(events, duration),
        baseline_duration: duration,
        baseline_tops: [b.arns.clone(), b.agents.clone(), b.errors.clone()],
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
    let names = ["userIdentityArn", "userAgent", "errorCode"];
    let kept = if key.insight_type() == InsightType::ApiCallRateInsight {
        3
    } else {
        2
    };
    (0..kept)
        .map(|i| Attribution {
            attribute: names[i].to_owned(),
            insight: attribution_list(insight[i], insight_minutes),
            baseline: attribution_list(baseline[i], baseline_minutes),
        })
        .collect()
}

fn start_record(key: &SeriesKey, episode: &Episode, first_minute: &Cell) -> InsightRecord {
    let [arns, agents, errors] = &episode.baseline_tops;
    build_record(RecordParts {
        key,
        state: InsightState::Start,
        event_time: episode.start,
        shared_event_id: &episode.shared_event_id,
        statistics: Statistics {
            baseline: Average {
                average: episode.baseline_average,
            },
            insight: Average {
                average: average(counted_cell(first_minute), 1),
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
    })
}

fn counted_cell(cell: &Cell) -> u64 {
    cell.count
}

fn end_record(key: &SeriesKey, episode: &Episode, duration: i64) -> InsightRecord {
    let duration = duration.max(1);
    let [arns, agents, errors] = &episode.baseline_tops;
    build_record(RecordParts {
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
    })
}
