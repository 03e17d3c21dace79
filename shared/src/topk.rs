//! Bounded "top values" counters (Space-Saving), for attributions.
//!
//! Memory is bounded by the capacity whatever the number of distinct values: when full, a new
//! value replaces the smallest counter and inherits its count (the classic Space-Saving rule,
//! which never under-counts a frequent value and keeps every value whose share exceeds
//! 1/capacity).

use serde::{Deserialize, Serialize};

/// Values kept per counter. Five are reported; the rest absorb churn.
pub const TOP_CAPACITY: usize = 8;
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
        if self.entries.len() < TOP_CAPACITY {
            self.entries.push((value.to_owned(), count));
            return;
        }
        if let Some(min) = self.entries.iter_mut().min_by_key(|(_, c)| *c) {
            min.0.clear();
            min.0.push_str(value);
            min.1 += count;
        }
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

    /// Multiplies every count by `factor` (decay), dropping values that reach zero.
    pub fn scale(&mut self, factor: f64) {
        for entry in &mut self.entries {
            entry.1 = (entry.1 as f64 * factor).floor() as u64;
        }
        self.entries.retain(|(_, c)| *c > 0);
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
    }

    #[test]
    fn sorted_is_deterministic_and_scale_drops_zeroes() {
        let mut top = TopK::default();
        top.add("b", 2);
        top.add("a", 2);
        top.add("c", 1);
        assert_eq!(top.sorted(), vec![("a", 2), ("b", 2), ("c", 1)]);
        top.scale(0.5);
        assert_eq!(top.sorted(), vec![("a", 1), ("b", 1)]);
    }
}
