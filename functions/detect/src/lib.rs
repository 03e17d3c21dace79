//! Trailsight's detect Lambda: on a schedule, judges the settled minutes of every series against
//! its baseline and publishes CloudTrail Insight records. [`handler`] runs the library's detect
//! pipeline once per scheduled event and reports it (metrics, one log line); [`config`] holds its
//! settings.

pub mod config;
pub mod handler;
