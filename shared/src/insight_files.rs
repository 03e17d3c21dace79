//! CloudTrail-Insight files, as the managed service writes them (the contract's §4): gzip
//! `{"Records":[...]}` under `[prefix/]AWSLogs/<account>/CloudTrail-Insight/<region>/YYYY/MM/DD/`
//! ([`insight_key`]). AWS-free; the one writer of these files, for the S3 archive of the detect
//! function (`aws::archive`) and for `trailsight replay --out` alike.
//!
//! - [`plan_files`]: one file per (account, region) of the records given, Trailsight's own
//!   per-principal types under `Trailsight-Insight/` instead of `CloudTrail-Insight/`. Its name's timestamp
//!   is the latest `eventTime` in it and its 16 alphanumerics are a digest ([`file_id`], SHA-256)
//!   of its records' `eventID`s: the same records give the same name, on any machine and with any
//!   Rust release.
//! - The ingest function never reads these files: [`crate::s3key::classify_key`] skips every key
//!   under `CloudTrail-Insight/` or `Trailsight-Insight/`, so Trailsight cannot feed on its own output even when the
//!   archive is the trail's own bucket.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::insight::InsightRecord;
use crate::minute::{Minute, parse_minute};
use crate::s3key::{insight_folder, insight_key};

const ALPHANUMERICS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 16 alphanumerics of a file holding records with these `eventID`s (in any order).
pub fn file_id<'a>(event_ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut ids: Vec<&str> = event_ids.into_iter().collect();
    ids.sort_unstable();
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let mut n = u128::from_be_bytes(bytes);
    (0..16)
        .map(|_| {
            let c = ALPHANUMERICS[(n % 62) as usize] as char;
            n /= 62;
            c
        })
        .collect()
}

/// One file of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightFile {
    pub key: String,
    /// Indices into the batch.
    pub records: Vec<usize>,
}

/// How a batch is laid out in files: one per (folder, account, region), the per-principal types
/// apart from the service's ([`insight_folder`]), named by [`insight_key`] at the
/// latest `eventTime` of its records, with [`file_id`] of their `eventID`s. Keys are built only
/// from validated identifiers: records whose account or region is not one (the overflow series'
/// `*`) are in no file.
pub fn plan_files(prefix: &str, records: &[InsightRecord]) -> Vec<InsightFile> {
    let mut groups: BTreeMap<(&str, &str, &str), Vec<usize>> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        let folder = insight_folder(record.insight_details.insight_type);
        groups
            .entry((folder, &record.recipient_account_id, &record.aws_region))
            .or_default()
            .push(i);
    }
    groups
        .into_iter()
        .filter_map(|((folder, account, region), indices)| {
            let latest: Minute = indices
                .iter()
                .filter_map(|&i| parse_minute(&records[i].event_time))
                .max()
                .unwrap_or_default();
            let id = file_id(indices.iter().map(|&i| records[i].event_id.as_str()));
            Some(InsightFile {
                key: insight_key(prefix, folder, account, region, latest, &id)?,
                records: indices,
            })
        })
        .collect()
}

