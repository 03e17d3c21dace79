//! What the baseline learns from a minute (see [`crate::baseline`]):
//! - every event counts toward the day's events, active minutes and values, whatever the minute
//!   is ([`learn_events`]), as the contract's baseline average counts them;
//! - the hour-of-day rate and the daily peaks learn the minute's count, except inside a spike
//!   younger than `adapt_after_minutes`, whose minutes teach the expected rate and no peak
//!   ([`learn_rate`]): an incident does not become normal while it lasts, but a spike that lasts
//!   longer is a new level, taught as it is (so it ends within days);
//! - call-rate series learn the gap since their last active minute, except the silence of a drop
//!   ([`learn_rhythm`]).

use super::*;

/// The minute's events, active minute and values, on its day.
pub(super) fn learn_events(baseline: &mut Baseline, now: &Judged) {
    if now.x > 0
        && let Some(cell) = now.cell
    {
        baseline.learn_events(now.day(), now.x, cell);
        baseline.learn_active_minute(now.day());
    }
}

/// Whether the minute is inside a spike young enough that it must not teach the baseline.
pub(super) fn spiking(config: &DetectorConfig, state: &SeriesState, minute: Minute) -> bool {
    matches!(&state.episode,
        Some(e) if e.kind == EpisodeKind::Spike && minute - e.start < config.adapt_after_minutes)
}

/// The minute's count for the hour-of-day rate (the expected count inside a young spike), and
/// its 1- and 5-minute counts for the daily peaks (none inside a young spike).
pub(super) fn learn_rate(config: &DetectorConfig, state: &mut SeriesState, now: &Judged) {
    if spiking(config, state, now.minute) {
        state.baseline.learn_minute(now.expected.mean);
    } else {
        state.baseline.learn_minute(now.x as f64);
        state.baseline.learn_peaks(now.day(), now.x, now.x5);
    }
}

/// The gap between the last active minute and this one, when the key calls again (call-rate
/// series, outside a drop).
pub(super) fn learn_rhythm(state: &mut SeriesState, now: &Judged) {
    if now.key.insight_type() != InsightType::ApiCallRateInsight || now.x == 0 {
        return;
    }
    let in_drop = matches!(&state.episode, Some(e) if e.kind == EpisodeKind::Drop);
    if !in_drop && let Some(last) = state.last_active {
        state.baseline.learn_gap(last, now.minute);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::baseline::DayRing;

    const M: Minute = DAY0 + 13 * 60 + 10;
    const DAY: i64 = M.div_euclid(MINUTES_PER_DAY);

    /// The hour-of-day mean learned from one minute, once the hour closes.
    fn hour_mean(mut state: SeriesState) -> f64 {
        state.baseline.close_hour(M);
        state.baseline.hour_mean[13]
    }

    #[test]
    fn every_event_counts_on_its_day() {
        let key = call_key();
        let mut state = SeriesState::default();
        let busy = cell(7, "a");
        learn_events(&mut state.baseline, &judged(&key, M, Some(&busy)));
        learn_events(&mut state.baseline, &judged(&key, M + 1, None));
        assert_eq!(state.baseline.daily_events.get(DAY), 7);
        assert_eq!(state.baseline.daily_active_minutes.get(DAY), 1);
        assert_eq!(
            state.baseline.values_in(DAY, DAY)[0].sorted(),
            vec![("a", 7)]
        );
    }

    #[test]
    fn a_minute_outside_spikes_teaches_its_count_and_peaks() {
        let config = DetectorConfig::default();
        let key = call_key();
        let busy = cell(6, "a");
        let now = Judged {
            x5: 9,
            ..judged(&key, M, Some(&busy))
        };
        let mut state = SeriesState::default();
        learn_rate(&config, &mut state, &now);
        assert_eq!(state.baseline.daily_peak_1m.get(DAY), 6);
        assert_eq!(state.baseline.daily_peak_5m.get(DAY), 9);
        assert_eq!(hour_mean(state), 6.0 / 60.0);
    }

    #[test]
    fn spike_minutes_teach_the_expected_rate_until_adapt_after_minutes() {
        let config = DetectorConfig::default();
        let key = call_key();
        let busy = cell(60, "a");
        let now = Judged {
            x5: 90,
            expected: Expectation {
                mean: 0.5,
                variance: 0.5,
            },
            ..judged(&key, M, Some(&busy))
        };
        // A spike that began within `adapt_after_minutes`: the expected rate, no peak.
        let young = M - config.adapt_after_minutes + 1;
        let mut state = SeriesState {
            episode: Some(open_spike(&key, young, M, 0)),
            ..SeriesState::default()
        };
        assert!(spiking(&config, &state, M));
        learn_rate(&config, &mut state, &now);
        assert_eq!(state.baseline.daily_peak_1m, DayRing::default());
        assert_eq!(state.baseline.daily_peak_5m, DayRing::default());
        assert_eq!(hour_mean(state), 0.5 / 60.0);
        // One that lasted longer is a new level: taught as it is.
        let old = M - config.adapt_after_minutes;
        let mut state = SeriesState {
            episode: Some(open_spike(&key, old, M, 0)),
            ..SeriesState::default()
        };
        assert!(!spiking(&config, &state, M));
        learn_rate(&config, &mut state, &now);
        assert_eq!(state.baseline.daily_peak_1m.get(DAY), 60);
        assert_eq!(state.baseline.daily_peak_5m.get(DAY), 90);
        assert_eq!(hour_mean(state), 1.0);
    }

    #[test]
    fn a_call_teaches_the_gap_since_the_last_one_outside_drops() {
        let key = call_key();
        let call = cell(1, "a");
        let mut state = SeriesState {
            last_active: Some(M - 17),
            ..SeriesState::default()
        };
        learn_rhythm(&mut state, &judged(&key, M - 1, None));
        learn_rhythm(&mut state, &judged(&key, M, Some(&call)));
        assert_eq!(state.baseline.daily_max_gap.get(DAY), 17);
        // Not the silence of a drop, nor an error series' gaps.
        let mut in_drop = SeriesState {
            last_active: Some(M - 90),
            episode: Some(new_episode(
                EpisodeKind::Drop,
                &key,
                &SeriesState::default(),
                M - 60,
                M - 10,
                None,
            )),
            ..SeriesState::default()
        };
        learn_rhythm(&mut in_drop, &judged(&key, M, Some(&call)));
        assert_eq!(in_drop.baseline.daily_max_gap, DayRing::default());
        let errors = error_key();
        let mut state = SeriesState {
            last_active: Some(M - 17),
            ..SeriesState::default()
        };
        learn_rhythm(&mut state, &judged(&errors, M, Some(&call)));
        assert_eq!(state.baseline.daily_max_gap, DayRing::default());
    }
}
