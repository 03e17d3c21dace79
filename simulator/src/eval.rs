//! Scoring detector output against the `labels.json` written by `simulate`.
//!
//! An insight (a `Start` record) is *true* when its key (account, region, eventSource, eventName,
//! insightType, and errorCode for error-rate insights) equals one of a label's keys and its
//! `eventTime` lies in `[label.start - 10 min, label.end + 60 min]` (maintenance gaps:
//! `[label.start - 10 min, label.end]`). Everything else is a false insight, except on the keys of
//! a routine change (`labels.json` `changes`: a new job, a rate step, a new API, all benign): an
//! insight on one of a change's keys (same region and account) that starts in
//! `[from - 10 min, learned_after)`, the change's learning period, is neither true nor false (it
//! counts in neither precision nor the false rate); one that starts at or after `learned_after`
//! is a false insight, and is also counted as a *false insight on a learned change* (target 0).
//! Anomaly labels are matched first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use trailsight::series::InsightType;

use crate::labels::{AnomalyKind, AnomalyLabel, ChangeLabel, LabelKey, Labels};
use crate::time::rfc3339;

/// How well a detector's insights match the labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub labels: usize,
    pub detected_labels: usize,
    /// Distinct `Start` records.
    pub insights: usize,
    pub true_insights: usize,
    /// Of which the account's side of a labelled principal attack (its errors, its writes).
    pub on_principal_attacks: usize,
    /// Insights on a routine change's keys during its learning period: neither true nor false.
    pub learning_insights: usize,
    /// Insights on a routine change's keys after its learning period (false insights; target 0).
    pub false_on_learned: usize,
    pub changes: usize,
    pub recall: f64,
    /// True insights over the insights that are true or false (learning ones left out).
    pub precision: f64,
    /// API-days of the scenario (`labels.json` `series_days`), for totals.
    pub series_days: f64,
    pub false_per_1000_api_days: f64,
    pub mean_onset_error_minutes: f64,
    pub max_onset_error_minutes: f64,
    /// (kind, labels of that kind, detected labels of that kind), sorted by kind.
    pub per_kind: Vec<(String, usize, usize)>,
    /// Per routine change: `kind region source:name from`, insights while learning, after.
    pub per_change: Vec<(String, usize, usize)>,
    /// One line per false insight: `region account source:name type [errorCode] at time`.
    pub false_insights: Vec<String>,
}

/// An insight's key and where and when it started.
struct Insight {
    region: String,
    account: String,
    source: String,
    name: String,
    insight: String,
    error: Option<String>,
    t: i64,
}

impl Insight {
    /// Same key as `key` (the error code counts for error-rate keys only).
    fn is_on(&self, key: &LabelKey) -> bool {
        key.event_source == self.source
            && key.event_name == self.name
            && key.insight_type.as_str() == self.insight
            && (key.insight_type != InsightType::ApiErrorRateInsight
                || key.error_code == self.error)
    }
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
        // Per-principal insights are scored on their own ([`score_principals`]).
        if insight.starts_with("Principal") {
            continue;
        }
        out.push(Insight {
            region: s(r, "awsRegion").unwrap_or_default(),
            account: s(r, "recipientAccountId").unwrap_or_default(),
            source,
            name,
            insight,
            error: s(d, "errorCode"),
            t,
        });
    }
    out
}

fn in_window(label: &AnomalyLabel, ins: &Insight) -> bool {
    let lo = label.start.timestamp() - 600;
    let hi = if label.kind == AnomalyKind::MaintenanceGap {
        label.end.timestamp()
    } else {
        label.end.timestamp() + 3600
    };
    ins.region == label.region
        && ins.account == label.account
        && ins.t >= lo
        && ins.t <= hi
        && label.keys.iter().any(|k| ins.is_on(k))
}

/// Where an insight falls on a change's keys: `None` (not its keys, or before it started),
/// `Some(false)` during its learning period, `Some(true)` after it.
fn on_change(change: &ChangeLabel, ins: &Insight) -> Option<bool> {
    (ins.region == change.region
        && ins.account == change.account
        && ins.t >= change.from.timestamp() - 600
        && change.keys.iter().any(|k| ins.is_on(k)))
    .then_some(ins.t >= change.learned_after.timestamp())
}

