//! Scoring detector output against the `labels.json` written by `simulate`.
//!
//! An insight (a `Start` record) is *true* when its key (account, region, eventSource, eventName,
//! insightType, and errorCode for error-rate insights) equals one of a label's keys and its
//! `eventTime` lies in `[label.start - 10 min, label.end + 60 min]` (maintenance gaps:
//! `[label.start - 10 min, label.end]`). Everything else is a false insight.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// How well a detector's insights match the labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub labels: usize,
    pub detected_labels: usize,
    /// Distinct `Start` records.
    pub insights: usize,
    pub true_insights: usize,
    pub recall: f64,
    pub precision: f64,
    pub false_per_1000_api_days: f64,
    pub mean_onset_error_minutes: f64,
    pub max_onset_error_minutes: f64,
    /// (kind, labels of that kind, detected labels of that kind), sorted by kind.
    pub per_kind: Vec<(String, usize, usize)>,
    /// One line per false insight: `region account source:name type [errorCode] at time`.
    pub false_insights: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    source: String,
    name: String,
    insight: String,
    error: Option<String>,
}

impl Key {
    fn matches(&self, other: &Key) -> bool {
        self.source == other.source
            && self.name == other.name
            && self.insight == other.insight
            && (self.insight != "ApiErrorRateInsight" || self.error == other.error)
    }
}

struct Label {
    kind: String,
    region: String,
    account: String,
    start: i64,
    end: i64,
    keys: Vec<Key>,
}

struct Insight {
    region: String,
    account: String,
    key: Key,
    t: i64,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn time(v: &Value, k: &str) -> Option<i64> {
    let t = v.get(k)?.as_str()?;
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&Utc).timestamp())
}

