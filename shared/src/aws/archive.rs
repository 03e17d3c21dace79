//! Insight records archived in S3 the way the managed service writes them (the contract's §4):
//! gzip files of `{"Records":[...]}` under
//! `[prefix/]AWSLogs/<account>/CloudTrail-Insight/<region>/YYYY/MM/DD/` ([`insight_key`]).
//!
//! - One file per (account, region) of a batch. Its name's timestamp is the latest `eventTime` in
//!   it and its 16 alphanumerics are a digest of its records' `eventID`s, so a batch published
//!   again (the detect pipeline's outbox after a crash) overwrites its file instead of adding a
//!   second copy.
//! - The ingest function never reads these files: [`crate::s3key::classify_key`] skips every key
//!   under `CloudTrail-Insight/`, so Trailsight cannot feed on its own output even when the
//!   archive is the trail's own bucket.
//!
//! [`PublishThenArchive`] is what the detect Lambda publishes through: EventBridge first, then the
//! archive for the records EventBridge accepted.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::aws::retry::describe;
use crate::detect::{DeadLetterSink, InsightPublish, PublishError};
use crate::detector::Pending;
use crate::insight::InsightRecord;
use crate::minute::{Minute, parse_minute};
use crate::s3key::insight_key;

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
pub struct ArchiveFile {
    pub key: String,
    /// Indices into the batch.
    pub records: Vec<usize>,
}

