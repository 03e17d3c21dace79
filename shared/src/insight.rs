//! The Insight record, exactly in CloudTrail's format (the contract's §3), and its statistics.

use serde::{Deserialize, Serialize};

use crate::minute::{MINUTES_PER_DAY, Minute, day_start, format_minute};
use crate::series::{InsightType, SeriesKey};

pub const EVENT_VERSION: &str = "1.09";

/// Longest attribution value kept, in characters (user agents and ARNs can be crafted to any
/// length); a longer one is cut and ends with [`TRUNCATED_MARK`].
pub const MAX_ATTRIBUTION_VALUE_CHARS: usize = 1024;
/// Longest `eventSource`, `eventName` or `errorCode` kept in a record, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// What a cut value ends with.
pub const TRUNCATED_MARK: &str = "…";
/// A record's JSON is kept under this size, leaving room within EventBridge's 256 KB entry for
/// the entry's other fields.
pub const MAX_RECORD_BYTES: usize = 200 * 1024;

/// `Start` or `End`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InsightState {
    Start,
    End,
}

impl InsightState {
    /// As the record spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            InsightState::Start => "Start",
            InsightState::End => "End",
        }
    }
}

/// One CloudTrail Insight record. Field names and order are the service's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightRecord {
    pub event_version: String,
    pub event_time: String,
    pub aws_region: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub event_type: String,
    pub recipient_account_id: String,
    #[serde(rename = "sharedEventID")]
    pub shared_event_id: String,
    pub insight_details: InsightDetails,
    pub event_category: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightDetails {
    pub state: InsightState,
    pub event_source: String,
    pub event_name: String,
    pub insight_type: InsightType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub source_event_category: String,
    pub insight_context: InsightContext,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightContext {
    pub statistics: Statistics,
    pub attributions: Vec<Attribution>,
    /// Per-principal insights only (Trailsight's own types): whose calls they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<PrincipalContext>,
}

/// The principal of a per-principal insight (docs/schema/principal-insight.schema.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalContext {
    /// The principal: a user, root, or a role whose sessions are folded into it (the sessions
    /// are the `userIdentityArn` attribution values).
    pub user_identity_arn: String,
    /// `api`: the calls of `eventSource`/`eventName`; `service`: the calls of every API of
    /// `eventSource` (`eventName` is the top one, the `eventName` attribution lists them).
    pub scope: String,
    /// `PrincipalFirstSeenInsight` only: `sensitiveApi` (an API of the sensitive list it never
    /// called), `region` (a region it never used; the record names its busiest API there) or
    /// `services` (several services it never used within minutes; the record names the busiest
    /// API of the last of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// A sweep's first-seen values, in the order they came: the services (`services`), the
    /// read APIs as `eventSource:eventName` (`reads`) or the role ARNs (`roles`) the principal
    /// never used before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_seen_values: Vec<String>,
}

