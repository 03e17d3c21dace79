//! Adapters on AWS (feature `aws`): the storage traits on one DynamoDB table ([`dynamodb`]), log
//! objects from S3 ([`s3`]), the SDK's retry and timeout settings shared by every client
//! ([`retry`]), and the backfill of past log files ([`backfill`]).

pub mod archive;
pub mod backfill;
pub mod cloudwatch;
pub mod dynamodb;
pub mod eventbridge;
pub mod retry;
pub mod s3;
