//! `trailsight setup`, `backfill` and `insights`: the commands that work on AWS (or on a local
//! AWS-compatible server). Region, credentials and endpoints come from the SDK's standard
//! environment (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`...), with the retry settings the
//! Lambdas use.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use aws_config::SdkConfig;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use trailsight::aws::backfill::{BackfillOptions, backfill};
use trailsight::aws::dynamodb::{DynamoStore, create_table};
use trailsight::aws::eventbridge::eventbridge_client;
use trailsight::aws::retry::{describe, dynamodb_client, load_sdk_config, s3_client};
use trailsight::aws::state_body::S3StateBody;
use trailsight::classify::ClassifyOptions;
use trailsight::detector::{Episode, EpisodeKind};
use trailsight::eventbus::{DEFAULT_BUS, DEFAULT_SOURCE};
use trailsight::insight::{InsightRecord, average};
use trailsight::logfile::ReadLimits;
use trailsight::minute::{Minute, format_minute, from_datetime, parse_minute};
use trailsight::series::SeriesKey;
use trailsight::store::StateStore;
use trailsight::topk::TopK;

use crate::output::{insights_table, table};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn now_minute() -> Minute {
    from_datetime(chrono::Utc::now())
}

// ---------------------------------------------------------------------------------------------
// setup

#[derive(Args)]
pub struct SetupArgs {
    /// DynamoDB table to create (as infra/table.json defines it).
    #[arg(long)]
    table: String,
    /// Also create this S3 bucket (for local use: the trail's bucket or an archive).
    #[arg(long)]
    bucket: Option<String>,
    /// Also create this SQS queue and an EventBridge rule sending it the insight events.
    #[arg(long)]
    queue: Option<String>,
    /// Event bus of that rule (created if it is not the default bus).
    #[arg(long, default_value = DEFAULT_BUS)]
    bus: String,
    /// Event source the rule matches (the detect function's TRAILSIGHT_EVENT_SOURCE).
    #[arg(long, default_value = DEFAULT_SOURCE)]
    source: String,
}

pub fn run_setup(args: SetupArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let sdk = load_sdk_config().await;
        create_table(&dynamodb_client(&sdk), &args.table)
            .await
            .with_context(|| format!("creating table {}", args.table))?;
        eprintln!("table {}: ready", args.table);
        if let Some(bucket) = &args.bucket {
            create_bucket(&sdk, bucket).await?;
            eprintln!("bucket {bucket}: ready");
        }
        if let Some(queue) = &args.queue {
            let rule = insight_queue(&sdk, queue, &args.bus, &args.source).await?;
            eprintln!(
                "queue {queue}: ready, receiving events of source {} on bus {} (rule {rule})",
                args.source, args.bus
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn create_bucket(sdk: &SdkConfig, bucket: &str) -> anyhow::Result<()> {
    let s3 = s3_client(sdk);
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    let mut create = s3.create_bucket().bucket(bucket);
    let region = sdk.region().map(|r| r.as_ref().to_owned());
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
        {
            Ok(())
        }
        Err(error) => Err(anyhow::anyhow!(
            "creating bucket {bucket}: {}",
            describe(&error)
        )),
    }
}

/// The queue, and a rule on `bus` matching `source` that targets it; returns the rule's name.
async fn insight_queue(
    sdk: &SdkConfig,
    queue: &str,
    bus: &str,
    source: &str,
) -> anyhow::Result<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = sqs
        .create_queue()
        .queue_name(queue)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("creating queue {queue}: {}", describe(&e)))?
        .queue_url()
        .context("CreateQueue returned no URL")?
        .to_owned();
    let arn_name = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(arn_name.clone())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("reading queue {queue}: {}", describe(&e)))?;
    let queue_arn = attributes
        .attributes()
        .and_then(|a| a.get(&arn_name))
        .context("the queue has no ARN")?
        .clone();

    let events = eventbridge_client(sdk);
    if bus != DEFAULT_BUS
        && let Err(error) = events.create_event_bus().name(bus).send().await
        && !error
            .as_service_error()
            .is_some_and(|e| e.is_resource_already_exists_exception())
    {
        anyhow::bail!("creating event bus {bus}: {}", describe(&error));
    }
    let rule = format!("trailsight-insights-to-{queue}");
    let rule_arn = events
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .description("Trailsight insight events to a queue (trailsight setup).")
        .event_pattern(json!({ "source": [source] }).to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("creating rule {rule}: {}", describe(&e)))?
        .rule_arn()
        .unwrap_or_default()
        .to_owned();
    // EventBridge may send to the queue only for this rule.
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TrailsightInsights",
            "Effect": "Allow",
            "Principal": { "Service": "events.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": { "ArnEquals": { "aws:SourceArn": rule_arn } }
        }]
    });
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::Policy,
            policy.to_string(),
        )
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("setting queue {queue}'s policy: {}", describe(&e)))?;
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(&queue_arn)
        .build()
        .context("building the rule's target")?;
    let put = events
        .put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!("targeting queue {queue} from rule {rule}: {}", describe(&e))
        })?;
    if put.failed_entry_count() > 0 {
        anyhow::bail!(
            "targeting queue {queue} from rule {rule} failed: {:?}",
            put.failed_entries()
        );
    }
    Ok(rule)
}

