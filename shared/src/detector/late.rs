//! Late data: cells that reach storage after their minute was evaluated.
//!
//! The detect pipeline finds them (parts of an hour partition it had not read when it judged
//! the hour's minutes) and hands them here, per series, with the whole of each minute as it is
//! now. For each late minute, in time order:
//! - a **spike** inside the late data is judged as the minute would have been (the same tests,
//!   against the baseline as it is now) and, unless the minute is already inside a reported
//!   spike, reported late: its Start and End carry the true minutes, so `eventTime` is in the
//!   past. A late spike that runs into minutes not yet at hand stays open, as any other;
//! - a **drop** that the late data shows was no silence ends at the first late active minute;
//! - the **baseline** learns the late counts: events and active minutes per day, peaks, top
//!   values, and the hour-of-day rates (the hour's sums are corrected, weighted by how many
//!   times that hour of day has been folded in since; minutes inside a spike teach nothing, as
//!   on time).

use super::*;

/// One series' late data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LateCells {
    /// Minute → the cell that arrived late (every minute at most the watermark).
    pub new: BTreeMap<Minute, Cell>,
    /// Minute → the minute's whole cell now (what was judged plus what arrived), for every minute
    /// of the hours read, so that 5-minute windows and a late spike's course can be followed.
    pub full: BTreeMap<Minute, Cell>,
}

/// What late data a run judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LateReport {
    /// Late (series, minute) cells judged.
    pub cells: u64,
    /// Events in them.
    pub events: u64,
    /// How far behind the watermark the oldest of them was, in minutes.
    pub max_lateness_minutes: i64,
    /// Spikes found in late data (each reported with a Start and, unless still open, an End).
    pub spikes: usize,
    /// Drops ended because late data showed activity in their silence.
    pub drops_ended: usize,
}

impl DetectorState {
    /// Judges late data (see the module). Returns the records it produced.
    pub fn judge_late(
        &mut self,
        config: &DetectorConfig,
        late: BTreeMap<SeriesKey, LateCells>,
        report: &mut LateReport,
    ) -> Vec<InsightRecord> {
        let mut out = Vec::new();
        let Some(watermark) = self.watermark else {
            return out;
        };
        for (key, cells) in late {
            if key.principal.is_some() && !self.tracks_principal(config, &key) {
                continue;
            }
            let cells = if config.ignore_aws_service_callers {
                LateCells {
                    new: cells
                        .new
                        .iter()
                        .map(|(m, c)| (*m, c.without_services()))
                        .collect(),
                    full: cells
                        .full
                        .iter()
                        .map(|(m, c)| (*m, c.without_services()))
                        .collect(),
                }
            } else {
                cells
            };
            let Some(first) = cells.new.keys().next().copied() else {
                continue;
            };
            if self.history_start.is_none_or(|start| first < start) {
                self.history_start = Some(first);
            }
            let history_start = self.history_start;
            for minute in cells.full.keys() {
                note_delivered(&mut self.delivered, &key, *minute);
            }
            let state = self
                .series
                .entry(key.clone())
                .or_insert_with(|| SeriesState {
                    first_seen: first,
                    ..SeriesState::default()
                });
            state.first_seen = state.first_seen.min(first);
            // Principal series learn late data but report no late spike (their account floor
            // and warm-up are judged on time only).
            let admitted = config.api_filter.admits(&key) && key.principal.is_none();
            let count = |m: Minute| cells.full.get(&m).map(|c| counted(config, c)).unwrap_or(0);
            let window = |m: Minute| (m - 4..=m).map(count).sum::<u64>();
            // Hour sums to correct: (sum, sum of squares) of the change, per hour.
            let mut hour_changes: BTreeMap<Minute, (f64, f64)> = BTreeMap::new();
            for (&minute, new_cell) in &cells.new {
                let x_new = counted(config, new_cell);
                let x = count(minute).max(x_new);
                let x_old = x - x_new;
                let x5 = window(minute);
                let day = minute.div_euclid(MINUTES_PER_DAY);
                report.cells += 1;
                report.events += x_new;
                report.max_lateness_minutes = report.max_lateness_minutes.max(watermark - minute);

                let warm = history_start.is_some_and(|s| minute - s >= config.warmup_minutes);
                let heat = heat(
                    config,
                    config.min_calls,
                    x,
                    x5,
                    state.baseline.expect(minute),
                    state.bar(&key, minute),
                );
                if warm
                    && admitted
                    && x_new > 0
                    && (heat.hot1 || heat.hot5)
                    && !in_spike(state, minute)
                {
                    let start = if heat.hot1 {
                        minute
                    } else {
                        (minute - 4..=minute)
                            .find(|m| count(*m) > 0)
                            .unwrap_or(minute)
                    };
                    out.extend(late_spike(config, &key, state, &cells, start, watermark));
                    report.spikes += 1;
                }

                if x_new > 0 {
                    state.baseline.learn_events(day, x_new, new_cell);
                    if x_old == 0 {
                        state.baseline.learn_active_minute(day);
                    }
                }
                if !in_spike(state, minute) {
                    let change = hour_changes.entry(minute.div_euclid(60) * 60).or_default();
                    change.0 += (x - x_old) as f64;
                    change.1 += (x * x - x_old * x_old) as f64;
                    state.baseline.learn_peaks(day, x, x5);
                }
                // The last minutes feed the next minute's 5-minute window.
                if minute > watermark - 4 {
                    let full_cell = cells.full.get(&minute).unwrap_or(new_cell);
                    state.recent.retain(|(m, _, _)| *m != minute);
                    if x > 0 {
                        let at = state.recent.partition_point(|(m, _, _)| *m < minute);
                        state.recent.insert(at, (minute, x, full_cell.clone()));
                    }
                }
                if x > 0 && x_old == 0 {
                    state.baseline.split_gap(minute);
                }
                if x > 0 {
                    if state.last_active.is_none_or(|last| minute > last) {
                        state.last_active = Some(minute);
                    }
                    let silenced = matches!(&state.episode,
                        Some(e) if e.kind == EpisodeKind::Drop && e.start <= minute);
                    if silenced && let Some(episode) = state.episode.take() {
                        if episode.held.is_none() {
                            out.push(end_record(&key, &episode, minute - episode.start));
                        }
                        report.drops_ended += 1;
                    }
                }
            }
            for (hour, (sum, squares)) in hour_changes {
                state
                    .baseline
                    .learn_late_hour(hour, sum, squares, watermark);
            }
        }
        self.remember(&out);
        out
    }

