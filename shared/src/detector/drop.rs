//! The drop rule (call-rate series): a regular key silent for longer than its rhythm allows
//! opens a drop ([`maybe_open`]), held until the trail is known to have delivered the period
//! ([`confirm`]); calls resuming end it ([`judge`]).

use super::*;

/// A key is regular when its longest gap is at most this many times its average spacing.
const MAX_IRREGULARITY: f64 = 2.0;

/// Per account, per region: the 10-minute buckets (their first minute) with any data the
/// detector has read, over the last few hours.
pub type Delivered = BTreeMap<String, BTreeMap<String, BTreeSet<Minute>>>;

/// Width of a [`Delivered`] bucket.
const DELIVERY_BUCKET: Minute = 10;
/// Data this soon after the minute a drop was found proves the trail delivered that period.
pub(super) const DELIVERY_PROOF_MINUTES: Minute = 60;

/// Notes that the trail delivered data of `key`'s account and region for `minute`.
pub fn note_delivered(delivered: &mut Delivered, key: &SeriesKey, minute: Minute) {
    let bucket = minute - minute.rem_euclid(DELIVERY_BUCKET);
    match delivered.get_mut(&key.account) {
        Some(regions) => match regions.get_mut(&key.region) {
            Some(buckets) => {
                buckets.insert(bucket);
            }
            None => {
                regions.insert(key.region.clone(), BTreeSet::from([bucket]));
            }
        },
        None => {
            delivered.insert(
                key.account.clone(),
                BTreeMap::from([(key.region.clone(), BTreeSet::from([bucket]))]),
            );
        }
    }
}

/// Whether data of `key`'s account and region was read for `found` or the hour after it.
fn delivered_after(delivered: &Delivered, key: &SeriesKey, found: Minute) -> bool {
    delivered
        .get(&key.account)
        .and_then(|regions| regions.get(&key.region))
        .is_some_and(|buckets| {
            buckets
                .range(found - DELIVERY_BUCKET + 1..=found + DELIVERY_PROOF_MINUTES)
                .next()
                .is_some()
        })
}

/// Reports a held drop once the trail is known to have delivered the period after the minute
/// it was found (data of its account and region within the hour after), or once it has been
/// held for `drop_hold_minutes` (an account whose only activity is the silent job).
pub(super) fn confirm(
    config: &DetectorConfig,
    delivered: &Delivered,
    key: &SeriesKey,
    state: &mut SeriesState,
    minute: Minute,
    out: &mut Vec<InsightRecord>,
) {
    if let Some(episode) = state.episode.as_mut()
        && let Some(found) = episode.held
        && (delivered_after(delivered, key, found) || minute - found >= config.drop_hold_minutes)
    {
        episode.held = None;
        out.push(start_record(key, episode, 0, &Cell::default()));
    }
}

/// Applies the drop rule to the minute (call-rate series): a call ends the series' drop (a drop
/// still held is forgotten without a record); a silent minute may open one.
pub(super) fn judge(
    config: &DetectorConfig,
    state: &mut SeriesState,
    now: &Judged,
    out: &mut Vec<InsightRecord>,
) {
    if now.key.insight_type() != InsightType::ApiCallRateInsight {
        return;
    }
    if now.x > 0 {
        if matches!(&state.episode, Some(e) if e.kind == EpisodeKind::Drop)
            && let Some(episode) = state.episode.take()
            && episode.held.is_none()
        {
            out.push(end_record(now.key, &episode, now.minute - episode.start));
        }
    } else {
        judge_silence(config, state, now.key, now.minute, now.judged);
    }
}

/// A silent minute of a call-rate series with no open insight may open a drop.
pub(super) fn judge_silence(
    config: &DetectorConfig,
    state: &mut SeriesState,
    key: &SeriesKey,
    minute: Minute,
    judged: bool,
) {
    if judged && key.insight_type() == InsightType::ApiCallRateInsight && state.episode.is_none() {
        maybe_open(config, key, state, minute);
    }
}

/// Opens a drop when a steady key has been silent for longer than its rhythm allows. The drop is
/// held (see [`Episode::held`]) until the trail is known to deliver past this minute.
pub(super) fn maybe_open(
    config: &DetectorConfig,
    key: &SeriesKey,
    state: &mut SeriesState,
    minute: Minute,
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
    let mut episode = new_episode(EpisodeKind::Drop, key, state, start, minute, None);
    episode.held = Some(minute);
    state.episode = Some(episode);
}
