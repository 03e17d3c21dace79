//! Command-line definitions and dispatch.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use trailsight::classify::ClassifyOptions;
use trailsight::logfile::ReadLimits;

use crate::analysis::{Analysis, discovered, replay_paths};
use crate::local::fold_files;
use crate::output::{insights_table, starts, write_insight_files};

/// Exit status when some input files were damaged and skipped.
pub const EXIT_DAMAGED: u8 = 3;

#[derive(Parser)]
#[command(
    name = "trailsight",
    version,
    about = "CloudTrail Insights, self-hosted: find unusual API activity in CloudTrail logs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ingest and detect pipeline over log files on disk and print the insights.
    Replay(ReplayArgs),
    /// Write an HTML report of the insights in log files: charts, statistics, attributions.
    Report(crate::report::ReportArgs),
    /// Describe what is in log files (records, span, accounts, top APIs and errors).
    Summarize(SummarizeArgs),
    /// Write realistic synthetic CloudTrail logs with labelled anomalies.
    Simulate(crate::scenario::SimulateArgs),
    /// Replay simulated scenarios and score the insights against their labels.
    Eval(crate::scenario::EvalArgs),
    /// Print the anomalies and routine changes a simulated scenario is labelled with.
    Labels(crate::scenario::LabelsArgs),
    /// Create the DynamoDB table (and, for local use, a bucket and a queue of insight events).
    #[cfg(feature = "aws")]
    Setup(crate::aws_commands::SetupArgs),
    /// Ingest the log files a trail delivered in the last days into the table.
    #[cfg(feature = "aws")]
    Backfill(crate::aws_commands::BackfillArgs),
    /// Show the open and recent insights the detect function keeps in the table.
    #[cfg(feature = "aws")]
    Insights(crate::aws_commands::InsightsArgs),
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    /// The Insight records, one JSON object per line.
    Json,
    /// A table for people.
    Table,
    /// What the alerts topic would get per record: `{"subject", "chat", "email"}` per line (the
    /// Amazon Q Developer chat notification and the e-mail text).
    Alerts,
    /// The Security Hub finding (ASFF) of each record, one per line, under the record's account's
    /// default product in the record's region.
    Findings,
}

#[derive(Args)]
struct ReplayArgs {
    /// Log files or folders (read recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Also write the insights as CloudTrail-Insight files under this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write what the replay cost as JSON to this file: records counted, cells stored, detector
    /// time, minutes evaluated, series (per-principal ones apart), principals, state size.
    #[arg(long)]
    stats: Option<PathBuf>,
    #[command(flatten)]
    analysis: Analysis,
}

#[derive(Args)]
struct SummarizeArgs {
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Rows per table.
    #[arg(long, default_value_t = 15)]
    top: usize,
    #[arg(long)]
    include_read_apis: bool,
    #[arg(long)]
    include_data_events: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => run_replay(args),
        Command::Report(args) => crate::report::run_report(args),
        Command::Summarize(args) => run_summarize(args),
        Command::Simulate(args) => crate::scenario::run_simulate(args),
        Command::Eval(args) => crate::scenario::run_eval(args),
        Command::Labels(args) => crate::scenario::run_labels(args),
        #[cfg(feature = "aws")]
        Command::Setup(args) => crate::aws_commands::run_setup(args),
        #[cfg(feature = "aws")]
        Command::Backfill(args) => crate::aws_commands::run_backfill(args),
        #[cfg(feature = "aws")]
        Command::Insights(args) => crate::aws_commands::run_insights(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!(
                "trailsight: {}",
                crate::terminal::escape(&format!("{error:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let report = replay_paths(&args.paths, &args.analysis)?;
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            for record in &report.records {
                serde_json::to_writer(&mut stdout, record)?;
                stdout.write_all(b"\n")?;
            }
        }
        Format::Table => stdout.write_all(insights_table(&report.records).as_bytes())?,
        Format::Alerts => {
            for record in &report.records {
                let alert = serde_json::json!({
                    "subject": trailsight::alerts::subject(record),
                    "chat": trailsight::alerts::chat_notification(record),
                    "email": trailsight::alerts::email_text(record),
                });
                serde_json::to_writer(&mut stdout, &alert)?;
                stdout.write_all(b"\n")?;
            }
        }
        Format::Findings => {
            for record in &report.records {
                let (account, region) = (&record.recipient_account_id, &record.aws_region);
                let product =
                    format!("arn:aws:securityhub:{region}:{account}:product/{account}/default");
                let finding = trailsight::findings::finding(record, &product, region);
                serde_json::to_writer(&mut stdout, &finding)?;
                stdout.write_all(b"\n")?;
            }
        }
    }
    stdout.flush()?;
    if let Some(dir) = &args.out {
        let written = write_insight_files(dir, &report.records)?;
        eprintln!(
            "wrote {} CloudTrail-Insight files under {}",
            written.files,
            crate::terminal::path(dir)
        );
        if written.unplaced > 0 {
            eprintln!(
                "{} insight records not written to files: their account or region is not an AWS identifier (the overflow series)",
                written.unplaced
            );
        }
    }
    if let Some(path) = &args.stats {
        let stats = serde_json::json!({
            "files": report.files_read,
            "records": report.fold.records,
            "counted": report.fold.counted,
            "detector_runs": report.detector_runs,
            "insight_records": report.records.len(),
            "seconds": started.elapsed().as_secs_f64(),
            "detector": report.cost,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&stats)?)?;
    }
    let f = &report.fold;
    eprintln!(
        "replay: {} files read, {} not log files, {} damaged; {} records ({} counted, {} duplicates); {} insights ({} records) in {:.1}s",
        report.files_read,
        report.files_not_logs,
        report.files_damaged.len(),
        f.records,
        f.counted,
        f.duplicates,
        starts(&report.records),
        report.records.len(),
        started.elapsed().as_secs_f64()
    );
    if report.cost.principals_untracked > 0 {
        eprintln!(
            "replay: {} principal-minutes not tracked: an account had more principals active within a day than the cap of {}; their calls count in the account's series, but no principal insight judged them",
            report.cost.principals_untracked,
            trailsight::config::DetectorConfig::default().max_principals_per_account
        );
    }
    Ok(if report.files_damaged.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DAMAGED)
    })
}

fn run_summarize(args: SummarizeArgs) -> anyhow::Result<ExitCode> {
    let options = ClassifyOptions {
        include_read_apis: args.include_read_apis,
        include_data_events: args.include_data_events,
        ..ClassifyOptions::default()
    };
    let files = fold_files(discovered(&args.paths)?, &ReadLimits::default(), options);
    let summary = crate::summarize::summarize(&files);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.to_table(args.top));
    }
    Ok(if summary.files_damaged.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DAMAGED)
    })
}
