//! `trailsight insights`: the detector's open and recent insights, read from its state.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::json;
use trailsight::aws::dynamodb::DynamoStore;
use trailsight::aws::retry::{dynamodb_client, load_sdk_config, s3_client};
use trailsight::aws::state_body::S3StateBody;
use trailsight::detector::{Episode, EpisodeKind};
use trailsight::insight::{InsightRecord, average};
use trailsight::minute::{Minute, format_minute, parse_minute};
use trailsight::s3location::S3Location;
use trailsight::series::SeriesKey;
use trailsight::store::StateStore;
use trailsight::topk::TopK;

use super::{now_minute, runtime};
use crate::output::{insights_table, table};

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
            let location = S3Location::new(bucket, &args.state_prefix)?;
            store = store.with_state_body(S3StateBody::new(s3_client(&sdk), location));
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
