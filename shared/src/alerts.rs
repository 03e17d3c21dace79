//! Alerts a person reads: one message per Insight record, in the custom notification format of
//! Amazon Q Developer in chat applications (Slack, Microsoft Teams, Amazon Chime, through an SNS
//! topic) and as plain text for the topic's e-mail subscribers. AWS-free: `aws::sns` sends them.
//!
//! The message explains the record in one sentence, from the record's own numbers only (so the
//! alert says what the record says, and nothing else): the API and its rate during the insight,
//! the baseline's, how many times more that is, for how long, and the largest share of each
//! attribution (who, with which agent, which error), e.g.
//! "iam CreateUser ran at 26.0 calls/min for 23 min, against 0.01/min usually (2,600x); 92% from
//! arn:aws:iam::111122223333:role/github-actions; 42% failed with LimitExceeded."
//!
//! Everything that comes from the logs (names, ARNs, user agents, error codes) is attacker
//! controlled: in the chat message it is shown as inline code with backticks and line breaks
//! removed, so it can neither format the message nor add a link.
//!
//! SNS carries both forms in one message (`MessageStructure` `json`): `default` is the chat
//! notification (what an HTTPS subscriber such as Amazon Q Developer receives), `email` the text.
//! A Start and its End share a `threadId` (the record's `sharedEventID`), so chat shows the End
//! under the Start.

use serde_json::{Value, json};

use crate::fold::NO_ERROR;
use crate::insight::{Attribution, InsightRecord, InsightState, SCOPE_SERVICE};
use crate::series::InsightType;

/// SNS subjects are at most 100 characters (ASCII, no line breaks).
pub const MAX_SUBJECT_CHARS: usize = 100;
/// Attribution values are cut to this many characters in a message.
const MAX_VALUE_CHARS: usize = 120;

/// One record's alert: an SNS subject and the `MessageStructure: json` message.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub subject: String,
    /// `{"default": <chat notification JSON>, "email": <text>}`, serialised.
    pub message: String,
}

/// The alert of `record`.
pub fn alert(record: &InsightRecord) -> Alert {
    let chat = chat_notification(record).to_string();
    let message = json!({ "default": chat, "email": email_text(record) }).to_string();
    Alert {
        subject: subject(record),
        message,
    }
}

/// The short service name of an event source: `iam` for `iam.amazonaws.com`.
fn service(event_source: &str) -> &str {
    event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(event_source)
}

fn what(record: &InsightRecord) -> String {
    let details = &record.insight_details;
    let api = format!("{} {}", service(&details.event_source), details.event_name);
    let scope = details
        .insight_context
        .principal
        .as_ref()
        .map(|p| p.scope.as_str());
    match (&details.insight_type, &details.error_code) {
        (InsightType::ApiErrorRateInsight, Some(code)) => format!("{api} errors ({code})"),
        (InsightType::PrincipalApiCallRateInsight, _) if scope == Some(SCOPE_SERVICE) => {
            format!("{} calls by one principal", service(&details.event_source))
        }
        (InsightType::PrincipalApiCallRateInsight, _) => format!("{api} calls by one principal"),
        (InsightType::PrincipalFirstSeenInsight, _) => format!("first {api} calls by a principal"),
        _ => format!("{api} calls"),
    }
}

/// The rate comparison: `2,600x the usual rate`, `below the usual rate`...
fn factor(insight: f64, baseline: f64) -> String {
    if baseline <= 0.0 {
        "none usually".to_owned()
    } else if insight >= baseline {
        format!("{}x", group_digits(insight / baseline))
    } else {
        format!("{:.0}% of usual", 100.0 * insight / baseline)
    }
}

/// A number with thousands separators, no decimals from 100 on, one below.
fn group_digits(value: f64) -> String {
    if value < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.1}")
    } else if value >= 0.1 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// The largest value of an attribution and its share of the insight's events, if any. For
