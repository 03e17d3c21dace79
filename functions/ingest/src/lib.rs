//! Trailsight's ingest Lambda: CloudTrail log file notifications in, per-minute counters in
//! DynamoDB out. [`envelope`] reads the notification, whatever wraps it; [`handler`] runs each
//! object through the library's ingest pipeline and answers SQS with its partial failures;
//! [`summary`] is the invocation's log line and metrics; [`config`] its settings.

pub mod config;
pub mod envelope;
pub mod handler;
pub mod summary;