/// [`PrincipalContext::scope`] of a record on one API.
pub const SCOPE_API: &str = "api";
/// [`PrincipalContext::scope`] of a record on a service's APIs.
pub const SCOPE_SERVICE: &str = "service";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statistics {
    pub baseline: Average,
    pub insight: Average,
    pub insight_duration: i64,
    pub baseline_duration: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Average {
    pub average: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub attribute: String,
    pub insight: Vec<AttributionValue>,
    pub baseline: Vec<AttributionValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionValue {
    pub value: String,
    pub average: f64,
}

impl InsightRecord {
    pub fn series(&self) -> SeriesKey {
        let principal = self.insight_details.insight_context.principal.as_ref();
        let service_wide = principal.is_some_and(|p| p.scope == SCOPE_SERVICE);
        SeriesKey {
            account: self.recipient_account_id.clone(),
            region: self.aws_region.clone(),
            event_source: self.insight_details.event_source.clone(),
            event_name: if service_wide {
                crate::series::SERVICE_WIDE.to_owned()
            } else {
                self.insight_details.event_name.clone()
            },
            error_code: self.insight_details.error_code.clone(),
            principal: principal.map(|p| p.user_identity_arn.clone()),
        }
    }

    /// The same record with both identifiers blanked, for comparing runs.
    pub fn without_ids(&self) -> InsightRecord {
        InsightRecord {
            event_id: String::new(),
            shared_event_id: String::new(),
            ..self.clone()
        }
    }
}

/// The namespace of Trailsight's identifiers (UUID version 5, RFC 9562): a UUID drawn once for
/// Trailsight, `ac51d44e-b53f-404d-a6dc-9599ee3791c2`. Changing it would change every identifier.
pub const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0xac51d44e_b53f_404d_a6dc_9599ee3791c2);

/// An insight's `sharedEventID`: the UUID v5, in [`ID_NAMESPACE`], of the compact JSON array
/// `[account, region, eventSource, eventName, errorCode or null, kind, start]` (`kind` `"Spike"`
/// or `"Drop"`, `start` its first minute as `YYYY-MM-DDTHH:MM:SSZ`; strings as serde_json writes
/// them, non-ASCII unescaped). The same data gives the same identifier in every run.
///
/// `occurrence` tells apart insights of one series, kind and start minute: 0 for the first (the
/// array as above, by far the usual case), n for the n+1-th (n appended to the array). See
/// `DetectorState`'s episodes for when that happens.
pub fn shared_event_id(key: &SeriesKey, kind: &str, start: Minute, occurrence: usize) -> String {
    let start = format_minute(start);
    let fields = (
        &key.account,
        &key.region,
        &key.event_source,
        &key.event_name,
        &key.error_code,
        kind,
        start.as_str(),
    );
    let name = if let Some(principal) = &key.principal {
        // Principal series (opt-in): the array with the occurrence and the principal appended,
        // so that no identifier of the other series changes.
        let (a, r, s, n, e, k, t) = fields;
        serde_json::to_string(&(a, r, s, n, e, k, t, occurrence, principal))
    } else if occurrence == 0 {
        serde_json::to_string(&fields)
    } else {
        let (a, r, s, n, e, k, t) = fields;
        serde_json::to_string(&(a, r, s, n, e, k, t, occurrence))
    }
    .unwrap_or_default();
    uuid::Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
}

/// A record's `eventID`: the UUID v5, in [`ID_NAMESPACE`], of the compact JSON array
/// `[sharedEventID, state]` (`state` `"Start"` or `"End"`). A record published again (after a
/// crash between publishing and saving, or replayed) carries the same `eventID`.
pub fn event_id(shared_event_id: &str, state: InsightState) -> String {
    let name = serde_json::to_string(&(shared_event_id, state)).unwrap_or_default();
    uuid::Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
}

/// `baselineDuration`: minutes from 00:00 UTC seven calendar days before the day the insight
/// starts, up to its start.
pub fn baseline_duration(start: Minute) -> i64 {
    start - (day_start(start) - 7 * MINUTES_PER_DAY)
}

/// An average as the service reports it: events over minutes (empty minutes count).
pub fn average(events: u64, minutes: i64) -> f64 {
    if minutes <= 0 {
        0.0
    } else {
        events as f64 / minutes as f64
    }
}

/// Builds a record. The caller supplies statistics and attributions.
pub struct RecordParts<'a> {
    pub key: &'a SeriesKey,
    pub state: InsightState,
    pub event_time: Minute,
    pub shared_event_id: &'a str,
    pub statistics: Statistics,
    pub attributions: Vec<Attribution>,
}

/// Builds a record, made to fit: see [`fit_record`].
pub fn build_record(parts: RecordParts<'_>) -> InsightRecord {
    let mut record = assemble(parts);
    fit_record(&mut record);
    record
}

/// Cuts `text` to at most `max` characters, the last being [`TRUNCATED_MARK`] when cut.
pub fn truncate_chars(text: &mut String, max: usize) {
    if text.chars().count() <= max {
        return;
    }
    let keep = max.saturating_sub(1);
    let end = text
        .char_indices()
        .nth(keep)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    text.truncate(end);
    text.push_str(TRUNCATED_MARK);
}

/// Makes a record fit everywhere it goes: names cut to [`MAX_NAME_CHARS`], attribution values to
/// [`MAX_ATTRIBUTION_VALUE_CHARS`]; should the JSON still exceed [`MAX_RECORD_BYTES`], values are
/// cut shorter (to a quarter, then on) until it fits. With 5 values per list, 3 attributes and 2
/// lists each, the first cut alone bounds a record near 100 KB.
pub fn fit_record(record: &mut InsightRecord) {
    let details = &mut record.insight_details;
    truncate_chars(&mut details.event_source, MAX_NAME_CHARS);
    truncate_chars(&mut details.event_name, MAX_NAME_CHARS);
    if let Some(code) = details.error_code.as_mut() {
        truncate_chars(code, MAX_NAME_CHARS);
    }
    let mut limit = MAX_ATTRIBUTION_VALUE_CHARS;
    loop {
        for attribution in &mut record.insight_details.insight_context.attributions {
            for value in attribution
                .insight
                .iter_mut()
                .chain(attribution.baseline.iter_mut())
            {
                truncate_chars(&mut value.value, limit);
            }
        }
        let size = serde_json::to_vec(record).map(|v| v.len()).unwrap_or(0);
        if size <= MAX_RECORD_BYTES || limit <= 16 {
            return;
        }
        limit /= 4;
    }
}