/// How a batch is laid out in files: one per (account, region), named by [`insight_key`] at the
/// latest `eventTime` of its records, with [`file_id`] of their `eventID`s. Keys are built only
/// from validated identifiers: records whose account or region is not one (the overflow series'
/// `*`) are in no file.
pub fn plan_files(prefix: &str, records: &[InsightRecord]) -> Vec<ArchiveFile> {
    let mut groups: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        groups
            .entry((&record.recipient_account_id, &record.aws_region))
            .or_default()
            .push(i);
    }
    groups
        .into_iter()
        .filter_map(|((account, region), indices)| {
            let latest: Minute = indices
                .iter()
                .filter_map(|&i| parse_minute(&records[i].event_time))
                .max()
                .unwrap_or_default();
            let id = file_id(indices.iter().map(|&i| records[i].event_id.as_str()));
            Some(ArchiveFile {
                key: insight_key(prefix, account, region, latest, &id)?,
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

/// Writes Insight records to a bucket in CloudTrail-Insight's layout.
#[derive(Debug, Clone)]
pub struct S3Archive {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Archive {
    /// `prefix` as CloudTrail takes it: without slashes at either end (one is added).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.into().trim_matches('/').to_owned(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    async fn put(&self, key: &str, records: &[&InsightRecord]) -> Result<(), String> {
        let body = encode_file(records).map_err(|e| format!("encoding {key}: {e}"))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-gzip")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("writing s3://{}/{key}: {}", self.bucket, describe(&e)))
    }
}

#[async_trait]
impl InsightPublish for S3Archive {
    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)> {
        let mut failed = Vec::new();
        let mut first = None;
        let files = plan_files(&self.prefix, records);
        let placed: usize = files.iter().map(|f| f.records.len()).sum();
        if placed < records.len() {
            // EventBridge has them; the archive's layout has no place for a non-AWS identifier.
            tracing::warn!(
                bucket = self.bucket,
                records = records.len() - placed,
                "Not archived: account or region is not an AWS identifier."
            );
        }
        for file in files {
            let group: Vec<&InsightRecord> = file.records.iter().map(|&i| &records[i]).collect();
            if let Err(reason) = self.put(&file.key, &group).await {
                tracing::warn!(
                    bucket = self.bucket,
                    key = file.key,
                    reason,
                    "Archive write failed."
                );
                failed.extend(file.records);
                first.get_or_insert(reason);
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        failed.sort_unstable();
        let reason = first.unwrap_or_default();
        let error = if failed.len() == records.len() {
            PublishError::Failed(reason)
        } else {
            PublishError::Partial {
                failed: failed.len(),
                total: records.len(),
                reason,
            }
        };
        Err((failed, error))
    }
}

/// Records that could not be delivered, one JSON object each (the record, the destinations that
/// took it, the attempts and the last error) under `<prefix>/dead-letters/YYYY/MM/DD/<eventID>.json`
/// of the state bucket. Writing one again overwrites it.
#[derive(Debug, Clone)]
pub struct S3DeadLetters {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3DeadLetters {
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.into().trim_matches('/').to_owned(),
        }
    }

    /// The key of a dead letter.
    pub fn key(&self, letter: &Pending) -> String {
        let day = parse_minute(&letter.record.event_time)
            .map(|m| crate::minute::to_datetime(m).format("%Y/%m/%d").to_string())
            .unwrap_or_else(|| "undated".to_owned());
        let id: String = letter
            .record
            .event_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(64)
            .collect();
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        format!("{prefix}dead-letters/{day}/{id}.json")
    }
}

#[async_trait]
impl DeadLetterSink for S3DeadLetters {
    async fn dead_letter(&self, letter: &Pending) -> Result<(), PublishError> {
        let key = self.key(letter);
        let body = serde_json::to_vec(letter)
            .map_err(|e| PublishError::Failed(format!("encoding {key}: {e}")))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                PublishError::Failed(format!(
                    "writing s3://{}/{key}: {}",
                    self.bucket,
                    describe(&e)
                ))
            })
    }
}

/// Publishes through `first` (EventBridge), then archives what it accepted through `then`.
///
/// A record fails if either step failed for it; the detect pipeline keeps it for the next run,
/// which publishes it again with the same `eventID`. Archiving only what was published keeps a
/// record that EventBridge refused out of the archive until it is published, so the next run's
/// archive file is its only copy there.
#[derive(Clone)]
pub struct PublishThenArchive {
    first: Arc<dyn InsightPublish>,
    then: Option<Arc<dyn InsightPublish>>,
}

impl PublishThenArchive {
    pub fn new(first: Arc<dyn InsightPublish>, then: Option<Arc<dyn InsightPublish>>) -> Self {
        Self { first, then }
    }
}

/// The destination names [`PublishThenArchive`] delivers to, in order.
pub const EVENTBRIDGE_DESTINATION: &str = "eventbridge";
pub const ARCHIVE_DESTINATION: &str = "archive";

#[async_trait]
impl InsightPublish for PublishThenArchive {
    /// EventBridge, then the archive when there is one: the detect pipeline tracks each record's
    /// delivery to each separately, so an archive failure never re-sends what EventBridge took.
    fn destinations(&self) -> Vec<String> {
        let mut names = vec![EVENTBRIDGE_DESTINATION.to_owned()];
        if self.then.is_some() {
            names.push(ARCHIVE_DESTINATION.to_owned());
        }
        names
    }

    async fn publish_to(
        &self,
        destination: &str,
        records: &[InsightRecord],
    ) -> Result<(), (Vec<usize>, PublishError)> {
        match (destination, &self.then) {
            (ARCHIVE_DESTINATION, Some(then)) => then.publish(records).await,
            (EVENTBRIDGE_DESTINATION, _) => self.first.publish(records).await,
            (other, _) => Err((
                (0..records.len()).collect(),
                PublishError::Failed(format!("no destination named {other:?}")),
            )),
        }
    }

    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)> {
        let (mut failed, mut error) = match self.first.publish(records).await {
            Ok(()) => (Vec::new(), None),
            Err((failed, error)) => (failed, Some(error)),
        };
        if let Some(then) = &self.then {
            let accepted: Vec<usize> = (0..records.len()).filter(|i| !failed.contains(i)).collect();
            if !accepted.is_empty() {
                let subset: Vec<InsightRecord> =
                    accepted.iter().map(|&i| records[i].clone()).collect();
                if let Err((archive_failed, archive_error)) = then.publish(&subset).await {
                    failed.extend(archive_failed.iter().filter_map(|&k| accepted.get(k)));
                    error.get_or_insert(archive_error);
                }
            }
        }
        match error {
            None => Ok(()),
            Some(error) => {
                failed.sort_unstable();
                failed.dedup();
                let error = match error {
                    PublishError::Partial { reason, .. } | PublishError::Failed(reason)
                        if failed.len() < records.len() =>
                    {
                        PublishError::Partial {
                            failed: failed.len(),
                            total: records.len(),
                            reason,
                        }
                    }
                    other => other,
                };
                Err((failed, error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::CollectingPublisher;
    use crate::insight::{Average, InsightState, RecordParts, Statistics, build_record};
    use crate::s3key::{KeyKind, classify_key};
    use crate::series::SeriesKey;

    fn record(account: &str, region: &str, time: &str) -> InsightRecord {
        build_record(RecordParts {
            key: &SeriesKey {
                account: account.into(),
                region: region.into(),
                event_source: "iam.amazonaws.com".into(),
                event_name: "CreateAccessKey".into(),
                error_code: None,
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

    /// Fails the records at the given indices.
    struct Refusing(Vec<usize>);

    #[async_trait]
    impl InsightPublish for Refusing {
        async fn publish(
            &self,
            records: &[InsightRecord],
        ) -> Result<(), (Vec<usize>, PublishError)> {
            let failed: Vec<usize> = self
                .0
                .iter()
                .copied()
                .filter(|&i| i < records.len())
                .collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err((failed, PublishError::Failed("refused".into())))
            }
        }
    }

    #[tokio::test]
    async fn only_published_records_are_archived_and_failures_add_up() {
        let records: Vec<InsightRecord> = (0..4)
            .map(|i| record("1", "r", &format!("2026-03-02T14:0{i}:00Z")))
            .collect();
        let archive = Arc::new(CollectingPublisher::default());
        let chain = PublishThenArchive::new(Arc::new(Refusing(vec![1])), Some(archive.clone()));
        let (failed, error) = chain.publish(&records).await.unwrap_err();
        assert_eq!(failed, vec![1]);
        assert!(matches!(
            error,
            PublishError::Partial {
                failed: 1,
                total: 4,
                ..
            }
        ));
        let archived: Vec<String> = archive
            .records
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.event_id.clone())
            .collect();
        assert_eq!(
            archived,
            [0, 2, 3]
                .iter()
                .map(|&i| records[i].event_id.clone())
                .collect::<Vec<_>>()
        );

        // The archive refusing the second record it gets (index 2 of the batch).
        let chain = PublishThenArchive::new(
            Arc::new(Refusing(vec![1])),
            Some(Arc::new(Refusing(vec![1]))),
        );
        let (failed, _) = chain.publish(&records).await.unwrap_err();
        assert_eq!(failed, vec![1, 2]);

        let chain = PublishThenArchive::new(Arc::new(CollectingPublisher::default()), None);
        assert!(chain.publish(&records).await.is_ok());
    }
}