/// `errorCode`, the largest error: successful calls (`null`, [`NO_ERROR`]) are not a failure.
fn top_share<'a>(
    attributions: &'a [Attribution],
    attribute: &str,
    total: f64,
) -> Option<(&'a str, f64)> {
    let attribution = attributions.iter().find(|a| a.attribute == attribute)?;
    let top = attribution
        .insight
        .iter()
        .filter(|v| attribute != "errorCode" || v.value != NO_ERROR)
        .max_by(|a, b| a.average.total_cmp(&b.average))?;
    (total > 0.0).then(|| (top.value.as_str(), (top.average / total).min(1.0)))
}

/// How a value from the logs is written: `Code` puts it in an inline code span (chat markdown),
/// `Plain` as is (e-mail text).
#[derive(Clone, Copy)]
enum Style {
    Code,
    Plain,
}

/// A value from the logs, cut and made inert.
fn shown(value: &str, style: Style) -> String {
    let mut text: String = value
        .chars()
        .filter(|c| !c.is_control() && *c != '`')
        .take(MAX_VALUE_CHARS)
        .collect();
    if value.chars().count() > MAX_VALUE_CHARS {
        text.push('…');
    }
    match style {
        Style::Code => format!("`{text}`"),
        Style::Plain => text,
    }
}

/// A sweep's first-seen values as the end of a sentence: ` (a, b, c and 2 more)`; nothing for
/// none. At most [`LISTED_VALUES`] are shown, each as [`shown`].
fn listed(values: &[String], style: Style) -> String {
    if values.is_empty() {
        return String::new();
    }
    let mut parts: Vec<String> = values
        .iter()
        .take(LISTED_VALUES)
        .map(|v| shown(v, style))
        .collect();
    if values.len() > LISTED_VALUES {
        parts.push(format!("{} more", values.len() - LISTED_VALUES));
    }
    format!(": {}", parts.join(", "))
}

/// Values of a sweep named in an alert.
const LISTED_VALUES: usize = 5;

/// The sentence that explains the record, as plain text (values from the logs without control
/// characters, cut): the e-mail's, and a Security Hub finding's description.
pub fn plain_explanation(record: &InsightRecord) -> String {
    explanation(record, Style::Plain)
}

/// The sentence that explains the record.
fn explanation(record: &InsightRecord, style: Style) -> String {
    let details = &record.insight_details;
    let statistics = &details.insight_context.statistics;
    let (insight, baseline) = (statistics.insight.average, statistics.baseline.average);
    let minutes = statistics.insight_duration;
    let name = shown(
        &format!("{} {}", service(&details.event_source), details.event_name),
        style,
    );
    let verb = match details.insight_type {
        InsightType::ApiErrorRateInsight => "failed",
        _ => "ran",
    };
    let mut sentence = match details.state {
        InsightState::Start => format!(
            "{name} {verb} at {}/min from {}, against {}/min usually ({})",
            rate(insight),
            record.event_time,
            rate(baseline),
            factor(insight, baseline)
        ),
        InsightState::End => format!(
            "{name} {verb} at {}/min for {minutes} min, against {}/min usually ({})",
            rate(insight),
            rate(baseline),
            factor(insight, baseline)
        ),
    };
    if let Some(principal) = &details.insight_context.principal {
        let whose = shown(&principal.user_identity_arn, style);
        let first = match principal.first_seen.as_deref() {
            Some("region") => format!(
                "; the first calls of {whose} in region {}",
                shown(&record.aws_region, style)
            ),
            Some("services") => format!(
                "; {whose} called services it never used before, several within 15 minutes (an enumeration's shape), this one among them{}",
                listed(&principal.first_seen_values, style)
            ),
            Some("reads") => format!(
                "; {whose} called read APIs it never used before, several across services within 15 minutes (an enumeration's shape), this one among them{}",
                listed(&principal.first_seen_values, style)
            ),
            Some("roles") => format!(
                "; {whose} asked for roles it never assumed before, several within 15 minutes (role chaining's shape){}",
                listed(&principal.first_seen_values, style)
            ),
            Some(_) => format!("; the first calls of {whose} to this sensitive API"),
            None => format!("; by {whose}, judged against its own history"),
        };
        sentence.push_str(&first);
    }
    let attributions = &details.insight_context.attributions;
    let total = insight;
    if let Some((who, share)) = top_share(attributions, "userIdentityArn", total) {
        sentence.push_str(&format!(
            "; {:.0}% from {}",
            100.0 * share,
            shown(who, style)
        ));
    }
    if let Some((agent, share)) = top_share(attributions, "userAgent", total) {
        sentence.push_str(&format!(
            "; {:.0}% with user agent {}",
            100.0 * share,
            shown(agent, style)
        ));
    }
    if details.insight_type == InsightType::ApiCallRateInsight
        && let Some((code, share)) = top_share(attributions, "errorCode", total)
    {
        sentence.push_str(&format!(
            "; {:.0}% failed with {}",
            100.0 * share,
            shown(code, style)
        ));
    }
    sentence.push('.');
    if details.state == InsightState::End {
        sentence.push_str(" The rate is back to its usual level.");
    }
    sentence
}