fn assemble(parts: RecordParts<'_>) -> InsightRecord {
    InsightRecord {
        event_version: EVENT_VERSION.to_owned(),
        event_time: format_minute(parts.event_time),
        aws_region: parts.key.region.clone(),
        event_id: event_id(parts.shared_event_id, parts.state),
        event_type: "AwsCloudTrailInsight".to_owned(),
        recipient_account_id: parts.key.account.clone(),
        shared_event_id: parts.shared_event_id.to_owned(),
        insight_details: InsightDetails {
            state: parts.state,
            event_source: parts.key.event_source.clone(),
            event_name: parts.key.event_name.clone(),
            insight_type: parts.key.insight_type(),
            error_code: parts.key.error_code.clone(),
            source_event_category: "Management".to_owned(),
            insight_context: InsightContext {
                statistics: parts.statistics,
                attributions: parts.attributions,
                principal: parts
                    .key
                    .reported_principal()
                    .map(|principal| PrincipalContext {
                        user_identity_arn: principal.to_owned(),
                        scope: if parts.key.is_service_wide() {
                            SCOPE_SERVICE
                        } else {
                            SCOPE_API
                        }
                        .to_owned(),
                        first_seen: None,
                        first_seen_values: Vec::new(),
                    }),
            },
        },
        event_category: "Insight".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minute::parse_minute;

    #[test]
    fn records_are_cut_to_fit_an_eventbridge_entry() {
        let huge = "Mozilla/5.0 ".repeat(10_000); // 120 KB
        let key = SeriesKey {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            event_source: "s3.amazonaws.com".into(),
            event_name: "E".repeat(5000),
            error_code: Some("AccessDenied".into()),
            principal: None,
        };
        let values: Vec<AttributionValue> = (0..5)
            .map(|i| AttributionValue {
                value: format!("{i}{huge}"),
                average: 1.0,
            })
            .collect();
        let attributions = ["userIdentityArn", "userAgent", "errorCode"]
            .iter()
            .map(|a| Attribution {
                attribute: a.to_string(),
                insight: values.clone(),
                baseline: values.clone(),
            })
            .collect();
        let record = build_record(RecordParts {
            key: &key,
            state: InsightState::Start,
            event_time: 0,
            shared_event_id: "s",
            statistics: Statistics {
                baseline: Average { average: 0.0 },
                insight: Average { average: 5.0 },
                insight_duration: 1,
                baseline_duration: 10_080,
            },
            attributions,
        });
        let size = serde_json::to_vec(&record).unwrap().len();
        assert!(size <= MAX_RECORD_BYTES, "{size}");
        let details = &record.insight_details;
        assert_eq!(details.event_name.chars().count(), MAX_NAME_CHARS);
        assert!(details.event_name.ends_with(TRUNCATED_MARK));
        let value = &details.insight_context.attributions[1].insight[0].value;
        assert_eq!(value.chars().count(), MAX_ATTRIBUTION_VALUE_CHARS);
        assert!(value.starts_with("0Mozilla/5.0"));
        // Distinct values stay distinct after the cut (they differ in their first character).
        assert_ne!(
            value,
            &details.insight_context.attributions[1].insight[1].value
        );
        // Short values are untouched.
        let mut short = String::from("AccessDenied");
        truncate_chars(&mut short, 12);
        assert_eq!(short, "AccessDenied");
        let mut multibyte = "ééééé".to_owned();
        truncate_chars(&mut multibyte, 3);
        assert_eq!(multibyte, "éé…");
    }

    #[test]
    fn published_statistics_are_reproduced() {
        // The contract's published figure: 861036 events over a 10080-minute baseline.
        assert!((average(861_036, 10_080) - 85.420_238_095_2).abs() < 1e-9);
        // An insight starting at 00:00 has exactly seven days of baseline; later starts add the day so far.
        assert_eq!(
            baseline_duration(parse_minute("2026-03-02T00:00:00Z").unwrap()),
            10_080
        );
        assert_eq!(
            baseline_duration(parse_minute("2026-03-02T14:07:00Z").unwrap()),
            10_080 + 14 * 60 + 7
        );
        assert_eq!(average(5, 0), 0.0);
    }

    #[test]
    fn record_has_every_field_of_the_contract_example() {
        let key = SeriesKey {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            event_source: "iam.amazonaws.com".into(),
            event_name: "CreateAccessKey".into(),
            error_code: None,
            principal: None,
        };
        let start = parse_minute("2026-03-02T14:07:00Z").unwrap();
        let record = build_record(RecordParts {
            key: &key,
            state: InsightState::Start,
            event_time: start,
            shared_event_id: "s",
            statistics: Statistics {
                baseline: Average { average: 0.0001 },
                insight: Average { average: 14.0 },
                insight_duration: 1,
                baseline_duration: baseline_duration(start),
            },
            attributions: vec![],
        });
        let json = serde_json::to_value(&record).unwrap();
        let example: serde_json::Value =
            serde_json::from_str(include_str!("../testdata/insight_example.json")).unwrap();
        fn paths(v: &serde_json::Value, prefix: String, out: &mut Vec<String>) {
            if let Some(map) = v.as_object() {
                for (k, v) in map {
                    let p = format!("{prefix}/{k}");
                    out.push(p.clone());
                    if k != "attributions" {
                        paths(v, p, out);
                    }
                }
            }
        }
        let (mut ours, mut theirs) = (vec![], vec![]);
        paths(&json, String::new(), &mut ours);
        paths(&example, String::new(), &mut theirs);
        for path in &theirs {
            assert!(ours.contains(path), "missing {path}");
        }
        assert_eq!(json["eventTime"], "2026-03-02T14:07:00Z");
        assert_eq!(json["insightDetails"]["state"], "Start");
        assert!(json["insightDetails"].get("errorCode").is_none());
    }

    #[test]
    fn identifiers_are_derived_from_content() {
        let key = SeriesKey {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            event_source: "iam.amazonaws.com".into(),
            event_name: "CreateUser".into(),
            error_code: None,
            principal: None,
        };
        let start = parse_minute("2026-03-02T14:07:00Z").unwrap();
        let shared = shared_event_id(&key, "Spike", start, 0);
        // The documented derivation, computed independently (Python's uuid.uuid5 of the compact
        // JSON array): a change here changes every identifier ever published.
        assert_eq!(shared, "08e88ceb-5a3f-5534-b000-be9cb9080ea5");
        assert_eq!(
            event_id(&shared, InsightState::Start),
            "52c04f93-4c6b-5353-a054-ab4bfc619883"
        );
        assert_eq!(
            event_id(&shared, InsightState::End),
            "d14ba665-4fd1-515e-b8d2-6b0e8ddb475f"
        );
        // Stable: the same content, the same identifier.
        assert_eq!(shared_event_id(&key.clone(), "Spike", start, 0), shared);
        // Every part of the content counts.
        let with = |f: &dyn Fn(&mut SeriesKey)| {
            let mut k = key.clone();
            f(&mut k);
            shared_event_id(&k, "Spike", start, 0)
        };
        let mut others = vec![
            with(&|k| k.account = "444455556666".into()),
            with(&|k| k.region = "eu-west-1".into()),
            with(&|k| k.event_source = "sts.amazonaws.com".into()),
            with(&|k| k.event_name = "DeleteUser".into()),
            with(&|k| k.error_code = Some("AccessDenied".into())),
            with(&|k| k.error_code = Some(String::new())),
            shared_event_id(&key, "Drop", start, 0),
            shared_event_id(&key, "Spike", start + 1, 0),
            shared_event_id(&key, "Spike", start, 1),
            shared_event_id(&key, "Spike", start, 2),
            event_id(&shared, InsightState::Start),
            event_id(&shared, InsightState::End),
        ];
        others.push(shared.clone());
        let distinct: std::collections::BTreeSet<&String> = others.iter().collect();
        assert_eq!(distinct.len(), others.len(), "{others:#?}");
        for id in &others {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 5);
        }
        // Fields cannot run into each other: the name is a JSON array.
        let a = SeriesKey {
            event_source: "a,b".into(),
            event_name: "c".into(),
            ..key.clone()
        };
        let b = SeriesKey {
            event_source: "a".into(),
            event_name: "b,c".into(),
            ..key.clone()
        };
        assert_ne!(
            shared_event_id(&a, "Spike", start, 0),
            shared_event_id(&b, "Spike", start, 0)
        );
    }

    #[test]
    fn a_record_carries_the_identifier_of_its_state() {
        let key = SeriesKey {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            event_source: "iam.amazonaws.com".into(),
            event_name: "CreateUser".into(),
            error_code: None,
            principal: None,
        };
        let shared = shared_event_id(&key, "Spike", 0, 0);
        let record = |state| {
            build_record(RecordParts {
                key: &key,
                state,
                event_time: 0,
                shared_event_id: &shared,
                statistics: Statistics {
                    baseline: Average { average: 0.0 },
                    insight: Average { average: 5.0 },
                    insight_duration: 1,
                    baseline_duration: 10_080,
                },
                attributions: vec![],
            })
        };
        let start = record(InsightState::Start);
        assert_eq!(start, record(InsightState::Start), "the same record again");
        assert_eq!(start.event_id, event_id(&shared, InsightState::Start));
        let end = record(InsightState::End);
        assert_eq!(end.event_id, event_id(&shared, InsightState::End));
        assert_eq!(end.shared_event_id, start.shared_event_id);
        assert_ne!(end.event_id, start.event_id);
    }
}
