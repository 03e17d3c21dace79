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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    const DAY: i64 = DAY0 / MINUTES_PER_DAY + 8;
    /// The key's last call: 10:00 of the day judged.
    const LAST: Minute = DAY * MINUTES_PER_DAY + 600;

    /// A job calling every 20 minutes for a week (72 active minutes a day, longest gap 20), last
    /// at `LAST`; `active_per_day` makes it irregular.
    fn job(active_per_day: u64) -> SeriesState {
        let mut state = SeriesState {
            first_seen: LAST - 8 * MINUTES_PER_DAY,
            last_active: Some(LAST),
            ..SeriesState::default()
        };
        for day in DAY - 7..=DAY {
            state.baseline.daily_events.set(day, 72);
            state.baseline.daily_active_minutes.set(day, active_per_day);
            state.baseline.daily_max_gap.set(day, 20);
        }
        state
    }

    #[test]
    fn a_regular_key_opens_a_drop_after_gap_factor_times_its_longest_gap() {
        let config = DetectorConfig::default();
        let key = call_key();
        // 2.5 × 20 minutes: silent for 49 minutes is no drop; for 50 it is, held, starting
        // where the silence outlasted the longest gap.
        assert_eq!(config.sensitivity.gap_factor(), 2.5);
        let mut state = job(72);
        let mut out = Vec::new();
        judge(
            &config,
            &mut state,
            &judged(&key, LAST + 49, None),
            &mut out,
        );
        assert_eq!(state.episode, None);
        judge(
            &config,
            &mut state,
            &judged(&key, LAST + 50, None),
            &mut out,
        );
        let episode = state.episode.as_ref().unwrap();
        assert_eq!(episode.kind, EpisodeKind::Drop);
        assert_eq!((episode.start, episode.held), (LAST + 21, Some(LAST + 50)));
        assert!(out.is_empty());
    }

    #[test]
    fn no_drop_for_an_irregular_key_an_unjudged_minute_or_an_error_series() {
        let config = DetectorConfig::default();
        // Active 720 minutes a day with a longest gap of 20: irregular (10 > 2).
        let mut state = job(720);
        let key = call_key();
        let mut out = Vec::new();
        judge(
            &config,
            &mut state,
            &judged(&key, LAST + 50, None),
            &mut out,
        );
        assert_eq!(state.episode, None);
        let mut state = job(72);
        let now = Judged {
            judged: false,
            ..judged(&key, LAST + 50, None)
        };
        judge(&config, &mut state, &now, &mut out);
        assert_eq!(state.episode, None);
        let errors = error_key();
        judge(
            &config,
            &mut state,
            &judged(&errors, LAST + 50, None),
            &mut out,
        );
        assert_eq!(state.episode, None);
        assert!(out.is_empty());
    }

    #[test]
    fn a_drop_is_held_until_the_trail_delivered_the_period() {
        let config = DetectorConfig::default();
        let key = call_key();
        let found = LAST + 50;
        let mut state = job(72);
        maybe_open(&config, &key, &mut state, found);
        let mut delivered = Delivered::new();
        let mut out = Vec::new();
        confirm(&config, &delivered, &key, &mut state, found + 30, &mut out);
        assert!(out.is_empty());
        // Another series of the account and region had data for the minute after: reported,
        // starting at the first missed run, with no calls.
        let other = SeriesKey {
            event_name: "GetObject".into(),
            ..key.clone()
        };
        note_delivered(&mut delivered, &other, found + 1);
        confirm(&config, &delivered, &key, &mut state, found + 30, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            summary(&out[0]),
            (InsightState::Start, at(LAST + 21), 0.0, 1)
        );
        assert_eq!(state.episode.as_ref().unwrap().held, None);
        // Without proof, once held for `drop_hold_minutes`.
        let mut state = job(72);
        maybe_open(&config, &key, &mut state, found);
        let mut out = Vec::new();
        let nothing = Delivered::new();
        confirm(&config, &nothing, &key, &mut state, found + 179, &mut out);
        assert!(out.is_empty());
        confirm(&config, &nothing, &key, &mut state, found + 180, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_drop_ends_when_calls_resume() {
        let config = DetectorConfig::default();
        let key = call_key();
        let mut state = job(72);
        maybe_open(&config, &key, &mut state, LAST + 50);
        state.episode.as_mut().unwrap().held = None;
        let call = cell(1, "a");
        let mut out = Vec::new();
        judge(
            &config,
            &mut state,
            &judged(&key, LAST + 90, Some(&call)),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            summary(&out[0]),
            (InsightState::End, at(LAST + 90), 0.0, 69)
        );
        assert_eq!(state.episode, None);
        // A drop still held is forgotten without a record.
        let mut state = job(72);
        maybe_open(&config, &key, &mut state, LAST + 50);
        let mut out = Vec::new();
        judge(
            &config,
            &mut state,
            &judged(&key, LAST + 90, Some(&call)),
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(state.episode, None);
    }
}
