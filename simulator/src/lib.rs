//! Trailsight's test bed: [`simulate`] writes realistic synthetic CloudTrail logs with labelled
//! anomalies and routine changes, and [`eval`] scores detector output against those labels.
//!
//! The `trailsight simulate` and `trailsight eval` commands are thin wrappers around this crate.

pub mod eval;
pub mod simulate;
