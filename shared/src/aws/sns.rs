//! Alerts to an SNS topic ([`crate::alerts`]): one `Publish` per Insight record, with
//! `MessageStructure` `json` (the Amazon Q Developer custom notification for HTTPS subscribers
//! such as chat channels, plain text for e-mail) and the record's kind as message attributes, so
//! a subscription can filter (`insightState = Start` only, say).
//!
//! The detect pipeline tracks this destination like the others: a record whose alert could not
//! be published stays in the outbox for this destination only, and the next run publishes it
//! again (its message carries the same `id`, the record's `eventID`).

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use crate::alerts::alert;
use crate::aws::retry::describe;
use crate::detect::{InsightPublish, PublishError};
use crate::insight::InsightRecord;

/// An SNS client with our retry and timeout settings, whatever `sdk` carries.
pub fn sns_client(sdk: &SdkConfig) -> Client {
    crate::sdk_client!(aws_sdk_sns, sdk)
}

/// Publishes alerts to one topic.
#[derive(Debug, Clone)]
pub struct SnsAlerts {
    client: Client,
    topic_arn: String,
}

impl SnsAlerts {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

fn attribute(value: &str) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .ok()
}

#[async_trait]
impl InsightPublish for SnsAlerts {
    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)> {
        let mut failed = Vec::new();
        let mut last_error = None;
        for (i, record) in records.iter().enumerate() {
            let alert = alert(record);
            let state = record.insight_details.state.as_str();
            let result = self
                .client
                .publish()
                .topic_arn(&self.topic_arn)
                .subject(alert.subject)
                .message_structure("json")
                .message(alert.message)
                .set_message_attributes(Some(
                    [
                        ("insightState", attribute(state)),
                        (
                            "insightType",
                            attribute(record.insight_details.insight_type.as_str()),
                        ),
                        ("account", attribute(&record.recipient_account_id)),
                    ]
                    .into_iter()
                    .filter_map(|(name, value)| Some((name.to_owned(), value?)))
                    .collect(),
                ))
                .send()
                .await;
            if let Err(error) = result {
                let reason = describe(&error);
                tracing::warn!(
                    topic = self.topic_arn,
                    event_id = record.event_id,
                    error = reason,
                    "Could not publish an alert; it stays in the outbox for the next run."
                );
                failed.push(i);
                last_error = Some(reason);
            }
        }
        match last_error {
            None => Ok(()),
            Some(reason) if failed.len() < records.len() => Err((
                failed.clone(),
                PublishError::Partial {
                    failed: failed.len(),
                    total: records.len(),
                    reason: format!("publishing alerts to {}: {reason}", self.topic_arn),
                },
            )),
            Some(reason) => Err((
                failed,
                PublishError::Failed(format!("publishing alerts to {}: {reason}", self.topic_arn)),
            )),
        }
    }
}
