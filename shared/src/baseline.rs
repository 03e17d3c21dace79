//! Per-series baselines: what a key usually does, by hour of the day, with its spread, its peaks
//! and its longest usual silence, learned incrementally minute by minute.
//!
//! The model (documented in the README):
//! - **Rate by hour of day.** For each of the 24 UTC hours, an exponentially weighted mean of the
//!   per-minute count and of its square (about a week of memory: weight 1/7 per day). The first
//!   observation of an hour seeds it; hours never observed fall back to the mean of those seen.
//! - **Spread.** The variance comes from the same moments; counts are modelled as negative
//!   binomial when overdispersed (bursty keys), Poisson otherwise, with a floor of one event a
//!   week so that a key never seen still has a finite, tiny rate (the managed service's 0.0001).
//! - **Peaks.** The largest 1-minute and 5-minute counts of each of the last 7 days: a spike must
//!   beat the week's peak, so a key's usual bursts never alert.
//! - **Rhythm.** The longest gap between active minutes on each of the last 7 days: a steady key's
//!   silence is unusual once it lasts several of its longest usual gaps.
//! - **Who and how.** Exact event counts per caller ARN, user agent and error code for each of the
//!   last days ([`DayValues`]), so that the baseline side of attributions is counted over exactly
//!   the baseline window, as `baseline.average` is.
//!
//! Minutes inside an open spike do not teach the baseline (they count as the expected rate), so an
//! incident does not become normal while it lasts; a spike longer than `adapt_after_minutes` is a
//! new level and teaches it (docs/DETECTION.md, "Learning new routines").

use serde::{Deserialize, Serialize};
use statrs::distribution::{DiscreteCDF, NegativeBinomial, Poisson};

use crate::fold::Cell;
use crate::minute::{MINUTES_PER_DAY, MINUTES_PER_WEEK, Minute, hour_of_day};
use crate::topk::TopK;

/// Rate floor: one event a week.
pub const RATE_FLOOR: f64 = 1.0 / MINUTES_PER_WEEK as f64;
/// Days of per-day rings kept (today plus the 7 before, plus one spare for the baseline window).
const DAYS_KEPT: i64 = 9;
/// Weight of a new day in the hour-of-day means.
const DAILY_WEIGHT: f64 = 1.0 / 7.0;

/// Upper tail probability P(X ≥ x) for a count with the given mean and variance.
pub fn upper_tail(x: u64, mean: f64, variance: f64) -> f64 {
    if x == 0 {
        return 1.0;
    }
    let mean = mean.max(RATE_FLOOR);
    let variance = variance.max(mean);
    if variance <= mean * 1.05 {
        return match Poisson::new(mean) {
            Ok(poisson) => poisson.sf(x - 1),
            Err(_) => 1.0,
        };
    }
    // Negative binomial with the same mean and variance: r = mean²/(var-mean), p = r/(r+mean).
    let r = mean * mean / (variance - mean);
    let p = r / (r + mean);
    match NegativeBinomial::new(r, p) {
        Ok(nb) => {
            let tail = nb.sf(x - 1);
            if tail.is_finite() {
                tail.clamp(0.0, 1.0)
            } else {
                1.0
            }
        }
        Err(_) => 1.0,
    }
}

/// A value per UTC day, for the last few days.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayRing {
    days: Vec<(i64, u64)>,
}

/// Days of peaks from which their spread alone is the margin of [`DayRing::peak_bar`].
pub const FEW_PEAK_DAYS: usize = 7;

impl DayRing {
    fn slot(&mut self, day: i64) -> &mut u64 {
        if let Some(i) = self.days.iter().position(|(d, _)| *d == day) {
            return &mut self.days[i].1;
        }
        self.days.retain(|(d, _)| *d > day - DAYS_KEPT);
        self.days.push((day, 0));
        let last = self.days.len() - 1;
        &mut self.days[last].1
    }

    pub fn add(&mut self, day: i64, value: u64) {
        *self.slot(day) += value;
    }

    pub fn set(&mut self, day: i64, value: u64) {
        *self.slot(day) = value;
    }

    pub fn raise(&mut self, day: i64, value: u64) {
        let slot = self.slot(day);
        *slot = (*slot).max(value);
    }

    /// Largest value over days in `[from, to]`.
    pub fn max_in(&self, from: i64, to: i64) -> u64 {
        self.days
            .iter()
            .filter(|(d, _)| (from..=to).contains(d))
            .map(|(_, v)| *v)
            .max()
            .unwrap_or(0)
    }

