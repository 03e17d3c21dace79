//! What the detector compared each minute of one series with, for people to look at
//! (`trailsight report`). Read-only: it runs the detector's own state machine on the series'
//! cells, minute by minute, and reads what the rules read ([`Baseline::expect`],
//! [`SeriesState::bar`], [`Baseline::longest_gap`]) before each minute is judged. Nothing here
//! is a second model.
//!
//! The series is evaluated alone and in minute order, as if every file had arrived on time; the
//! trail's warm-up starts where the whole trail's history starts (`history_start`). A drop's
//! Start can come later than in a full run (no other series of the account proves delivery, so
//! it waits `drop_hold_minutes`), never at another minute.

use super::*;

/// One minute of a series as the detector saw it, before judging it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteView {
    pub minute: Minute,
    /// Events counted in the minute (without AWS services' under `ignore_aws_service_callers`).
    pub count: u64,
    /// The hour-of-day model's expected count and its variance ([`Baseline::expect`]).
    pub expected: Expectation,
    /// The smallest 1-minute count that would have opened a spike at this minute (all four
    /// tests of the spike rule on the minute alone); `None` past [`THRESHOLD_SEARCH_LIMIT`].
    pub spike_threshold: Option<u64>,
    /// The longest usual gap between active minutes over the last 7 days (the drop rule's
    /// rhythm), and the silence the drop rule needs at this sensitivity.
    pub longest_gap: u64,
    pub drop_silence: i64,
}

/// Counts above this are not searched for a threshold (a key that needs more has none worth
/// drawing).
pub const THRESHOLD_SEARCH_LIMIT: u64 = 1 << 40;

