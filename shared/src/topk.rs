//! Bounded exact "top values" counters, for attributions.
//!
//! Every count kept is exact: a value's count is the number of events added for it. Memory is
//! bounded by [`TOP_CAPACITY`] whatever the number of distinct values: past it, the smallest
//! count is dropped (ties: the greatest value, so the result does not depend on arrival order
//! among equals). Counts are therefore exact for every value of a counter that never saw more
//! than [`TOP_CAPACITY`] distinct values, and never over-counted otherwise (a dropped value that
//! comes back starts again from its new events). Space-Saving, used before, never under-counts
//! but over-counts, which made attribution averages contradict the statistic they break down.

use serde::{Deserialize, Serialize};

/// Values kept per counter (a minute being folded, a day of a baseline, an episode).
pub const TOP_CAPACITY: usize = 16;
/// Values stored per minute cell of a file (the largest of that minute; five are reported). As many
/// as a counter keeps: a simulated throttling storm had 9 user agents in one minute of one file.
pub const CELL_VALUES: usize = TOP_CAPACITY;
/// Values reported in an attribution list, as in CloudTrail Insights.
pub const TOP_REPORTED: usize = 5;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TopK {
    entries: Vec<(String, u64)>,
}

impl TopK {
    pub fn add(&mut self, value: &str, count: u64) {
        if let Some(entry) = self.entries.iter_mut().find(|(v, _)| v == value) {
            entry.1 += count;
            return;
        }
        self.entries.push((value.to_owned(), count));
        if self.entries.len() > TOP_CAPACITY
            && let Some((smallest, _)) = self
                .entries
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        {
            self.entries.remove(smallest);
        }
    }

    /// The count of `value` (0 when not kept).
    pub fn get(&self, value: &str) -> u64 {
        self.entries
            .iter()
            .find(|(v, _)| v == value)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    }

    /// Subtracts `count` from `value`'s count, dropping it at zero (saturating).
    pub fn subtract(&mut self, value: &str, count: u64) {
        if let Some(i) = self.entries.iter().position(|(v, _)| v == value) {
            self.entries[i].1 = self.entries[i].1.saturating_sub(count);
            if self.entries[i].1 == 0 {
                self.entries.remove(i);
            }
        }
    }

    /// Total of the counts kept.
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|(_, c)| *c).sum()
    }

    /// Merges several counters exactly (sums over the union of their values), then keeps the
    /// largest. The result does not depend on the order of `parts`, unlike repeated `merge`.
    pub fn merge_exact<'a>(parts: impl IntoIterator<Item = &'a TopK>) -> TopK {
        let mut sums: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for part in parts {
            for (value, count) in &part.entries {
                *sums.entry(value.as_str()).or_default() += count;
            }
        }
        let mut top = TopK {
            entries: sums.into_iter().map(|(v, c)| (v.to_owned(), c)).collect(),
        };
        top.truncate(TOP_CAPACITY);
        top
    }

    pub fn merge(&mut self, other: &TopK) {
        for (value, count) in &other.entries {
            self.add(value, *count);
        }
    }

    /// Values by count, descending (ties by value, so output is deterministic).
    pub fn sorted(&self) -> Vec<(&str, u64)> {
        let mut out: Vec<(&str, u64)> =
            self.entries.iter().map(|(v, c)| (v.as_str(), *c)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps the `n` largest values only (used to bound what is stored per cell).
    pub fn truncate(&mut self, n: usize) {
        self.entries
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.entries.truncate(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_frequent_values_with_bounded_memory() {
        let mut top = TopK::default();
        for i in 0..10_000 {
            top.add(&format!("rare-{i}"), 1);
            top.add("frequent", 3);
        }
        assert_eq!(top.entries.len(), TOP_CAPACITY);
        assert_eq!(top.sorted()[0], ("frequent", 30_000));
        // Never over-counted: every count kept is at most the value's true count.
        assert!(top.sorted()[1..].iter().all(|(_, c)| *c == 1));
    }

    #[test]
    fn counts_are_exact_up_to_the_capacity() {
        let mut top = TopK::default();
        for i in 0..TOP_CAPACITY as u64 {
            for _ in 0..=i {
                top.add(&format!("v{i}"), 1);
            }
        }
        assert_eq!(top.total(), (1..=TOP_CAPACITY as u64).sum::<u64>());
        assert_eq!(top.get("v3"), 4);
        top.subtract("v3", 4);
        assert_eq!(top.get("v3"), 0);
        assert_eq!(top.entries.len(), TOP_CAPACITY - 1);
    }

    #[test]
    fn sorted_is_deterministic_and_ties_drop_the_greatest_value() {
        let mut top = TopK::default();
        top.add("b", 2);
        top.add("a", 2);
        top.add("c", 1);
        assert_eq!(top.sorted(), vec![("a", 2), ("b", 2), ("c", 1)]);
        let mut full = TopK::default();
        for i in 0..=TOP_CAPACITY {
            full.add(&format!("{i:02}"), 1);
        }
        assert_eq!(full.get(&format!("{TOP_CAPACITY:02}")), 0);
        assert_eq!(full.get("00"), 1);
    }
}
