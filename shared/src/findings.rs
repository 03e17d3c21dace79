//! Insight records as AWS Security Hub findings (the AWS Security Finding Format, ASFF), for
//! `BatchImportFindings`. AWS-free: `aws::securityhub` sends them.
//!
//! One finding per insight: its `Id` is the insight's `sharedEventID`, so the Start creates the
//! finding and the End (or any re-publication of either) updates the same one. What a finding
//! says comes from the record's own numbers, as the alerts do ([`crate::alerts`]):
//!
//! - `Title` and `Description`: the alert's subject and its explaining sentence (plain text);
//! - `Types`: `Unusual Behaviors/Application/...` for the account-wide types,
//!   `Unusual Behaviors/User/...` for the per-principal ones, and a `TTPs/...` (or
//!   `Effects/Data Exposure`) type when the API is on the sensitive list ([`crate::principal`]);
//! - `Severity`: from how improbable the insight's count is under its baseline (a Poisson tail
//!   over the insight's minutes, [`tail_probability`]): below 1e-12 HIGH, below 1e-6 MEDIUM, else
//!   LOW; a drop (a routine that stopped) is LOW; a sensitive API raises the label one step (for an
//!   error-rate insight, calls refused for want of permission do; throttling does not). The
//!   probability is in `Severity.Original`;
//! - `Resources`: the account, and the principal of a per-principal insight;
//! - `CreatedAt`/`FirstObservedAt`: the insight's first minute; `UpdatedAt`/`LastObservedAt`: the
//!   record's time (an End's is the insight's end), so a re-import of the same record is the same
//!   finding, byte for byte;
//! - `RecordState` stays `ACTIVE` at the End: an insight that ended is still something to triage,
//!   and an archived finding leaves Security Hub's default views. `Workflow.Status` `NEW` is sent
//!   with the Start only: after that it is the analyst's.
//!
//! Everything that comes from the logs is made inert (control characters removed) and cut to
//! ASFF's limits.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use statrs::distribution::{DiscreteCDF, Poisson};

use crate::alerts::{plain_explanation, subject};
use crate::insight::{InsightRecord, InsightState, SCOPE_SERVICE};
use crate::principal::is_sensitive;
use crate::series::InsightType;

/// ASFF's version.
pub const SCHEMA_VERSION: &str = "2018-10-08";
/// Findings per `BatchImportFindings` call, at most.
pub const MAX_FINDINGS_PER_CALL: usize = 100;
/// ASFF's limits on a title and a description, in characters.
pub const MAX_TITLE_CHARS: usize = 256;
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Product field values are cut to this many characters.
const MAX_FIELD_CHARS: usize = 1024;

/// One finding, in ASFF's field names (what `aws::securityhub` sends, and what tests compare).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Finding {
    pub schema_version: String,
    pub id: String,
    pub product_arn: String,
    pub generator_id: String,
    pub aws_account_id: String,
    pub region: String,
    pub types: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub first_observed_at: String,
    pub last_observed_at: String,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub resources: Vec<Resource>,
    pub product_fields: BTreeMap<String, String>,
    pub record_state: String,
    /// `NEW` on the Start only ([module docs](self)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Severity {
    /// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub label: String,
    /// How the label was reached: `p=3.1e-15` (the tail probability), or `drop`.
    pub original: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    #[serde(rename = "Type")]
    pub kind: String,
    pub id: String,
    pub partition: String,
    pub region: String,
}

/// The severity labels, lowest first.
const LABELS: [&str; 4] = ["LOW", "MEDIUM", "HIGH", "CRITICAL"];

/// The probability of a count at least as far from the baseline as the insight's, over the
/// insight's minutes: `P(X >= observed)` for a rise, `P(X <= observed)` for a drop, X Poisson with
/// the baseline's rate. A summary from the record's own numbers (the detector itself judged each
/// minute against the hour of day's mean and spread, docs/DETECTION.md), enough to rank findings.
pub fn tail_probability(record: &InsightRecord) -> f64 {
    let statistics = &record.insight_details.insight_context.statistics;
    let minutes = statistics.insight_duration.max(1) as f64;
    let expected = (statistics.baseline.average * minutes).max(1e-9);
    let observed = (statistics.insight.average * minutes).round().max(0.0) as u64;
    let Ok(poisson) = Poisson::new(expected) else {
        return 1.0;
    };
    if statistics.insight.average >= statistics.baseline.average {
        if observed == 0 {
            1.0
        } else {
            poisson.sf(observed - 1)
        }
    } else {
        poisson.cdf(observed)
    }
}

