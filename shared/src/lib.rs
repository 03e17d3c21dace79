//! Trailsight's library: CloudTrail records in, Insight records out.
//!
//! Domain modules (no AWS): [`record`] (one record, parsed leniently), [`logfile`] (log objects,
//! streamed with bounded cost), [`s3key`] (CloudTrail's key layout), [`classify`] (what counts),
//! [`ident`] (identifiers from log content, checked), [`principal`] (who made a call, and the
//! sensitive APIs), [`fold`] (records → per-minute cells), [`baseline`] (what a key usually does), [`detector`]
//! (episodes and records), [`insight`] (the Insight record and its statistics), [`config`],
//! [`envvars`] (settings from environment variables, checked), [`alerts`] and [`findings`] (what a
//! person reads: chat and e-mail alerts, Security Hub findings).
//! [`s3location`] (a bucket and prefix, checked once).
//! Pipelines: [`ingest`] (one file's fold, stored exactly once), [`object_ingest`] (one log
//! object through it), [`backfill`] (a trail's past files) and [`detect`], over the ports in
//! [`store`] and [`objects`], implemented in memory by [`memory`] and, with the `aws` feature,
//! on DynamoDB, EventBridge, CloudWatch and S3.

pub mod alerts;
#[cfg(feature = "aws-base")]
pub mod aws;
pub mod backfill;
pub mod baseline;
pub mod classify;
pub mod config;
pub mod destinations;
pub mod detect;
pub mod detector;
pub mod envvars;
pub mod eventbus;
pub mod findings;
pub mod fold;
pub mod ident;
pub mod ingest;
pub mod insight;
pub mod insight_files;
pub mod logfile;
pub mod memory;
pub mod metrics;
pub mod minute;
pub mod object_ingest;
pub mod objects;
pub mod principal;
pub mod record;
pub mod s3key;
pub mod s3location;
pub mod series;
pub mod store;
pub mod stored;
pub mod topk;