    /// The bar a day's peak must clear to be unusual: the largest of the days in `[from, to]`,
    /// plus the gap between it and their median. Of eight daily maxima drawn alike, the next
    /// beats them all one day in nine: a key whose peaks vary (sessions of a few calls) needs
    /// the margin; a job whose peaks are all the same gets none.
    ///
    /// With fewer than [`FEW_PEAK_DAYS`] days of peaks, the largest of them is beaten far more
    /// often (of 3, one day in 4) and their spread says little: the margin is then at least a
    /// recurring burst's (half again, at least 2 more), as for a job being learnt. A newly
    /// adopted API's fourth session of 9 calls after three of 7 is its routine, not a spike.
    /// Not on a key's first day (`to` alone): today's peak so far is no day's peak yet, and a
    /// new key's first burst is judged as before. Only when `few_days_margin` (account series:
    /// a principal's series have their principal's usual burst for that).
    pub fn peak_bar(&self, from: i64, to: i64, few_days_margin: bool) -> u64 {
        let mut peaks: Vec<u64> = self
            .days
            .iter()
            .filter(|(d, v)| (from..=to).contains(d) && *v > 0)
            .map(|(_, v)| *v)
            .collect();
        if peaks.is_empty() {
            return 0;
        }
        peaks.sort_unstable();
        let max = peaks[peaks.len() - 1];
        let median = peaks[(peaks.len() - 1) / 2];
        let spread = max - median;
        let past_days = self
            .days
            .iter()
            .filter(|(d, v)| (from..to).contains(d) && *v > 0)
            .count();
        if few_days_margin && past_days > 0 && peaks.len() < FEW_PEAK_DAYS {
            max + spread.max(max.div_ceil(2).max(2))
        } else {
            max + spread
        }
    }

    pub fn sum_in(&self, from: i64, to: i64) -> u64 {
        self.days
            .iter()
            .filter(|(d, _)| (from..=to).contains(d))
            .map(|(_, v)| *v)
            .sum()
    }

    pub fn get(&self, day: i64) -> u64 {
        self.days
            .iter()
            .find(|(d, _)| *d == day)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }
}

/// What a series usually does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Per hour of day: weighted mean of the per-minute count.
    pub hour_mean: Vec<f64>,
    /// Per hour of day: weighted mean of the squared per-minute count.
    pub hour_square: Vec<f64>,
    /// Per hour of day: hours observed.
    pub hour_seen: Vec<u32>,
    /// Events per day (all events, as the contract's baseline average counts them).
    pub daily_events: DayRing,
    /// Largest 1-minute count per day (outside spikes).
    pub daily_peak_1m: DayRing,
    /// Largest 5-minute count per day (outside spikes).
    pub daily_peak_5m: DayRing,
    /// Longest gap between active minutes that ended on each day (outside drops).
    pub daily_max_gap: DayRing,
    /// Per day: the longest gap's ends and the second longest gap, so that a call arriving late
    /// inside the longest gap can shorten it (late data).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub daily_gap_ends: Vec<(i64, Minute, Minute, u64)>,
    /// Minutes with at least one event, per day (how regular the key is).
    #[serde(default)]
    pub daily_active_minutes: DayRing,
    /// Per day: events per caller ARN, user agent and error code (every event, as
    /// `daily_events`), for the baseline side of attributions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub daily_values: Vec<DayValues>,
    /// Sums over the hour in progress (learning view: spike minutes replaced by the expected rate).
    hour_sum: f64,
    hour_sum_squares: f64,
}

impl Default for Baseline {
    fn default() -> Self {
        Self {
            hour_mean: vec![0.0; 24],
            hour_square: vec![0.0; 24],
            hour_seen: vec![0; 24],
            daily_events: DayRing::default(),
            daily_peak_1m: DayRing::default(),
            daily_peak_5m: DayRing::default(),
            daily_max_gap: DayRing::default(),
            daily_gap_ends: Vec::new(),
            daily_active_minutes: DayRing::default(),
            daily_values: Vec::new(),
            hour_sum: 0.0,
            hour_sum_squares: 0.0,
        }
    }
}

/// One day's events per value of each attribute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayValues {
    #[serde(rename = "d")]
    pub day: i64,
    #[serde(rename = "u", default, skip_serializing_if = "TopK::is_empty")]
    pub arns: TopK,
    #[serde(rename = "g", default, skip_serializing_if = "TopK::is_empty")]
    pub agents: TopK,
    #[serde(rename = "x", default, skip_serializing_if = "TopK::is_empty")]
    pub errors: TopK,
}