fn parse_labels(labels: &Value) -> Vec<Label> {
    let default_account = s(labels, "account").unwrap_or_default();
    let Some(list) = labels.get("anomalies").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a| {
            let start = time(a, "start")?;
            let end = time(a, "end").unwrap_or(start);
            let keys = a
                .get("keys")
                .and_then(Value::as_array)
                .map(|ks| {
                    ks.iter()
                        .filter_map(|k| {
                            Some(Key {
                                source: s(k, "eventSource")?,
                                name: s(k, "eventName")?,
                                insight: s(k, "insightType")?,
                                error: s(k, "errorCode"),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(Label {
                kind: s(a, "kind").unwrap_or_else(|| "unknown".to_string()),
                region: s(a, "region")?,
                account: s(a, "account").unwrap_or_else(|| default_account.clone()),
                start,
                end,
                keys,
            })
        })
        .collect()
}

/// Distinct `Start` records (by `sharedEventID`, else `eventID`). Accepts bare Insight records
/// and EventBridge envelopes (`detail` holding the record).
fn parse_insights(records: &[Value]) -> Vec<Insight> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in records {
        let r = if r.get("insightDetails").is_none() {
            r.get("detail").unwrap_or(r)
        } else {
            r
        };
        let Some(d) = r.get("insightDetails") else {
            continue;
        };
        if d.get("state").and_then(Value::as_str) != Some("Start") {
            continue;
        }
        let id = s(r, "sharedEventID").or_else(|| s(r, "eventID"));
        if let Some(id) = id
            && !seen.insert(id)
        {
            continue;
        }
        let (Some(t), Some(source), Some(name), Some(insight)) = (
            time(r, "eventTime"),
            s(d, "eventSource"),
            s(d, "eventName"),
            s(d, "insightType"),
        ) else {
            continue;
        };
        out.push(Insight {
            region: s(r, "awsRegion").unwrap_or_default(),
            account: s(r, "recipientAccountId").unwrap_or_default(),
            key: Key {
                source,
                name,
                insight,
                error: s(d, "errorCode"),
            },
            t,
        });
    }
    out
}

fn in_window(label: &Label, ins: &Insight) -> bool {
    let lo = label.start - 600;
    let hi = if label.kind == "maintenance-gap" {
        label.end
    } else {
        label.end + 3600
    };
    ins.region == label.region
        && ins.account == label.account
        && ins.t >= lo
        && ins.t <= hi
        && label.keys.iter().any(|k| k.matches(&ins.key))
}

fn rfc3339(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// Scores insight records against a parsed `labels.json`.
pub fn score(labels_json: &Value, insight_records: &[Value]) -> Score {
    let labels = parse_labels(labels_json);
    let insights = parse_insights(insight_records);
    let series_days = labels_json
        .get("series_days")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);

    let mut is_true = vec![false; insights.len()];
    let mut onsets = Vec::new();
    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for label in &labels {
        let mut first: Option<i64> = None;
        for (i, ins) in insights.iter().enumerate() {
            if in_window(label, ins) {
                is_true[i] = true;
                first = Some(first.map_or(ins.t, |f| f.min(ins.t)));
            }
        }
        let entry = per_kind.entry(label.kind.clone()).or_default();
        entry.0 += 1;
        if let Some(f) = first {
            entry.1 += 1;
            onsets.push((f - label.start).abs() as f64 / 60.0);
        }
    }
    let detected = onsets.len();
    let true_insights = is_true.iter().filter(|t| **t).count();
    let false_count = insights.len() - true_insights;
    let mut false_insights: Vec<(i64, String)> = insights
        .iter()
        .zip(&is_true)
        .filter(|(_, t)| !**t)
        .map(|(i, _)| {
            let err = i
                .key
                .error
                .as_deref()
                .map(|e| format!(" {e}"))
                .unwrap_or_default();
            (
                i.t,
                format!(
                    "{} {} {}:{} {}{} at {}",
                    i.region,
                    i.account,
                    i.key.source,
                    i.key.name,
                    i.key.insight,
                    err,
                    rfc3339(i.t)
                ),
            )
        })
        .collect();
    false_insights.sort();
    Score {
        labels: labels.len(),
        detected_labels: detected,
        insights: insights.len(),
        true_insights,
        recall: if labels.is_empty() {
            1.0
        } else {
            detected as f64 / labels.len() as f64
        },
        precision: if insights.is_empty() {
            1.0
        } else {
            true_insights as f64 / insights.len() as f64
        },
        false_per_1000_api_days: if false_count == 0 {
            0.0
        } else {
            false_count as f64 * 1000.0 / series_days.max(1.0)
        },
        mean_onset_error_minutes: if onsets.is_empty() {
            0.0
        } else {
            onsets.iter().sum::<f64>() / onsets.len() as f64
        },
        max_onset_error_minutes: onsets.iter().copied().fold(0.0, f64::max),
        per_kind: per_kind.into_iter().map(|(k, (n, d))| (k, n, d)).collect(),
        false_insights: false_insights.into_iter().map(|(_, l)| l).collect(),
    }
}

impl Score {
    /// A plain-text report.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "{:<28} {:>8}", "labels", self.labels);
        let _ = writeln!(
            t,
            "{:<28} {:>8}   recall    {:.3}",
            "detected labels", self.detected_labels, self.recall
        );
        let _ = writeln!(t, "{:<28} {:>8}", "insights (Start records)", self.insights);
        let _ = writeln!(
            t,
            "{:<28} {:>8}   precision {:.3}",
            "true insights", self.true_insights, self.precision
        );
        let _ = writeln!(
            t,
            "{:<28} {:>8.2}",
            "false per 1000 API-days", self.false_per_1000_api_days
        );
        let _ = writeln!(
            t,
            "{:<28} {:>8.1}   max {:.1}",
            "onset error, mean (min)", self.mean_onset_error_minutes, self.max_onset_error_minutes
        );
        if !self.per_kind.is_empty() {
            let _ = writeln!(t, "per kind (detected/labels):");
            for (kind, n, d) in &self.per_kind {
                let _ = writeln!(t, "  {kind:<26} {d:>3}/{n}");
            }
        }
        if !self.false_insights.is_empty() {
            let _ = writeln!(t, "false insights:");
            for f in &self.false_insights {
                let _ = writeln!(t, "  {f}");
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels() -> Value {
        json!({
            "seed": 1, "start": "2026-03-02T00:00:00Z", "end": "2026-03-11T00:00:00Z", "days": 9,
            "regions": ["us-east-1", "eu-west-1"], "account": "111122223333", "series_days": 2000,
            "anomalies": [
                {"id": 1, "kind": "iam-burst", "region": "us-east-1", "account": "111122223333",
                 "start": "2026-03-05T14:07:00Z", "end": "2026-03-05T14:10:00Z",
                 "keys": [{"eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
                           "insightType": "ApiCallRateInsight"}]},
                {"id": 2, "kind": "provisioning-spike", "region": "eu-west-1", "account": "111122223333",
                 "start": "2026-03-06T02:00:00Z", "end": "2026-03-06T02:20:00Z",
                 "keys": [{"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                           "insightType": "ApiCallRateInsight"},
                          {"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                           "insightType": "ApiErrorRateInsight", "errorCode": "Client.InstanceLimitExceeded"}]},
                {"id": 3, "kind": "maintenance-gap", "region": "us-east-1", "account": "111122223333",
                 "start": "2026-03-07T03:00:00Z", "end": "2026-03-07T08:00:00Z",
                 "keys": [{"eventSource": "ssm.amazonaws.com", "eventName": "PutParameter",
                           "insightType": "ApiCallRateInsight"}]}
            ]
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn insight(
        state: &str,
        shared: &str,
        region: &str,
        time: &str,
        source: &str,
        name: &str,
        kind: &str,
        err: Option<&str>,
    ) -> Value {
        let mut d = json!({"state": state, "eventSource": source, "eventName": name,
                           "insightType": kind, "sourceEventCategory": "Management"});
        if let Some(e) = err {
            d["errorCode"] = json!(e);
        }
        json!({"eventVersion": "1.09", "eventTime": time, "awsRegion": region,
               "eventID": format!("{shared}-{state}"), "eventType": "AwsCloudTrailInsight",
               "recipientAccountId": "111122223333", "sharedEventID": shared,
               "insightDetails": d, "eventCategory": "Insight"})
    }

    fn perfect() -> Vec<Value> {
        vec![
            insight(
                "Start",
                "a",
                "us-east-1",
                "2026-03-05T14:08:00Z",
                "iam.amazonaws.com",
                "CreateAccessKey",
                "ApiCallRateInsight",
                None,
            ),
            insight(
                "Start",
                "b",
                "eu-west-1",
                "2026-03-06T02:03:00Z",
                "ec2.amazonaws.com",
                "RunInstances",
                "ApiErrorRateInsight",
                Some("Client.InstanceLimitExceeded"),
            ),
            insight(
                "Start",
                "c",
                "us-east-1",
                "2026-03-07T03:30:00Z",
                "ssm.amazonaws.com",
                "PutParameter",
                "ApiCallRateInsight",
                None,
            ),
        ]
    }

    #[test]
    fn perfect_detection() {
        let s = score(&labels(), &perfect());
        assert_eq!(s.labels, 3);
        assert_eq!(s.detected_labels, 3);
        assert_eq!(s.insights, 3);
        assert_eq!(s.true_insights, 3);
        assert_eq!(s.recall, 1.0);
        assert_eq!(s.precision, 1.0);
        assert_eq!(s.false_per_1000_api_days, 0.0);
        assert!((s.mean_onset_error_minutes - (1.0 + 3.0 + 30.0) / 3.0).abs() < 1e-9);
        assert_eq!(s.max_onset_error_minutes, 30.0);
        assert_eq!(
            s.per_kind,
            vec![
                ("iam-burst".to_string(), 1, 1),
                ("maintenance-gap".to_string(), 1, 1),
                ("provisioning-spike".to_string(), 1, 1)
            ]
        );
        assert!(s.false_insights.is_empty());
        assert!(s.to_table().contains("recall"));
    }

    #[test]
    fn a_miss() {
        let mut ins = perfect();
        ins.remove(2);
        let s = score(&labels(), &ins);
        assert_eq!(s.detected_labels, 2);
        assert!((s.recall - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.precision, 1.0);
        assert_eq!(s.per_kind[1], ("maintenance-gap".to_string(), 1, 0));
    }

    #[test]
    fn false_positives() {
        let mut ins = perfect();
        // Wrong key, right time.
        ins.push(insight(
            "Start",
            "d",
            "us-east-1",
            "2026-03-05T14:08:00Z",
            "iam.amazonaws.com",
            "CreateUser",
            "ApiCallRateInsight",
            None,
        ));
        // Right key, wrong region.
        ins.push(insight(
            "Start",
            "e",
            "us-east-1",
            "2026-03-06T02:03:00Z",
            "ec2.amazonaws.com",
            "RunInstances",
            "ApiCallRateInsight",
            None,
        ));
        // Right key, too late (more than 60 min after the end).
        ins.push(insight(
            "Start",
            "f",
            "us-east-1",
            "2026-03-05T15:11:00Z",
            "iam.amazonaws.com",
            "CreateAccessKey",
            "ApiCallRateInsight",
            None,
        ));
        // Error key with another error code.
        ins.push(insight(
            "Start",
            "g",
            "eu-west-1",
            "2026-03-06T02:03:00Z",
            "ec2.amazonaws.com",
            "RunInstances",
            "ApiErrorRateInsight",
            Some("Client.VcpuLimitExceeded"),
        ));
        // Gap key after the gap ended (the gap window has no hour of grace).
        ins.push(insight(
            "Start",
            "h",
            "us-east-1",
            "2026-03-07T08:05:00Z",
            "ssm.amazonaws.com",
            "PutParameter",
            "ApiCallRateInsight",
            None,
        ));
        let s = score(&labels(), &ins);
        assert_eq!(s.insights, 8);
        assert_eq!(s.true_insights, 3);
        assert_eq!(s.detected_labels, 3);
        assert!((s.precision - 3.0 / 8.0).abs() < 1e-9);
        assert!((s.false_per_1000_api_days - 5.0 * 1000.0 / 2000.0).abs() < 1e-9);
        assert_eq!(s.false_insights.len(), 5);
        assert!(s.false_insights.iter().any(|l| l.contains("CreateUser")));
        assert!(s.to_table().contains("false insights"));
    }

    #[test]
    fn within_window_edges() {
        let ins = vec![
            // 10 minutes early is still true; an hour after the end too.
            insight(
                "Start",
                "a",
                "us-east-1",
                "2026-03-05T13:57:00Z",
                "iam.amazonaws.com",
                "CreateAccessKey",
                "ApiCallRateInsight",
                None,
            ),
            insight(
                "Start",
                "b",
                "us-east-1",
                "2026-03-05T15:10:00Z",
                "iam.amazonaws.com",
                "CreateAccessKey",
                "ApiCallRateInsight",
                None,
            ),
            insight(
                "Start",
                "c",
                "us-east-1",
                "2026-03-05T13:56:00Z",
                "iam.amazonaws.com",
                "CreateAccessKey",
                "ApiCallRateInsight",
                None,
            ),
        ];
        let s = score(&labels(), &ins);
        assert_eq!(s.true_insights, 2);
        assert_eq!(s.detected_labels, 1);
        assert_eq!(s.mean_onset_error_minutes, 10.0);
    }

    #[test]
    fn start_and_end_count_once() {
        let mut ins = perfect();
        ins.push(insight(
            "End",
            "a",
            "us-east-1",
            "2026-03-05T14:12:00Z",
            "iam.amazonaws.com",
            "CreateAccessKey",
            "ApiCallRateInsight",
            None,
        ));
        // The same Start delivered twice (at-least-once publishing) counts once.
        ins.push(ins[0].clone());
        // An End alone (its Start outside the input) is not an insight.
        ins.push(insight(
            "End",
            "z",
            "us-east-1",
            "2026-03-09T14:12:00Z",
            "iam.amazonaws.com",
            "CreateUser",
            "ApiCallRateInsight",
            None,
        ));
        let s = score(&labels(), &ins);
        assert_eq!(s.insights, 3);
        assert_eq!(s.true_insights, 3);
        assert_eq!(s.precision, 1.0);
    }

    #[test]
    fn eventbridge_envelopes_are_unwrapped() {
        let ins: Vec<Value> = perfect()
            .into_iter()
            .map(|r| {
                json!({"detail-type": "AWS Insight via CloudTrail", "source": "trailsight",
                            "detail": r})
            })
            .collect();
        let s = score(&labels(), &ins);
        assert_eq!(s.true_insights, 3);
    }

    #[test]
    fn empty_cases() {
        let quiet = json!({"anomalies": [], "series_days": 100});
        let s = score(&quiet, &[]);
        assert_eq!((s.recall, s.precision), (1.0, 1.0));
        let s = score(&quiet, &perfect()[..1]);
        assert_eq!(s.precision, 0.0);
        assert_eq!(s.false_per_1000_api_days, 10.0);
        let s = score(&labels(), &[]);
        assert_eq!(s.recall, 0.0);
        assert_eq!(s.precision, 1.0);
        assert_eq!(s.mean_onset_error_minutes, 0.0);
    }
}