/// The alert's subject: what is unusual, where (ASCII, at most [`MAX_SUBJECT_CHARS`]).
pub fn subject(record: &InsightRecord) -> String {
    let state = match record.insight_details.state {
        InsightState::Start => "Unusual",
        InsightState::End => "Ended: unusual",
    };
    let text = format!(
        "{state} {} in {} {}",
        what(record),
        record.recipient_account_id,
        record.aws_region
    );
    // SNS subjects: ASCII printable, no line breaks.
    text.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .take(MAX_SUBJECT_CHARS)
        .collect()
}

/// What to do next, as the chat notification's `nextSteps`.
fn next_steps(record: &InsightRecord) -> Vec<String> {
    let details = &record.insight_details;
    let mut steps = vec![format!(
        "Look at the calls in CloudTrail event history: event source {}, event name {}, account {}, region {}, from {}.",
        shown(&details.event_source, Style::Code),
        shown(&details.event_name, Style::Code),
        shown(&record.recipient_account_id, Style::Code),
        shown(&record.aws_region, Style::Code),
        record.event_time
    )];
    if let Some((who, _)) = top_share(
        &details.insight_context.attributions,
        "userIdentityArn",
        details.insight_context.statistics.insight.average,
    ) {
        steps.push(format!(
            "Check that {} is expected to make these calls now; if not, review its credentials.",
            shown(who, Style::Code)
        ));
    }
    steps.push(
        "If this is a new routine, it is learnt: the same burst is not reported again after its second time in a week (docs/DETECTION.md)."
            .to_owned(),
    );
    steps
}

/// The Amazon Q Developer custom notification of `record`.
pub fn chat_notification(record: &InsightRecord) -> Value {
    let details = &record.insight_details;
    let title = match details.state {
        InsightState::Start => format!("Unusual {}", what(record)),
        InsightState::End => format!("Ended: unusual {}", what(record)),
    };
    let statistics = &details.insight_context.statistics;
    let description = format!(
        "{}\n\n*Account* {} · *Region* {} · *Insight* {} ({}) · *Baseline* {}/min over {} min",
        explanation(record, Style::Code),
        shown(&record.recipient_account_id, Style::Code),
        shown(&record.aws_region, Style::Code),
        details.insight_type.as_str(),
        details.state.as_str(),
        rate(statistics.baseline.average),
        statistics.baseline_duration
    );
    let related: Vec<String> = details
        .insight_context
        .attributions
        .iter()
        .filter(|a| a.attribute == "userIdentityArn")
        .flat_map(|a| a.insight.iter().take(3))
        .map(|v| shown(&v.value, Style::Plain))
        .collect();
    json!({
        "version": "1.0",
        "source": "custom",
        "id": record.event_id,
        "content": {
            "textType": "client-markdown",
            "title": shown(&title, Style::Plain),
            "description": description,
            "nextSteps": next_steps(record),
            "keywords": [details.insight_type.as_str(), service(&details.event_source), record.aws_region],
        },
        "metadata": {
            "threadId": record.shared_event_id,
            "summary": shown(&title, Style::Plain),
            "eventType": details.insight_type.as_str(),
            "relatedResources": related,
            "additionalContext": {
                "account": record.recipient_account_id,
                "region": record.aws_region,
                "eventSource": details.event_source,
                "eventName": details.event_name,
                "state": details.state.as_str(),
                "eventID": record.event_id,
                "sharedEventID": record.shared_event_id,
            },
        },
    })
}

