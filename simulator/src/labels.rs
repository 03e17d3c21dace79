//! `labels.json`: the ground truth written beside the logs by [`simulate`](crate::simulate()) and
//! read by [`eval`](crate::eval) (and `trailsight labels`). One type, [`Labels`], for both.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use trailsight::series::InsightType;

use crate::catalog::apis::{APIS, event_source};
use crate::catalog::errors::ErrorKind;
use crate::time::rfc3339;

/// The file a scenario's labels are in, under its folder.
pub const LABELS_FILE: &str = "labels.json";

/// A scenario's ground truth. Times are whole seconds, written `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Labels {
    pub seed: u64,
    /// First minute of the scenario.
    pub start: DateTime<Utc>,
    /// End of the scenario (exclusive).
    pub end: DateTime<Utc>,
    pub days: u32,
    pub regions: Vec<String>,
    pub account: String,
    /// API-days: the number of (region, API) keys with writes or errors, times the days. The
    /// denominator of the false-insight rate.
    pub series_days: u64,
    pub anomalies: Vec<AnomalyLabel>,
    /// Benign routine changes: an insight on one of a change's keys that starts at or after its
    /// `learned_after` (the end of its learning period) is a false insight; one between `from`
    /// and `learned_after` is neither true nor false.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeLabel>,
    /// Informational: the periodic maintenance jobs (the keys a maintenance gap can hit).
    #[serde(default)]
    pub periodic_jobs: Vec<PeriodicJob>,
    /// Principal scenarios (`simulate --principals`): attacks made by a principal of the account
    /// and benign look-alikes, scored against the per-principal insights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principal_cases: Vec<PrincipalCaseLabel>,
    /// Principal-days: the (principal with an ARN, UTC day) pairs with calls, for the false
    /// per-principal insight rate (principal scenarios only; 0 otherwise).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub principal_days: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A principal case: a per-principal insight of `principal` (normalised as Trailsight does) in
/// its region and window is true for an attack; for a look-alike it is false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrincipalCaseLabel {
    pub id: usize,
    pub kind: PrincipalCaseKind,
    /// An attack (to report) or a benign look-alike (not to report).
    pub attack: bool,
    pub region: String,
    pub account: String,
    pub principal: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub description: String,
    /// An attack's account keys: its APIs' call-rate keys (writes) and error-rate keys (its
    /// errors). An account insight on one of them, in its region and window, is the account's
    /// side of the attack (true).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<LabelKey>,
}

/// Written in labels as its name (`secret-harvest`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalCaseKind {
    SecretHarvest,
    Enumeration,
    NewRegion,
    RoleChaining,
    ConsoleSession,
    CiRun,
    NewEngineer,
    NewService,
}

impl PrincipalCaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalCaseKind::SecretHarvest => "secret-harvest",
            PrincipalCaseKind::Enumeration => "enumeration",
            PrincipalCaseKind::NewRegion => "new-region",
            PrincipalCaseKind::RoleChaining => "role-chaining",
            PrincipalCaseKind::ConsoleSession => "console-session",
            PrincipalCaseKind::CiRun => "ci-run",
            PrincipalCaseKind::NewEngineer => "new-engineer",
            PrincipalCaseKind::NewService => "new-service",
        }
    }

    /// Attacks; the others are look-alikes.
    pub fn is_attack(self) -> bool {
        matches!(
            self,
            PrincipalCaseKind::SecretHarvest
                | PrincipalCaseKind::Enumeration
                | PrincipalCaseKind::NewRegion
                | PrincipalCaseKind::RoleChaining
        )
    }
}

impl fmt::Display for PrincipalCaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An injected anomaly: an insight on one of its keys, in its region and account, within its
/// window is a true insight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyLabel {
    /// 1, 2, ... in order of start.
    pub id: usize,
    pub kind: AnomalyKind,
    pub region: String,
    pub account: String,
    /// First anomalous minute.
    pub start: DateTime<Utc>,
    /// End of the anomaly (exclusive).
    pub end: DateTime<Utc>,
    pub keys: Vec<LabelKey>,
    pub description: String,
}

/// A routine change a detector should learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeLabel {
    pub id: usize,
    pub kind: ChangeKind,
    pub region: String,
    pub account: String,
    /// First changed minute.
    pub from: DateTime<Utc>,
    /// End of the learning period.
    pub learned_after: DateTime<Utc>,
    pub keys: Vec<LabelKey>,
    pub description: String,
}

