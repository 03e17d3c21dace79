//! Detector settings, with the defaults documented in the README.

use serde::{Deserialize, Serialize};

use crate::series::SeriesKey;

/// How readily an insight opens. Each level is a tail probability under the key's baseline model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    Low,
    #[default]
    Medium,
    High,
}

impl Sensitivity {
    /// Tail probability below which a minute (or five) is unusual.
    pub fn alpha(self) -> f64 {
        match self {
            Sensitivity::Low => 1e-9,
            Sensitivity::Medium => 1e-7,
            Sensitivity::High => 1e-5,
        }
    }

    /// How many times the key's usual rate a spike must reach.
    pub fn min_ratio(self) -> f64 {
        match self {
            Sensitivity::Low => 5.0,
            Sensitivity::Medium => 3.0,
            Sensitivity::High => 2.0,
        }
    }

    /// A drop opens when the silence lasts this many times the longest usual gap.
    pub fn gap_factor(self) -> f64 {
        match self {
            Sensitivity::Low => 4.0,
            Sensitivity::Medium => 2.5,
            Sensitivity::High => 1.8,
        }
    }
}

impl std::str::FromStr for Sensitivity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Sensitivity::Low),
            "medium" => Ok(Sensitivity::Medium),
            "high" => Ok(Sensitivity::High),
            other => Err(format!(
                "sensitivity must be low, medium or high, not {other:?}"
            )),
        }
    }
}

/// A pattern over `eventSource:eventName`, with `*` matching any run of characters
/// (`iam.amazonaws.com:*`, `*:Create*`, `ec2.amazonaws.com:RunInstances`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiPattern(pub String);

impl ApiPattern {
    pub fn matches(&self, api: &str) -> bool {
        glob_match(self.0.as_bytes(), api.as_bytes())
    }
}

fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && pattern[p] != b'*' && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Which APIs are analysed: all, unless an allow list is given; never those denied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFilter {
    pub allow: Vec<ApiPattern>,
    pub deny: Vec<ApiPattern>,
}

impl ApiFilter {
    /// Parses comma-separated pattern lists.
    pub fn parse(allow: &str, deny: &str) -> Self {
        let list = |s: &str| {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| ApiPattern(p.to_owned()))
                .collect()
        };
        Self {
            allow: list(allow),
            deny: list(deny),
        }
    }

    pub fn admits(&self, key: &SeriesKey) -> bool {
        if self.allow.is_empty() && self.deny.is_empty() {
            return true;
        }
        let api = key.api();
        (self.allow.is_empty() || self.allow.iter().any(|p| p.matches(&api)))
            && !self.deny.iter().any(|p| p.matches(&api))
    }
}