impl DayValues {
    fn add(&mut self, cell: &Cell) {
        self.arns.merge(&cell.arns);
        self.agents.merge(&cell.agents);
        self.errors.merge(&cell.errors);
    }
}

/// Expected count of a minute, and its variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expectation {
    pub mean: f64,
    pub variance: f64,
}

impl Baseline {
    /// The expected per-minute count at `minute`.
    pub fn expect(&self, minute: Minute) -> Expectation {
        let h = hour_of_day(minute);
        let (mean, square) = if self.hour_seen[h] > 0 {
            (self.hour_mean[h], self.hour_square[h])
        } else {
            let seen: Vec<usize> = (0..24).filter(|&i| self.hour_seen[i] > 0).collect();
            if seen.is_empty() {
                (0.0, 0.0)
            } else {
                let n = seen.len() as f64;
                (
                    seen.iter().map(|&i| self.hour_mean[i]).sum::<f64>() / n,
                    seen.iter().map(|&i| self.hour_square[i]).sum::<f64>() / n,
                )
            }
        };
        let mean = mean.max(RATE_FLOOR);
        Expectation {
            mean,
            variance: (square - mean * mean).max(mean),
        }
    }

    /// Learns one minute: `learned` is the count to learn (the expected rate inside a spike).
    pub fn learn_minute(&mut self, learned: f64) {
        self.hour_sum += learned;
        self.hour_sum_squares += learned * learned;
    }

    /// Closes the hour that `last_minute` belongs to: folds its sums into the hour-of-day means.
    pub fn close_hour(&mut self, last_minute: Minute) {
        let h = hour_of_day(last_minute);
        let mean = self.hour_sum / 60.0;
        let square = self.hour_sum_squares / 60.0;
        let weight = if self.hour_seen[h] == 0 {
            1.0
        } else {
            DAILY_WEIGHT.max(1.0 / f64::from(self.hour_seen[h] + 1))
        };
        self.hour_mean[h] += weight * (mean - self.hour_mean[h]);
        self.hour_square[h] += weight * (square - self.hour_square[h]);
        self.hour_seen[h] = self.hour_seen[h].saturating_add(1);
        self.hour_sum = 0.0;
        self.hour_sum_squares = 0.0;
    }

    /// Teaches counts that arrived late for the hour starting at `hour`: `sum` and `squares` are
    /// the changes to that hour's per-minute sums, `current` the last minute learned. The hour
    /// in progress takes them as they are; a closed hour's rate takes them with the weight its
    /// day had, decayed by the days folded in since; an hour of day never seen is seeded.
    pub fn learn_late_hour(&mut self, hour: Minute, sum: f64, squares: f64, current: Minute) {
        let in_progress = hour == current.div_euclid(60) * 60 && (current + 1).rem_euclid(60) != 0;
        if in_progress {
            self.hour_sum += sum;
            self.hour_sum_squares += squares;
            return;
        }
        let h = hour_of_day(hour);
        if self.hour_seen[h] == 0 {
            self.hour_mean[h] = sum / 60.0;
            self.hour_square[h] = squares / 60.0;
            self.hour_seen[h] = 1;
            return;
        }
        let closed_since = (current - (hour + 59)).div_euclid(MINUTES_PER_DAY).max(0);
        let weight = DAILY_WEIGHT * (1.0 - DAILY_WEIGHT).powi(closed_since.min(1000) as i32);
        self.hour_mean[h] = (self.hour_mean[h] + weight * sum / 60.0).max(0.0);
        self.hour_square[h] = (self.hour_square[h] + weight * squares / 60.0).max(0.0);
    }

    /// Counts a minute's events on its day, and their values (every event, whatever the minute
    /// is: the contract's baseline average counts them all).
    pub fn learn_events(&mut self, day: i64, events: u64, cell: &Cell) {
        self.daily_events.add(day, events);
        self.learn_values(day, cell);
    }

    /// Counts a minute with events on its day (how regular the key is).
    pub fn learn_active_minute(&mut self, day: i64) {
        self.daily_active_minutes.add(day, 1);
    }

    /// Raises the day's usual peaks with a minute's 1-minute and 5-minute counts.
    pub fn learn_peaks(&mut self, day: i64, count1: u64, count5: u64) {
        self.daily_peak_1m.raise(day, count1);
        self.daily_peak_5m.raise(day, count5);
    }