/// An insight key: an API's call rate, or its rate of one error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelKey {
    pub event_source: String,
    pub event_name: String,
    pub insight_type: InsightType,
    /// The error code, for `ApiErrorRateInsight` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// A periodic maintenance job of the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodicJob {
    pub event_source: String,
    pub event_name: String,
    pub period_minutes: i64,
    pub calls_per_run: u32,
}

/// Written in labels as its name (`iam-burst`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    IamBurst,
    ProvisioningSpike,
    ThrottlingStorm,
    MaintenanceGap,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 4] = [
        AnomalyKind::IamBurst,
        AnomalyKind::ProvisioningSpike,
        AnomalyKind::ThrottlingStorm,
        AnomalyKind::MaintenanceGap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::IamBurst => "iam-burst",
            AnomalyKind::ProvisioningSpike => "provisioning-spike",
            AnomalyKind::ThrottlingStorm => "throttling-storm",
            AnomalyKind::MaintenanceGap => "maintenance-gap",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AnomalyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        AnomalyKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown anomaly kind {s:?} (expected iam-burst, provisioning-spike, \
                     throttling-storm or maintenance-gap)"
                )
            })
    }
}

/// Written in labels as its name (`new-job`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// A new job from day N: a burst of one write API at a fixed time of day or every few hours.
    NewJob,
    /// A lasting step in a key's rate: its background rate multiplied from day N on.
    RateStep,
    /// An API never called before day N, then used every day in sessions of a few calls.
    NewApi,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::NewJob => "new-job",
            ChangeKind::RateStep => "rate-step",
            ChangeKind::NewApi => "new-api",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl LabelKey {
    /// The call-rate key of `APIS[api]`.
    pub(crate) fn calls(api: u16) -> LabelKey {
        let a = &APIS[api as usize];
        LabelKey {
            event_source: event_source(a.svc),
            event_name: a.name.to_string(),
            insight_type: InsightType::ApiCallRateInsight,
            error_code: None,
        }
    }

    /// The error-rate key of `APIS[api]` failing with `err`.
    pub(crate) fn errors(api: u16, err: ErrorKind) -> LabelKey {
        let a = &APIS[api as usize];
        LabelKey {
            event_source: event_source(a.svc),
            event_name: a.name.to_string(),
            insight_type: InsightType::ApiErrorRateInsight,
            error_code: Some(err.code(a).to_string()),
        }
    }

    /// `eventName`, with `[errorCode]` for error-rate keys.
    fn short(&self) -> String {
        match &self.error_code {
            Some(code) => format!("{}[{code}]", self.event_name),
            None => self.event_name.clone(),
        }
    }
}

impl Labels {
    /// Parses the text of a `labels.json`.
    pub fn from_json(text: &str) -> serde_json::Result<Labels> {
        serde_json::from_str(text)
    }

