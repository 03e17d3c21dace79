//! One invocation: notifications → objects → the ingest pipeline, with the outcome Lambda and
//! SQS need.
//!
//! Per object (one tracing span with its bucket and key): classify the key (non-log keys are
//! skipped), check the file marker, download, fold (on the blocking pool), store the fold, mark
//! the file ([`trailsight::object_ingest::ObjectIngest`]). Outcomes:
//! - stored, duplicate, not a log: done;
//! - unreadable (corrupt, truncated, over a limit): recorded as failed by the pipeline, done; an
//!   object that no longer exists: reported, done;
//! - anything else (throttling that outlasted the SDK's retries, S3 or DynamoDB unavailable, a
//!   permission missing) leaves the notification to be retried: its SQS message is listed in
//!   `batchItemFailures` (and reaches the dead-letter queue after the queue's maximum receives);
//!   outside SQS the invocation fails, so Lambda retries it. Retrying is safe: the pipeline writes
//!   each part once.
//!
//! A notification naming a bucket other than the trail bucket(s) (`TRAILSIGHT_TRAIL_BUCKETS`) is
//! refused at once: logged, counted (`foreign_bucket`), final, never read nor retried.
//!
//! A notification whose shape is unknown is retried likewise, so that it ends in the dead-letter
//! queue where an operator sees it, rather than being dropped.

use std::sync::Arc;

use aws_config::SdkConfig;
pub use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use futures::{StreamExt, stream};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use tracing::Instrument;
use trailsight::aws::dynamodb::DynamoStore;
use trailsight::aws::retry::{dynamodb_client, s3_client};
use trailsight::aws::s3::S3Objects;
use trailsight::classify::ClassifyOptions;
use trailsight::ingest::IngestOutcome;
use trailsight::logfile::ReadLimits;
use trailsight::object_ingest::{IngestError, MemoryBudget, ObjectIngest};
use trailsight::objects::LogObjects;
use trailsight::store::{DeltaWrite, FileMarks};

use crate::config::Config;
use crate::envelope::{Content, EnvelopeError, ObjectRef, decode_event};
use crate::summary::Summary;
use trailsight::metrics::MetricsLevel;

/// Objects processed at once, at most; their memory is bounded by the configured budget besides
/// (a large object runs alone).
pub const OBJECTS_IN_FLIGHT: usize = 4;

/// The function: clients and settings, built once per container.
pub struct Ingest {
    objects: Arc<dyn LogObjects>,
    marks: Arc<dyn FileMarks>,
    deltas: Arc<dyn DeltaWrite>,
    limits: ReadLimits,
    classify: ClassifyOptions,
    metric_namespace: String,
    metrics: MetricsLevel,
    budget: MemoryBudget,
    /// Buckets whose notifications are ingested; empty: any.
    trail_buckets: Vec<String>,
}

/// Why an invocation fails (outside SQS, where failures cannot be reported per message).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("{failed} of {total} objects could not be ingested now and will be retried: {first}")]
    Retry {
        failed: usize,
        total: usize,
        first: String,
    },
    #[error("the event is not a notification this function understands: {0}")]
    BadEvent(EnvelopeError),
}

impl HandlerError {
    /// The Lambda error type, so that retries and alarms can tell a fault from bad input.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::Retry { .. } => "Trailsight.Retryable",
            HandlerError::BadEvent(_) => "Trailsight.BadEvent",
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// What processing an event did, before it becomes a response.
#[derive(Debug, Default)]
pub struct Processed {
    pub summary: Summary,
    /// True when the event was an SQS batch.
    pub sqs: bool,
    /// SQS messages to report in `batchItemFailures`.
    pub retry: Vec<String>,
    /// Objects left for a retry, with the reason (all of them, SQS or not).
    pub errors: Vec<String>,
    /// Notifications not understood.
    pub bad: Vec<EnvelopeError>,
}

impl Ingest {
    /// The function on DynamoDB and S3, with the SDK's retry settings of [`trailsight::aws::retry`].
    pub fn new(config: &Config, sdk: &SdkConfig) -> Ingest {
        let store = Arc::new(DynamoStore::new(dynamodb_client(sdk), &config.table));
        let objects = Arc::new(S3Objects::new(s3_client(sdk)));
        Ingest::with_store(config, objects, store.clone(), store)
    }