    /// Counts a minute's values (caller ARNs, user agents, error codes) on its day.
    pub fn learn_values(&mut self, day: i64, cell: &Cell) {
        if let Some(entry) = self.daily_values.iter_mut().find(|d| d.day == day) {
            entry.add(cell);
            return;
        }
        self.daily_values.retain(|d| d.day > day - DAYS_KEPT);
        let mut entry = DayValues {
            day,
            ..DayValues::default()
        };
        entry.add(cell);
        self.daily_values.push(entry);
    }

    /// Events per value over the days `[from, to]` (ARN, user agent, error code), exact sums
    /// of the days' counts.
    pub fn values_in(&self, from: i64, to: i64) -> [TopK; 3] {
        let days: Vec<&DayValues> = self
            .daily_values
            .iter()
            .filter(|d| (from..=to).contains(&d.day))
            .collect();
        [
            TopK::merge_exact(days.iter().map(|d| &d.arns)),
            TopK::merge_exact(days.iter().map(|d| &d.agents)),
            TopK::merge_exact(days.iter().map(|d| &d.errors)),
        ]
    }

    /// Learns the gap between active minutes `from` and `to` (ending on `to`'s day).
    pub fn learn_gap(&mut self, from: Minute, to: Minute) {
        let day = to.div_euclid(MINUTES_PER_DAY);
        let gap = (to - from) as u64;
        let longest = self.daily_max_gap.get(day);
        self.daily_gap_ends
            .retain(|(d, _, _, _)| *d > day - DAYS_KEPT);
        let entry = match self
            .daily_gap_ends
            .iter_mut()
            .find(|(d, _, _, _)| *d == day)
        {
            Some(entry) => entry,
            None => {
                self.daily_gap_ends.push((day, 0, 0, 0));
                let last = self.daily_gap_ends.len() - 1;
                &mut self.daily_gap_ends[last]
            }
        };
        if gap > longest {
            entry.3 = longest;
            entry.1 = from;
            entry.2 = to;
            self.daily_max_gap.raise(day, gap);
        } else if gap > entry.3 {
            entry.3 = gap;
        }
    }

    /// A call found late at `minute`: if it lies inside its day's longest gap, that gap was two.
    pub fn split_gap(&mut self, minute: Minute) {
        let Some(entry) = self
            .daily_gap_ends
            .iter_mut()
            .find(|(_, from, to, _)| *from < minute && minute < *to)
        else {
            return;
        };
        let (day, from, to, second) = *entry;
        let (left, right) = ((minute - from) as u64, (to - minute) as u64);
        let longest = left.max(right).max(second);
        if longest == left {
            entry.2 = minute;
            entry.3 = second.max(right);
        } else if longest == right {
            entry.1 = minute;
            entry.3 = second.max(left);
        } else {
            // The second longest is now the longest; where it lies, and the next one, are not
            // kept: the larger piece stands in for the next (a lower bound).
            entry.1 = 0;
            entry.2 = 0;
            entry.3 = left.max(right);
        }
        self.daily_max_gap.set(day, longest);
    }

    /// Largest usual 1-minute and 5-minute counts over the 7 days before `minute`'s day and today,
    /// each raised by how much the key's daily peaks vary ([`DayRing::peak_bar`], with its
    /// few-days margin when `few_days_margin`).
    pub fn peaks(&self, minute: Minute, few_days_margin: bool) -> (u64, u64) {
        let day = minute.div_euclid(MINUTES_PER_DAY);
        (
            self.daily_peak_1m.peak_bar(day - 7, day, few_days_margin),
            self.daily_peak_5m.peak_bar(day - 7, day, few_days_margin),
        )
    }

    /// Expected events from `from` to `to` (inclusive) under the hour-of-day rates.
    pub fn expected_between(&self, from: Minute, to: Minute) -> f64 {
        let mut total = 0.0;
        let mut m = from;
        while m <= to {
            let hour_end = (m.div_euclid(60) + 1) * 60 - 1;
            let end = hour_end.min(to);
            total += self.expect(m).mean * (end - m + 1) as f64;
            m = end + 1;
        }
        total
    }

    /// How irregular the key is: its longest usual gap over its average spacing between active
    /// minutes (≈ 1 for a job that runs every N minutes; large for random, bursty or diurnal keys).
    pub fn irregularity(&self, minute: Minute, longest_gap: u64) -> f64 {
        let day = minute.div_euclid(MINUTES_PER_DAY);
        let days = (day - 7..day)
            .filter(|d| self.daily_active_minutes.get(*d) > 0)
            .count()
            .max(1);
        let active_per_day =
            self.daily_active_minutes.sum_in(day - 7, day - 1) as f64 / days as f64;
        longest_gap as f64 * active_per_day / MINUTES_PER_DAY as f64
    }