/// Scores insight records against a scenario's labels.
pub fn score(scenario: &Labels, insight_records: &[Value]) -> Score {
    let labels = &scenario.anomalies;
    let insights = parse_insights(insight_records);
    let series_days = scenario.series_days as f64;

    let mut is_true = vec![false; insights.len()];
    let mut onsets = Vec::new();
    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for label in labels {
        let mut first: Option<i64> = None;
        for (i, ins) in insights.iter().enumerate() {
            if in_window(label, ins) {
                is_true[i] = true;
                first = Some(first.map_or(ins.t, |f| f.min(ins.t)));
            }
        }
        let entry = per_kind.entry(label.kind.to_string()).or_default();
        entry.0 += 1;
        if let Some(f) = first {
            entry.1 += 1;
            onsets.push((f - label.start.timestamp()).abs() as f64 / 60.0);
        }
    }
    let detected = onsets.len();
    // The account's side of a principal attack (its writes' rate, its errors): true as well.
    let mut on_principal_attacks = 0;
    for (i, ins) in insights.iter().enumerate() {
        if !is_true[i]
            && scenario.principal_cases.iter().any(|c| {
                c.attack
                    && ins.region == c.region
                    && ins.account == c.account
                    && ins.t >= c.start.timestamp() - 600
                    && ins.t <= c.end.timestamp() + 3600
                    && c.keys.iter().any(|k| ins.is_on(k))
            })
        {
            is_true[i] = true;
            on_principal_attacks += 1;
        }
    }
    let true_insights = is_true.iter().filter(|t| **t).count();

    // Routine changes: insights not explained by an anomaly, on a change's keys.
    let changes = &scenario.changes;
    let mut learning = vec![false; insights.len()];
    let mut learned: Vec<Option<usize>> = vec![None; insights.len()];
    let mut per_change = Vec::with_capacity(changes.len());
    for (c, change) in changes.iter().enumerate() {
        let (mut during, mut after) = (0, 0);
        for (i, ins) in insights.iter().enumerate() {
            if is_true[i] || learning[i] || learned[i].is_some() {
                continue;
            }
            match on_change(change, ins) {
                Some(false) => {
                    learning[i] = true;
                    during += 1;
                }
                Some(true) => {
                    learned[i] = Some(c);
                    after += 1;
                }
                None => {}
            }
        }
        let key = change
            .keys
            .first()
            .map(|k| {
                let service = k.event_source.trim_end_matches(".amazonaws.com");
                format!("{service}:{}", k.event_name)
            })
            .unwrap_or_default();
        per_change.push((
            format!(
                "{} {} {} from {}",
                change.kind,
                change.region,
                key,
                rfc3339(change.from.timestamp())
            ),
            during,
            after,
        ));
    }
    let learning_insights = learning.iter().filter(|l| **l).count();
    let false_on_learned = learned.iter().filter(|l| l.is_some()).count();
    let judged = insights.len() - learning_insights;
    let (recall, precision, false_per_1000_api_days) =
        rates(labels.len(), detected, judged, true_insights, series_days);
    let mut false_insights: Vec<(i64, String)> = insights
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_true[*i] && !learning[*i])
        .map(|(n, i)| {
            let err = i
                .error
                .as_deref()
                .map(|e| format!(" {e}"))
                .unwrap_or_default();
            (
                i.t,
                format!(
                    "{} {} {}:{} {}{} at {}{}",
                    i.region,
                    i.account,
                    i.source,
                    i.name,
                    i.insight,
                    err,
                    rfc3339(i.t),
                    learned[n]
                        .map(|c| format!(
                            " (learned {} since {})",
                            changes[c].kind,
                            rfc3339(changes[c].learned_after.timestamp())
                        ))
                        .unwrap_or_default()
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
        on_principal_attacks,
        learning_insights,
        false_on_learned,
        changes: changes.len(),
        recall,
        precision,
        series_days,
        false_per_1000_api_days,
        mean_onset_error_minutes: if onsets.is_empty() {
            0.0
        } else {
            onsets.iter().sum::<f64>() / onsets.len() as f64
        },
        max_onset_error_minutes: onsets.iter().copied().fold(0.0, f64::max),
        per_kind: per_kind.into_iter().map(|(k, (n, d))| (k, n, d)).collect(),
        per_change,
        false_insights: false_insights.into_iter().map(|(_, l)| l).collect(),
    }
}

/// Recall, precision and false insights per 1000 API-days, from the counts: `judged` insights
/// are the true and false ones (not those while learning).
fn rates(
    labels: usize,
    detected: usize,
    judged: usize,
    true_insights: usize,
    series_days: f64,
) -> (f64, f64, f64) {
    let false_count = judged - true_insights;
    let recall = if labels == 0 {
        1.0
    } else {
        detected as f64 / labels as f64
    };
    let precision = if judged == 0 {
        1.0
    } else {
        true_insights as f64 / judged as f64
    };
    let false_per_1000_api_days = if false_count == 0 {
        0.0
    } else {
        false_count as f64 * 1000.0 / series_days.max(1.0)
    };
    (recall, precision, false_per_1000_api_days)
}

impl Score {
    /// Several scenarios pooled: counts added, ratios recomputed from them (per-change and
    /// false-insight lines are left to the scenarios' own scores).
    pub fn total(scores: &[Score]) -> Score {
        let sum = |f: fn(&Score) -> usize| scores.iter().map(f).sum::<usize>();
        let labels = sum(|s| s.labels);
        let detected_labels = sum(|s| s.detected_labels);
        let insights = sum(|s| s.insights);
        let true_insights = sum(|s| s.true_insights);
        let learning_insights = sum(|s| s.learning_insights);
        let judged = insights - learning_insights;
        let series_days: f64 = scores.iter().map(|s| s.series_days).sum();
        let (recall, precision, false_per_1000_api_days) =
            rates(labels, detected_labels, judged, true_insights, series_days);
        let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (kind, n, d) in scores.iter().flat_map(|s| &s.per_kind) {
            let e = per_kind.entry(kind.clone()).or_default();
            e.0 += n;
            e.1 += d;
        }
        Score {
            labels,
            detected_labels,
            insights,
            true_insights,
            on_principal_attacks: sum(|s| s.on_principal_attacks),
            learning_insights,
            false_on_learned: sum(|s| s.false_on_learned),
            changes: sum(|s| s.changes),
            recall,
            precision,
            series_days,
            false_per_1000_api_days,
            mean_onset_error_minutes: if detected_labels == 0 {
                0.0
            } else {
                scores
                    .iter()
                    .map(|s| s.mean_onset_error_minutes * s.detected_labels as f64)
                    .sum::<f64>()
                    / detected_labels as f64
            },
            max_onset_error_minutes: scores
                .iter()
                .map(|s| s.max_onset_error_minutes)
                .fold(0.0, f64::max),
            per_kind: per_kind.into_iter().map(|(k, (n, d))| (k, n, d)).collect(),
            per_change: Vec::new(),
            false_insights: Vec::new(),
        }
    }

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
        if self.on_principal_attacks > 0 {
            let _ = writeln!(
                t,
                "{:<28} {:>8}   (the account's side of principal attacks)",
                "  of which on attacks", self.on_principal_attacks
            );
        }
        if self.changes > 0 || self.learning_insights > 0 {
            let _ = writeln!(
                t,
                "{:<28} {:>8}   (neither true nor false)",
                "insights while learning", self.learning_insights
            );
        }
        let _ = writeln!(
            t,
            "{:<28} {:>8.2}",
            "false per 1000 API-days", self.false_per_1000_api_days
        );
        if self.changes > 0 {
            let _ = writeln!(
                t,
                "{:<28} {:>8}   on {} routine changes (target 0)",
                "false on learned changes", self.false_on_learned, self.changes
            );
        }
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
        if !self.per_change.is_empty() {
            let _ = writeln!(t, "routine changes (insights while learning / after):");
            let width = self.per_change.iter().map(|c| c.0.len()).max().unwrap_or(0);
            for (change, during, after) in &self.per_change {
                let _ = writeln!(t, "  {change:<width$} {during:>3} / {after}");
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

/// How the per-principal insights match the principal cases (`simulate --principals`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrincipalScore {
    pub attacks: usize,
    pub detected_attacks: usize,
    /// Distinct per-principal `Start` records.
    pub insights: usize,
    pub true_insights: usize,
    /// Of the true insights, those on a labelled account anomaly's API, region and window (the
    /// principals behind an injected burst or storm).
    pub on_account_anomalies: usize,
    /// On a routine change's API during its learning period: neither true nor false.
    pub learning_insights: usize,
    /// False insights on a look-alike (its principal, region and period).
    pub false_on_look_alikes: usize,
    pub recall: f64,
    pub precision: f64,
    pub principal_days: f64,
    pub false_per_1000_principal_days: f64,
    /// (kind, cases, detected attacks or insights on the look-alike), sorted by kind.
    pub per_kind: Vec<(String, usize, usize)>,
    /// One line per false insight: `region principal source:name type at time`.
    pub false_insights: Vec<String>,
}

/// Scores the per-principal insight records against the principal cases: an insight whose
/// principal, region and start (within [start − 10 min, end + 60 min]) match an attack is true;
/// every other per-principal insight is false (and, on a look-alike, counted against it).
pub fn score_principals(scenario: &Labels, insight_records: &[Value]) -> PrincipalScore {
    struct Found {
        region: String,
        principal: String,
        source: String,
        name: String,
        what: String,
        t: i64,
    }
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    for r in insight_records {
        let r = if r.get("insightDetails").is_none() {
            r.get("detail").unwrap_or(r)
        } else {
            r
        };
        let Some(d) = r.get("insightDetails") else {
            continue;
        };
        let insight = s(d, "insightType").unwrap_or_default();
        if !insight.starts_with("Principal") || s(d, "state").as_deref() != Some("Start") {
            continue;
        }
        if let Some(id) = s(r, "sharedEventID")
            && !seen.insert(id)
        {
            continue;
        }
        let principal = d
            .pointer("/insightContext/principal/userIdentityArn")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        found.push(Found {
            region: s(r, "awsRegion").unwrap_or_default(),
            principal,
            source: s(d, "eventSource").unwrap_or_default(),
            name: s(d, "eventName").unwrap_or_default(),
            what: format!(
                "{}:{} {}",
                s(d, "eventSource").unwrap_or_default(),
                s(d, "eventName").unwrap_or_default(),
                insight
            ),
            t: time(r, "eventTime").unwrap_or_default(),
        });
    }
    let cases = &scenario.principal_cases;
    let on = |c: &crate::labels::PrincipalCaseLabel, f: &Found, slack: i64| {
        c.principal == f.principal
            && c.region == f.region
            && f.t >= c.start.timestamp() - 600
            && f.t <= c.end.timestamp() + slack
    };
    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut true_insights = 0;
    let mut false_on_look_alikes = 0;
    let mut false_insights = Vec::new();
    let mut detected = BTreeSet::new();
    let on_api = |keys: &[LabelKey], f: &Found| {
        keys.iter()
            .any(|k| k.event_source == f.source && k.event_name == f.name)
    };
    let mut on_anomalies = 0;
    let mut learning = 0;
    for f in &found {
        if let Some(c) = cases.iter().find(|c| c.attack && on(c, f, 3600)) {
            true_insights += 1;
            detected.insert(c.id);
            continue;
        }
        // The principal side of a labelled account anomaly (its API, region and window): true.
        if scenario.anomalies.iter().any(|a| {
            a.region == f.region
                && f.t >= a.start.timestamp() - 600
                && f.t <= a.end.timestamp() + 3600
                && on_api(&a.keys, f)
        }) {
            true_insights += 1;
            on_anomalies += 1;
            continue;
        }
        // A routine change's API: neither true nor false while it is learnt, false after.
        if scenario.changes.iter().any(|c| {
            c.region == f.region
                && f.t >= c.from.timestamp() - 600
                && f.t < c.learned_after.timestamp()
                && on_api(&c.keys, f)
        }) {
            learning += 1;
            continue;
        }
        if let Some(c) = cases.iter().find(|c| !c.attack && on(c, f, 0)) {
            false_on_look_alikes += 1;
            per_kind.entry(c.kind.to_string()).or_default().1 += 1;
        }
        false_insights.push(format!(
            "{} {} {} at {}",
            f.region,
            f.principal,
            f.what,
            rfc3339(f.t)
        ));
    }
    for c in cases {
        let e = per_kind.entry(c.kind.to_string()).or_default();
        e.0 += 1;
        if c.attack && detected.contains(&c.id) {
            e.1 += 1;
        }
    }
    let attacks = cases.iter().filter(|c| c.attack).count();
    let principal_days = scenario.principal_days as f64;
    let (recall, precision, false_per_1000_principal_days) = rates(
        attacks,
        detected.len(),
        found.len() - learning,
        true_insights,
        principal_days,
    );
    PrincipalScore {
        attacks,
        detected_attacks: detected.len(),
        insights: found.len(),
        true_insights,
        on_account_anomalies: on_anomalies,
        learning_insights: learning,
        false_on_look_alikes,
        recall,
        precision,
        principal_days,
        false_per_1000_principal_days,
        per_kind: per_kind.into_iter().map(|(k, (n, d))| (k, n, d)).collect(),
        false_insights,
    }
}

impl PrincipalScore {
    /// Several scenarios pooled: counts added, ratios recomputed.
    pub fn total(scores: &[PrincipalScore]) -> PrincipalScore {
        let sum = |f: fn(&PrincipalScore) -> usize| scores.iter().map(f).sum::<usize>();
        let attacks = sum(|s| s.attacks);
        let detected_attacks = sum(|s| s.detected_attacks);
        let insights = sum(|s| s.insights);
        let true_insights = sum(|s| s.true_insights);
        let learning_insights = sum(|s| s.learning_insights);
        let principal_days: f64 = scores.iter().map(|s| s.principal_days).sum();
        let (recall, precision, false_per_1000_principal_days) = rates(
            attacks,
            detected_attacks,
            insights - learning_insights,
            true_insights,
            principal_days,
        );
        let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (kind, n, d) in scores.iter().flat_map(|s| &s.per_kind) {
            let e = per_kind.entry(kind.clone()).or_default();
            e.0 += n;
            e.1 += d;
        }
        PrincipalScore {
            attacks,
            detected_attacks,
            insights,
            true_insights,
            on_account_anomalies: sum(|s| s.on_account_anomalies),
            learning_insights,
            false_on_look_alikes: sum(|s| s.false_on_look_alikes),
            recall,
            precision,
            principal_days,
            false_per_1000_principal_days,
            per_kind: per_kind.into_iter().map(|(k, (n, d))| (k, n, d)).collect(),
            false_insights: Vec::new(),
        }
    }

    /// A plain-text report.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "principal insights:");
        let _ = writeln!(t, "{:<28} {:>8}", "  read-made attacks", self.attacks);
        let _ = writeln!(
            t,
            "{:<28} {:>8}   recall    {:.3}",
            "  detected attacks", self.detected_attacks, self.recall
        );
        let _ = writeln!(
            t,
            "{:<28} {:>8}",
            "  insights (Start records)", self.insights
        );
        let _ = writeln!(
            t,
            "{:<28} {:>8}   precision {:.3}",
            "  true insights", self.true_insights, self.precision
        );
        let _ = writeln!(
            t,
            "{:<28} {:>8}   (principals of labelled account anomalies)",
            "  of which on anomalies", self.on_account_anomalies
        );
        let _ = writeln!(
            t,
            "{:<28} {:>8}   (routine changes being learnt: neither true nor false)",
            "  while learning", self.learning_insights
        );
        let _ = writeln!(
            t,
            "{:<28} {:>8}",
            "  false on look-alikes", self.false_on_look_alikes
        );
        let _ = writeln!(
            t,
            "{:<28} {:>8.2}   over {} principal-days",
            "  false per 1000 p-days", self.false_per_1000_principal_days, self.principal_days
        );
        if !self.per_kind.is_empty() {
            let _ = writeln!(
                t,
                "  per kind (attacks: detected/cases; look-alikes: false insights/cases):"
            );
            for (kind, n, d) in &self.per_kind {
                let _ = writeln!(t, "    {kind:<24} {d:>3}/{n}");
            }
        }
        if !self.false_insights.is_empty() {
            let _ = writeln!(t, "  false principal insights:");
            for f in &self.false_insights {
                let _ = writeln!(t, "    {f}");
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Labels as a `labels.json` holds them (read through the typed reader).
    fn labels() -> Labels {
        Labels::from_json(&json!({
            "seed": 1, "start": "2026-03-02T00:00:00Z", "end": "2026-03-11T00:00:00Z", "days": 9,
            "regions": ["us-east-1", "eu-west-1"], "account": "111122223333", "series_days": 2000,
            "anomalies": [
                {"id": 1, "kind": "iam-burst", "region": "us-east-1", "account": "111122223333",
                 "start": "2026-03-05T14:07:00Z", "end": "2026-03-05T14:10:00Z",
                 "keys": [{"eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
                           "insightType": "ApiCallRateInsight"}],
                 "description": "burst"},
                {"id": 2, "kind": "provisioning-spike", "region": "eu-west-1", "account": "111122223333",
                 "start": "2026-03-06T02:00:00Z", "end": "2026-03-06T02:20:00Z",
                 "keys": [{"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                           "insightType": "ApiCallRateInsight"},
                          {"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                           "insightType": "ApiErrorRateInsight", "errorCode": "Client.InstanceLimitExceeded"}],
                 "description": "spike"},
                {"id": 3, "kind": "maintenance-gap", "region": "us-east-1", "account": "111122223333",
                 "start": "2026-03-07T03:00:00Z", "end": "2026-03-07T08:00:00Z",
                 "keys": [{"eventSource": "ssm.amazonaws.com", "eventName": "PutParameter",
                           "insightType": "ApiCallRateInsight"}],
                 "description": "gap"}
            ]
        }).to_string())
        .unwrap()
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

    /// An insight on the IAM burst's key: `iam:CreateAccessKey` calls in us-east-1.
    fn burst_insight(state: &str, shared: &str, time: &str) -> Value {
        insight(
            state,
            shared,
            "us-east-1",
            time,
            "iam.amazonaws.com",
            "CreateAccessKey",
            "ApiCallRateInsight",
            None,
        )
    }

    fn perfect() -> Vec<Value> {
        vec![
            burst_insight("Start", "a", "2026-03-05T14:08:00Z"),
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
        ins.push(burst_insight("Start", "f", "2026-03-05T15:11:00Z"));
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
            burst_insight("Start", "a", "2026-03-05T13:57:00Z"),
            burst_insight("Start", "b", "2026-03-05T15:10:00Z"),
            burst_insight("Start", "c", "2026-03-05T13:56:00Z"),
        ];
        let s = score(&labels(), &ins);
        assert_eq!(s.true_insights, 2);
        assert_eq!(s.detected_labels, 1);
        assert_eq!(s.mean_onset_error_minutes, 10.0);
    }

    #[test]
    fn start_and_end_count_once() {
        let mut ins = perfect();
        ins.push(burst_insight("End", "a", "2026-03-05T14:12:00Z"));
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
        let mut quiet = labels();
        quiet.anomalies.clear();
        quiet.series_days = 100;
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

    /// `labels()` with a routine change: a new nightly job on `rds:CreateDBClusterSnapshot` in
    /// eu-west-1 from 2026-03-04T01:30, learned after 2026-03-07T01:30.
    fn labels_with_change() -> Labels {
        let mut l = labels();
        l.changes = serde_json::from_value(json!([
            {"id": 1, "kind": "new-job", "region": "eu-west-1", "account": "111122223333",
             "from": "2026-03-04T01:30:00Z", "learned_after": "2026-03-07T01:30:00Z",
             "keys": [{"eventSource": "rds.amazonaws.com", "eventName": "CreateDBClusterSnapshot",
                       "insightType": "ApiCallRateInsight"}],
             "description": "new job"}
        ]))
        .unwrap();
        l
    }

    fn job_insight(shared: &str, region: &str, time: &str) -> Value {
        insight(
            "Start",
            shared,
            region,
            time,
            "rds.amazonaws.com",
            "CreateDBClusterSnapshot",
            "ApiCallRateInsight",
            None,
        )
    }

    #[test]
    fn learned_changes() {
        let mut ins = perfect();
        // Its first two nights: learning, neither true nor false (10 minutes early included).
        ins.push(job_insight("j1", "eu-west-1", "2026-03-04T01:20:00Z"));
        ins.push(job_insight("j2", "eu-west-1", "2026-03-05T01:30:00Z"));
        // The last minute of the learning period, then its first minute after.
        ins.push(job_insight("j3", "eu-west-1", "2026-03-07T01:29:00Z"));
        ins.push(job_insight("j4", "eu-west-1", "2026-03-07T01:30:00Z"));
        ins.push(job_insight("j5", "eu-west-1", "2026-03-09T01:31:00Z"));
        // Before the change: an ordinary false insight; another region: too.
        ins.push(job_insight("j6", "eu-west-1", "2026-03-04T01:19:00Z"));
        ins.push(job_insight("j7", "us-east-1", "2026-03-05T01:30:00Z"));
        let s = score(&labels_with_change(), &ins);
        assert_eq!(s.insights, 10);
        assert_eq!(s.true_insights, 3);
        assert_eq!(s.learning_insights, 3);
        assert_eq!(s.false_on_learned, 2);
        assert_eq!(s.changes, 1);
        // Precision over the 7 judged insights; 4 false ones in the false rate.
        assert!((s.precision - 3.0 / 7.0).abs() < 1e-9);
        assert!((s.false_per_1000_api_days - 4.0 * 1000.0 / 2000.0).abs() < 1e-9);
        assert_eq!(s.false_insights.len(), 4);
        assert_eq!(
            s.false_insights
                .iter()
                .filter(|l| l.contains("(learned new-job since 2026-03-07T01:30:00Z)"))
                .count(),
            2
        );
        assert_eq!(
            s.per_change,
            vec![(
                "new-job eu-west-1 rds:CreateDBClusterSnapshot from 2026-03-04T01:30:00Z"
                    .to_string(),
                3,
                2
            )]
        );
        let table = s.to_table();
        assert!(table.contains("false on learned changes"));
        assert!(table.contains("insights while learning"));
    }

    #[test]
    fn a_learned_change_is_perfect_when_quiet_after_learning() {
        let mut ins = perfect();
        ins.push(job_insight("j1", "eu-west-1", "2026-03-04T01:30:00Z"));
        let s = score(&labels_with_change(), &ins);
        assert_eq!((s.learning_insights, s.false_on_learned), (1, 0));
        assert_eq!(s.precision, 1.0);
        assert_eq!(s.false_per_1000_api_days, 0.0);
        assert!(s.false_insights.is_empty());
        // Without changes in the labels, the table says nothing about them.
        let s = score(&labels(), &perfect());
        assert_eq!(s.changes, 0);
        assert!(!s.to_table().contains("learned"));
    }

    #[test]
    fn anomalies_are_matched_before_changes() {
        // A change on an anomaly's key: inside the anomaly's window the insight is true.
        let mut l = labels_with_change();
        let change = &mut l.changes[0];
        change.region = "us-east-1".to_string();
        change.keys[0] = l.anomalies[0].keys[0].clone();
        change.from = "2026-03-02T12:00:00Z".parse().unwrap();
        change.learned_after = "2026-03-05T12:00:00Z".parse().unwrap();
        let s = score(&l, &perfect());
        assert_eq!(s.true_insights, 3);
        assert_eq!((s.learning_insights, s.false_on_learned), (0, 0));
    }

    #[test]
    fn totals_pool_the_counts() {
        let mut ins = perfect();
        ins.push(job_insight("j1", "eu-west-1", "2026-03-04T01:30:00Z"));
        ins.push(job_insight("j2", "eu-west-1", "2026-03-08T01:30:00Z"));
        let a = score(&labels_with_change(), &ins);
        let mut missed = perfect();
        missed.remove(0);
        let b = score(&labels(), &missed);
        let t = Score::total(&[a.clone(), b.clone()]);
        assert_eq!((t.labels, t.detected_labels), (6, 5));
        assert_eq!((t.insights, t.true_insights), (7, 5));
        assert_eq!(
            (t.learning_insights, t.false_on_learned, t.changes),
            (1, 1, 1)
        );
        assert!((t.recall - 5.0 / 6.0).abs() < 1e-9);
        assert!((t.precision - 5.0 / 6.0).abs() < 1e-9);
        assert!((t.false_per_1000_api_days - 1000.0 / 4000.0).abs() < 1e-9);
        assert!(
            (t.mean_onset_error_minutes
                - (a.mean_onset_error_minutes * 3.0 + b.mean_onset_error_minutes * 2.0) / 5.0)
                .abs()
                < 1e-9
        );
        assert_eq!(t.per_kind[0], ("iam-burst".to_string(), 2, 1));
        assert!(t.to_table().contains("false on learned changes"));
    }

    #[test]
    fn an_account_insight_on_a_principal_attacks_keys_is_true() {
        let mut labels = labels();
        labels.principal_cases = vec![
            serde_json::from_value::<crate::labels::PrincipalCaseLabel>(json!({
                "id": 1, "kind": "role-chaining", "attack": true, "region": "us-east-1",
                "account": "111122223333", "principal": "arn:aws:iam::111122223333:role/ci",
                "start": "2026-03-08T10:00:00Z", "end": "2026-03-08T10:04:00Z",
                "description": "chain",
                "keys": [{"eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
                          "insightType": "ApiErrorRateInsight", "errorCode": "AccessDenied"}]
            }))
            .unwrap(),
        ];
        let denied = |shared: &str, time: &str, err: &str| {
            insight(
                "Start",
                shared,
                "us-east-1",
                time,
                "sts.amazonaws.com",
                "AssumeRole",
                "ApiErrorRateInsight",
                Some(err),
            )
        };
        let score = score(
            &labels,
            &[
                denied("a", "2026-03-08T10:02:00Z", "AccessDenied"),
                // Another error code, or outside the window: false.
                denied("b", "2026-03-08T10:02:00Z", "ThrottlingException"),
                denied("c", "2026-03-08T14:00:00Z", "AccessDenied"),
            ],
        );
        assert_eq!((score.true_insights, score.on_principal_attacks), (1, 1));
        assert_eq!(score.false_insights.len(), 2, "{:?}", score.false_insights);
        assert_eq!(score.detected_labels, 0);
        assert!(score.to_table().contains("of which on attacks"));
    }

    #[test]
    fn principal_insights_are_scored_against_principal_cases() {
        let mut labels = labels();
        let case = |id, kind: &str, attack, principal: &str, start: &str, end: &str| {
            serde_json::from_value::<crate::labels::PrincipalCaseLabel>(json!({
                "id": id, "kind": kind, "attack": attack, "region": "us-east-1",
                "account": "111122223333", "principal": principal, "start": start, "end": end,
                "description": kind
            }))
            .unwrap()
        };
        let carol = "arn:aws:iam::111122223333:user/carol";
        let alice = "arn:aws:iam::111122223333:role/Admin";
        labels.principal_cases = vec![
            case(
                1,
                "secret-harvest",
                true,
                carol,
                "2026-03-07T10:00:00Z",
                "2026-03-07T10:05:00Z",
            ),
            case(
                2,
                "console-session",
                false,
                alice,
                "2026-03-02T09:00:00Z",
                "2026-03-11T00:00:00Z",
            ),
        ];
        labels.principal_days = 100;
        let record = |principal: &str, name: &str, time: &str, shared: &str| {
            json!({"eventTime": time, "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
                   "sharedEventID": shared,
                   "insightDetails": {"state": "Start", "eventSource": "secretsmanager.amazonaws.com",
                       "eventName": name, "insightType": "PrincipalFirstSeenInsight",
                       "insightContext": {"principal": {"userIdentityArn": principal, "scope": "api"}}}})
        };
        let records = vec![
            record(carol, "GetSecretValue", "2026-03-07T10:01:00Z", "a"),
            record(alice, "GetSecretValue", "2026-03-08T10:01:00Z", "b"),
            // The principal side of the labelled IAM burst: true.
            json!({"eventTime": "2026-03-05T14:08:00Z", "awsRegion": "us-east-1",
                   "recipientAccountId": "111122223333", "sharedEventID": "c",
                   "insightDetails": {"state": "Start", "eventSource": "iam.amazonaws.com",
                       "eventName": "CreateAccessKey", "insightType": "PrincipalApiCallRateInsight",
                       "insightContext": {"principal": {"userIdentityArn": alice, "scope": "api"}}}}),
        ];
        let score = score_principals(&labels, &records);
        assert_eq!((score.attacks, score.detected_attacks), (1, 1));
        assert_eq!((score.insights, score.true_insights), (3, 2));
        assert_eq!(score.on_account_anomalies, 1);
        assert_eq!(score.false_on_look_alikes, 1);
        assert!((score.false_per_1000_principal_days - 10.0).abs() < 1e-9);
        // The account scoring does not see them.
        assert_eq!(score_plain(&labels, &records), 0);
    }

    fn score_plain(labels: &Labels, records: &[Value]) -> usize {
        score(labels, records).insights
    }
}
