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
    /// ([`Self::recurring`], [`routine_bar`]). An account series' peaks have the few-days
    /// margin ([`crate::baseline::DayRing::peak_bar`]); a principal's series have their
    /// principal's usual burst instead.
    pub(super) fn bar(&self, key: &SeriesKey, minute: Minute) -> (u64, u64) {
        let (peak1, peak5) = self.baseline.peaks(minute, key.principal.is_none());
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
    min_calls: u64,
    x: u64,
    x5: u64,
    expected: Expectation,
    (peak1, peak5): (u64, u64),
) -> Heat {
    let sensitivity = config.sensitivity;
    Heat {
        hot1: x >= min_calls
            && x as f64 >= sensitivity.min_ratio() * expected.mean
            && x > peak1
            && upper_tail(x, expected.mean, expected.variance) < sensitivity.alpha(),
        hot5: x5 >= min_calls
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    const M: Minute = DAY0 + 12 * 60;

    #[test]
    fn heat_weighs_the_minute_and_its_window_against_the_baseline_and_the_bar() {
        let config = DetectorConfig::default();
        let rare = Expectation {
            mean: 0.1,
            variance: 0.1,
        };
        // Six calls where one in ten minutes is usual: the minute is hot, its window of five
        // (half a call expected) only with more.
        assert_eq!(
            heat(&config, config.min_calls, 6, 6, rare, (0, 0)),
            Heat {
                hot1: true,
                hot5: false,
                still_hot: true,
            }
        );
        assert_eq!(
            heat(&config, config.min_calls, 6, 10, rare, (0, 0)),
            Heat {
                hot1: true,
                hot5: true,
                still_hot: true,
            }
        );
        // ... unless the week's peaks reached six.
        assert_eq!(
            heat(&config, config.min_calls, 6, 6, rare, (6, 6)),
            STILL_HOT
        );
        // Fewer than `min_calls` never opens a spike.
        assert_eq!(
            heat(&config, config.min_calls, 4, 4, rare, (0, 0)),
            STILL_HOT
        );
        // Two calls in the minute, ten over five minutes: only the window is hot, and two
        // calls are not clearly high (tail above 1e-3); three are.
        assert_eq!(heat(&config, config.min_calls, 2, 10, rare, (0, 0)), HOT5);
        assert!(heat(&config, config.min_calls, 3, 10, rare, (0, 0)).still_hot);
        assert_eq!(
            heat(&config, config.min_calls, 2, 10, rare, (0, 10)),
            Heat::default()
        );
    }

    #[test]
    fn a_spike_opens_on_a_hot_minute_there() {
        let config = DetectorConfig::default();
        let key = call_key();
        let mut state = SeriesState {
            recent: VecDeque::from([(M - 3, 2, cell(2, "a")), (M - 1, 1, cell(1, "a"))]),
            ..SeriesState::default()
        };
        let now_cell = cell(7, "b");
        let now = Judged {
            x5: 10,
            heat: HOT1,
            ..judged(&key, M, Some(&now_cell))
        };
        let mut out = Vec::new();
        judge(&config, &mut state, &now, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(summary(&out[0]), (InsightState::Start, at(M), 7.0, 1));
        let episode = state.episode.as_ref().unwrap();
        assert_eq!(episode.kind, EpisodeKind::Spike);
        assert_eq!((episode.start, episode.last_hot, episode.events), (M, M, 7));
        assert_eq!((episode.peak1, episode.peak5), (7, 10));
        assert_eq!(episode.arns.sorted(), vec![("b", 7)]);
        assert_eq!(episode.cooling, None);
    }

    #[test]
    fn a_spike_on_five_minute_heat_starts_at_the_windows_first_active_minute() {
        let config = DetectorConfig::default();
        let key = call_key();
        let mut state = SeriesState {
            recent: VecDeque::from([(M - 3, 2, cell(2, "a")), (M - 1, 3, cell(3, "b"))]),
            ..SeriesState::default()
        };
        let now_cell = cell(4, "c");
        let now = Judged {
            x5: 9,
            heat: HOT5,
            ..judged(&key, M, Some(&now_cell))
        };
        let mut out = Vec::new();
        judge(&config, &mut state, &now, &mut out);
        // The Start is the first active minute's: two calls at M - 3.
        assert_eq!(out.len(), 1);
        assert_eq!(summary(&out[0]), (InsightState::Start, at(M - 3), 2.0, 1));
        let episode = state.episode.as_ref().unwrap();
        assert_eq!(
            (episode.start, episode.last_hot, episode.events),
            (M - 3, M, 9)
        );
        assert_eq!((episode.peak1, episode.peak5), (4, 9));
        assert_eq!(episode.arns.sorted(), vec![("c", 4), ("b", 3), ("a", 2)]);
    }

    #[test]
    fn no_spike_opens_unjudged_without_heat_or_during_a_drop() {
        let config = DetectorConfig::default();
        let key = call_key();
        let now_cell = cell(7, "a");
        let hot = Judged {
            heat: HOT1,
            ..judged(&key, M, Some(&now_cell))
        };
        for now in [
            Judged {
                judged: false,
                ..hot
            },
            Judged {
                heat: STILL_HOT,
                ..hot
            },
        ] {
            let mut state = SeriesState::default();
            let mut out = Vec::new();
            judge(&config, &mut state, &now, &mut out);
            assert!(out.is_empty() && state.episode.is_none());
        }
        let mut drop = new_episode(
            EpisodeKind::Drop,
            &key,
            &SeriesState::default(),
            M - 60,
            M - 10,
            None,
        );
        drop.held = None;
        let mut state = SeriesState {
            episode: Some(drop.clone()),
            ..SeriesState::default()
        };
        let mut out = Vec::new();
        judge(&config, &mut state, &hot, &mut out);
        assert!(out.is_empty());
        assert_eq!(state.episode, Some(drop));
    }

    #[test]
    fn a_spike_continues_while_still_hot_and_cooling_minutes_rejoin_it() {
        let config = DetectorConfig::default();
        let key = call_key();
        let mut state = SeriesState {
            episode: Some(open_spike(&key, M, M, 20)),
            ..SeriesState::default()
        };
        let mut out = Vec::new();
        // A minute still clearly high: the spike goes on.
        let busy = cell(6, "a");
        let now = Judged {
            x5: 30,
            heat: STILL_HOT,
            ..judged(&key, M + 1, Some(&busy))
        };
        judge(&config, &mut state, &now, &mut out);
        let episode = state.episode.as_ref().unwrap();
        assert_eq!((episode.last_hot, episode.events), (M + 1, 26));
        assert_eq!((episode.peak1, episode.peak5), (6, 30));
        // A quiet minute cools: its calls wait apart.
        let quiet = cell(1, "b");
        judge(
            &config,
            &mut state,
            &judged(&key, M + 2, Some(&quiet)),
            &mut out,
        );
        let episode = state.episode.as_ref().unwrap();
        assert_eq!((episode.last_hot, episode.events), (M + 1, 26));
        assert_eq!(episode.cooling.as_ref().map(|c| c.count), Some(1));
        // Hot again: the cooling minute joins the spike.
        let now = Judged {
            heat: STILL_HOT,
            ..judged(&key, M + 3, Some(&busy))
        };
        judge(&config, &mut state, &now, &mut out);
        let episode = state.episode.as_ref().unwrap();
        assert_eq!((episode.last_hot, episode.events), (M + 3, 33));
        assert_eq!(episode.cooling, None);
        assert_eq!(episode.arns.sorted(), vec![("a", 12), ("b", 1)]);
        assert!(out.is_empty());
    }

    #[test]
    fn a_spike_ends_after_the_cooldown_at_its_last_hot_minute() {
        let config = DetectorConfig::default();
        assert_eq!(config.cooldown_minutes, 10);
        let key = call_key();
        let mut state = SeriesState {
            episode: Some(open_spike(&key, M, M + 2, 30)),
            ..SeriesState::default()
        };
        let mut out = Vec::new();
        let quiet = cell(1, "a");
        for minute in M + 3..M + 12 {
            let cell = (minute % 2 == 0).then_some(&quiet);
            judge(&config, &mut state, &judged(&key, minute, cell), &mut out);
            assert!(out.is_empty(), "ended at {minute}");
        }
        judge(&config, &mut state, &judged(&key, M + 12, None), &mut out);
        // End = last hot minute + 1; the cooling minutes' calls are not in its average.
        assert_eq!(out.len(), 1);
        assert_eq!(summary(&out[0]), (InsightState::End, at(M + 3), 10.0, 3));
        assert_eq!(state.episode, None);
        assert_eq!(state.past_spikes, vec![(M, M + 3)]);
        assert_eq!(state.recurring, vec![(M, 1, 1)]);
    }

    #[test]
    fn the_routine_bar_allows_half_again_and_at_least_two_calls() {
        assert_eq!(routine_bar(0), 2);
        assert_eq!(routine_bar(3), 5);
        assert_eq!(routine_bar(4), 6);
        assert_eq!(routine_bar(10), 15);
        assert_eq!(routine_bar(11), 16);
    }

    #[test]
    fn recurring_bursts_raise_the_bar_from_the_second_in_a_week() {
        let now = DAY0 + 8 * MINUTES_PER_DAY;
        let day = now.div_euclid(MINUTES_PER_DAY);
        let mut state = SeriesState::default();
        // A week of daily peaks from 4 to 6 (and a day outside the week): the bar is the
        // largest plus its gap to the median, 6 + 1.
        for (back, peak1, peak5) in [
            (1, 4, 9),
            (2, 6, 9),
            (3, 5, 9),
            (4, 4, 9),
            (5, 5, 9),
            (6, 6, 9),
            (7, 5, 9),
            (9, 50, 50),
        ] {
            state.baseline.daily_peak_1m.set(day - back, peak1);
            state.baseline.daily_peak_5m.set(day - back, peak5);
        }
        assert_eq!(state.bar(&call_key(), now), (7, 9));
        // One spike in the week: not yet a routine.
        state.recurring = vec![(now - 3 * MINUTES_PER_DAY, 20, 40)];
        assert_eq!(state.bar(&call_key(), now), (7, 9));
        // Ones older than a week, or not before the minute, do not count.
        state.recurring.push((now - MINUTES_PER_WEEK - 1, 30, 60));
        state.recurring.push((now, 30, 60));
        assert_eq!(state.bar(&call_key(), now), (7, 9));
        // Two: the second largest of each, with the routine's margin.
        state.recurring.push((now - MINUTES_PER_WEEK, 12, 50));
        assert_eq!(
            state.bar(&call_key(), now),
            (routine_bar(12), routine_bar(40))
        );
        assert_eq!(state.bar(&call_key(), now), (18, 60));
        // A spike that ends is remembered; those older than a week are forgotten.
        let mut episode = open_spike(&call_key(), now + 1, now + 1, 0);
        episode.peak1 = 8;
        episode.peak5 = 16;
        state.remember_spike(&episode, now + 1);
        assert_eq!(
            state.recurring,
            vec![
                (now - 3 * MINUTES_PER_DAY, 20, 40),
                (now, 30, 60),
                (now + 1, 8, 16)
            ]
        );
    }
}
