//! Insight records to EventBridge (the contract's §4): one event per record, the record as its
//! `detail`, under our own source (sources starting with `aws.` are reserved: PutEvents would
//! answer HTTP 200 and fail every entry with `NotAuthorizedForSourceException`) and, by default,
//! the service's detail-type, so a user's rule needs only its source changed. Trailsight's own
//! per-principal types go under their own detail-type ([`crate::eventbus::PRINCIPAL_DETAIL_TYPE`]).
//!
//! PutEvents takes at most [`crate::eventbus::MAX_ENTRIES_PER_CALL`] entries and [`MAX_REQUEST_BYTES`] per call,
//! and reports failures per entry in an HTTP 200 answer (`FailedEntryCount`, an `ErrorCode` on
//! each failed entry). The SDK retries whole calls that fail (throttling, 5xx, network, see
//! [`crate::aws::retry`]); this module retries the failed entries of a call that succeeded, with
//! exponential backoff, when their error is transient (`InternalFailure`, throttling). What still
//! failed after the last attempt is reported by index, so the detect pipeline keeps exactly those
//! records in its outbox for the next run.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::aws::retry::{ItemFailures, describe, send_with_item_retries};
use crate::detect::{InsightPublish, PublishError};
use crate::eventbus::{
    MAX_REQUEST_BYTES, SourceError, batches, detail_type_of, entry_size, validate_source,
};
use crate::insight::InsightRecord;

/// Attempts per entry, the first included, when its failure is transient.
pub const ENTRY_ATTEMPTS: u32 = 4;
/// Wait before the first retry of failed entries; it doubles for each further attempt.
pub const ENTRY_BACKOFF: Duration = Duration::from_millis(200);

/// Entry error codes worth another attempt.
const TRANSIENT_ENTRY_CODES: [&str; 4] = [
    "InternalFailure",
    "InternalException",
    "ThrottlingException",
    "ServiceUnavailable",
];

/// An EventBridge client with our retry and timeout settings, whatever `sdk` carries.
pub fn eventbridge_client(sdk: &SdkConfig) -> Client {
    crate::sdk_client!(aws_sdk_eventbridge, sdk)
}

/// Publishes Insight records as events on one bus.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
    source: String,
    detail_type: String,
    attempts: u32,
    backoff: Duration,
}

impl EventBridgePublisher {
    /// A publisher on `bus` (a name or an ARN) under `source`; refuses a source AWS reserves.
    pub fn new(
        client: Client,
        bus: impl Into<String>,
        source: impl Into<String>,
        detail_type: impl Into<String>,
    ) -> Result<Self, SourceError> {
        let source = source.into();
        let detail_type = detail_type.into();
        validate_source(&source)?;
        if detail_type.trim().is_empty() {
            return Err(SourceError::EmptyDetailType);
        }
        Ok(Self {
            client,
            bus: bus.into(),
            source,
            detail_type,
            attempts: ENTRY_ATTEMPTS,
            backoff: ENTRY_BACKOFF,
        })
    }

    /// Sets the attempts per failed entry (at least one) and the first backoff.
    pub fn with_entry_retries(mut self, attempts: u32, first_backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = first_backoff;
        self
    }

    pub fn bus(&self) -> &str {
        &self.bus
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn detail_type(&self) -> &str {
        &self.detail_type
    }

    fn entry(&self, detail_type: &str, detail: &str) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&self.source)
            .detail_type(detail_type)
            .detail(detail)
            .build()
    }

    /// Sends one call's entries, retrying the failed ones; returns those that still failed,
    /// with the reason.
    async fn put_batch(
        &self,
        batch: &[usize],
        details: &[String],
        detail_types: &[&str],
    ) -> Vec<(usize, String)> {
        send_with_item_retries(
            batch,
            self.attempts,
            self.backoff,
            "insight events",
            |pending| self.put_once(pending, details, detail_types),
        )
        .await
    }

    /// One `PutEvents` call, and what it said of each entry.
    async fn put_once(
        &self,
        pending: Vec<usize>,
        details: &[String],
        detail_types: &[&str],
    ) -> Result<ItemFailures, String> {
        let entries: Vec<PutEventsRequestEntry> = pending
            .iter()
            .map(|&i| self.entry(detail_types[i], &details[i]))
            .collect();
        let output = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            // The SDK has already retried what was worth retrying.
            .map_err(|error| format!("PutEvents failed: {}", describe(&error)))?;
        let mut outcome = ItemFailures::default();
        if output.failed_entry_count() == 0 {
            return Ok(outcome);
        }
        let results = output.entries();
        for (k, &i) in pending.iter().enumerate() {
            match results.get(k) {
                Some(result) => {
                    let Some(code) = result.error_code() else {
                        continue;
                    };
                    outcome.add(i, code, result.error_message(), &TRANSIENT_ENTRY_CODES);
                }
                // An answer shorter than the request says nothing of this entry: try again.
                None => {
                    outcome.transient.push(i);
                    outcome.reason = "no result for the entry in PutEvents' answer".into();
                }
            }
        }
        Ok(outcome)
    }
}

#[async_trait]
impl InsightPublish for EventBridgePublisher {
    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)> {
        if records.is_empty() {
            return Ok(());
        }
        let mut failed: BTreeMap<usize, String> = BTreeMap::new();
        let mut details = Vec::with_capacity(records.len());
        let mut sizes = Vec::with_capacity(records.len());
        let detail_types: Vec<&str> = records
            .iter()
            .map(|r| detail_type_of(r, &self.detail_type))
            .collect();
        for (i, record) in records.iter().enumerate() {
            let detail = match serde_json::to_string(record) {
                Ok(detail) => detail,
                Err(error) => {
                    failed.insert(i, format!("encoding the record: {error}"));
                    String::new()
                }
            };
            let size = entry_size(&self.bus, &self.source, detail_types[i], &detail);
            if size > MAX_REQUEST_BYTES {
                failed.insert(
                    i,
                    format!(
                        "the event is {size} bytes, over EventBridge's {MAX_REQUEST_BYTES}-byte entry limit"
                    ),
                );
            }
            // Left out of every batch.
            sizes.push(if failed.contains_key(&i) {
                usize::MAX
            } else {
                size
            });
            details.push(detail);
        }
        for batch in batches(&sizes) {
            failed.extend(self.put_batch(&batch, &details, &detail_types).await);
        }
        if failed.is_empty() {
            return Ok(());
        }
        let indices: Vec<usize> = failed.keys().copied().collect();
        let reason = failed.values().next().cloned().unwrap_or_default();
        let error = if indices.len() == records.len() {
            PublishError::Failed(format!(
                "EventBridge accepted none of {} insight events on bus {}: {reason}",
                records.len(),
                self.bus
            ))
        } else {
            PublishError::Partial {
                failed: indices.len(),
                total: records.len(),
                reason: format!("EventBridge bus {}: {reason}", self.bus),
            }
        };
        Err((indices, error))
    }
}
