//! Identifiers from log content, checked before they become paths, S3 keys, metric dimensions
//! or file names.
//!
//! Everything in a log file is chosen by whoever can write under the trail bucket's `AWSLogs/` or
//! call an API. A record's account and region end up in `AWSLogs/<account>/CloudTrail-Insight/
//! <region>/...` (the S3 archive, `trailsight replay --out`), its event source and name in table
//! rows and CloudWatch dimensions. So a record is only counted when they are what AWS writes:
//! an account of 12 digits, a region of AWS's pattern, an event source and name (and error code)
//! of printable characters and bounded length. Anything else is counted as unusable, with its
//! [`Invalid`] reason, and goes nowhere.

use serde::{Deserialize, Serialize};

/// Longest event source, event name or error code accepted (AWS's are below 100 characters).
pub const MAX_NAME_CHARS: usize = 128;

/// Why a record's identifiers were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalid {
    /// No account, or one that is not 12 digits.
    Account,
    /// A region that does not match AWS's pattern.
    Region,
    /// An event source with characters other than `[a-z0-9.-]`, or too long.
    EventSource,
    /// An event name that is empty, not printable, or too long.
    EventName,
    /// An error code that is not printable, or too long.
    ErrorCode,
}

impl Invalid {
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Account => "account",
            Invalid::Region => "region",
            Invalid::EventSource => "event_source",
            Invalid::EventName => "event_name",
            Invalid::ErrorCode => "error_code",
        }
    }
}

/// An AWS account id: exactly 12 ASCII digits.
pub fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS Organizations id as CloudTrail's organization-trail layout uses it
/// (`AWSLogs/o-xxxxxxxxxx/<account>/...`): `o-` and 10 to 32 lowercase letters or digits.
pub fn is_organization(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// An AWS region: `^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$` (`us-east-1`, `us-gov-west-1`,
/// `us-isob-east-1`, `eu-central-2`), at most 32 characters.
pub fn is_region(s: &str) -> bool {
    if s.len() > 32 {
        return false;
    }
    let parts: Vec<&str> = s.split('-').collect();
    let letters = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let (head, middle, number) = match parts.as_slice() {
        [head, middle @ .., number] => (*head, middle, *number),
        _ => return false,
    };
    if head.len() != 2 || !letters(head) || !digits(number) {
        return false;
    }
    match middle {
        [direction] => letters(direction),
        [partition, direction] => {
            (*partition == "gov"
                || partition
                    .strip_prefix("iso")
                    .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_lowercase())))
                && letters(direction)
        }
        _ => false,
    }
}

/// An event source: a service endpoint such as `ec2.amazonaws.com` (`[a-z0-9.-]`, bounded, not
/// `.` or `..`).
pub fn is_event_source(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && s.bytes().any(|b| b != b'.')
}

/// An event name or error code: printable ASCII without spaces, bounded (`RunInstances`,
/// `Client.InstanceLimitExceeded`, `AccessDenied`).
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME_CHARS && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Checks one record's series identifiers, in the order a reader would look.
pub fn check(
    account: Option<&str>,
    region: &str,
    event_source: &str,
    event_name: &str,
    error_code: Option<&str>,
) -> Result<(), Invalid> {
    if !account.is_some_and(is_account) {
        return Err(Invalid::Account);
    }
    if !is_region(region) {
        return Err(Invalid::Region);
    }
    if !is_event_source(event_source) {
        return Err(Invalid::EventSource);
    }
    if !is_name(event_name) {
        return Err(Invalid::EventName);
    }
    if error_code.is_some_and(|code| !is_name(code)) {
        return Err(Invalid::ErrorCode);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_organizations() {
        assert!(is_account("218007301253"));
        for bad in [
            "",
            "111",
            "21800730125x",
            "../../../../x",
            "2180073012531",
            "٢١٨٠٠٧٣٠١٢٥٣",
        ] {
            assert!(!is_account(bad), "{bad}");
        }
        assert!(is_organization("o-abc123def4"));
        assert!(is_organization("o-exampleorgid11"));
        for bad in [
            "o-abc",
            "o-ABCDEFGHIJ",
            "o-../../../x",
            "x-abcdefghij",
            "o-abcdefghij/",
        ] {
            assert!(!is_organization(bad), "{bad}");
        }
    }

    #[test]
    fn regions_follow_aws_pattern() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-4",
            "us-gov-west-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "cn-northwest-1",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in [
            "",
            "r",
            "../x",
            "us-east-1/../../x",
            "us-east-1\n",
            "us-north-2r",
            "apiso-northsouth-3r",
            "us-east-",
            "US-EAST-1",
            "us-foo-west-1",
            "us--1",
        ] {
            assert!(!is_region(bad), "{bad:?}");
        }
    }

    #[test]
    fn sources_and_names_are_printable_and_bounded() {
        assert!(is_event_source("ec2.amazonaws.com"));
        assert!(is_event_source("trailsight.overflow"));
        for bad in [
            "",
            "..",
            ".",
            "ec2/../x",
            "EC2.amazonaws.com",
            "a b",
            "a\u{1b}[31m",
        ] {
            assert!(!is_event_source(bad), "{bad:?}");
        }
        assert!(is_name("RunInstances"));
        assert!(is_name("Client.InstanceLimitExceeded"));
        for bad in [
            "",
            "Run\nInstances",
            "Run\u{1b}[2J",
            "Run Instances",
            "Créer",
        ] {
            assert!(!is_name(bad), "{bad:?}");
        }
        assert!(!is_name(&"A".repeat(MAX_NAME_CHARS + 1)));
        assert_eq!(
            check(
                Some("111122223333"),
                "us-east-1",
                "s.amazonaws.com",
                "X",
                Some("E")
            ),
            Ok(())
        );
        assert_eq!(
            check(Some("../../../../x"), "us-east-1", "s", "X", None),
            Err(Invalid::Account)
        );
        assert_eq!(
            check(None, "us-east-1", "s", "X", None),
            Err(Invalid::Account)
        );
        assert_eq!(
            check(Some("111122223333"), "us-east-1", "s", "X", Some("E\u{7}")),
            Err(Invalid::ErrorCode)
        );
    }
}