    /// Keeps records in the recent list.
    pub(super) fn remember(&mut self, records: &[InsightRecord]) {
        for record in records {
            if self.recent.len() == RECENT_KEPT {
                self.recent.pop_front();
            }
            self.recent.push_back(record.clone());
        }
    }
}

/// Whether `minute` lies inside the series' open spike or a spike reported recently.
fn in_spike(state: &SeriesState, minute: Minute) -> bool {
    let open = matches!(&state.episode,
        Some(e) if e.kind == EpisodeKind::Spike && e.start <= minute);
    open || state
        .past_spikes
        .iter()
        .any(|(start, end)| (*start..*end).contains(&minute))
}

/// A spike found in late data, starting at `start`: followed through the minutes at hand until
/// it cools down. Returns its Start and End records; a spike still hot at the watermark stays
/// open (Start only) unless the series already has an open insight.
fn late_spike(
    config: &DetectorConfig,
    key: &SeriesKey,
    state: &mut SeriesState,
    cells: &LateCells,
    start: Minute,
    watermark: Minute,
) -> Vec<InsightRecord> {
    let count = |m: Minute| cells.full.get(&m).map(|c| counted(config, c)).unwrap_or(0);
    // Every minute up to the watermark is at hand: those of the hours read hold the whole of
    // what arrived, and a minute without a cell had no event.
    let mut episode = new_episode(EpisodeKind::Spike, key, state, start, start, None);
    let mut last_hot = start;
    let mut minute = start;
    while minute <= watermark && minute - last_hot < config.cooldown_minutes {
        let x = count(minute);
        let x5 = (minute - 4..=minute).map(count).sum();
        let heat = heat(
            config,
            config.min_calls,
            x,
            x5,
            state.baseline.expect(minute),
            state.bar(key, minute),
        );
        if heat.hot1 || heat.hot5 || heat.still_hot {
            last_hot = minute;
        }
        minute += 1;
    }
    // An on-time spike that began later cannot be taken back: the late one ends where it begins.
    let open_start = match &state.episode {
        Some(e) if e.kind == EpisodeKind::Spike && e.start > start => Some(e.start),
        _ => None,
    };
    let end = open_start.map_or(last_hot + 1, |s| s.min(last_hot + 1));
    for cell in cells.full.range(start..end).map(|(_, cell)| cell) {
        episode.events += counted(config, cell);
        merge_cell(&mut episode, cell);
    }
    for minute in start..end {
        episode.peak1 = episode.peak1.max(count(minute));
        episode.peak5 = episode
            .peak5
            .max((minute - 4..=minute).map(count).sum::<u64>());
    }
    episode.last_hot = end - 1;
    let first_minute = cells.full.get(&start).cloned().unwrap_or_default();
    let mut records = vec![start_record(
        key,
        &episode,
        counted(config, &first_minute),
        &first_minute,
    )];
    let still_going = last_hot + config.cooldown_minutes > watermark && open_start.is_none();
    if still_going && state.episode.is_none() {
        state.episode = Some(episode);
        return records;
    }
    state.past_spikes.push((start, end));
    state.remember_spike(&episode, watermark);
    records.push(end_record(key, &episode, end - start));
    records
}
