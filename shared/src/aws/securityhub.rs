//! Insight records to AWS Security Hub as ASFF findings ([`crate::findings`]), through
//! `BatchImportFindings`: at most 100 findings per call, an insight's Start and End in separate
//! calls, in order.
//!
//! `BatchImportFindings` reports failures per finding in a successful answer (`FailedFindings`,
//! with an `ErrorCode`), as EventBridge's PutEvents does, and is retried the same way: the SDK
//! retries whole calls (throttling, 5xx, network, see [`crate::aws::retry`]); this module retries
//! the findings that failed with a transient code, with exponential backoff. What still failed is
//! reported by index, so the detect pipeline keeps exactly those records in its outbox for this
//! destination (and re-imports them later under the same `Id`: an import is idempotent).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Partition, RecordState, Resource, Severity, SeverityLabel, Workflow,
    WorkflowStatus,
};

use crate::aws::retry::{ItemFailures, describe, send_with_item_retries};
use crate::detect::{InsightPublish, PublishError};
use crate::findings::{Finding, finding, import_batches};
use crate::insight::InsightRecord;

/// Attempts per finding, the first included, when its failure is transient.
pub const FINDING_ATTEMPTS: u32 = 4;
/// Wait before the first retry of failed findings; it doubles for each further attempt.
pub const FINDING_BACKOFF: Duration = Duration::from_millis(200);

/// `FailedFindings` error codes worth another attempt.
const TRANSIENT_CODES: [&str; 5] = [
    "InternalException",
    "InternalFailure",
    "ThrottlingException",
    "LimitExceededException",
    "ServiceUnavailable",
];

/// A Security Hub client with our retry and timeout settings, whatever `sdk` carries.
pub fn securityhub_client(sdk: &SdkConfig) -> Client {
    crate::sdk_client!(aws_sdk_securityhub, sdk)
}

/// Imports findings under one product (the account's default product) in the client's region.
#[derive(Debug, Clone)]
pub struct SecurityHubFindings {
    client: Client,
    product_arn: String,
    region: String,
    attempts: u32,
    backoff: Duration,
}

impl SecurityHubFindings {
    /// Findings under `product_arn`
    /// (`arn:<partition>:securityhub:<region>:<account>:product/<account>/default`), imported in
    /// the product's region (the region of the ARN).
    pub fn new(client: Client, product_arn: impl Into<String>) -> Self {
        let product_arn = product_arn.into();
        let region = product_arn.split(':').nth(3).unwrap_or_default().to_owned();
        Self {
            client,
            product_arn,
            region,
            attempts: FINDING_ATTEMPTS,
            backoff: FINDING_BACKOFF,
        }
    }

    /// Sets the attempts per failed finding (at least one) and the first backoff.
    pub fn with_finding_retries(mut self, attempts: u32, first_backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = first_backoff;
        self
    }

    pub fn product_arn(&self) -> &str {
        &self.product_arn
    }

    /// Sends one call's findings, retrying the failed ones; returns those that still failed,
    /// with the reason.
    async fn import(&self, batch: &[usize], findings: &[Finding]) -> Vec<(usize, String)> {
        send_with_item_retries(batch, self.attempts, self.backoff, "findings", |pending| {
            self.import_once(pending, findings)
        })
        .await
    }

    /// One `BatchImportFindings` call, and what it said of each finding.
    async fn import_once(
        &self,
        pending: Vec<usize>,
        findings: &[Finding],
    ) -> Result<ItemFailures, String> {
        let output = self
            .client
            .batch_import_findings()
            .set_findings(Some(pending.iter().map(|&i| asff(&findings[i])).collect()))
            .send()
            .await
            // The SDK has already retried what was worth retrying.
            .map_err(|error| format!("BatchImportFindings failed: {}", describe(&error)))?;
        // Failures name the finding by Id; an Id is at most once per call (import_batches).
        let by_id: BTreeMap<&str, usize> = pending
            .iter()
            .map(|&i| (findings[i].id.as_str(), i))
            .collect();
        let mut outcome = ItemFailures::default();
        for error in output.failed_findings() {
            let Some(&i) = error.id().and_then(|id| by_id.get(id)) else {
                continue;
            };
            let code = error.error_code().unwrap_or("no code");
            outcome.add(i, code, error.error_message(), &TRANSIENT_CODES);
        }
        // A failure count the list does not account for: the unnamed ones are unknown, so
        // every finding of the call is imported again (an import is idempotent).
        let named = output.failed_findings().len();
        if output.failed_count().unwrap_or(0) as usize > named {
            return Ok(ItemFailures {
                transient: pending,
                reason: "FailedCount exceeds the FailedFindings listed".into(),
                permanent: Vec::new(),
            });
        }
        Ok(outcome)
    }
}

/// The SDK's form of a finding.
fn asff(finding: &Finding) -> AwsSecurityFinding {
    let resources = finding.resources.iter().map(|r| {
        Resource::builder()
            .r#type(&r.kind)
            .id(&r.id)
            .partition(Partition::from(r.partition.as_str()))
            .region(&r.region)
            .build()
    });
    let mut builder = AwsSecurityFinding::builder()
        .schema_version(&finding.schema_version)
        .id(&finding.id)
        .product_arn(&finding.product_arn)
        .generator_id(&finding.generator_id)
        .aws_account_id(&finding.aws_account_id)
        .region(&finding.region)
        .set_types(Some(finding.types.clone()))
        .created_at(&finding.created_at)
        .updated_at(&finding.updated_at)
        .first_observed_at(&finding.first_observed_at)
        .last_observed_at(&finding.last_observed_at)
        .severity(
            Severity::builder()
                .label(SeverityLabel::from(finding.severity.label.as_str()))
                .original(&finding.severity.original)
                .build(),
        )
        .title(&finding.title)
        .description(&finding.description)
        .set_resources(Some(resources.collect()))
        .set_product_fields(Some(
            finding
                .product_fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))
        .record_state(RecordState::from(finding.record_state.as_str()));
    if let Some(status) = &finding.workflow_status {
        builder = builder.workflow(
            Workflow::builder()
                .status(WorkflowStatus::from(status.as_str()))
                .build(),
        );
    }
    builder.build()
}

#[async_trait]
impl InsightPublish for SecurityHubFindings {
    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)> {
        if records.is_empty() {
            return Ok(());
        }
        let findings: Vec<Finding> = records
            .iter()
            .map(|r| finding(r, &self.product_arn, &self.region))
            .collect();
        let mut failed: BTreeMap<usize, String> = BTreeMap::new();
        for batch in import_batches(&findings) {
            for (i, reason) in self.import(&batch, &findings).await {
                tracing::warn!(
                    product = self.product_arn,
                    event_id = records[i].event_id,
                    finding_id = findings[i].id,
                    error = reason,
                    "Could not import a finding; its record stays in the outbox for the next run."
                );
                failed.insert(i, reason);
            }
        }
        let Some(reason) = failed.values().next_back().cloned() else {
            return Ok(());
        };
        let indices: Vec<usize> = failed.into_keys().collect();
        let reason = format!("importing findings to Security Hub: {reason}");
        if indices.len() < records.len() {
            let count = indices.len();
            Err((
                indices,
                PublishError::Partial {
                    failed: count,
                    total: records.len(),
                    reason,
                },
            ))
        } else {
            Err((indices, PublishError::Failed(reason)))
        }
    }
}