fn is_drop(record: &InsightRecord) -> bool {
    let statistics = &record.insight_details.insight_context.statistics;
    statistics.insight.average < statistics.baseline.average
}

/// Error codes of a call refused for want of permission: a storm of them is someone probing.
const ACCESS_DENIED_CODES: [&str; 4] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "Client.UnauthorizedOperation",
];

/// Whether the insight is worth a step more than its tail says: calls to a sensitive API, or, for
/// an error-rate insight, calls refused for want of permission (throttling of a sensitive API is
/// operations, not an attack).
fn sensitive(record: &InsightRecord) -> bool {
    let details = &record.insight_details;
    match details.insight_type {
        InsightType::ApiErrorRateInsight => details
            .error_code
            .as_deref()
            .is_some_and(|code| ACCESS_DENIED_CODES.contains(&code)),
        _ => is_sensitive(&details.event_source, &details.event_name),
    }
}

/// The finding's severity ([module docs](self)).
pub fn severity(record: &InsightRecord) -> Severity {
    let (step, original) = if is_drop(record) {
        (0, "drop".to_owned())
    } else {
        let p = tail_probability(record);
        let step = if p < 1e-12 {
            2
        } else if p < 1e-6 {
            1
        } else {
            0
        };
        (step, format!("p={p:.1e}"))
    };
    let step = if sensitive(record) { step + 1 } else { step };
    Severity {
        label: LABELS[step.min(LABELS.len() - 1)].to_owned(),
        original,
    }
}

/// The ASFF types of the finding ([module docs](self)).
pub fn types(record: &InsightRecord) -> Vec<String> {
    let details = &record.insight_details;
    let principal = details.insight_context.principal.as_ref();
    let mut types = vec![
        match details.insight_type {
            InsightType::ApiCallRateInsight => "Unusual Behaviors/Application/API Call Rate",
            InsightType::ApiErrorRateInsight => "Unusual Behaviors/Application/API Error Rate",
            InsightType::PrincipalApiCallRateInsight => "Unusual Behaviors/User/API Call Rate",
            InsightType::PrincipalFirstSeenInsight => {
                match principal.and_then(|p| p.first_seen.as_deref()) {
                    Some("region") => "Unusual Behaviors/User/First Seen Region",
                    Some("services") => "Unusual Behaviors/User/First Seen Services",
                    Some("reads") => "Unusual Behaviors/User/First Seen APIs",
                    Some("roles") => "Unusual Behaviors/User/First Seen Roles",
                    _ => "Unusual Behaviors/User/First Seen API",
                }
            }
        }
        .to_owned(),
    ];
    if is_drop(record) {
        return types;
    }
    let service = details
        .event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(&details.event_source);
    if sensitive(record) {
        let ttp = match service {
            "iam" => "TTPs/Persistence",
            "sts" | "organizations" => "TTPs/Privilege Escalation",
            "secretsmanager" | "ssm" | "kms" => "TTPs/Credential Access",
            "cloudtrail" | "guardduty" | "config" => "TTPs/Defense Evasion",
            "s3" => "Effects/Data Exposure",
            _ => "TTPs/Discovery",
        };
        types.push(ttp.to_owned());
    } else if principal.is_some_and(|p| p.first_seen.as_deref() == Some("roles")) {
        // Roles it never assumed, several within minutes: moving through the account.
        types.push("TTPs/Lateral Movement".to_owned());
    } else if principal.is_some_and(|p| {
        p.scope == SCOPE_SERVICE || matches!(p.first_seen.as_deref(), Some("services" | "reads"))
    }) {
        // A principal sweeping a service's APIs (List*, Describe*, Get*...), or moving on to
        // services it never used (what can these credentials reach?).
        types.push("TTPs/Discovery".to_owned());
    }
    types
}

/// A value from the logs, without control characters, cut to `max` characters.
fn inert(value: &str, max: usize) -> String {
    let mut text: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    if value.chars().filter(|c| !c.is_control()).count() > max {
        text.pop();
        text.push('…');
    }
    text
}

/// The partition of an ARN (`aws` when it names none).
fn partition(arn: &str) -> &str {
    arn.split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
}

