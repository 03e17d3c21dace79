//! Insight records archived in S3 the way the managed service writes them (the contract's §4):
//! gzip files of `{"Records":[...]}` under
//! `[prefix/]AWSLogs/<account>/CloudTrail-Insight/<region>/YYYY/MM/DD/` ([`insight_key`]).
//!
//! - One file per (account, region) of a batch, named and encoded by [`crate::insight_files`]
//!   (the one writer of CloudTrail-Insight files, which `trailsight replay --out` uses too): a
//!   batch published again (the detect pipeline's outbox after a crash) overwrites its file
//!   instead of adding a second copy.
//! - The ingest function never reads these files (see [`crate::insight_files`]).
//!
//! [`PublishThenArchive`] is what the detect Lambda publishes through: EventBridge first, then the
//! archive for the records EventBridge accepted.

use std::sync::Arc;

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
    use crate::insight_files::tests::record;

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
