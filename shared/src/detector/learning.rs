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
