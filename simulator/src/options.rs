//! What `trailsight simulate` is asked for: the scenario's options, and the anomalies to inject
//! (`KIND@TIME[@REGION]`).

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Timelike, Utc};

use crate::labels::AnomalyKind;

/// Options of `trailsight simulate`.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub out: PathBuf,
    pub days: u32,
    pub seed: u64,
    pub start: DateTime<Utc>,
    pub regions: Vec<String>,
    pub account: String,
    pub injections: Injections,
    /// Add routine changes a detector must learn (two new recurring jobs, a lasting rate step, a
    /// newly adopted API), labelled in `labels.json` under `changes`. Needs at least 6 days.
    pub changes: bool,
    /// Add principal scenarios (attacks made of reads by a principal of the account, and benign
    /// look-alikes), labelled in `labels.json` under `principal_cases`. Needs at least 6 days.
    pub principals: bool,
}

impl SimulateOptions {
    /// Defaults: 9 days from Monday 2026-03-02T00:00:00Z, seed 1, us-east-1 and eu-west-1,
    /// account 111122223333, seed-chosen anomalies.
    pub fn new(out: PathBuf) -> Self {
        SimulateOptions {
            out,
            days: 9,
            seed: 1,
            start: Utc
                .with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            regions: vec!["us-east-1".to_string(), "eu-west-1".to_string()],
            account: "111122223333".to_string(),
            injections: Injections::Default,
            changes: false,
            principals: false,
        }
    }
}

/// Which anomalies to inject.
#[derive(Debug, Clone, PartialEq)]
pub enum Injections {
    /// Seed-chosen: two of each kind, all after the first two days (fewer on short runs).
    Default,
    /// A quiet scenario: background traffic only.
    None,
    /// Exactly these.
    Explicit(Vec<Injection>),
}

/// One anomaly to inject: `at` is its first anomalous minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    pub kind: AnomalyKind,
    pub at: DateTime<Utc>,
    pub region: Option<String>,
}

/// Parses `KIND@TIME` or `KIND@TIME@REGION`. TIME is RFC 3339 (`2026-03-05T14:07:00Z`) or an
/// offset from `start` made of `<n>d`, `<n>h`, `<n>m`, `<n>s` parts (`3d14h`, `2d`, `50h30m`,
/// optionally with a leading `+`). The time is truncated to the whole minute.
pub fn parse_injection(s: &str, start: DateTime<Utc>) -> Result<Injection, String> {
    let s = s.trim();
    let (kind, rest) = s
        .split_once('@')
        .ok_or_else(|| format!("injection {s:?}: expected KIND@TIME[@REGION]"))?;
    let kind: AnomalyKind = kind.parse()?;
    let (time, region) = match rest.split_once('@') {
        Some((t, r)) if !r.trim().is_empty() => (t.trim(), Some(r.trim().to_string())),
        Some((t, _)) => (t.trim(), None),
        None => (rest.trim(), None),
    };
    if time.is_empty() {
        return Err(format!("injection {s:?}: missing TIME"));
    }
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(time) {
        t.with_timezone(&Utc)
    } else {
        let secs = parse_offset(time).map_err(|e| format!("injection {s:?}: {e}"))?;
        start + chrono::Duration::seconds(secs)
    };
    let at = at
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(at);
    Ok(Injection { kind, at, region })
}

fn parse_offset(s: &str) -> Result<i64, String> {
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.is_empty() {
        return Err("empty offset".into());
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in body.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'd' | 'D' => 86_400,
            'h' | 'H' => 3_600,
            'm' | 'M' => 60,
            's' | 'S' => 1,
            _ => {
                return Err(format!(
                    "bad time {s:?} (RFC 3339, or an offset like 3d14h, 2d, 50h30m)"
                ));
            }
        };
        if num.is_empty() {
            return Err(format!("bad offset {s:?}: unit {c:?} without a number"));
        }
        let n: i64 = num.parse().map_err(|_| format!("bad offset {s:?}"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("offset {s:?} too large"))?;
        num.clear();
    }
    if !num.is_empty() {
        return Err(format!(
            "bad offset {s:?}: number {num:?} without a unit (d, h, m, s)"
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_injection_forms() {
        let start = SimulateOptions::new(PathBuf::from("x")).start;
        let at = |s: &str| parse_injection(s, start).unwrap();
        let i = at("iam-burst@3d14h");
        assert_eq!(i.kind, AnomalyKind::IamBurst);
        assert_eq!(i.at.to_rfc3339(), "2026-03-05T14:00:00+00:00");
        assert_eq!(i.region, None);
        assert_eq!(
            at("maintenance-gap@2d").at.to_rfc3339(),
            "2026-03-04T00:00:00+00:00"
        );
        assert_eq!(
            at("throttling-storm@50h30m").at.to_rfc3339(),
            "2026-03-04T02:30:00+00:00"
        );
        assert_eq!(
            at("throttling-storm@+90m").at.to_rfc3339(),
            "2026-03-02T01:30:00+00:00"
        );
        let i = at("provisioning-spike@2026-03-06T02:07:45Z@eu-west-1");
        assert_eq!(i.kind, AnomalyKind::ProvisioningSpike);
        assert_eq!(i.at.to_rfc3339(), "2026-03-06T02:07:00+00:00");
        assert_eq!(i.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            at("Maintenance-Gap@2026-03-06T02:00:00+01:00")
                .at
                .to_rfc3339(),
            "2026-03-06T01:00:00+00:00"
        );
        for bad in [
            "bogus@1d",
            "iam-burst",
            "iam-burst@",
            "iam-burst@3x",
            "iam-burst@h",
            "iam-burst@12",
            "iam-burst@2026-13-01T00:00:00Z",
        ] {
            assert!(parse_injection(bad, start).is_err(), "{bad} accepted");
        }
        for k in AnomalyKind::ALL {
            assert_eq!(k.to_string().parse::<AnomalyKind>().unwrap(), k);
        }
    }
}
