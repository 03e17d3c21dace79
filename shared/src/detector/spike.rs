//! The spike rule: how unusual a minute is ([`heat`]), and an open spike's course: it opens on a
//! hot minute or a hot 5-minute window ([`open`]), continues while minutes stay clearly high,
//! cools down over quiet minutes, and ends after `cooldown_minutes` of them ([`follow`]).
//!
//! Also the recurring-bursts bar ([`SeriesState::bar`]): once a key's spikes recur, a burst no
//! larger than its routine is not one.

use super::*;

/// Tail probability under which a minute keeps an open spike going.
const CONTINUE_ALPHA: f64 = 1e-3;

/// Spikes a key must have had in the last 7 days before their size becomes its routine.
const ROUTINE_AFTER_EPISODES: usize = 2;

/// How much a routine burst may vary: a burst up to half again the routine's size (and at least
/// two calls more) is still the routine. Real jobs vary by a call or two from run to run (the
/// simulator's jobs by ±10–25%, sessions of a newly adopted API by more), and a bar at the exact
/// size reported a nightly job again on its fourth night for one call more.
pub(super) fn routine_bar(size: u64) -> u64 {
    size + (size / 2).max(2)
}

impl SeriesState {
    /// The bar a minute's 1- and 5-minute counts must clear: the week's usual peaks, and once
    /// the key's spikes recur, the second largest of them with the routine's margin
    /// ([`Self::recurring`], [`routine_bar`]).
    pub(super) fn bar(&self, minute: Minute) -> (u64, u64) {
        let (peak1, peak5) = self.baseline.peaks(minute);
        let week: Vec<&(Minute, u64, u64)> = self
            .recurring
            .iter()
            .filter(|(start, _, _)| *start < minute && minute - start <= MINUTES_PER_WEEK)
            .collect();
        if week.len() < ROUTINE_AFTER_EPISODES {
            return (peak1, peak5);
        }
        let nth = |values: Vec<u64>| {
            let mut values = values;
            values.sort_unstable_by(|a, b| b.cmp(a));
            values
                .get(ROUTINE_AFTER_EPISODES - 1)
                .copied()
                .map_or(0, routine_bar)
        };
        (
            peak1.max(nth(week.iter().map(|e| e.1).collect())),
            peak5.max(nth(week.iter().map(|e| e.2).collect())),
        )
    }

    /// Remembers a spike that ended, for [`Self::bar`]; forgets those older than a week.
    pub(super) fn remember_spike(&mut self, episode: &Episode, now: Minute) {
        self.recurring
            .push((episode.start, episode.peak1, episode.peak5));
        self.recurring
            .retain(|(start, _, _)| now - start <= MINUTES_PER_WEEK);
    }
}

/// How unusual a minute is: its count `x`, and `x5` over the five minutes ending with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Heat {
    /// The minute alone opens a spike.
    pub hot1: bool,
    /// The five minutes ending with it open a spike.
    pub hot5: bool,
    /// Clearly high: keeps an open spike going.
    pub still_hot: bool,
}

impl Heat {
    /// Whether the minute can open a spike.
    pub fn opens(self) -> bool {
        self.hot1 || self.hot5
    }

    /// Whether the minute keeps an open spike from cooling down.
    pub fn keeps_going(self) -> bool {
        self.hot1 || self.hot5 || self.still_hot
    }
}

pub(super) fn heat(
    config: &DetectorConfig,
    x: u64,
    x5: u64,
    expected: Expectation,
    (peak1, peak5): (u64, u64),
) -> Heat {
    let sensitivity = config.sensitivity;
    Heat {
        hot1: x >= config.min_calls
            && x as f64 >= sensitivity.min_ratio() * expected.mean
            && x > peak1
            && upper_tail(x, expected.mean, expected.variance) < sensitivity.alpha(),
        hot5: x5 >= config.min_calls
            && x5 as f64 >= sensitivity.min_ratio() * 5.0 * expected.mean
            && x5 > peak5
            && upper_tail(x5, 5.0 * expected.mean, 5.0 * expected.variance) < sensitivity.alpha(),
        still_hot: x >= 2
            && x as f64 >= 2.0 * expected.mean
            && upper_tail(x, expected.mean, expected.variance) < CONTINUE_ALPHA,
    }
}

