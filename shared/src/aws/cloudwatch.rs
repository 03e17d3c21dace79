//! The detect run's metrics ([`crate::metrics::RunMetrics`]) sent to CloudWatch, one
//! `PutMetricData` call per run, as much of them as the [`MetricsLevel`] says. Which metrics, their
//! dimensions and their cost are in [`crate::metrics`].
//!
//! The client is pinned to aws-sdk-cloudwatch 1.99.0, the last release speaking the awsQuery
//! protocol (later ones speak RPCv2-CBOR, which moto does not serve); see docs/DECISIONS.md.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::aws::retry::describe;
use crate::metrics::{Datum, MetricsError, MetricsLevel, MetricsPublish, RunMetrics, Unit};

/// A CloudWatch client with our retry and timeout settings, whatever `sdk` carries.
pub fn cloudwatch_client(sdk: &SdkConfig) -> Client {
    crate::sdk_client!(aws_sdk_cloudwatch, sdk)
}

/// Run metrics in a CloudWatch namespace, one `PutMetricData` per run (none when the level
/// leaves nothing to send).
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: Client,
    namespace: String,
    level: MetricsLevel,
}

impl CloudWatchMetrics {
    pub fn new(client: Client, namespace: impl Into<String>, level: MetricsLevel) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            level,
        }
    }

    pub fn level(&self) -> MetricsLevel {
        self.level
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

fn to_sdk(datum: &Datum) -> MetricDatum {
    let builder = MetricDatum::builder()
        .metric_name(datum.name)
        .value(datum.value)
        .unit(match datum.unit {
            Unit::Count => StandardUnit::Count,
            Unit::None => StandardUnit::None,
        });
    match datum.dimension {
        Some((name, value)) => {
            builder.dimensions(Dimension::builder().name(name).value(value).build())
        }
        None => builder,
    }
    .build()
}

#[async_trait]
impl MetricsPublish for CloudWatchMetrics {
    async fn put_run_metrics(&self, metrics: &RunMetrics) -> Result<(), MetricsError> {
        let data: Vec<MetricDatum> = metrics.datums_at(self.level).iter().map(to_sdk).collect();
        if data.is_empty() {
            return Ok(());
        }
        self.client
            .put_metric_data()
            .namespace(&self.namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| MetricsError {
                namespace: self.namespace.clone(),
                reason: describe(&error),
            })
    }
}
