//! Insight events as EventBridge takes them, AWS-free: their source (checked against AWS's
//! reserved `aws.` namespace), detail-type and bus by default, and EventBridge's limits on a
//! PutEvents call (entries, bytes) with the batching that keeps within them. The publisher that
//! sends them is `aws::eventbridge`.

/// The service's detail-type for Insight events.
pub const DEFAULT_DETAIL_TYPE: &str = "AWS Insight via CloudTrail";
/// The detail-type of Trailsight's own per-principal types (`PrincipalApiCallRateInsight`,
/// `PrincipalFirstSeenInsight`), which CloudTrail does not have: a rule written for the managed
/// service's events never matches them, so turning principal insights on leaves the
/// CloudTrail-compatible stream as it was.
pub const PRINCIPAL_DETAIL_TYPE: &str = "Trailsight Principal Insight";

/// The detail-type of `record`'s event: `detail_type` (the service's, by default) for the
/// managed service's two types, [`PRINCIPAL_DETAIL_TYPE`] for Trailsight's own.
pub fn detail_type_of<'a>(record: &crate::insight::InsightRecord, detail_type: &'a str) -> &'a str {
    if record.insight_details.insight_type.is_principal() {
        PRINCIPAL_DETAIL_TYPE
    } else {
        detail_type
    }
}
/// Our default event source.
pub const DEFAULT_SOURCE: &str = "trailsight";
/// The account's default event bus.
pub const DEFAULT_BUS: &str = "default";
/// Entries per PutEvents call (EventBridge's limit).
pub const MAX_ENTRIES_PER_CALL: usize = 10;
/// Bytes per PutEvents call, and so per entry (EventBridge's limit, as it counts them).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Why a source cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error(
        "event source {0:?} starts with \"aws.\", a prefix reserved for AWS services: PutEvents would reject every insight (NotAuthorizedForSourceException). Use a source of your own, such as \"trailsight\""
    )]
    Reserved(String),
    #[error("the event source is empty: set it (the default is \"trailsight\")")]
    Empty,
    #[error("event source {0:?} is longer than EventBridge's 256 characters")]
    TooLong(String),
    #[error("the detail-type is empty: set it (the default is {DEFAULT_DETAIL_TYPE:?})")]
    EmptyDetailType,
}

/// Checks that `source` can be published under: not empty, at most 256 characters, and not in
/// AWS's reserved `aws.` namespace (in any letter case).
pub fn validate_source(source: &str) -> Result<(), SourceError> {
    if source.trim().is_empty() {
        return Err(SourceError::Empty);
    }
    if source.len() > 256 {
        return Err(SourceError::TooLong(source.to_owned()));
    }
    if source.to_ascii_lowercase().starts_with("aws.") {
        return Err(SourceError::Reserved(source.to_owned()));
    }
    Ok(())
}

/// An entry's size as EventBridge counts it against its limits: the UTF-8 bytes of its source,
/// detail-type and detail (plus 14 for a time, counted whether or not one is set, and the bus
/// name, which the service does not count: a margin).
pub fn entry_size(bus: &str, source: &str, detail_type: &str, detail: &str) -> usize {
    14 + bus.len() + source.len() + detail_type.len() + detail.len()
}

/// Splits entries (by their sizes) into calls of at most [`MAX_ENTRIES_PER_CALL`] entries and
/// [`MAX_REQUEST_BYTES`] bytes, in order. An entry larger than the limit on its own is left out
/// (it cannot be sent); the caller reports it.
pub fn batches(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        if size > MAX_REQUEST_BYTES {
            continue;
        }
        if current.len() == MAX_ENTRIES_PER_CALL || bytes + size > MAX_REQUEST_BYTES {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += size;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_principal_records_have_their_own_detail_type() {
        let mut record = crate::insight_files::tests::record(
            "111122223333",
            "us-east-1",
            "2026-03-02T14:07:00Z",
        );
        assert_eq!(detail_type_of(&record, "custom"), "custom");
        for principal in [
            crate::series::InsightType::PrincipalApiCallRateInsight,
            crate::series::InsightType::PrincipalFirstSeenInsight,
        ] {
            record.insight_details.insight_type = principal;
            assert_eq!(detail_type_of(&record, "custom"), PRINCIPAL_DETAIL_TYPE);
        }
    }

    #[test]
    fn reserved_sources_are_refused() {
        assert!(validate_source("trailsight").is_ok());
        assert!(validate_source("com.example.security").is_ok());
        for bad in ["aws.cloudtrail", "AWS.events", "aws."] {
            let error = validate_source(bad).unwrap_err();
            assert_eq!(error, SourceError::Reserved(bad.into()));
            assert!(error.to_string().contains("reserved"), "{error}");
        }
        // "awsome" is not in the aws. namespace.
        assert!(validate_source("awsome").is_ok());
        assert_eq!(validate_source(" "), Err(SourceError::Empty));
        assert!(validate_source(&"x".repeat(257)).is_err());
    }

    #[test]
    fn calls_hold_at_most_ten_entries_and_256_kb() {
        let sizes = vec![1000; 25];
        let calls = batches(&sizes);
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
        assert_eq!(calls.concat(), (0..25).collect::<Vec<_>>());

        let big = MAX_REQUEST_BYTES / 2;
        let calls = batches(&[big, big, 1, big + 1, MAX_REQUEST_BYTES + 1, 5]);
        // The oversized entry (index 4) is left out; no call exceeds the limit.
        assert_eq!(calls, vec![vec![0, 1], vec![2, 3, 5]]);
        for call in &calls {
            let bytes: usize = call.iter().map(|&i| [big, big, 1, big + 1, 0, 5][i]).sum();
            assert!(bytes <= MAX_REQUEST_BYTES);
        }
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn entry_size_counts_every_field() {
        assert_eq!(
            entry_size("default", "trailsight", "t", "{}"),
            14 + 7 + 10 + 1 + 2
        );
    }
}