    /// Reads a `labels.json`.
    pub fn read(path: &Path) -> io::Result<Labels> {
        let text = std::fs::read_to_string(path)?;
        Labels::from_json(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes `path` (pretty-printed JSON and a newline).
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let mut w = BufWriter::new(File::create(path)?);
        serde_json::to_writer_pretty(&mut w, self)?;
        w.write_all(b"\n")?;
        w.flush()
    }

    /// One line a label, for a person: the anomalies (`start kind region keys`), then the routine
    /// changes (`from kind region key (learned after time)`). Keys are event names, with
    /// `[errorCode]` for error-rate keys.
    pub fn listing(&self) -> String {
        let mut out = String::new();
        for a in &self.anomalies {
            let keys: Vec<String> = a.keys.iter().map(LabelKey::short).collect();
            let _ = writeln!(
                out,
                "  {} {} {} {}",
                rfc3339(a.start.timestamp()),
                a.kind,
                a.region,
                keys.join(", ")
            );
        }
        for c in &self.changes {
            let keys: Vec<String> = c.keys.iter().map(LabelKey::short).collect();
            let _ = writeln!(
                out,
                "  {} {} {} {} (learned after {})",
                rfc3339(c.from.timestamp()),
                c.kind,
                c.region,
                keys.join(", "),
                rfc3339(c.learned_after.timestamp())
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::planned;

    #[test]
    fn labels_round_trip_through_json() {
        for seed in 1..=3 {
            let labels = planned(seed);
            assert_eq!(labels.anomalies.len(), 8);
            assert_eq!(labels.changes.len(), 4);
            assert!(!labels.periodic_jobs.is_empty());
            let text = serde_json::to_string_pretty(&labels).unwrap();
            let back = Labels::from_json(&text).unwrap();
            assert_eq!(back, labels, "seed {seed}");
            // Read and written again, the file is the same to the byte.
            assert_eq!(serde_json::to_string_pretty(&back).unwrap(), text);
        }
    }

    #[test]
    fn labels_file_format() {
        let labels = planned(1);
        let dir = crate::testing::TempDir::new("labels-file");
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join(LABELS_FILE);
        labels.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n"));
        assert_eq!(Labels::read(&path).unwrap(), labels);
        // What readers of labels.json (the docs, scripts) rely on: names, time format, kinds.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let top: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("  \"")?.split('"').next())
            .collect();
        assert_eq!(
            top,
            [
                "seed",
                "start",
                "end",
                "days",
                "regions",
                "account",
                "series_days",
                "anomalies",
                "changes",
                "periodic_jobs"
            ]
        );
        assert_eq!(v["start"], "2026-03-02T00:00:00Z");
        assert_eq!(v["end"], "2026-03-11T00:00:00Z");
        let a = &v["anomalies"][0];
        assert!(AnomalyKind::ALL.iter().any(|k| a["kind"] == k.as_str()));
        let start = a["start"].as_str().unwrap();
        assert!(start.len() == 20 && start.ends_with(":00Z"), "{start}");
        let key = &v["changes"][0]["keys"][0];
        assert_eq!(key["insightType"], "ApiCallRateInsight");
        assert!(key.get("errorCode").is_none());
        assert!(v["changes"][0]["learned_after"].is_string());
        assert!(v["periodic_jobs"][0]["periodMinutes"].is_i64());
        // Without changes, no `changes` key; a file without one reads as no changes.
        let mut quiet = labels.clone();
        quiet.changes.clear();
        let text = serde_json::to_string(&quiet).unwrap();
        assert!(!text.contains("\"changes\""));
        assert_eq!(Labels::from_json(&text).unwrap(), quiet);
    }

    #[test]
    fn malformed_labels_are_errors() {
        let text = serde_json::to_string(&planned(2)).unwrap();
        assert!(Labels::from_json(&text.replace("iam-burst", "iam-storm")).is_err());
        assert!(Labels::from_json(&text.replace("\"series_days\"", "\"days_series\"")).is_err());
        let dir = crate::testing::TempDir::new("labels-missing");
        let err = Labels::read(&dir.0.join(LABELS_FILE)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn listing_names_each_label_and_its_keys() {
        let key = |name: &str, error: Option<&str>| LabelKey {
            event_source: "ec2.amazonaws.com".to_string(),
            event_name: name.to_string(),
            insight_type: if error.is_some() {
                InsightType::ApiErrorRateInsight
            } else {
                InsightType::ApiCallRateInsight
            },
            error_code: error.map(str::to_string),
        };
        let mut labels = planned(1);
        labels.anomalies.truncate(1);
        let a = &mut labels.anomalies[0];
        a.kind = AnomalyKind::ProvisioningSpike;
        a.region = "eu-west-1".to_string();
        a.start = "2026-03-04T20:32:00Z".parse().unwrap();
        a.keys = vec![
            key("RunInstances", None),
            key("RunInstances", Some("Client.VcpuLimitExceeded")),
            key("CreateVolume", None),
        ];
        labels.changes.truncate(1);
        let c = &mut labels.changes[0];
        c.kind = ChangeKind::NewJob;
        c.region = "us-east-1".to_string();
        c.from = "2026-03-04T05:59:00Z".parse().unwrap();
        c.learned_after = "2026-03-07T05:59:00Z".parse().unwrap();
        c.keys = vec![key("CopySnapshot", None)];
        assert_eq!(
            labels.listing(),
            "  2026-03-04T20:32:00Z provisioning-spike eu-west-1 RunInstances, \
             RunInstances[Client.VcpuLimitExceeded], CreateVolume\n  \
             2026-03-04T05:59:00Z new-job us-east-1 CopySnapshot (learned after \
             2026-03-07T05:59:00Z)\n"
        );
    }
}
