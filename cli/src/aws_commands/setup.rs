//! `trailsight setup`: the table as infra/table.json defines it and, when asked, a bucket, a
//! queue and an EventBridge rule sending it the insight events (for local use).

use std::process::ExitCode;

use anyhow::Context;
use aws_config::SdkConfig;
use clap::Args;
use serde_json::json;
use trailsight::aws::dynamodb::create_table;
use trailsight::aws::eventbridge::eventbridge_client;
use trailsight::aws::retry::{describe, dynamodb_client, load_sdk_config, s3_client};
use trailsight::eventbus::{DEFAULT_BUS, DEFAULT_SOURCE};

use super::runtime;

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