/// Applies the spike rule to the minute: follows the series' open spike, or opens one. A series
/// in a drop opens no spike.
pub(super) fn judge(
    config: &DetectorConfig,
    state: &mut SeriesState,
    now: &Judged,
    out: &mut Vec<InsightRecord>,
) {
    match &state.episode {
        Some(episode) if episode.kind == EpisodeKind::Spike => follow(config, state, now, out),
        None if now.judged && now.heat.opens() => open(state, now, out),
        _ => {}
    }
}

/// The open spike takes the minute: its events wait in [`Episode::cooling`] until a later hot
/// minute (or this one) brings them in; it ends once `cooldown_minutes` have passed since the
/// last hot minute.
fn follow(
    config: &DetectorConfig,
    state: &mut SeriesState,
    now: &Judged,
    out: &mut Vec<InsightRecord>,
) {
    let Some(episode) = state.episode.as_mut() else {
        return;
    };
    if let Some(cell) = now.cell {
        let cooling = episode.cooling.get_or_insert_with(Box::default);
        cooling.count += now.x;
        cooling.arns.merge(&cell.arns);
        cooling.agents.merge(&cell.agents);
        cooling.errors.merge(&cell.errors);
    }
    episode.peak1 = episode.peak1.max(now.x);
    episode.peak5 = episode.peak5.max(now.x5);
    if now.heat.keeps_going() {
        episode.last_hot = now.minute;
        if let Some(cooling) = episode.cooling.take() {
            episode.events += cooling.count;
            merge_cell(episode, &cooling);
        }
    }
    if now.minute - episode.last_hot >= config.cooldown_minutes {
        end(state, now, out);
    }
}

/// Ends the open spike: its End's window stops after the last hot minute (the cooling minutes
/// are left out), and the spike is remembered (late data, recurring bursts).
fn end(state: &mut SeriesState, now: &Judged, out: &mut Vec<InsightRecord>) {
    let Some(episode) = state.episode.take() else {
        return;
    };
    state
        .past_spikes
        .push((episode.start, episode.last_hot + 1));
    state.remember_spike(&episode, now.minute);
    out.push(end_record(
        now.key,
        &episode,
        episode.last_hot - episode.start + 1,
    ));
}

/// Opens a spike on a hot minute: it starts there, or, when only the 5-minute window is hot, at
/// the window's first active minute, and takes the window's minutes from its start.
fn open(state: &mut SeriesState, now: &Judged, out: &mut Vec<InsightRecord>) {
    let (minute, x) = (now.minute, now.x);
    let start = if now.heat.hot1 {
        minute
    } else {
        state.recent.front().map(|(m, _, _)| *m).unwrap_or(minute)
    };
    let mut episode = new_episode(
        EpisodeKind::Spike,
        now.key,
        state,
        start,
        minute,
        now.cell.map(|c| (x, c)),
    );
    let mut first_minute = (0, Cell::default());
    for (m, c, recent_cell) in state.recent.iter().filter(|(m, _, _)| *m >= start) {
        episode.events += c;
        merge_cell(&mut episode, recent_cell);
        if *m == start {
            first_minute = (*c, recent_cell.clone());
        }
    }
    if let Some(cell) = now.cell {
        episode.events += x;
        merge_cell(&mut episode, cell);
        if start == minute {
            first_minute = (x, cell.clone());
        }
    }
    episode.last_hot = minute;
    episode.peak1 = state
        .recent
        .iter()
        .filter(|(m, _, _)| *m >= start)
        .map(|(_, c, _)| *c)
        .max()
        .unwrap_or(0)
        .max(x);
    episode.peak5 = now.x5;
    out.push(start_record(
        now.key,
        &episode,
        first_minute.0,
        &first_minute.1,
    ));
    state.episode = Some(episode);
}