    /// The function on any storage (tests wrap the DynamoDB store to inject faults).
    pub fn with_store(
        config: &Config,
        objects: Arc<dyn LogObjects>,
        marks: Arc<dyn FileMarks>,
        deltas: Arc<dyn DeltaWrite>,
    ) -> Ingest {
        Ingest {
            objects,
            marks,
            deltas,
            limits: config.limits,
            classify: config.classify,
            metric_namespace: config.metric_namespace.clone(),
            metrics: config.metrics,
            budget: MemoryBudget::new(config.memory_budget_bytes),
            trail_buckets: config.trail_buckets.clone(),
        }
    }

    /// The Lambda entry point: processes the event, logs its summary and metrics, and answers
    /// with the SQS messages to retry (or fails the invocation, outside SQS).
    pub async fn handle(&self, event: Value) -> Result<SqsBatchResponse, HandlerError> {
        let processed = self.process(&event).await;
        processed.summary.log();
        processed
            .summary
            .emit_metrics(&self.metric_namespace, self.metrics);
        response(processed)
    }

    /// True when `bucket` is a trail bucket (or none is configured).
    pub fn accepts(&self, bucket: &str) -> bool {
        self.trail_buckets.is_empty() || self.trail_buckets.iter().any(|b| b == bucket)
    }