    /// Longest usual gap over the last 7 days.
    pub fn longest_gap(&self, minute: Minute) -> u64 {
        let day = minute.div_euclid(MINUTES_PER_DAY);
        self.daily_max_gap.max_in(day - 7, day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_are_finite_and_ordered() {
        // Degenerate baselines never make the score NaN or infinite.
        for (mean, var) in [
            (0.0, 0.0),
            (RATE_FLOOR, 0.0),
            (1e-12, 1e-12),
            (5.0, 5.0),
            (5.0, 500.0),
        ] {
            for x in [0, 1, 5, 50, 5000] {
                let p = upper_tail(x, mean, var);
                assert!(
                    p.is_finite() && (0.0..=1.0).contains(&p),
                    "{x} {mean} {var} -> {p}"
                );
            }
        }
        assert_eq!(upper_tail(0, 3.0, 3.0), 1.0);
        assert!(upper_tail(14, 0.0001, 0.0001) < 1e-30);
        assert!(upper_tail(10, 5.0, 5.0) > upper_tail(20, 5.0, 5.0));
        // Overdispersion makes the same count less surprising.
        assert!(upper_tail(20, 5.0, 100.0) > upper_tail(20, 5.0, 5.0));
    }

    #[test]
    fn hour_means_seed_then_smooth() {
        let mut b = Baseline::default();
        for _ in 0..60 {
            b.learn_minute(2.0);
        }
        b.close_hour(13 * 60 + 59);
        assert_eq!(b.expect(13 * 60).mean, 2.0);
        // An hour never seen falls back to the mean of those seen.
        assert_eq!(b.expect(3 * 60).mean, 2.0);
        for _ in 0..60 {
            b.learn_minute(0.0);
        }
        b.close_hour(MINUTES_PER_DAY + 13 * 60 + 59);
        let e = b.expect(13 * 60);
        assert!(e.mean > 0.9 && e.mean < 2.0, "{e:?}");
        assert!(e.variance >= e.mean);
    }

    #[test]
    fn with_few_days_of_peaks_the_bar_has_a_routines_margin() {
        let mut young = DayRing::default();
        for (day, peak) in [7, 7, 6].into_iter().enumerate() {
            young.set(day as i64, peak);
        }
        // Three sessions of 6-7 calls: 7 + 4; a fourth of 9 is not a spike.
        assert_eq!(young.peak_bar(0, 7, true), 11);
        // A job of 1 call a day, seen twice: at least 2 more.
        let mut job = DayRing::default();
        job.set(0, 1);
        job.set(1, 1);
        assert_eq!(job.peak_bar(0, 7, true), 3);
        // Spread larger than the routine's margin: the spread.
        let mut varied = DayRing::default();
        for (day, peak) in [2, 3, 20].into_iter().enumerate() {
            varied.set(day as i64, peak);
        }
        assert_eq!(varied.peak_bar(0, 7, true), 20 + 17);
        // Without the few-days margin (a principal's series): the spread alone.
        assert_eq!(job.peak_bar(0, 7, false), 1);
        // A key's first day: its peak so far, and no margin.
        let mut first = DayRing::default();
        first.set(7, 2);
        assert_eq!(first.peak_bar(0, 7, true), 2);
        // From 7 days on, the spread alone.
        for day in 3..7 {
            young.set(day, 7);
        }
        assert_eq!(young.peak_bar(0, 7, true), 7);
    }

    #[test]
    fn the_peak_bar_grows_with_how_much_daily_peaks_vary() {
        let mut steady = DayRing::default();
        let mut sessions = DayRing::default();
        for (day, peak) in [6, 3, 5, 4, 6, 2, 5].into_iter().enumerate() {
            steady.set(day as i64, 10);
            sessions.set(day as i64, peak);
        }
        // A job whose runs are all alike: its size is the bar.
        assert_eq!(steady.peak_bar(0, 7, true), 10);
        // Sessions of 2 to 6 calls: one more than the largest is not unusual (median 5).
        assert_eq!(sessions.peak_bar(0, 7, true), 7);
        assert_eq!(DayRing::default().peak_bar(0, 7, true), 0);
    }

    #[test]
    fn empty_baseline_has_a_floor() {
        let e = Baseline::default().expect(0);
        assert_eq!(e.mean, RATE_FLOOR);
        assert_eq!(e.variance, RATE_FLOOR);
    }
}