/// The plain-text e-mail body of `record`.
pub fn email_text(record: &InsightRecord) -> String {
    let details = &record.insight_details;
    let statistics = &details.insight_context.statistics;
    let mut text = format!(
        "{}\n\n{}\n\nAccount: {}\nRegion: {}\nAPI: {} {}\nInsight type: {}\nState: {}\nTime: {}\nRate during the insight: {}/min over {} min\nUsual rate: {}/min over {} min\n",
        subject(record),
        explanation(record, Style::Plain),
        shown(&record.recipient_account_id, Style::Plain),
        shown(&record.aws_region, Style::Plain),
        shown(&details.event_source, Style::Plain),
        shown(&details.event_name, Style::Plain),
        details.insight_type.as_str(),
        details.state.as_str(),
        record.event_time,
        rate(statistics.insight.average),
        statistics.insight_duration,
        rate(statistics.baseline.average),
        statistics.baseline_duration,
    );
    for attribution in &details.insight_context.attributions {
        if attribution.insight.is_empty() {
            continue;
        }
        text.push_str(&format!(
            "\nTop {} during the insight:\n",
            attribution.attribute
        ));
        for value in attribution.insight.iter().take(5) {
            text.push_str(&format!(
                "  {}/min  {}\n",
                rate(value.average),
                shown(&value.value, Style::Plain)
            ));
        }
    }
    text.push_str(&format!(
        "\nNext steps:\n{}\n\neventID {} (sharedEventID {})\n",
        next_steps(record)
            .iter()
            .map(|s| format!("- {}", s.replace('`', "")))
            .collect::<Vec<_>>()
            .join("\n"),
        record.event_id,
        record.shared_event_id
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insight::{AttributionValue, Average, RecordParts, Statistics, build_record};
    use crate::minute::parse_minute;
    use crate::series::SeriesKey;

    fn value(value: &str, average: f64) -> AttributionValue {
        AttributionValue {
            value: value.to_owned(),
            average,
        }
    }

    fn record(state: InsightState, agent: &str) -> InsightRecord {
        build_record(RecordParts {
            key: &SeriesKey {
                account: "111122223333".into(),
                region: "us-east-1".into(),
                event_source: "ec2.amazonaws.com".into(),
                event_name: "RunInstances".into(),
                error_code: None,
                principal: None,
            },
            state,
            event_time: parse_minute("2026-03-02T14:07:00Z").unwrap(),
            shared_event_id: "a1b2",
            statistics: Statistics {
                baseline: Average { average: 0.01 },
                insight: Average { average: 26.0 },
                insight_duration: 23,
                baseline_duration: 10080,
            },
            attributions: vec![
                Attribution {
                    attribute: "userIdentityArn".into(),
                    insight: vec![
                        value("arn:aws:iam::111122223333:role/github-actions", 23.92),
                        value("arn:aws:iam::111122223333:user/alice", 2.08),
                    ],
                    baseline: vec![],
                },
                Attribution {
                    attribute: "userAgent".into(),
                    insight: vec![value(agent, 26.0)],
                    baseline: vec![],
                },
                Attribution {
                    attribute: "errorCode".into(),
                    insight: vec![value("VcpuLimitExceeded", 10.92), value("Unsupported", 0.5)],
                    baseline: vec![],
                },
            ],
        })
    }

    #[test]
    fn the_sentence_explains_the_record_with_its_own_numbers() {
        let end = record(InsightState::End, "terraform/1.9");
        assert_eq!(
            explanation(&end, Style::Plain),
            "ec2 RunInstances ran at 26.0/min for 23 min, against 0.010/min usually (2,600x); 92% from arn:aws:iam::111122223333:role/github-actions; 100% with user agent terraform/1.9; 42% failed with VcpuLimitExceeded. The rate is back to its usual level.",
        );
        let start = record(InsightState::Start, "terraform/1.9");
        let sentence = explanation(&start, Style::Code);
        assert!(
            sentence.starts_with("`ec2 RunInstances` ran at 26.0/min from 2026-03-02T14:07:00Z"),
            "{sentence}"
        );

        // Successful calls are listed as `null` in the errorCode attribution: not a failure.
        let mut succeeded = record(InsightState::End, "terraform/1.9");
        succeeded.insight_details.insight_context.attributions[2].insight =
            vec![value("null", 20.0), value("VcpuLimitExceeded", 6.0)];
        let sentence = explanation(&succeeded, Style::Plain);
        assert!(
            sentence.contains("; 23% failed with VcpuLimitExceeded."),
            "{sentence}"
        );
        succeeded.insight_details.insight_context.attributions[2].insight =
            vec![value("null", 26.0)];
        let sentence = explanation(&succeeded, Style::Plain);
        assert!(!sentence.contains("failed"), "{sentence}");
    }

    #[test]
    fn the_chat_notification_follows_the_custom_schema() {
        let start = record(InsightState::Start, "terraform/1.9");
        let chat = chat_notification(&start);
        assert_eq!(chat["version"], "1.0");
        assert_eq!(chat["source"], "custom");
        assert_eq!(chat["content"]["textType"], "client-markdown");
        assert_eq!(chat["content"]["title"], "Unusual ec2 RunInstances calls");
        assert!(chat["content"]["nextSteps"].as_array().unwrap().len() >= 2);
        assert_eq!(chat["metadata"]["threadId"], "a1b2");
        let end = chat_notification(&record(InsightState::End, "terraform/1.9"));
        assert_eq!(
            end["metadata"]["threadId"], chat["metadata"]["threadId"],
            "one thread"
        );
        assert_ne!(end["id"], chat["id"]);
        // The SNS message: the chat JSON as default, text for e-mail.
        let alert = alert(&start);
        let message: Value = serde_json::from_str(&alert.message).unwrap();
        let default: Value = serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
        assert_eq!(default, chat);
        assert!(
            message["email"]
                .as_str()
                .unwrap()
                .contains("Usual rate: 0.010/min")
        );
        assert_eq!(
            alert.subject,
            "Unusual ec2 RunInstances calls in 111122223333 us-east-1"
        );
    }

    #[test]
    fn values_from_the_logs_cannot_format_or_link() {
        let hostile = "x`](https://evil.example)\n**click** `<script>`";
        let chat = chat_notification(&record(InsightState::Start, hostile));
        let description = chat["content"]["description"].as_str().unwrap();
        // The agent is one inline code span: no backtick of its own, no line break.
        assert!(
            description.contains("`x](https://evil.example)**click** <script>`"),
            "{description}"
        );
        let alert = alert(&record(InsightState::Start, hostile));
        assert!(alert.subject.len() <= MAX_SUBJECT_CHARS);
        assert!(!alert.subject.contains('\n'));
    }

    #[test]
    fn a_sweep_names_what_was_new_and_stays_short() {
        let mut r = record(InsightState::Start, "aws-cli/2.15");
        r.insight_details.insight_type = InsightType::PrincipalFirstSeenInsight;
        r.insight_details.event_source = "sts.amazonaws.com".into();
        r.insight_details.event_name = "AssumeRole".into();
        let roles: Vec<String> = (1..=7)
            .map(|i| format!("arn:aws:iam::111122223333:role/r{i}"))
            .collect();
        r.insight_details.insight_context.principal = Some(crate::insight::PrincipalContext {
            user_identity_arn: "arn:aws:iam::111122223333:role/ci".into(),
            scope: "api".into(),
            first_seen: Some("roles".into()),
            first_seen_values: roles,
        });
        let text = plain_explanation(&r);
        assert!(
            text.contains("asked for roles it never assumed before"),
            "{text}"
        );
        assert!(
            text.contains("arn:aws:iam::111122223333:role/r1, ")
                && text.contains("role/r5, 2 more"),
            "{text}"
        );
        assert!(!text.contains("role/r6"), "{text}");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(group_digits(2600.0), "2,600");
        assert_eq!(group_digits(1_234_567.0), "1,234,567");
        assert_eq!(group_digits(12.34), "12.3");
        assert_eq!(factor(5.0, 0.0), "none usually");
        assert_eq!(factor(1.0, 4.0), "25% of usual");
    }
}