    /// Processes every object the event names.
    pub async fn process(&self, event: &Value) -> Processed {
        let messages = decode_event(event);
        let mut processed = Processed {
            sqs: messages.iter().any(|m| m.message_id.is_some()),
            ..Processed::default()
        };
        processed.summary.messages = messages.len();
        let mut objects: Vec<(usize, ObjectRef)> = Vec::new();
        let mut failed = vec![false; messages.len()];
        for (i, message) in messages.iter().enumerate() {
            let message_id = message.message_id.as_deref();
            match &message.content {
                Ok(Content::Objects(refs)) => {
                    for object in refs {
                        if self.accepts(&object.bucket) {
                            objects.push((i, object.clone()));
                        } else {
                            tracing::warn!(
                                message_id,
                                bucket = %object.bucket,
                                key = %object.key,
                                "Refused: not the trail bucket; not read and not retried."
                            );
                            processed.summary.foreign_bucket += 1;
                        }
                    }
                }
                Ok(Content::Ignored(why)) => {
                    tracing::debug!(message_id, why, "Notification ignored.");
                    processed.summary.ignored += 1;
                }
                Err(error) => {
                    tracing::error!(
                        message_id,
                        %error,
                        "Notification not understood; it is left for a retry and the dead-letter queue."
                    );
                    failed[i] = true;
                    processed.bad.push(error.clone());
                }
            }
        }

        let ingest = ObjectIngest {
            objects: self.objects.as_ref(),
            limits: &self.limits,
            options: self.classify,
            marks: self.marks.as_ref(),
            deltas: self.deltas.as_ref(),
            budget: Some(&self.budget),
        };
        let mut results = stream::iter(objects)
            .map(|(i, object)| {
                let span = tracing::info_span!(
                    "object",
                    bucket = %object.bucket,
                    key = %object.key,
                    message_id = messages[i].message_id.as_deref(),
                );
                async move { (i, ingest_one(&ingest, &object).await) }.instrument(span)
            })
            .buffer_unordered(OBJECTS_IN_FLIGHT);
        while let Some((i, result)) = results.next().await {
            match result {
                Ok(outcome) => processed.summary.add(&outcome),
                Err(error) if error.is_final() => processed.summary.failed += 1,
                Err(error) => {
                    processed.summary.retried += 1;
                    processed.errors.push(error.to_string());
                    failed[i] = true;
                }
            }
        }
        drop(results);

        for (message, failed) in messages.iter().zip(failed) {
            if !failed {
                continue;
            }
            processed.summary.messages_retried += 1;
            match &message.message_id {
                Some(id) => processed.retry.push(id.clone()),
                None if processed.sqs => {
                    tracing::error!(
                        "An SQS record without a messageId failed; it cannot be reported."
                    )
                }
                None => {}
            }
        }
        processed
    }
}

/// One object through the pipeline, with its log line.
async fn ingest_one(
    ingest: &ObjectIngest<'_>,
    object: &ObjectRef,
) -> Result<IngestOutcome, IngestError> {
    let result = ingest
        .ingest(&object.bucket, &object.key, &object.version)
        .await;
    match &result {
        Ok(IngestOutcome::Stored {
            records,
            counted,
            cells,
            write,
            recounted,
            overflow,
        }) => {
            if *overflow > 0 {
                tracing::warn!(
                    overflow,
                    max_series = ingest.limits.max_series,
                    "More distinct series than a file may make: the excess is counted in the \
                     overflow series */*/trailsight.overflow:OtherSeries."
                );
            }
            tracing::info!(
                records,
                counted,
                cells,
                recounted,
                overflow,
                parts_written = write.parts_written,
                parts_existing = write.parts_existing,
                "Stored."
            )
        }
        Ok(IngestOutcome::Duplicate) => tracing::debug!("Already ingested."),
        Ok(IngestOutcome::NotALog { reason }) => {
            tracing::debug!(reason, "Skipped: not a log file.")
        }
        Ok(IngestOutcome::Failed { reason }) => {
            tracing::warn!(reason, "Unreadable; recorded as failed, not retried.")
        }
        Err(error) if error.is_final() => tracing::warn!(%error, "Not ingested; not retried."),
        Err(error) => tracing::warn!(
            %error,
            transient = error.is_transient(),
            "Not ingested now; left for a retry."
        ),
    }
    result
}

/// The Lambda response: SQS gets its partial failures; other sources get an error to retry.
pub fn response(processed: Processed) -> Result<SqsBatchResponse, HandlerError> {
    if processed.sqs {
        return Ok(SqsBatchResponse {
            batch_item_failures: processed
                .retry
                .into_iter()
                .map(|id| BatchItemFailure {
                    item_identifier: id,
                })
                .collect(),
        });
    }
    if let Some(first) = processed.errors.first() {
        return Err(HandlerError::Retry {
            failed: processed.errors.len(),
            total: processed.summary.files
                + processed.summary.duplicates
                + processed.summary.skipped
                + processed.summary.failed
                + processed.summary.retried,
            first: first.clone(),
        });
    }
    if let Some(bad) = processed.bad.into_iter().next() {
        return Err(HandlerError::BadEvent(bad));
    }
    Ok(SqsBatchResponse::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The function with an S3 client that can reach nothing: a refused notification never
    /// calls S3 or the store.
    fn offline(trail_buckets: &[&str]) -> Ingest {
        let config = Config::from_lookup(|name| match name {
            "TRAILSIGHT_TABLE" => Some("t".into()),
            "TRAILSIGHT_TRAIL_BUCKETS" => Some(trail_buckets.join(",")),
            _ => None,
        })
        .expect("config");
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .endpoint_url("http://127.0.0.1:9")
                .build(),
        );
        let store = Arc::new(trailsight::memory::MemoryStore::new());
        Ingest::with_store(&config, Arc::new(S3Objects::new(s3)), store.clone(), store)
    }

    #[tokio::test]
    async fn other_buckets_are_refused_at_once_and_never_retried() {
        let direct: Value =
            serde_json::from_slice(include_bytes!("../testdata/s3-event.json")).expect("fixture");
        let sqs: Value = serde_json::from_slice(include_bytes!("../testdata/sqs-s3-event.json"))
            .expect("fixture");
        let ingest = offline(&["my-trail-bucket", "my-other-trail"]);
        assert!(ingest.accepts("my-other-trail"));
        assert!(!ingest.accepts("trailsight-logs"));
        assert!(offline(&[]).accepts("anything"));
        for event in [direct, sqs] {
            let processed = ingest.process(&event).await;
            assert_eq!(processed.summary.foreign_bucket, 1, "{event}");
            assert_eq!(
                (
                    processed.summary.retried,
                    processed.summary.messages_retried
                ),
                (0, 0)
            );
            assert!(processed.retry.is_empty() && processed.errors.is_empty());
            let response = response(processed).expect("final, not an error");
            assert!(response.batch_item_failures.is_empty());
        }
    }

    #[test]
    fn sqs_failures_are_reported_per_message() {
        let processed = Processed {
            sqs: true,
            retry: vec!["m-2".into()],
            errors: vec!["throttled".into()],
            ..Processed::default()
        };
        let response = response(processed).unwrap();
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
        );
    }

    #[test]
    fn other_sources_fail_the_invocation() {
        let processed = Processed {
            errors: vec!["throttled".into()],
            ..Processed::default()
        };
        let error = response(processed).unwrap_err();
        assert_eq!(error.error_type(), "Trailsight.Retryable");
        let diagnostic = Diagnostic::from(error);
        assert!(diagnostic.error_message.contains("throttled"));
        let bad = Processed {
            bad: vec![EnvelopeError::Unknown("hello".into())],
            ..Processed::default()
        };
        assert_eq!(
            response(bad).unwrap_err().error_type(),
            "Trailsight.BadEvent"
        );
        assert!(response(Processed::default()).is_ok());
    }
}