// ---------------------------------------------------------------------------------------------
// backfill

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
        let report = backfill(
            &s3_client(&sdk),
            &args.bucket,
            &args.prefix,
            args.days,
            now_minute(),
            &store,
            &ReadLimits::default(),
            options,
            &progress,
        )
        .await
        .with_context(|| format!("listing s3://{}/{}", args.bucket, args.prefix))?;
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

// ---------------------------------------------------------------------------------------------
// insights

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum InsightsFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct InsightsArgs {
    /// DynamoDB table the detect function keeps its state in.
    #[arg(long)]
    table: String,
    /// The state bucket, when the detect function keeps its state's body in S3 (the stack's
    /// `TRAILSIGHT_STATE_BUCKET`; output `StateBucketName`).
    #[arg(long)]
    state_bucket: Option<String>,
    /// Key prefix in the state bucket (`TRAILSIGHT_STATE_PREFIX`).
    #[arg(long, default_value = "", requires = "state_bucket")]
    state_prefix: String,
    /// Recent records from this far back (`30m`, `24h`, `7d`), counted from the last minute the
    /// detector evaluated.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    since: i64,
    /// Only the insights still open.
    #[arg(long)]
    open: bool,
    #[arg(long, value_enum, default_value = "table")]
    format: InsightsFormat,
}

/// `90m`, `24h`, `7d`, `1w` (or a bare number of minutes) → minutes.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "m"),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30m, 24h or 7d"))?;
    let factor = match unit {
        "m" | "min" => 1,
        "h" => 60,
        "d" => 1440,
        "w" => 10080,
        _ => return Err(format!("{text:?}: the unit must be m, h, d or w")),
    };
    Ok(n * factor)
}

/// An open insight, as shown.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OpenInsight {
    pub key: String,
    #[serde(rename = "insightType")]
    pub insight_type: String,
    pub kind: &'static str,
    pub start: String,
    #[serde(rename = "sharedEventID")]
    pub shared_event_id: String,
    pub baseline_average: f64,
    pub insight_average: f64,
    pub minutes: i64,
    pub top_caller: Option<String>,
}

fn top(top: &TopK) -> Option<String> {
    top.sorted().first().map(|(v, _)| (*v).to_owned())
}

/// An open episode as of `watermark`.
pub fn open_insight(key: &SeriesKey, episode: &Episode, watermark: Minute) -> OpenInsight {
    let minutes = (watermark - episode.start + 1).max(1);
    OpenInsight {
        key: key.to_string(),
        insight_type: key.insight_type().to_string(),
        kind: match episode.kind {
            EpisodeKind::Spike => "spike",
            EpisodeKind::Drop => "drop",
        },
        start: format_minute(episode.start),
        shared_event_id: episode.shared_event_id.clone(),
        baseline_average: episode.baseline_average,
        insight_average: average(episode.events, minutes),
        minutes,
        top_caller: top(&episode.arns),
    }
}