/// The ASFF resource type of a principal's ARN.
fn principal_resource_type(arn: &str) -> &'static str {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    if resource.starts_with("role/") {
        "AwsIamRole"
    } else if resource.starts_with("user/") {
        "AwsIamUser"
    } else {
        "Other"
    }
}

/// The insight's first minute: the record's time for a Start, its time less the insight's
/// duration for an End. The record's time as is when it does not parse.
fn first_minute(record: &InsightRecord) -> String {
    let minutes = record
        .insight_details
        .insight_context
        .statistics
        .insight_duration;
    match (
        record.insight_details.state,
        DateTime::parse_from_rfc3339(&record.event_time),
    ) {
        (InsightState::End, Ok(time)) => (time.with_timezone(&Utc) - Duration::minutes(minutes))
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        _ => record.event_time.clone(),
    }
}

/// The finding of `record`, imported under `product_arn` (the importing account's default
/// product: `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`) in
/// `hub_region` (where the import is made).
pub fn finding(record: &InsightRecord, product_arn: &str, hub_region: &str) -> Finding {
    let details = &record.insight_details;
    let statistics = &details.insight_context.statistics;
    let partition = partition(product_arn).to_owned();
    let mut resources = vec![Resource {
        kind: "AwsAccount".into(),
        id: format!("AWS::::Account:{}", record.recipient_account_id),
        partition: partition.clone(),
        region: record.aws_region.clone(),
    }];
    if let Some(principal) = &details.insight_context.principal {
        resources.push(Resource {
            kind: principal_resource_type(&principal.user_identity_arn).into(),
            id: inert(&principal.user_identity_arn, MAX_FIELD_CHARS),
            partition: partition.clone(),
            region: record.aws_region.clone(),
        });
    }
    let mut fields = BTreeMap::new();
    let mut field = |name: &str, value: &str| {
        fields.insert(format!("trailsight/{name}"), inert(value, MAX_FIELD_CHARS));
    };
    field("insightType", details.insight_type.as_str());
    field("state", details.state.as_str());
    field("eventSource", &details.event_source);
    field("eventName", &details.event_name);
    if let Some(code) = &details.error_code {
        field("errorCode", code);
    }
    field("eventID", &record.event_id);
    field("sharedEventID", &record.shared_event_id);
    field("awsRegion", &record.aws_region);
    field("insightAverage", &statistics.insight.average.to_string());
    field("baselineAverage", &statistics.baseline.average.to_string());
    field("insightDuration", &statistics.insight_duration.to_string());
    if let Some(principal) = &details.insight_context.principal {
        field("principal", &principal.user_identity_arn);
        field("scope", &principal.scope);
    }
    let first = first_minute(record);
    Finding {
        schema_version: SCHEMA_VERSION.into(),
        id: record.shared_event_id.clone(),
        product_arn: product_arn.into(),
        generator_id: format!("trailsight/{}", details.insight_type.as_str()),
        aws_account_id: record.recipient_account_id.clone(),
        region: hub_region.into(),
        types: types(record),
        created_at: first.clone(),
        updated_at: record.event_time.clone(),
        first_observed_at: first,
        last_observed_at: record.event_time.clone(),
        severity: severity(record),
        title: inert(&format!("Trailsight: {}", subject(record)), MAX_TITLE_CHARS),
        description: inert(&plain_explanation(record), MAX_DESCRIPTION_CHARS),
        resources,
        product_fields: fields,
        record_state: "ACTIVE".into(),
        workflow_status: (details.state == InsightState::Start).then(|| "NEW".to_owned()),
    }
}