/// Everything the detector can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectorConfig {
    pub sensitivity: Sensitivity,
    /// Events in a minute (or in five) below which no spike opens, whatever the baseline.
    pub min_calls: u64,
    /// A minute is judged this long after it ends, so late files are in (see README: settle delay).
    pub settle_minutes: i64,
    /// Hours of trail history before any insight (the managed service needs up to 36).
    pub warmup_minutes: i64,
    /// Days a key must have been active, each, before a drop of it can be reported.
    pub drop_min_active_days: usize,
    /// Shortest silence that can be a drop, whatever the key's rhythm.
    pub min_gap_minutes: i64,
    /// Longest usual gap a key may have and still be "steady" enough for drops.
    pub max_steady_gap_minutes: i64,
    /// Quiet minutes after which a spike ends.
    pub cooldown_minutes: i64,
    /// Most minutes one run evaluates (a first run or a long outage catches up in steps).
    pub max_catchup_minutes: i64,
    /// Do not count calls AWS services made on the user's behalf.
    pub ignore_aws_service_callers: bool,
    pub api_filter: ApiFilter,
    /// How late data may arrive and still be judged: cells reaching storage up to this long
    /// after their minute was evaluated are found, taught to the baselines and searched for
    /// spikes, reported late (docs/DETECTION.md, "Late data"). Older ones are counted and logged.
    pub late_window_minutes: i64,
    /// A series idle this long, with no open insight, is forgotten (its baseline has decayed by
    /// then); it starts afresh if it comes back.
    pub evict_idle_minutes: i64,
    /// Runs in which a record may fail to reach a destination before it goes to the dead letters.
    pub delivery_attempts: u32,
    /// A drop is reported once data of its account and region for the hour after it has been
    /// read (so a delivery outage is never taken for a silence), or after this long at most.
    pub drop_hold_minutes: i64,
    /// A spike lasting longer than this is a new level: its minutes teach the baseline from then
    /// on (an incident shorter than this never becomes normal while it lasts).
    pub adapt_after_minutes: i64,
    /// Per-principal insights (opt-in, docs/DETECTION.md "Per-principal insights"): judge the
    /// principal series that ingest folds with them on. Off, such series are ignored.
    pub principal_insights: bool,
    /// A principal's own history (since its first call) before its spikes and first-seen calls
    /// are reported: a new engineer's or a new pipeline's first days teach, never report.
    pub principal_warmup_minutes: i64,
    /// A principal series' own age before its spikes are reported: a burst on an API (or a
    /// service) new to the principal is judged by the first-seen rule, not against an empty
    /// baseline.
    pub principal_series_min_age_minutes: i64,
    /// Principals tracked per account at most; a new one beyond it takes the place of the one
    /// idle longest if that one has been idle a day, and is not tracked otherwise.
    pub max_principals_per_account: usize,
    /// Calls in a minute (or in five) below which no principal spike opens.
    pub principal_min_calls: u64,
}

impl DetectorConfig {
    /// Sets a principal's warm-up; a principal series' minimum age follows it, up to its
    /// default (a day): a shorter warm-up judges new series sooner too.
    pub fn with_principal_warmup_minutes(mut self, minutes: i64) -> Self {
        self.principal_warmup_minutes = minutes;
        self.principal_series_min_age_minutes =
            minutes.min(Self::default().principal_series_min_age_minutes);
        self
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            sensitivity: Sensitivity::Medium,
            min_calls: 5,
            settle_minutes: 20,
            warmup_minutes: 24 * 60,
            drop_min_active_days: 2,
            min_gap_minutes: 30,
            max_steady_gap_minutes: 120,
            cooldown_minutes: 10,
            max_catchup_minutes: 8 * 24 * 60,
            ignore_aws_service_callers: false,
            api_filter: ApiFilter::default(),
            late_window_minutes: 48 * 60,
            evict_idle_minutes: 14 * 24 * 60,
            delivery_attempts: 5,
            drop_hold_minutes: 180,
            adapt_after_minutes: 24 * 60,
            principal_insights: false,
            principal_warmup_minutes: 3 * 24 * 60,
            principal_series_min_age_minutes: 24 * 60,
            max_principals_per_account: 200,
            principal_min_calls: 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_apis() {
        let key = SeriesKey {
            account: "1".into(),
            region: "r".into(),
            event_source: "iam.amazonaws.com".into(),
            event_name: "CreateUser".into(),
            error_code: None,
            principal: None,
        };
        assert!(ApiFilter::default().admits(&key));
        assert!(ApiFilter::parse("iam.amazonaws.com:*", "").admits(&key));
        assert!(!ApiFilter::parse("ec2.amazonaws.com:*", "").admits(&key));
        assert!(!ApiFilter::parse("", "*:Create*").admits(&key));
        assert!(ApiFilter::parse("*:Create*, s3*", "*:Delete*").admits(&key));
        assert!(ApiPattern("a*b*c".into()).matches("axxbyyc"));
        assert!(!ApiPattern("a*b*c".into()).matches("axxbyy"));
        assert!("HIGH".parse::<Sensitivity>().is_ok());
        assert!("extreme".parse::<Sensitivity>().is_err());
    }
}