/// The smallest count `x` that opens a 1-minute spike against `expected` and the week's peak
/// bar `peak1` under `config` (the spike rule's `hot1`: `min_calls`, `min_ratio`, above the bar,
/// tail below alpha).
pub fn spike_threshold(config: &DetectorConfig, expected: Expectation, peak1: u64) -> Option<u64> {
    let ratio_floor = (config.sensitivity.min_ratio() * expected.mean).ceil();
    let lower = config
        .min_calls
        .max(peak1.saturating_add(1))
        .max(ratio_floor.min(THRESHOLD_SEARCH_LIMIT as f64) as u64)
        .max(1);
    let opens = |x: u64| heat(config, config.min_calls, x, 0, expected, (peak1, u64::MAX)).hot1;
    if opens(lower) {
        return Some(lower);
    }
    // The tail falls as x grows: double until it opens, then bisect.
    let mut high = lower;
    while !opens(high) {
        if high >= THRESHOLD_SEARCH_LIMIT {
            return None;
        }
        high = high.saturating_mul(2);
    }
    let mut low = high / 2;
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if opens(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    Some(high)
}

/// What [`explain_series`] found: each minute of `[from, to]` as the detector saw it, and the
/// records the series produced alone (to check the views against the insight drawn).
#[derive(Debug, Clone, Default)]
pub struct SeriesExplanation {
    pub minutes: Vec<MinuteView>,
    pub records: Vec<InsightRecord>,
}

/// Runs the detector on one series' cells (`cells`, by minute, any order of insertion) from its
/// first minute (or `from`, whichever is earlier) to `to`, and returns the views of the minutes
/// in `[from, to]`. `history_start` is the first minute of the whole trail (warm-up).
pub fn explain_series(
    config: &DetectorConfig,
    key: &SeriesKey,
    history_start: Minute,
    cells: &BTreeMap<Minute, Cell>,
    from: Minute,
    to: Minute,
) -> SeriesExplanation {
    let mut state = DetectorState {
        history_start: Some(history_start),
        ..DetectorState::default()
    };
    let first = cells.keys().next().copied().unwrap_or(from).min(from);
    let mut explanation = SeriesExplanation::default();
    let mut minute_cells: HashMap<SeriesKey, Cell> = HashMap::new();
    // The expectation changes once an hour and the bar once a day: search the threshold again
    // only when either changed.
    let mut last_threshold: Option<((u64, u64, u64), Option<u64>)> = None;
    let mut threshold = |expected: Expectation, peak1: u64| {
        let at = (expected.mean.to_bits(), expected.variance.to_bits(), peak1);
        match last_threshold {
            Some((seen, found)) if seen == at => found,
            _ => {
                let found = spike_threshold(config, expected, peak1);
                last_threshold = Some((at, found));
                found
            }
        }
    };
    for minute in first..=to {
        minute_cells.clear();
        if let Some(cell) = cells.get(&minute) {
            minute_cells.insert(key.clone(), cell.clone());
        }
        if minute >= from {
            let view = match state.series.get(key) {
                Some(series) => {
                    let expected = series.baseline.expect(minute);
                    let longest_gap = series.baseline.longest_gap(minute);
                    MinuteView {
                        minute,
                        count: cells.get(&minute).map_or(0, |c| counted(config, c)),
                        expected,
                        spike_threshold: threshold(expected, series.bar(key, minute).0),
                        longest_gap,
                        drop_silence: drop_silence(config, longest_gap),
                    }
                }
                None => {
                    let expected = Baseline::default().expect(minute);
                    MinuteView {
                        minute,
                        count: cells.get(&minute).map_or(0, |c| counted(config, c)),
                        expected,
                        spike_threshold: threshold(expected, 0),
                        longest_gap: 0,
                        drop_silence: drop_silence(config, 0),
                    }
                }
            };
            explanation.minutes.push(view);
        }
        let records = state.evaluate_minute(config, minute, &minute_cells);
        explanation.records.extend(records);
    }
    explanation
}

/// The silence the drop rule needs for a key whose longest usual gap is `longest_gap`.
pub fn drop_silence(config: &DetectorConfig, longest_gap: u64) -> i64 {
    (config.min_gap_minutes as f64).max(config.sensitivity.gap_factor() * longest_gap as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SeriesKey {
        SeriesKey {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            event_source: "ec2.amazonaws.com".into(),
            event_name: "RunInstances".into(),
            error_code: None,
            principal: None,
        }
    }

    fn cell(count: u64) -> Cell {
        Cell {
            count,
            ..Cell::default()
        }
    }

    #[test]
    fn the_threshold_is_the_smallest_count_that_opens_a_spike() {
        let config = DetectorConfig::default();
        let expected = Expectation {
            mean: 0.5,
            variance: 0.5,
        };
        let t = spike_threshold(&config, expected, 3).expect("a threshold");
        let opens = |x| heat(&config, config.min_calls, x, 0, expected, (3, u64::MAX)).hot1;
        assert!(opens(t));
        assert!(!opens(t - 1));
        // A never-seen key: min_calls decides.
        let floor = Baseline::default().expect(0);
        assert_eq!(spike_threshold(&config, floor, 0), Some(config.min_calls));
    }

    #[test]
    fn a_burst_is_found_and_its_minutes_are_seen_before_they_are_judged() {
        let config = DetectorConfig::default();
        let day = MINUTES_PER_DAY;
        // Two calls every 10 minutes for three days, then a burst of 40 in one minute.
        let mut cells = BTreeMap::new();
        for m in (0..3 * day).step_by(10) {
            cells.insert(m, cell(2));
        }
        let burst = 3 * day + 3;
        cells.insert(burst, cell(40));
        let explained = explain_series(&config, &key(), 0, &cells, burst - 60, burst + 30);
        assert_eq!(explained.minutes.len(), 91);
        let at = explained
            .minutes
            .iter()
            .find(|v| v.minute == burst)
            .expect("the burst's minute");
        assert_eq!(at.count, 40);
        assert!(at.expected.mean > 0.1 && at.expected.mean < 0.3, "{at:?}");
        let threshold = at.spike_threshold.expect("a threshold");
        assert!(threshold > 2 && threshold <= 40, "{threshold}");
        assert_eq!(at.longest_gap, 10);
        let starts: Vec<&InsightRecord> = explained
            .records
            .iter()
            .filter(|r| r.insight_details.state == InsightState::Start)
            .collect();
        assert_eq!(starts.len(), 1, "{:?}", explained.records);
        assert_eq!(starts[0].event_time, crate::minute::format_minute(burst));
    }
}