/// The `BatchImportFindings` calls for `findings`, as indices: at most
/// [`MAX_FINDINGS_PER_CALL`] each, in order, and an `Id` at most once per call (a Start and its
/// End published in one run go in two calls, the Start first, so the End is the last update).
pub fn import_batches(findings: &[Finding]) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for (i, finding) in findings.iter().enumerate() {
        let full = batches
            .last()
            .is_none_or(|batch| batch.len() >= MAX_FINDINGS_PER_CALL);
        if full || ids.contains(&finding.id.as_str()) {
            batches.push(Vec::new());
            ids.clear();
        }
        if let Some(batch) = batches.last_mut() {
            batch.push(i);
        }
        ids.push(&finding.id);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insight::{
        Attribution, AttributionValue, Average, InsightContext, InsightDetails, PrincipalContext,
        Statistics,
    };

    const PRODUCT: &str = "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default";

    fn record(
        source: &str,
        name: &str,
        state: InsightState,
        baseline: f64,
        insight: f64,
        minutes: i64,
    ) -> InsightRecord {
        InsightRecord {
            event_version: "1.08".into(),
            event_time: "2026-03-03T03:06:00Z".into(),
            aws_region: "us-east-1".into(),
            event_id: "e-1".into(),
            event_type: "AwsCloudTrailInsight".into(),
            recipient_account_id: "444455556666".into(),
            shared_event_id: "s-1".into(),
            insight_details: InsightDetails {
                state,
                event_source: source.into(),
                event_name: name.into(),
                insight_type: InsightType::ApiCallRateInsight,
                error_code: None,
                source_event_category: "Management".into(),
                insight_context: InsightContext {
                    statistics: Statistics {
                        baseline: Average { average: baseline },
                        insight: Average { average: insight },
                        insight_duration: minutes,
                        baseline_duration: 10_080,
                    },
                    attributions: vec![Attribution {
                        attribute: "userIdentityArn".into(),
                        insight: vec![AttributionValue {
                            value: "arn:aws:sts::444455556666:assumed-role/ci/run\u{7}1".into(),
                            average: insight,
                        }],
                        baseline: vec![],
                    }],
                    principal: None,
                },
            },
            event_category: "Insight".into(),
        }
    }

    #[test]
    fn a_start_is_a_new_active_finding_of_the_insight() {
        let r = record(
            "ec2.amazonaws.com",
            "RunInstances",
            InsightState::Start,
            0.01,
            26.0,
            1,
        );
        let f = finding(&r, PRODUCT, "eu-west-1");
        assert_eq!(f.id, "s-1");
        assert_eq!(f.schema_version, "2018-10-08");
        assert_eq!(f.aws_account_id, "444455556666");
        assert_eq!(f.region, "eu-west-1");
        assert_eq!(f.generator_id, "trailsight/ApiCallRateInsight");
        assert_eq!(f.types, ["Unusual Behaviors/Application/API Call Rate"]);
        assert_eq!(f.created_at, "2026-03-03T03:06:00Z");
        assert_eq!(f.first_observed_at, f.last_observed_at);
        assert_eq!(f.record_state, "ACTIVE");
        assert_eq!(f.workflow_status.as_deref(), Some("NEW"));
        assert_eq!(f.resources[0].id, "AWS::::Account:444455556666");
        assert_eq!(f.resources[0].kind, "AwsAccount");
        assert_eq!(f.resources[0].region, "us-east-1");
        assert_eq!(f.product_fields["trailsight/eventName"], "RunInstances");
        assert_eq!(f.product_fields["trailsight/state"], "Start");
        assert!(
            f.title
                .starts_with("Trailsight: Unusual ec2 RunInstances calls")
        );
        assert!(
            f.description.contains("26.0") && !f.description.contains('\u{7}'),
            "{}",
            f.description
        );
        // 26 calls in a minute against 0.01: HIGH.
        assert_eq!(f.severity.label, "HIGH");
        assert!(f.severity.original.starts_with("p="));
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["Resources"][0]["Type"], "AwsAccount");
        assert_eq!(json["Severity"]["Label"], "HIGH");
    }

    #[test]
    fn an_end_updates_the_same_finding_and_leaves_the_workflow_to_the_analyst() {
        let start = record(
            "ec2.amazonaws.com",
            "RunInstances",
            InsightState::Start,
            0.01,
            26.0,
            1,
        );
        let end = record(
            "ec2.amazonaws.com",
            "RunInstances",
            InsightState::End,
            0.01,
            20.0,
            23,
        );
        let (s, e) = (
            finding(&start, PRODUCT, "eu-west-1"),
            finding(&end, PRODUCT, "eu-west-1"),
        );
        assert_eq!(s.id, e.id);
        assert_eq!(e.workflow_status, None);
        assert_eq!(e.record_state, "ACTIVE");
        assert_eq!(e.first_observed_at, "2026-03-03T02:43:00Z");
        assert_eq!(e.created_at, e.first_observed_at);
        assert_eq!(e.last_observed_at, "2026-03-03T03:06:00Z");
        assert_eq!(e.product_fields["trailsight/state"], "End");
        assert!(e.title.contains("Ended"), "{}", e.title);
        assert!(
            serde_json::to_value(&e)
                .unwrap()
                .get("WorkflowStatus")
                .is_none()
        );
    }

    #[test]
    fn severity_follows_the_tail_and_the_apis_sensitivity() {
        let at = |source: &str, name: &str, baseline: f64, insight: f64, minutes: i64| {
            severity(&record(
                source,
                name,
                InsightState::End,
                baseline,
                insight,
                minutes,
            ))
            .label
        };
        // 4 calls in 10 minutes against 0.2/min: p about 0.14.
        assert_eq!(at("ec2.amazonaws.com", "RunInstances", 0.2, 0.4, 10), "LOW");
        // 20 in 10 minutes against 0.5/min: p about 4e-7.
        assert_eq!(
            at("ec2.amazonaws.com", "RunInstances", 0.5, 2.0, 10),
            "MEDIUM"
        );
        assert_eq!(
            at("ec2.amazonaws.com", "RunInstances", 0.01, 26.0, 23),
            "HIGH"
        );
        // The same on a sensitive API: one step up.
        assert_eq!(
            at("iam.amazonaws.com", "CreateAccessKey", 0.2, 0.4, 10),
            "MEDIUM"
        );
        assert_eq!(
            at("iam.amazonaws.com", "CreateUser", 0.01, 26.0, 23),
            "CRITICAL"
        );
        // A drop: LOW, whatever the tail.
        let drop = severity(&record(
            "lambda.amazonaws.com",
            "Invoke",
            InsightState::Start,
            2.0,
            0.0,
            180,
        ));
        assert_eq!(drop.label, "LOW");
        assert_eq!(drop.original, "drop");
        let p = tail_probability(&record(
            "ec2.amazonaws.com",
            "RunInstances",
            InsightState::End,
            0.2,
            0.4,
            10,
        ));
        assert!((p - 0.1429).abs() < 1e-3, "{p}");
    }

    #[test]
    fn types_name_the_behaviour_and_the_tactic() {
        let mut r = record(
            "secretsmanager.amazonaws.com",
            "GetSecretValue",
            InsightState::Start,
            0.0,
            40.0,
            1,
        );
        r.insight_details.insight_type = InsightType::PrincipalApiCallRateInsight;
        r.insight_details.insight_context.principal = Some(PrincipalContext {
            user_identity_arn: "arn:aws:iam::444455556666:role/ci".into(),
            scope: "api".into(),
            first_seen: None,
            first_seen_values: Vec::new(),
        });
        let f = finding(&r, PRODUCT, "eu-west-1");
        assert_eq!(
            f.types,
            [
                "Unusual Behaviors/User/API Call Rate",
                "TTPs/Credential Access"
            ]
        );
        assert_eq!(f.resources[1].kind, "AwsIamRole");
        assert_eq!(f.resources[1].id, "arn:aws:iam::444455556666:role/ci");
        assert_eq!(
            f.product_fields["trailsight/principal"],
            "arn:aws:iam::444455556666:role/ci"
        );

        r.insight_details.event_source = "ec2.amazonaws.com".into();
        r.insight_details.event_name = "DescribeInstances".into();
        r.insight_details.insight_context.principal = Some(PrincipalContext {
            user_identity_arn: "arn:aws:iam::444455556666:user/alice".into(),
            scope: "service".into(),
            first_seen: None,
            first_seen_values: Vec::new(),
        });
        let f = finding(&r, PRODUCT, "eu-west-1");
        assert_eq!(
            f.types,
            ["Unusual Behaviors/User/API Call Rate", "TTPs/Discovery"]
        );
        assert_eq!(f.resources[1].kind, "AwsIamUser");

        r.insight_details.insight_type = InsightType::PrincipalFirstSeenInsight;
        r.insight_details.insight_context.principal = Some(PrincipalContext {
            user_identity_arn: "arn:aws:iam::444455556666:root".into(),
            scope: "api".into(),
            first_seen: Some("region".into()),
            first_seen_values: Vec::new(),
        });
        let f = finding(&r, PRODUCT, "eu-west-1");
        assert_eq!(f.types, ["Unusual Behaviors/User/First Seen Region"]);
        assert_eq!(f.resources[1].kind, "Other");

        // A sweep across services never used is discovery.
        r.insight_details.insight_context.principal = Some(PrincipalContext {
            user_identity_arn: "arn:aws:iam::444455556666:user/alice".into(),
            scope: "api".into(),
            first_seen: Some("services".into()),
            first_seen_values: Vec::new(),
        });
        let f = finding(&r, PRODUCT, "eu-west-1");
        assert_eq!(
            f.types,
            [
                "Unusual Behaviors/User/First Seen Services",
                "TTPs/Discovery"
            ]
        );

        // Read APIs never used, across services: discovery too.
        r.insight_details.insight_context.principal = Some(PrincipalContext {
            user_identity_arn: "arn:aws:iam::444455556666:role/ci".into(),
            scope: "api".into(),
            first_seen: Some("reads".into()),
            first_seen_values: vec!["iam.amazonaws.com:ListUsers".into()],
        });
        let f = finding(&r, PRODUCT, "eu-west-1");
        assert_eq!(
            f.types,
            ["Unusual Behaviors/User/First Seen APIs", "TTPs/Discovery"]
        );
        // Roles never assumed: lateral movement.
        r.insight_details.event_source = "sts.amazonaws.com".into();
        r.insight_details.event_name = "AssumeRole".into();
        r.insight_details.insight_context.principal = Some(PrincipalContext {
            user_identity_arn: "arn:aws:iam::444455556666:role/ci".into(),
            scope: "api".into(),
            first_seen: Some("roles".into()),
            first_seen_values: vec!["arn:aws:iam::444455556666:role/admin".into()],
        });
        let f = finding(&r, PRODUCT, "eu-west-1");
        assert_eq!(
            f.types,
            [
                "Unusual Behaviors/User/First Seen Roles",
                "TTPs/Lateral Movement"
            ]
        );

        let mut e = record(
            "ec2.amazonaws.com",
            "RunInstances",
            InsightState::Start,
            0.1,
            9.0,
            1,
        );
        e.insight_details.insight_type = InsightType::ApiErrorRateInsight;
        e.insight_details.error_code = Some("VcpuLimitExceeded".into());
        let f = finding(
            &e,
            "arn:aws-cn:securityhub:cn-north-1:1:product/1/default",
            "cn-north-1",
        );
        assert_eq!(f.types, ["Unusual Behaviors/Application/API Error Rate"]);
        assert_eq!(
            f.product_fields["trailsight/errorCode"],
            "VcpuLimitExceeded"
        );
        assert_eq!(f.resources[0].partition, "aws-cn");
        // Throttling of a sensitive API is operations; refusals for want of permission are not.
        e.insight_details.event_source = "ssm.amazonaws.com".into();
        e.insight_details.event_name = "GetParameters".into();
        e.insight_details.error_code = Some("ThrottlingException".into());
        assert_eq!(finding(&e, PRODUCT, "eu-west-1").types.len(), 1);
        let throttled = severity(&e).label;
        e.insight_details.error_code = Some("AccessDeniedException".into());
        let f = finding(&e, PRODUCT, "eu-west-1");
        assert_eq!(f.types[1], "TTPs/Credential Access");
        assert_eq!(
            (throttled.as_str(), f.severity.label.as_str()),
            ("HIGH", "CRITICAL")
        );
    }

    #[test]
    fn values_from_the_logs_are_cut_to_asffs_limits() {
        let name = format!("Evil\n{}", "x".repeat(5000));
        let r = record(
            "ec2.amazonaws.com",
            &name,
            InsightState::Start,
            0.01,
            26.0,
            1,
        );
        let f = finding(&r, PRODUCT, "eu-west-1");
        assert!(f.title.chars().count() <= MAX_TITLE_CHARS);
        assert!(f.description.chars().count() <= MAX_DESCRIPTION_CHARS);
        assert!(f.product_fields.values().all(|v| v.chars().count() <= 1024));
        assert!(!f.title.contains('\n') && !f.description.contains('\n'));
        assert!(f.product_fields["trailsight/eventName"].ends_with('…'));
    }

    #[test]
    fn batches_hold_at_most_100_and_an_id_once() {
        let r = record(
            "ec2.amazonaws.com",
            "RunInstances",
            InsightState::Start,
            0.01,
            26.0,
            1,
        );
        let mut findings: Vec<Finding> = (0..250)
            .map(|i| {
                let mut f = finding(&r, PRODUCT, "eu-west-1");
                f.id = format!("s-{i}");
                f
            })
            .collect();
        let sizes: Vec<usize> = import_batches(&findings).iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        // A Start and its End in one run: two calls, in order.
        findings.truncate(3);
        findings[2].id = "s-1".into();
        assert_eq!(import_batches(&findings), vec![vec![0, 1], vec![2]]);
        assert!(import_batches(&[]).is_empty());
    }
}
