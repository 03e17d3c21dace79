//! What every command that analyses logs on disk shares: the analysis options (`--sensitivity`,
//! `--include-read-apis`...) and replaying files with them.

use std::path::PathBuf;

use clap::Args;
use trailsight::classify::ClassifyOptions;
use trailsight::config::{ApiFilter, DetectorConfig, Sensitivity};
use trailsight::logfile::ReadLimits;

use crate::local::{LocalFile, delivery_order, discover, fold_files};

#[derive(Args, Clone)]
pub struct Analysis {
    /// How readily insights open: low, medium or high.
    #[arg(long, default_value = "medium")]
    sensitivity: Sensitivity,
    /// Fewest events in a minute (or five) that can open a spike.
    #[arg(long, default_value_t = DetectorConfig::default().min_calls)]
    min_calls: u64,
    /// Minutes after a minute ends before it is judged (late files).
    #[arg(long, default_value_t = DetectorConfig::default().settle_minutes)]
    settle_minutes: i64,
    /// Hours of history before the first insight.
    #[arg(long, default_value_t = 24)]
    warmup_hours: i64,
    /// Do not count calls AWS services make on your behalf.
    #[arg(long)]
    ignore_aws_service_callers: bool,
    /// Only analyse these APIs (comma-separated `eventSource:eventName` patterns, `*` wildcard).
    #[arg(long, default_value = "")]
    allow: String,
    /// Never analyse these APIs (same patterns).
    #[arg(long, default_value = "")]
    deny: String,
    /// Count read-only calls in call-rate analysis too.
    #[arg(long)]
    include_read_apis: bool,
    /// Analyse data events too.
    #[arg(long)]
    include_data_events: bool,
    /// Per-principal insights too (Trailsight's own types, read and write APIs): a principal's
    /// call-rate spikes, and its first call of a sensitive API, in a new region, of 3 services
    /// or 6 read APIs it never used within 15 minutes, or of 2 roles it never assumed.
    #[arg(long)]
    principal_insights: bool,
    /// Hours of a principal's own history before its insights (principal insights); a series
    /// of a principal is also judged no earlier than this (at most a day) after its first call.
    #[arg(long, default_value_t = DetectorConfig::default().principal_warmup_minutes / 60)]
    principal_warmup_hours: i64,
}

impl Analysis {
    /// Whether the per-principal insights are asked for.
    pub fn principal_insights(&self) -> bool {
        self.principal_insights
    }

    pub fn detector(&self) -> DetectorConfig {
        DetectorConfig {
            sensitivity: self.sensitivity,
            min_calls: self.min_calls,
            settle_minutes: self.settle_minutes,
            warmup_minutes: self.warmup_hours * 60,
            ignore_aws_service_callers: self.ignore_aws_service_callers,
            api_filter: ApiFilter::parse(&self.allow, &self.deny),
            principal_insights: self.principal_insights,
            ..DetectorConfig::default()
        }
        .with_principal_warmup_minutes(self.principal_warmup_hours * 60)
    }

    pub fn classify(&self) -> ClassifyOptions {
        ClassifyOptions {
            include_read_apis: self.include_read_apis,
            include_data_events: self.include_data_events,
            principal_insights: self.principal_insights,
        }
    }
}

/// The files under `paths`; entries that cannot be walked (dangling symlinks, loops) are reported
/// with their path and skipped.
pub fn discovered(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let found = discover(paths)?;
    for (path, why) in &found.broken {
        eprintln!(
            "skipped {}: {}",
            crate::terminal::path(path),
            crate::terminal::escape(why)
        );
    }
    Ok(found.files)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn replay_paths(
    paths: &[PathBuf],
    analysis: &Analysis,
) -> anyhow::Result<crate::replay::ReplayReport> {
    replay_folded(fold_paths(paths, analysis)?, analysis)
}

/// The files under `paths`, folded with the analysis' options, in delivery order.
pub fn fold_paths(paths: &[PathBuf], analysis: &Analysis) -> anyhow::Result<Vec<LocalFile>> {
    let mut files = fold_files(
        discovered(paths)?,
        &ReadLimits::default(),
        analysis.classify(),
    );
    delivery_order(&mut files);
    Ok(files)
}

/// Replays files from [`fold_paths`].
pub fn replay_folded(
    files: Vec<LocalFile>,
    analysis: &Analysis,
) -> anyhow::Result<crate::replay::ReplayReport> {
    runtime()?.block_on(crate::replay::replay(files, &analysis.detector()))
}
