//! `trailsight backfill`: a trail's past files, through the ingest pipeline.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use trailsight::aws::dynamodb::DynamoStore;
use trailsight::aws::retry::{dynamodb_client, load_sdk_config, s3_client};
use trailsight::aws::s3::S3Objects;
use trailsight::backfill::{Backfill, BackfillOptions};
use trailsight::classify::ClassifyOptions;
use trailsight::logfile::ReadLimits;
use trailsight::s3location::S3Location;

use super::{now_minute, runtime};

#[derive(Args)]
pub struct BackfillArgs {
    /// DynamoDB table (created beforehand: `trailsight setup`).
    #[arg(long)]
    table: String,
    /// The trail's bucket.
    #[arg(long)]
    bucket: String,
    /// The trail's key prefix (its S3KeyPrefix), if any.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Whole UTC days before today to ingest (today's files too).
    #[arg(long)]
    days: u32,
    /// Files ingested at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Count read-only calls in call-rate analysis too (as the ingest function's setting).
    #[arg(long)]
    include_read_apis: bool,
    /// Analyse data events too (as the ingest function's setting).
    #[arg(long)]
    include_data_events: bool,
}

pub fn run_backfill(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let sdk = load_sdk_config().await;
        let store = DynamoStore::new(dynamodb_client(&sdk), &args.table);
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} backfill {pos}/{len} files {wide_bar} {elapsed}/{eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let progress = {
            let bar = bar.clone();
            move |done: usize, total: usize| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
        };
        let options = BackfillOptions {
            classify: ClassifyOptions {
                include_read_apis: args.include_read_apis,
                include_data_events: args.include_data_events,
                ..ClassifyOptions::default()
            },
            concurrency: args.concurrency.max(1),
        };
        let started = std::time::Instant::now();
        let trail = S3Location::new(&args.bucket, &args.prefix)?;
        let objects = S3Objects::new(s3_client(&sdk));
        let limits = ReadLimits::default();
        let backfill = Backfill {
            objects: &objects,
            marks: &store,
            deltas: &store,
            limits: &limits,
            options,
        };
        let report = backfill
            .run(&trail, args.days, now_minute(), &progress)
            .await
            .with_context(|| format!("listing {trail}"))?;
        bar.finish_and_clear();
        for (key, error) in report.errors.iter().take(20) {
            eprintln!(
                "not ingested: {}: {}",
                crate::terminal::escape(key),
                crate::terminal::escape(&error.to_string())
            );
        }
        eprintln!(
            "backfill: {} files listed, {} stored ({} records, {} counted), {} already ingested, {} not logs, {} unreadable, {} errors, in {:.1}s",
            report.listed,
            report.stored,
            report.records,
            report.counted,
            report.duplicates,
            report.not_logs,
            report.failed,
            report.errors.len(),
            started.elapsed().as_secs_f64()
        );
        if report.errors.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!("run the same command again to retry the files in error");
            Ok(ExitCode::FAILURE)
        }
    })
}
