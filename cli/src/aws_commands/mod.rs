//! `trailsight setup`, `backfill` and `insights`: the commands that work on AWS (or on a local
//! AWS-compatible server), one module each. Region, credentials and endpoints come from the SDK's
//! standard environment (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`...), with the retry
//! settings the Lambdas use.

use trailsight::minute::{Minute, from_datetime};

mod backfill;
mod insights;
mod setup;

pub use backfill::{BackfillArgs, run_backfill};
pub use insights::{InsightsArgs, run_insights};
pub use setup::{SetupArgs, run_setup};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn now_minute() -> Minute {
    from_datetime(chrono::Utc::now())
}
