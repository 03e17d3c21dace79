//! A place in S3: a bucket and a key prefix, checked and normalised once, where a setting or an
//! argument is read. Every S3 user of the library (the archive, the state bucket, the dead
//! letters, the backfill's trail) takes one, so there is one spelling of "prefix": without a
//! slash at either end, possibly empty, and keys under it are `<prefix>/<name>` (or `<name>`).

use std::fmt;

/// An S3 key is at most 1,024 bytes: a prefix must leave room for what goes under it.
pub const MAX_PREFIX_BYTES: usize = 512;

/// Why a bucket or prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error(
        "{0:?} is not an S3 bucket name (3-63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit)"
    )]
    Bucket(String),
    #[error("the prefix is {0} bytes long; at most {MAX_PREFIX_BYTES} are accepted")]
    PrefixTooLong(usize),
    #[error("the prefix {0:?} holds a control character")]
    PrefixControl(String),
}

/// A bucket and a prefix (without a slash at either end; may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    bucket: String,
    prefix: String,
}

impl S3Location {
    /// Checks the bucket's name and trims the prefix's slashes (`/a/b/` → `a/b`).
    pub fn new(bucket: impl Into<String>, prefix: &str) -> Result<S3Location, LocationError> {
        let bucket = bucket.into();
        if !is_bucket_name(&bucket) {
            return Err(LocationError::Bucket(bucket));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.len() > MAX_PREFIX_BYTES {
            return Err(LocationError::PrefixTooLong(prefix.len()));
        }
        if prefix.chars().any(char::is_control) {
            return Err(LocationError::PrefixControl(prefix.to_owned()));
        }
        Ok(S3Location {
            bucket,
            prefix: prefix.to_owned(),
        })
    }

    /// `s3://bucket/prefix` (or `bucket/prefix`, or `bucket`).
    pub fn parse(text: &str) -> Result<S3Location, LocationError> {
        let text = text.strip_prefix("s3://").unwrap_or(text);
        let (bucket, prefix) = text.split_once('/').unwrap_or((text, ""));
        S3Location::new(bucket, prefix)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Without a slash at either end; empty for the bucket's root.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of `name` under the prefix: `<prefix>/<name>`, or `<name>` at the root.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// What a listing of the prefix's contents starts with: `<prefix>/`, or `` at the root.
    pub fn dir(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.dir())
    }
}

/// S3's bucket naming rules (3 to 63 lower-case letters, digits, dots and hyphens, starting and
/// ending with a letter or digit).
pub fn is_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_spelt_one_way() {
        for prefix in ["a/b", "/a/b", "a/b/", "//a/b//"] {
            let location = S3Location::new("bucket", prefix).unwrap();
            assert_eq!(location.prefix(), "a/b");
            assert_eq!(location.key("state/v1.json.gz"), "a/b/state/v1.json.gz");
            assert_eq!(location.dir(), "a/b/");
            assert_eq!(location.to_string(), "s3://bucket/a/b/");
        }
        let root = S3Location::new("bucket", "/").unwrap();
        assert_eq!(root.prefix(), "");
        assert_eq!(root.key("AWSLogs/"), "AWSLogs/");
        assert_eq!(root.dir(), "");
    }

    #[test]
    fn buckets_and_prefixes_are_checked() {
        for bad in [
            "",
            "ab",
            "Upper",
            "-start",
            "end-",
            "under_score",
            &"a".repeat(64),
        ] {
            assert_eq!(
                S3Location::new(bad, ""),
                Err(LocationError::Bucket(bad.to_owned()))
            );
        }
        assert!(S3Location::new("my.logs-2026", "").is_ok());
        assert_eq!(
            S3Location::new("bucket", &"p".repeat(600)),
            Err(LocationError::PrefixTooLong(600))
        );
        assert!(matches!(
            S3Location::new("bucket", "a\nb"),
            Err(LocationError::PrefixControl(_))
        ));
    }

    #[test]
    fn locations_parse_from_urls() {
        let parsed = S3Location::parse("s3://trail-logs/org/").unwrap();
        assert_eq!((parsed.bucket(), parsed.prefix()), ("trail-logs", "org"));
        let bare = S3Location::parse("trail-logs").unwrap();
        assert_eq!((bare.bucket(), bare.prefix()), ("trail-logs", ""));
    }
}