fn open_table(open: &[OpenInsight]) -> String {
    let rows: Vec<Vec<String>> = open
        .iter()
        .map(|o| {
            vec![
                o.start.clone(),
                "open".into(),
                o.kind.into(),
                o.key.clone(),
                format!("{:.4}", o.baseline_average),
                format!("{:.2}", o.insight_average),
                o.minutes.to_string(),
                o.top_caller.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            "start",
            "end",
            "kind",
            "key",
            "baseline/min",
            "insight/min",
            "minutes",
            "top caller",
        ],
        &rows,
    )
}

pub fn run_insights(args: InsightsArgs) -> anyhow::Result<ExitCode> {
    let state = runtime()?.block_on(async {
        let sdk = load_sdk_config().await;
        let mut store = DynamoStore::new(dynamodb_client(&sdk), &args.table);
        if let Some(bucket) = &args.state_bucket {
            store = store.with_state_body(S3StateBody::new(
                s3_client(&sdk),
                bucket,
                &args.state_prefix,
            ));
        }
        store
            .load_state()
            .await
            .with_context(|| format!("reading the detector state from table {}", args.table))
    })?;
    let state = state.state;
    let watermark = state.watermark.unwrap_or_else(now_minute);
    let open: Vec<OpenInsight> = state
        .open()
        .map(|(key, episode)| open_insight(key, episode, watermark))
        .collect();
    let from = watermark - args.since;
    let recent: Vec<&InsightRecord> = if args.open {
        Vec::new()
    } else {
        state
            .recent
            .iter()
            .filter(|r| parse_minute(&r.event_time).is_some_and(|t| t >= from))
            .collect()
    };
    let mut stdout = std::io::stdout().lock();
    match args.format {
        InsightsFormat::Json => {
            let value = json!({
                "watermark": state.watermark.map(format_minute),
                "open": open,
                "recent": recent,
            });
            serde_json::to_writer_pretty(&mut stdout, &value)?;
            stdout.write_all(b"\n")?;
        }
        InsightsFormat::Table => {
            let evaluated = state
                .watermark
                .map(format_minute)
                .unwrap_or_else(|| "never".into());
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for o in &open {
                *counts.entry(o.kind).or_default() += 1;
            }
            writeln!(
                stdout,
                "Detector: {} series, last minute evaluated {evaluated}, {} records waiting to be published.",
                state.series.len(),
                state.outbox.len()
            )?;
            writeln!(stdout)?;
            writeln!(stdout, "Open insights ({}):", open.len())?;
            if !open.is_empty() {
                stdout.write_all(open_table(&open).as_bytes())?;
            }
            if !args.open {
                writeln!(stdout)?;
                writeln!(
                    stdout,
                    "Records since {} ({}):",
                    format_minute(from),
                    recent.len()
                )?;
                if !recent.is_empty() {
                    let owned: Vec<InsightRecord> = recent.iter().map(|r| (*r).clone()).collect();
                    stdout.write_all(insights_table(&owned).as_bytes())?;
                }
            }
        }
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("24h"), Ok(1440));
        assert_eq!(parse_duration("30m"), Ok(30));
        assert_eq!(parse_duration("7d"), Ok(10080));
        assert_eq!(parse_duration("1w"), Ok(10080));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn open_insights_show_their_average_so_far() {
        let key = SeriesKey {
            account: "111".into(),
            region: "us-east-1".into(),
            event_source: "iam.amazonaws.com".into(),
            event_name: "CreateAccessKey".into(),
            error_code: None,
            principal: None,
        };
        let mut arns = TopK::default();
        arns.add("arn:aws:iam::111:user/intruder", 40);
        let episode = Episode {
            kind: EpisodeKind::Spike,
            shared_event_id: "s".into(),
            start: 100,
            last_hot: 103,
            events: 40,
            arns,
            agents: TopK::default(),
            errors: TopK::default(),
            baseline_average: 0.001,
            baseline_duration: 10080,
            baseline_tops: Default::default(),
            peak1: 40,
            peak5: 40,
            cooling: None,
            held: None,
        };
        let open = open_insight(&key, &episode, 103);
        assert_eq!(open.minutes, 4);
        assert_eq!(open.insight_average, 10.0);
        assert_eq!(
            open.top_caller.as_deref(),
            Some("arn:aws:iam::111:user/intruder")
        );
        let text = open_table(&[open]);
        assert!(text.contains("iam.amazonaws.com:CreateAccessKey"), "{text}");
    }
}
