//! How documents are stored (AWS-free): gzip JSON with a format version, so that a later release
//! knows what it reads and an earlier one refuses what it cannot read instead of misreading it.
//!
//! | version | document | since |
//! |---|---|---|
//! | 1 | the value itself, untagged: `{"k": ..., "m": ...}` (a delta), `{"watermark": ...}` (a state) | first release |
//! | 2 | `{"v": 2, "body": <the value as in version 1>}` | 2026-11-30 |
//!
//! Version 1 is recognised by the absence of the tag: no value we store serialises a field named
//! `v` first. DynamoDB items carry the same number in their `fv` attribute (absent: version 1),
//! see `aws::dynamodb`. Fixtures of every version live in `shared/tests/fixtures/stored/` and are
//! read back by `shared/tests/stored_formats.rs`.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version this release writes.
pub const FORMAT_VERSION: u32 = 2;

/// Why a stored document cannot be read (or written).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not gzip: {0}")]
    Gzip(std::io::Error),
    #[error("more than {limit} bytes of JSON once decompressed")]
    TooLarge { limit: u64 },
    #[error("not the expected JSON: {0}")]
    Json(serde_json::Error),
    #[error(
        "written in format version {found} by a newer Trailsight; this one reads up to version {supported}: upgrade it"
    )]
    Newer { found: u32, supported: u32 },
}

#[derive(Serialize)]
struct Tagged<'a, T> {
    v: u32,
    body: &'a T,
}

/// A tagged document's body (its version is read by [`tag_version`]).
#[derive(Deserialize)]
struct TaggedOwned<T> {
    body: T,
}

/// `value` as the current format: gzip (default level) of `{"v": FORMAT_VERSION, "body": value}`.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FormatError> {
    encode_at(value, Compression::default())
}

/// [`encode`] at a given compression level.
pub fn encode_at<T: Serialize>(value: &T, level: Compression) -> Result<Vec<u8>, FormatError> {
    // Buffered: serde_json writes a few bytes at a time, and each write into the encoder is a
    // deflate call.
    let mut writer = std::io::BufWriter::with_capacity(64 << 10, GzEncoder::new(Vec::new(), level));
    serde_json::to_writer(
        &mut writer,
        &Tagged {
            v: FORMAT_VERSION,
            body: value,
        },
    )
    .map_err(FormatError::Json)?;
    writer
        .into_inner()
        .map_err(|e| FormatError::Gzip(e.into_error()))?
        .finish()
        .map_err(FormatError::Gzip)
}

/// A stored document of any version up to [`FORMAT_VERSION`], read with at most `max_json`
/// bytes of decompressed JSON (a bound on what a damaged or hostile item can cost).
pub fn decode<T: DeserializeOwned>(gz: &[u8], max_json: u64) -> Result<T, FormatError> {
    let mut json = Vec::new();
    GzDecoder::new(gz)
        .take(max_json.saturating_add(1))
        .read_to_end(&mut json)
        .map_err(FormatError::Gzip)?;
    if json.len() as u64 > max_json {
        return Err(FormatError::TooLarge { limit: max_json });
    }
    decode_json(&json)
}

/// [`decode`] of a document already decompressed.
pub fn decode_json<T: DeserializeOwned>(json: &[u8]) -> Result<T, FormatError> {
    let Some(version) = tag_version(json) else {
        return serde_json::from_slice(json).map_err(FormatError::Json);
    };
    if version > FORMAT_VERSION {
        return Err(FormatError::Newer {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let tagged: TaggedOwned<T> = serde_json::from_slice(json).map_err(FormatError::Json)?;
    Ok(tagged.body)
}

/// The version of a document that opens with its tag (`{"v":<digits>`, spaces allowed), read
/// from those first bytes alone: the body is parsed once, and only when the version is known.
/// `None`: untagged (version 1), or a tag that is not a number (then the parse reports it).
fn tag_version(json: &[u8]) -> Option<u32> {
    let mut rest = json.iter().copied().filter(|b| !b.is_ascii_whitespace());
    let opens = rest.next() == Some(b'{')
        && rest.next() == Some(b'"')
        && rest.next() == Some(b'v')
        && rest.next() == Some(b'"')
        && rest.next() == Some(b':');
    if !opens {
        return None;
    }
    let digits: Vec<u8> = rest.take_while(u8::is_ascii_digit).collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Gzip of `bytes` at the default level (for tests and fixtures).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Rejects an item whose `fv` attribute names a format newer than this release reads.
pub fn check_item_version(found: Option<u64>) -> Result<(), FormatError> {
    match found {
        Some(v) if v > u64::from(FORMAT_VERSION) => Err(FormatError::Newer {
            found: u32::try_from(v).unwrap_or(u32::MAX),
            supported: FORMAT_VERSION,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_recognised_with_or_without_spaces() {
        assert_eq!(tag_version(br#"{"v":2,"body":{}}"#), Some(2));
        assert_eq!(tag_version(b" { \"v\" : 2 }"), Some(2));
        assert_eq!(tag_version(br#"{"k":[],"m":[]}"#), None);
        assert_eq!(tag_version(br#"{"watermark":null}"#), None);
        assert_eq!(tag_version(br#"{"vv":1}"#), None);
        assert_eq!(tag_version(b""), None);
    }

    #[test]
    fn untagged_documents_read_as_version_1() {
        let value: Vec<u32> = decode_json(b"[1,2,3]").expect("legacy");
        assert_eq!(value, vec![1, 2, 3]);
        let value: Vec<u32> = decode_json(br#"{"v":1,"body":[4]}"#).expect("tagged");
        assert_eq!(value, vec![4]);
    }

    #[test]
    fn item_versions_up_to_the_current_one_are_accepted() {
        assert!(check_item_version(None).is_ok());
        assert!(check_item_version(Some(1)).is_ok());
        assert!(check_item_version(Some(u64::from(FORMAT_VERSION))).is_ok());
        assert!(matches!(
            check_item_version(Some(99)),
            Err(FormatError::Newer { found: 99, .. })
        ));
    }
}
