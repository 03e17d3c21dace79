//! Adapters on AWS (features `s3`, `dynamodb`, `eventbridge`, `cloudwatch`, `sns`, `securityhub`;
//! `aws` is all of them):
//! the storage traits on one DynamoDB table ([`dynamodb`], one module per store), the detector
//! state's body in S3 when a state bucket is configured ([`state_body`]), log objects on S3
//! ([`s3`]: the [`crate::objects::LogObjects`] port the ingest pipeline and the backfill read
//! through), the SDK's retry and timeout settings shared by every client ([`retry`]), and the
//! publishers of insights, alerts, findings and metrics ([`eventbridge`], [`archive`], [`sns`],
//! [`securityhub`], [`cloudwatch`]). Adapters
//! hold no policy: the pipelines are in [`crate::object_ingest`], [`crate::backfill`] and
//! [`crate::detect`].
//!
//! Each module is behind the cargo feature of the service it calls (`s3`, `dynamodb`,
//! `eventbridge`, `cloudwatch`, `sns`, `securityhub`); [`retry`] serves them all.

#[cfg(feature = "s3")]
pub mod archive;
#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "eventbridge")]
pub mod eventbridge;
pub mod retry;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "securityhub")]
pub mod securityhub;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "s3")]
pub mod state_body;
