//! Insight records archived in S3 the way the managed service writes them (the contract's §4):
//! gzip files of `{"Records":[...]}` under
//! `[prefix/]AWSLogs/<account>/CloudTrail-Insight/<region>/YYYY/MM/DD/` ([`insight_key`]); Trailsight's
//! per-principal types under `Trailsight-Insight/` in the same layout.
//!
//! - One file per (account, region) of a batch, named and encoded by [`crate::insight_files`]
//!   (the one writer of CloudTrail-Insight files, which `trailsight replay --out` uses too): a
//!   batch published again (the detect pipeline's outbox after a crash) overwrites its file
//!   instead of adding a second copy.
//! - The ingest function never reads these files (see [`crate::insight_files`]).
//!
//! [`PublishThenArchive`] is what the detect Lambda publishes through: EventBridge first, then the
//! archive for the records EventBridge accepted.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use crate::aws::retry::describe;
use crate::detect::{DeadLetterSink, InsightPublish, PublishError};
use crate::detector::Pending;
use crate::insight::InsightRecord;
use crate::insight_files::{encode_file, plan_files};
use crate::minute::parse_minute;
use crate::s3location::S3Location;

/// Writes Insight records to a bucket in CloudTrail-Insight's layout.
#[derive(Debug, Clone)]
pub struct S3Archive {
    client: Client,
    location: S3Location,
}

impl S3Archive {
    /// The prefix as CloudTrail takes it: without slashes at either end (one is added).
    pub fn new(client: Client, location: S3Location) -> Self {
        Self { client, location }
    }

    pub fn bucket(&self) -> &str {
        self.location.bucket()
    }

    pub fn prefix(&self) -> &str {
        self.location.prefix()
    }

    async fn put(&self, key: &str, records: &[&InsightRecord]) -> Result<(), String> {
        let body = encode_file(records).map_err(|e| format!("encoding {key}: {e}"))?;
        self.client
            .put_object()
            .bucket(self.location.bucket())
            .key(key)
            .content_type("application/x-gzip")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "writing s3://{}/{key}: {}",
                    self.location.bucket(),
                    describe(&e)
                )
            })
    }
}

#[async_trait]
impl InsightPublish for S3Archive {
    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)> {
        let mut failed = Vec::new();
        let mut first = None;
        let files = plan_files(self.location.prefix(), records);
        let placed: usize = files.iter().map(|f| f.records.len()).sum();
        if placed < records.len() {
            // EventBridge has them; the archive's layout has no place for a non-AWS identifier.
            tracing::warn!(
                bucket = self.location.bucket(),
                records = records.len() - placed,
                "Not archived: account or region is not an AWS identifier."
            );
        }
        for file in files {
            let group: Vec<&InsightRecord> = file.records.iter().map(|&i| &records[i]).collect();
            if let Err(reason) = self.put(&file.key, &group).await {
                tracing::warn!(
                    bucket = self.location.bucket(),
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
    location: S3Location,
}

impl S3DeadLetters {
    pub fn new(client: Client, location: S3Location) -> Self {
        Self { client, location }
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
        self.location.key(&format!("dead-letters/{day}/{id}.json"))
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
            .bucket(self.location.bucket())
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                PublishError::Failed(format!(
                    "writing s3://{}/{key}: {}",
                    self.location.bucket(),
                    describe(&e)
                ))
            })
    }
}
