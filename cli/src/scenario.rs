//! `trailsight simulate`, `trailsight eval` and `trailsight labels`: the test bed (the
//! `trailsight-sim` crate), its scoring, and its labels for a person.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use trailsight_sim::eval::{PrincipalScore, Score, score, score_principals};
use trailsight_sim::{Injections, LABELS_FILE, Labels, SimulateOptions, parse_injection, simulate};

use crate::analysis::{Analysis, replay_paths};

#[derive(Args)]
pub struct SimulateArgs {
    /// Folder to write the logs (CloudTrail's S3 layout) and labels.json into. Must be empty.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 9)]
    days: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First day (UTC, RFC 3339).
    #[arg(long, default_value = "2026-03-02T00:00:00Z")]
    start: chrono::DateTime<chrono::Utc>,
    /// Regions, comma-separated.
    #[arg(long, default_value = "us-east-1,eu-west-1", value_delimiter = ',')]
    regions: Vec<String>,
    #[arg(long, default_value = "111122223333")]
    account: String,
    /// Anomalies to inject: KIND@TIME[@REGION], KIND one of iam-burst, provisioning-spike,
    /// throttling-storm, maintenance-gap; TIME RFC 3339 or an offset from the start (3d14h).
    /// Without it, the seed places two of each kind.
    #[arg(long = "inject")]
    injections: Vec<String>,
    /// No anomalies at all (a quiet scenario, for measuring false insights).
    #[arg(long, conflicts_with = "injections")]
    quiet: bool,
    /// Also change the account's routine: two new recurring jobs (nightly, every few hours), a
    /// lasting rate step and a newly adopted API, each from a seed-chosen day, labelled as benign after a 3-day learning period
    /// (labels.json `changes`). Needs at least 6 days.
    #[arg(long)]
    changes: bool,
    /// Also add principal scenarios: attacks made of reads by a principal of the account and
    /// benign look-alikes (labels.json `principal_cases`). Needs at least 6 days.
    #[arg(long)]
    principals: bool,
    /// Write into a non-empty folder anyway.
    #[arg(long)]
    force: bool,
}

pub fn run_simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    if args.out.exists() && !args.force && std::fs::read_dir(&args.out)?.next().is_some() {
        anyhow::bail!(
            "{} is not empty: choose an empty folder or pass --force",
            args.out.display()
        );
    }
    let mut options = SimulateOptions::new(args.out.clone());
    options.days = args.days;
    options.seed = args.seed;
    options.start = args.start;
    options.regions = args.regions;
    options.account = args.account;
    options.changes = args.changes;
    options.principals = args.principals;
    options.injections = if args.quiet {
        Injections::None
    } else if args.injections.is_empty() {
        Injections::Default
    } else {
        Injections::Explicit(
            args.injections
                .iter()
                .map(|s| parse_injection(s, args.start))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?,
        )
    };
    let started = std::time::Instant::now();
    let report =
        simulate(&options).with_context(|| format!("simulating into {}", args.out.display()))?;
    eprintln!(
        "simulate: {} files, {} records, {} labelled anomalies, {} routine changes in {:.1}s; labels in {}",
        report.files,
        report.records,
        report.anomalies,
        report.changes,
        started.elapsed().as_secs_f64(),
        crate::terminal::path(&report.labels)
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct EvalArgs {
    /// Folders written by `trailsight simulate` (each with its labels.json).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Print the scores as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    analysis: Analysis,
}

/// Replays each scenario and scores its insights against its labels.
pub fn run_eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let mut all = Vec::new();
    let mut scores = Vec::new();
    let mut principal_scores = Vec::new();
    for dir in &args.scenarios {
        let labels = read_labels(dir)?;
        let started = std::time::Instant::now();
        let report = replay_paths(std::slice::from_ref(dir), &args.analysis)?;
        let seconds = started.elapsed().as_secs_f64();
        let records: Vec<serde_json::Value> = report
            .records
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        let score = score(&labels, &records);
        let principal = args
            .analysis
            .principal_insights()
            .then(|| score_principals(&labels, &records));
        if args.json {
            all.push(serde_json::json!({ "scenario": dir, "replay_seconds": seconds, "records": report.fold.records, "score": score, "principal_score": principal }));
        } else {
            println!(
                "== {} ({} records, replayed in {seconds:.1}s)",
                crate::terminal::path(dir),
                report.fold.records
            );
            print!("{}", score.to_table());
            if let Some(principal) = &principal {
                print!("{}", principal.to_table());
            }
        }
        scores.push(score);
        principal_scores.extend(principal);
    }
    if principal_scores.len() > 1 {
        let total = PrincipalScore::total(&principal_scores);
        if args.json {
            all.push(serde_json::json!({ "scenario": "total", "principal_score": total }));
        } else {
            println!(
                "== principal insights, total ({} scenarios)",
                principal_scores.len()
            );
            print!("{}", total.to_table());
        }
    }
    if scores.len() > 1 {
        let total = Score::total(&scores);
        if args.json {
            all.push(serde_json::json!({ "scenario": "total", "score": total }));
        } else {
            println!("== total ({} scenarios)", scores.len());
            print!("{}", total.to_table());
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn read_labels(dir: &Path) -> anyhow::Result<Labels> {
    let path = dir.join(LABELS_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Labels::from_json(&text).with_context(|| format!("parsing {}", path.display()))
}

#[derive(Args)]
pub struct LabelsArgs {
    /// A folder written by `trailsight simulate` (with its labels.json).
    scenario: PathBuf,
}

/// Prints a scenario's labels, one line each: the anomalies (`start kind region keys`), then the
/// routine changes.
pub fn run_labels(args: LabelsArgs) -> anyhow::Result<ExitCode> {
    let labels = read_labels(&args.scenario)?;
    for line in labels.listing().lines() {
        println!("{}", crate::terminal::escape(line));
    }
    Ok(ExitCode::SUCCESS)
}
