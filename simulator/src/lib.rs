//! Trailsight's test bed: a synthetic CloudTrail generator with labelled anomalies
//! ([`simulate()`]), and the scoring of detector output against its labels ([`eval`]).
//!
//! [`simulate()`] writes gzip `{"Records":[...]}` files in CloudTrail's S3 layout
//! (`<out>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/...json.gz`) plus `<out>/labels.json`,
//! the ground truth that [`eval::score`] compares detector output against.
//!
//! Everything is driven by seeded `StdRng`s: the same options give byte-identical output.
//!
//! Model, per region: ~39,000 background records a day over ~100 APIs (about 10% writes) with a
//! business-hours peak and quieter weekends, Poisson noise, a dozen principals (SSO users, CI,
//! Terraform, workloads, monitoring, AWS services), sparse errors; IAM is global and logged in
//! us-east-1 only (as in CloudTrail). 4-6 periodic maintenance jobs call write APIs every 5-60
//! minutes with +/-1 minute of jitter. Delivery: a file every 5 minutes (sometimes two), records 1
//! to 15 minutes old, a few duplicates. Anomalies are added on top and labelled. With `changes`,
//! so is a changing routine: two new jobs (nightly; every few hours), a lasting rate step and a
//! newly adopted API, each from a seed-chosen day, labelled as benign after a 3-day learning
//! period (drawn from their own generators: without `changes`, the output is unchanged).
//!
//! Where things are (each module imports only those above it in this list):
//! - seeded helpers (Poisson draws, identifiers): `random.rs`; times: `time.rs`;
//! - the catalog (principals, APIs, error kinds and background errors): `catalog/`;
//! - the ground truth written beside the logs, and the kinds it names: [`labels`];
//! - what is asked for (options, anomalies to inject): `options.rs`;
//! - the world (the scenario's period, catalog and periodic jobs): `world.rs`;
//! - what is injected on top of the background: `anomalies.rs` (labelled anomalies),
//!   `changes.rs` (benign routine changes) and `principal_cases.rs` (principal scenarios:
//!   read-made attacks and look-alikes, with `principals`);
//! - records as CloudTrail writes them: `render.rs`; per-region traffic and delivery:
//!   `generate.rs`;
//! - the entry point, [`simulate()`], which also assembles the labels: `simulate.rs`;
//! - the scoring: [`eval`] (labels only).
//!
//! The `trailsight simulate`, `eval` and `labels` commands are thin wrappers around this crate.

mod anomalies;
mod catalog;
mod changes;
pub mod eval;
mod generate;
pub mod labels;
mod options;
mod principal_cases;
mod random;
mod render;
mod simulate;
#[cfg(test)]
mod testing;
mod time;
mod world;

pub use changes::LEARNING_PERIOD_SECONDS;
pub use labels::{AnomalyKind, ChangeKind, LABELS_FILE, Labels};
pub use options::{Injection, Injections, SimulateOptions, parse_injection};
pub use simulate::{SimulateReport, simulate};
