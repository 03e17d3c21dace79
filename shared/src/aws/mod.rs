//! Adapters on AWS (feature `aws`): the storage traits on one DynamoDB table ([`dynamodb`]), the
//! detector state's body in S3 when a state bucket is configured ([`state_body`]), log objects
//! from S3 ([`s3`]), the SDK's retry and timeout settings shared by every client ([`retry`]), the
//! backfill of past log files ([`backfill`]), and the publishers of insights and metrics
//! ([`eventbridge`], [`archive`], [`cloudwatch`]).

pub mod archive;
pub mod backfill;
pub mod cloudwatch;
pub mod dynamodb;
pub mod eventbridge;
pub mod retry;
pub mod s3;
pub mod state_body;
