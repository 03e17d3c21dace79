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
//! Where things are:
//! - [`simulate()`] and its options: `simulate.rs`;
//! - the catalog (principals, APIs, error codes): `catalog/`;
//! - the world (the scenario's clock, regions and periodic jobs): `world.rs`, `time.rs`;
//! - what is injected on top of the background: `anomalies.rs` (labelled anomalies) and
//!   `changes.rs` (benign routine changes);
//! - the ground truth written beside the logs: `labels.rs`;
//! - per-region traffic and delivery: `generate.rs`; records as CloudTrail writes them: `render.rs`;
//! - seeded helpers (Poisson draws, identifiers): `random.rs`;
//! - the scoring: [`eval`].
//!
//! The `trailsight simulate` and `trailsight eval` commands are thin wrappers around this crate.

mod anomalies;
mod catalog;
mod changes;
pub mod eval;
mod generate;
pub mod labels;
mod random;
mod render;
mod simulate;
#[cfg(test)]
mod testing;
mod time;
mod world;

pub use anomalies::{AnomalyKind, Injection, Injections, parse_injection};
pub use changes::{ChangeKind, LEARNING_PERIOD_SECONDS};
pub use labels::{LABELS_FILE, Labels};
pub use simulate::{SimulateOptions, SimulateReport, simulate};
