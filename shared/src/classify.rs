//! Which records feed which series (the contract's §1).

use crate::record::Record;

/// What to analyse beyond the contract's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClassifyOptions {
    /// Count read-only calls in call-rate series too (the managed service analyses writes only).
    pub include_read_apis: bool,
    /// Analyse data events (`eventCategory` `Data`) as well as management events.
    pub include_data_events: bool,
    /// Also count each management event, read or write, in its caller's principal series
    /// ([`crate::series::SeriesKey::principal`]): the per-principal insights, opt-in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub principal_insights: bool,
}

/// How one record counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class<'r> {
    /// Counts in the API's call-rate series and, with an error code, in its error-rate series.
    Counted {
        call: bool,
        error_code: Option<&'r str>,
    },
    /// Not analysed, for the reason given.
    Excluded(Exclusion),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// An Insight record (our own output or the managed service's).
    Insight,
    /// A data event or network-activity event.
    DataEvent,
    /// A successful read-only call (only errors of reads are analysed).
    ReadOnly,
    /// No `eventTime`, `eventSource`, `eventName` or region: not a CloudTrail event.
    Unusable,
}

/// Read-only API-name prefixes, for records that carry no `readOnly` (eventVersion < 1.06).
const READ_PREFIXES: [&str; 9] = [
    "Describe", "Get", "List", "Head", "Lookup", "Search", "Scan", "Query", "BatchGet",
];

/// True when the API name alone says the call is read-only.
pub fn is_read_only_name(event_name: &str) -> bool {
    READ_PREFIXES.iter().any(|prefix| {
        event_name.strip_prefix(prefix).is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase())
        })
    })
}

pub fn classify<'r>(record: &'r Record<'_>, options: &ClassifyOptions) -> Class<'r> {
    if record.event_type.as_deref() == Some("AwsCloudTrailInsight")
        || record.event_category.as_deref() == Some("Insight")
    {
        return Class::Excluded(Exclusion::Insight);
    }
    if record.time().is_none()
        || record.event_source.is_none()
        || record.event_name.is_none()
        || record.aws_region.is_none()
    {
        return Class::Excluded(Exclusion::Unusable);
    }
    let management = match record.event_category.as_deref() {
        Some("Management") => true,
        Some(_) => false, // Data, NetworkActivity, and categories yet to come
        None => record.management_event != Some(false),
    };
    if !management && !options.include_data_events {
        return Class::Excluded(Exclusion::DataEvent);
    }
    let read_only = match record.read_only {
        Some(read_only) => read_only,
        None => is_read_only_name(record.event_name.as_deref().unwrap_or_default()),
    };
    let error_code = record.error_code.as_deref().filter(|code| !code.is_empty());
    let call = !read_only || options.include_read_apis;
    if !call && error_code.is_none() {
        return Class::Excluded(Exclusion::ReadOnly);
    }
    Class::Counted { call, error_code }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record<'static> {
        let leaked: &'static str = Box::leak(json.to_owned().into_boxed_str());
        Record::parse(leaked.as_bytes()).unwrap()
    }

    const BASE: &str = r#""eventTime":"2023-07-10T11:42:36Z","eventSource":"ec2.amazonaws.com","awsRegion":"us-east-1""#;

    #[test]
    fn api_name_rule_for_old_records() {
        for read in [
            "DescribeInstances",
            "GetObject",
            "ListBuckets",
            "HeadBucket",
            "LookupEvents",
            "BatchGetItem",
            "Scan",
            "Query",
        ] {
            assert!(is_read_only_name(read), "{read}");
        }
        for write in [
            "RunInstances",
            "CreateUser",
            "PutObject",
            "Getaway",
            "Listen",
            "DeleteQueue",
        ] {
            assert!(!is_read_only_name(write), "{write}");
        }
    }

    #[test]
    fn writes_and_errors_count_reads_and_data_do_not() {
        let options = ClassifyOptions::default();
        let write = record(&format!(
            r#"{{{BASE},"eventName":"RunInstances","readOnly":false,"eventCategory":"Management"}}"#
        ));
        assert_eq!(
            classify(&write, &options),
            Class::Counted {
                call: true,
                error_code: None
            }
        );
        let old_write = record(&format!(r#"{{{BASE},"eventName":"RunInstances"}}"#));
        assert_eq!(
            classify(&old_write, &options),
            Class::Counted {
                call: true,
                error_code: None
            }
        );
        let read_error = record(&format!(
            r#"{{{BASE},"eventName":"DescribeInstances","readOnly":true,"errorCode":"ThrottlingException"}}"#
        ));
        assert_eq!(
            classify(&read_error, &options),
            Class::Counted {
                call: false,
                error_code: Some("ThrottlingException")
            }
        );
        let old_read = record(&format!(r#"{{{BASE},"eventName":"DescribeInstances"}}"#));
        assert_eq!(
            classify(&old_read, &options),
            Class::Excluded(Exclusion::ReadOnly)
        );
        let data = record(&format!(
            r#"{{{BASE},"eventName":"PutObject","readOnly":false,"eventCategory":"Data","managementEvent":false}}"#
        ));
        assert_eq!(
            classify(&data, &options),
            Class::Excluded(Exclusion::DataEvent)
        );
        let with_data = ClassifyOptions {
            include_data_events: true,
            ..options
        };
        assert_eq!(
            classify(&data, &with_data),
            Class::Counted {
                call: true,
                error_code: None
            }
        );
        let insight = record(&format!(
            r#"{{{BASE},"eventName":"RunInstances","eventType":"AwsCloudTrailInsight"}}"#
        ));
        assert_eq!(
            classify(&insight, &options),
            Class::Excluded(Exclusion::Insight)
        );
        let digest_like =
            record(r#"{"awsAccountId":"1","digestStartTime":"2023-07-10T11:00:00Z"}"#);
        assert_eq!(
            classify(&digest_like, &options),
            Class::Excluded(Exclusion::Unusable)
        );
        let with_reads = ClassifyOptions {
            include_read_apis: true,
            ..options
        };
        assert_eq!(
            classify(&old_read, &with_reads),
            Class::Counted {
                call: true,
                error_code: None
            }
        );
    }
}