/// `{"Records":[...]}`, gzip-compressed.
pub fn encode_file(records: &[&InsightRecord]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    serde_json::to_writer(&mut gz, &serde_json::json!({ "Records": records }))?;
    gz.flush()?;
    gz.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::insight::{Average, InsightState, RecordParts, Statistics, build_record};
    use crate::s3key::{KeyKind, classify_key};
    use crate::series::SeriesKey;

    /// A Start record of one key at `time` (also used by the archive's tests).
    pub(crate) fn record(account: &str, region: &str, time: &str) -> InsightRecord {
        build_record(RecordParts {
            key: &SeriesKey {
                account: account.into(),
                region: region.into(),
                event_source: "iam.amazonaws.com".into(),
                event_name: "CreateAccessKey".into(),
                error_code: None,
                principal: None,
            },
            state: InsightState::Start,
            event_time: parse_minute(time).unwrap(),
            shared_event_id: "s",
            statistics: Statistics {
                baseline: Average { average: 0.0 },
                insight: Average { average: 14.0 },
                insight_duration: 1,
                baseline_duration: 10080,
            },
            attributions: vec![],
        })
    }

    #[test]
    fn files_are_per_account_and_region_and_named_by_their_records() {
        let records = vec![
            record("111122223333", "us-east-1", "2026-03-02T14:07:00Z"),
            record("111122223333", "eu-west-1", "2026-03-02T14:09:00Z"),
            record("111122223333", "us-east-1", "2026-03-02T14:20:00Z"),
        ];
        let files = plan_files("archive", &records);
        assert_eq!(files.len(), 2);
        let us = files
            .iter()
            .find(|f| f.key.contains("/us-east-1/"))
            .unwrap();
        assert_eq!(us.records, vec![0, 2]);
        let name = us.key.rsplit('/').next().unwrap();
        assert!(
            us.key.starts_with(
                "archive/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/03/02/111122223333_CloudTrail-Insight_us-east-1_20260302T1420Z_"
            ),
            "{}",
            us.key
        );
        let id = name
            .trim_end_matches(".json.gz")
            .rsplit('_')
            .next()
            .unwrap();
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        // The same records, in another order: the same names.
        let reversed: Vec<InsightRecord> = records.iter().rev().cloned().collect();
        let mut again: Vec<String> = plan_files("archive", &reversed)
            .into_iter()
            .map(|f| f.key)
            .collect();
        let mut keys: Vec<String> = files.iter().map(|f| f.key.clone()).collect();
        again.sort();
        keys.sort();
        assert_eq!(keys, again);
        // Other records: another name.
        let other = plan_files(
            "archive",
            &[record("111122223333", "us-east-1", "2026-03-02T14:20:00Z")],
        );
        assert_ne!(other[0].key, us.key);
    }

    #[test]
    fn per_principal_records_go_to_their_own_folder() {
        let mut principal = record("111122223333", "us-east-1", "2026-03-02T14:08:00Z");
        principal.insight_details.insight_type =
            crate::series::InsightType::PrincipalFirstSeenInsight;
        let records = vec![
            record("111122223333", "us-east-1", "2026-03-02T14:07:00Z"),
            principal,
        ];
        let files = plan_files("", &records);
        let keys: Vec<(&str, &[usize])> = files
            .iter()
            .map(|f| {
                (
                    f.key.split('/').nth(2).unwrap_or_default(),
                    f.records.as_slice(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("CloudTrail-Insight", &[0][..]),
                ("Trailsight-Insight", &[1][..])
            ]
        );
        assert!(
            files[1]
                .key
                .contains("/111122223333_Trailsight-Insight_us-east-1_20260302T1408Z_")
        );
        assert!(matches!(classify_key(&files[1].key), KeyKind::Skip(_)));
    }

    #[test]
    fn crafted_accounts_and_regions_name_no_file() {
        let records = vec![
            record("../../../../x", "us-east-1", "2026-03-02T14:07:00Z"),
            record("111122223333", "../../x", "2026-03-02T14:07:00Z"),
            record("*", "*", "2026-03-02T14:07:00Z"),
            record("111122223333", "us-east-1", "2026-03-02T14:07:00Z"),
        ];
        let files = plan_files("archive", &records);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].records, vec![3]);
        assert!(!files[0].key.contains(".."));
    }

    #[test]
    fn ingest_never_reads_archive_files() {
        let records = vec![
            record("111122223333", "us-east-1", "2026-03-02T14:07:00Z"),
            record("111122223333", "ap-southeast-2", "2026-03-02T23:59:00Z"),
        ];
        for prefix in ["", "trail", "a/b"] {
            for file in plan_files(prefix, &records) {
                assert!(
                    matches!(classify_key(&file.key), KeyKind::Skip(_)),
                    "{}",
                    file.key
                );
            }
        }
    }

    #[test]
    fn encoded_files_hold_the_records() {
        use std::io::Read;
        let r = record("1", "r", "2026-03-02T14:07:00Z");
        let bytes = encode_file(&[&r]).unwrap();
        let mut json = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut json)
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["Records"][0]["eventID"], r.event_id.as_str());
    }
}
