//! Request-level checks of the EventBridge, S3 and CloudWatch adapters: the exact requests they
//! send (bus, source, detail-type and detail of every entry, the batches within PutEvents' limits;
//! S3 keys, versions, listing delimiters, content types; the metric data's namespace, names,
//! dimensions), recorded on the wire by an SDK interceptor while moto serves them. What moto
//! does with them is checked by the other integration tests; what is sent is checked here,
//! against the services' documented limits and the contract's layouts.

use std::io::Read;

use flate2::read::GzDecoder;
use serde_json::Value;
use trailsight::aws::archive::{S3Archive, S3DeadLetters};
use trailsight::aws::cloudwatch::CloudWatchMetrics;
use trailsight::aws::eventbridge::EventBridgePublisher;
use trailsight::aws::retry::s3_client;
use trailsight::aws::s3::S3Objects;
use trailsight::aws::state_body::S3StateBody;
use trailsight::detect::{DeadLetterSink, InsightPublish};
use trailsight::detector::Pending;
use trailsight::eventbus::{MAX_ENTRIES_PER_CALL, MAX_REQUEST_BYTES, entry_size};
use trailsight::insight::{
    Attribution, AttributionValue, Average, InsightRecord, InsightState, RecordParts, Statistics,
    build_record,
};
use trailsight::metrics::{
    DETECTOR_LAG_MINUTES, INSIGHT_TYPE, INSIGHTS_STARTED, MetricsLevel, MetricsPublish, RUN_ERRORS,
    RunMetrics,
};
use trailsight::minute::parse_minute;
use trailsight::objects::LogObjects;
use trailsight::s3location::S3Location;
use trailsight::series::SeriesKey;
use trailsight_integration::wire::{RequestLog, Sent, only};
use trailsight_integration::{Moto, SubscribedTopic};

const BUCKET: &str = "publish-requests";

fn record(i: usize, padding: usize) -> InsightRecord {
    let key = SeriesKey {
        account: "111122223333".into(),
        region: if i.is_multiple_of(2) {
            "us-east-1"
        } else {
            "eu-west-1"
        }
        .into(),
        event_source: "iam.amazonaws.com".into(),
        event_name: format!("CreateUser{i}"),
        error_code: None,
        principal: None,
    };
    // Attribution values make a record as large as `padding` bytes (the service cuts values at
    // its own limits; these stay under them).
    let values = (0..padding / 200)
        .map(|j| AttributionValue {
            value: format!("arn:aws:iam::111122223333:role/r{j:0>180}"),
            average: 1.0,
        })
        .collect();
    build_record(RecordParts {
        key: &key,
        state: InsightState::Start,
        event_time: parse_minute("2026-03-02T14:07:00Z").expect("minute") + i as i64,
        shared_event_id: &format!("shared-{i}"),
        statistics: Statistics {
            baseline: Average { average: 0.1 },
            insight: Average { average: 20.0 },
            insight_duration: 1,
            baseline_duration: 10080,
        },
        attributions: vec![Attribution {
            attribute: "userIdentityArn".into(),
            insight: values,
            baseline: vec![],
        }],
    })
}

async fn logged_sdk(moto: &Moto) -> (aws_config::SdkConfig, RequestLog) {
    (moto.sdk_config().await, RequestLog::default())
}

/// Creates [`BUCKET`]; a plain S3 client, and one whose requests `log` records.
async fn bucket_and_logged_s3(
    sdk: &aws_config::SdkConfig,
    log: &RequestLog,
) -> (aws_sdk_s3::Client, aws_sdk_s3::Client) {
    let plain = s3_client(sdk);
    plain
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    (plain, logged_s3(sdk, log))
}

/// An S3 client (path-style, as moto serves it) whose requests `log` records.
fn logged_s3(sdk: &aws_config::SdkConfig, log: &RequestLog) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .interceptor(log.clone())
            .build(),
    )
}

#[tokio::test]
async fn insight_events_are_batched_within_put_events_limits() {
    let moto = Moto::start();
    let (sdk, log) = logged_sdk(&moto).await;
    let client = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&sdk)
            .interceptor(log.clone())
            .build(),
    );
    let publisher =
        EventBridgePublisher::new(client, "default", "com.example.trailsight", "Insight")
            .expect("publisher");
    // 23 records, every third of about 100 KB: at most two of those fit in one call's 256 KB,
    // so bytes split batches before the 10-entry limit does.
    let records: Vec<InsightRecord> = (0..23)
        .map(|i| record(i, if i % 3 == 0 { 90_000 } else { 0 }))
        .collect();
    assert!(serde_json::to_vec(&records[0]).expect("json").len() > 90_000);
    publisher.publish(&records).await.expect("published");

    let sent = log.take();
    let calls = only(&sent, "PutEvents");
    assert_eq!(calls.len(), sent.len(), "only PutEvents: {sent:?}");
    let mut details = Vec::new();
    for call in &calls {
        let entries = call.body["Entries"].as_array().expect("entries");
        assert!(!entries.is_empty() && entries.len() <= MAX_ENTRIES_PER_CALL);
        let mut bytes = 0;
        for entry in entries {
            assert_eq!(entry["EventBusName"], "default");
            assert_eq!(entry["Source"], "com.example.trailsight");
            assert_eq!(entry["DetailType"], "Insight");
            let detail = entry["Detail"].as_str().expect("detail");
            bytes += entry_size("default", "com.example.trailsight", "Insight", detail);
            details.push(serde_json::from_str::<InsightRecord>(detail).expect("a record"));
        }
        assert!(bytes <= MAX_REQUEST_BYTES, "{bytes} bytes in one call");
    }
    assert!(calls.len() >= 4, "{} calls", calls.len());
    let entries: Vec<usize> = calls
        .iter()
        .map(|c| c.body["Entries"].as_array().map_or(0, Vec::len))
        .collect();
    assert!(
        entries[..entries.len() - 1]
            .iter()
            .any(|&n| n < MAX_ENTRIES_PER_CALL),
        "a call cut by its bytes: {entries:?}"
    );
    // Every record once, in order, as its own detail.
    assert_eq!(details, records);
}

#[tokio::test]
async fn archive_files_and_dead_letters_go_where_the_layout_says() {
    let moto = Moto::start();
    let (sdk, log) = logged_sdk(&moto).await;
    let (_, client) = bucket_and_logged_s3(&sdk, &log).await;
    let location = S3Location::new(BUCKET, "/insights/").expect("location");
    let archive = S3Archive::new(client.clone(), location.clone());
    let records = vec![record(0, 0), record(1, 0), record(2, 0)];
    archive.publish(&records).await.expect("archived");

    let sent = log.take();
    let puts: Vec<&Sent> = sent.iter().filter(|s| s.method == "PUT").collect();
    assert_eq!(puts.len(), 2, "one file per account and region: {sent:?}");
    let mut archived = Vec::new();
    for put in &puts {
        let path = put.path();
        let prefix = format!("/{BUCKET}/insights/AWSLogs/111122223333/CloudTrail-Insight/");
        assert!(path.starts_with(&prefix), "{path}");
        assert!(path.ends_with(".json.gz"), "{path}");
        assert_eq!(put.header("content-type"), Some("application/x-gzip"));
        let mut text = String::new();
        GzDecoder::new(put.raw.as_slice())
            .read_to_string(&mut text)
            .expect("gzip");
        let file: Value = serde_json::from_str(&text).expect("json");
        for record in file["Records"].as_array().expect("Records") {
            let record: InsightRecord = serde_json::from_value(record.clone()).expect("record");
            assert!(path.contains(&format!("/{}/", record.aws_region)), "{path}");
            archived.push(record);
        }
    }
    archived.sort_by(|a, b| a.event_time.cmp(&b.event_time));
    assert_eq!(archived, records);

    // A dead letter: one object per record, under the state location, named by its eventID.
    let letters = S3DeadLetters::new(client, location);
    let letter = Pending::new(records[1].clone());
    letters.dead_letter(&letter).await.expect("dead letter");
    let sent = log.take();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].method, "PUT");
    assert_eq!(
        sent[0].path(),
        format!(
            "/{BUCKET}/insights/dead-letters/2026/03/02/{}.json",
            records[1].event_id
        )
    );
    assert_eq!(sent[0].header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&sent[0].raw).expect("json");
    assert_eq!(body["record"]["eventID"], records[1].event_id.as_str());
}

#[tokio::test]
async fn state_bodies_and_log_objects_are_read_as_asked() {
    let moto = Moto::start();
    let (sdk, log) = logged_sdk(&moto).await;
    let (plain, client) = bucket_and_logged_s3(&sdk, &log).await;

    // The state body: written under its version and token, gzip-encoded JSON, read back and
    // deleted by the same key.
    let body = S3StateBody::new(
        client.clone(),
        S3Location::new(BUCKET, "ts").expect("location"),
    );
    let key = body.key(7, "tok");
    assert_eq!(key, "ts/state/v7-tok.json.gz");
    body.put(&key, b"\x1f\x8bnot checked here".to_vec())
        .await
        .expect("put");
    assert!(body.get(&key).await.expect("get").is_some());
    body.delete_best_effort(&key).await;
    assert_eq!(body.get(&key).await.expect("get after delete"), None);
    let sent = log.take();
    let methods: Vec<&str> = sent.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["PUT", "GET", "DELETE", "GET"]);
    for request in &sent {
        assert_eq!(request.path(), format!("/{BUCKET}/ts/state/v7-tok.json.gz"));
    }
    assert_eq!(sent[0].header("content-encoding"), Some("gzip"));
    assert_eq!(sent[0].header("content-type"), Some("application/json"));

    // Log objects: a version asked for is asked of S3; listings are delimited by `/`.
    let objects = S3Objects::new(client);
    plain
        .put_object()
        .bucket(BUCKET)
        .key("AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/a b.json.gz")
        .body(b"x".to_vec().into())
        .send()
        .await
        .expect("put log");
    let opened = objects
        .open(
            BUCKET,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/a b.json.gz",
            Some("v-1"),
            1 << 20,
        )
        .await;
    // moto has no such version on an unversioned bucket: what matters is what was asked.
    drop(opened);
    let dirs = objects
        .list_dirs(BUCKET, "AWSLogs/")
        .await
        .expect("list dirs");
    assert_eq!(dirs, ["AWSLogs/111122223333/"]);
    let keys = objects
        .list_keys(
            BUCKET,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/",
        )
        .await
        .expect("list keys");
    assert_eq!(keys.len(), 1);
    let sent = log.take();
    assert_eq!(sent[0].method, "GET");
    assert_eq!(
        sent[0].path(),
        format!("/{BUCKET}/AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/a b.json.gz")
    );
    assert_eq!(sent[0].query("versionId").as_deref(), Some("v-1"));
    let listings: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.query("list-type").as_deref() == Some("2"))
        .collect();
    assert_eq!(listings.len(), 2, "{sent:?}");
    assert_eq!(listings[0].query("prefix").as_deref(), Some("AWSLogs/"));
    assert_eq!(listings[0].query("delimiter").as_deref(), Some("/"));
    assert_eq!(
        listings[1].query("delimiter"),
        None,
        "keys are listed whole"
    );
}

#[tokio::test]
async fn run_metrics_are_one_put_metric_data_in_the_namespace() {
    let moto = Moto::start();
    let (sdk, log) = logged_sdk(&moto).await;
    let client = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&sdk)
            .interceptor(log.clone())
            .build(),
    );
    let metrics = RunMetrics {
        started: Some([2, 1]),
        active: Some([1, 0]),
        series_evaluated: Some(40),
        lag_minutes: Some(21),
        run_errors: 0,
        delivery: Some([0, 0, 3, 45, 1]),
    };
    for level in [MetricsLevel::Full, MetricsLevel::Basic, MetricsLevel::Off] {
        CloudWatchMetrics::new(client.clone(), "Sec/Trailsight", level)
            .put_run_metrics(&metrics)
            .await
            .expect("metrics");
        let sent = log.take();
        let wanted = metrics.datums_at(level);
        if wanted.is_empty() {
            assert!(sent.is_empty(), "{level:?}: nothing to send, nothing sent");
            continue;
        }
        assert_eq!(sent.len(), 1, "{level:?}: one call: {sent:?}");
        // awsQuery, as the pinned client speaks it: a form of dotted member names.
        let form = sent[0].form();
        let field = |name: &str| {
            form.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(field("Action"), Some("PutMetricData"));
        assert_eq!(field("Namespace"), Some("Sec/Trailsight"));
        let count = (1..)
            .take_while(|i| field(&format!("MetricData.member.{i}.MetricName")).is_some())
            .count();
        assert_eq!(count, wanted.len());
        assert!(count <= 1000, "PutMetricData takes 1,000 data at most");
        let mut data = Vec::new();
        for (i, want) in (1..).zip(&wanted) {
            let member = |rest: &str| field(&format!("MetricData.member.{i}.{rest}"));
            assert_eq!(member("MetricName"), Some(want.name));
            let value: f64 = member("Value").and_then(|v| v.parse().ok()).expect("value");
            assert_eq!(value, want.value);
            match want.dimension {
                Some((name, value)) => {
                    assert_eq!(member("Dimensions.member.1.Name"), Some(name));
                    assert_eq!(member("Dimensions.member.1.Value"), Some(value));
                }
                None => assert_eq!(member("Dimensions.member.1.Name"), None),
            }
            data.push(serde_json::json!({
                "MetricName": member("MetricName"),
                "Dimensions": member("Dimensions.member.1.Name").map(|n| vec![serde_json::json!({"Name": n})]),
            }));
        }
        let names: Vec<&str> = data
            .iter()
            .filter_map(|d| d["MetricName"].as_str())
            .collect();
        if level == MetricsLevel::Basic {
            assert_eq!(names, [DETECTOR_LAG_MINUTES]);
        } else {
            assert!(names.contains(&RUN_ERRORS), "{names:?}");
            let started: Vec<&Value> = data
                .iter()
                .filter(|d| d["MetricName"] == INSIGHTS_STARTED && !d["Dimensions"].is_null())
                .collect();
            assert!(
                started
                    .iter()
                    .all(|d| d["Dimensions"][0]["Name"] == INSIGHT_TYPE),
                "{started:?}"
            );
            assert_eq!(started.len(), 2, "one per insight type");
        }
    }
}

#[tokio::test]
async fn alerts_are_published_in_the_chat_format_with_text_for_e_mail() {
    use trailsight::aws::sns::SnsAlerts;
    let moto = Moto::start();
    let (sdk, log) = logged_sdk(&moto).await;
    let subscribed = SubscribedTopic::create(&sdk, "trailsight-alerts").await;
    let topic = subscribed.topic_arn.clone();
    let client = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&sdk)
            .interceptor(log.clone())
            .build(),
    );
    let records = vec![record(0, 0), record(1, 0)];
    SnsAlerts::new(client, &topic)
        .publish(&records)
        .await
        .expect("published");

    // The requests: one Publish per record, JSON structure, subject and attributes.
    let sent = log.take();
    assert_eq!(sent.len(), 2, "{sent:?}");
    for (request, record) in sent.iter().zip(&records) {
        let form = request.form();
        let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(field("Action").as_deref(), Some("Publish"));
        assert_eq!(field("TopicArn").as_deref(), Some(topic.as_str()));
        assert_eq!(field("MessageStructure").as_deref(), Some("json"));
        let subject = field("Subject").expect("subject");
        assert!(
            subject.len() <= 100 && subject.starts_with("Unusual iam CreateUser"),
            "{subject}"
        );
        let message: Value =
            serde_json::from_str(&field("Message").expect("message")).expect("json message");
        let chat: Value =
            serde_json::from_str(message["default"].as_str().expect("default")).expect("chat");
        assert_eq!(chat["version"], "1.0");
        assert_eq!(chat["source"], "custom");
        assert_eq!(chat["id"], record.event_id.as_str());
        assert_eq!(
            chat["metadata"]["threadId"],
            record.shared_event_id.as_str()
        );
        assert!(
            message["email"]
                .as_str()
                .expect("email")
                .contains("Usual rate:")
        );
        let attributes: Vec<(String, String)> = (1..=3)
            .filter_map(|i| {
                Some((
                    field(&format!("MessageAttributes.entry.{i}.Name"))?,
                    field(&format!("MessageAttributes.entry.{i}.Value.StringValue"))?,
                ))
            })
            .collect();
        assert!(
            attributes.contains(&("insightState".to_owned(), "Start".to_owned())),
            "{attributes:?}"
        );
    }

    // What the subscriber got: the chat notifications, in order.
    let received: Vec<String> = subscribed
        .receive_json(2)
        .await
        .iter()
        .map(|chat| chat["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = records.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(received, expected);
}

#[tokio::test]
async fn findings_are_imported_in_batches_retried_and_updated_at_the_end() {
    use trailsight::aws::securityhub::SecurityHubFindings;
    use trailsight::findings::MAX_FINDINGS_PER_CALL;
    use trailsight_integration::TestProxy;

    let moto = Moto::start();
    // The first BatchImportFindings call has its first finding refused (HTTP 200, FailedCount 1).
    let proxy = TestProxy::start(
        "tests/eventbridge_fault_proxy.py",
        &moto.endpoint,
        &["--fail-calls".to_owned(), "1".to_owned()],
    );
    let through_proxy = trailsight_integration::sdk_config_for(&proxy.endpoint).await;
    let log = RequestLog::default();
    let client = aws_sdk_securityhub::Client::from_conf(
        aws_sdk_securityhub::config::Builder::from(&through_proxy)
            .interceptor(log.clone())
            .build(),
    );
    let product = "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default";
    // 120 insights' Starts, then the End of the first two: 122 records, one run's worth.
    let mut records: Vec<InsightRecord> = (0..120).map(|i| record(i, 0)).collect();
    for i in 0..2 {
        let mut end = record(i, 0);
        end.insight_details.state = InsightState::End;
        end.event_id = format!("end-{i}");
        // Insight `i` started at 14:07 + i (record()); it lasted 30 minutes.
        end.event_time = format!("2026-03-02T14:{:02}:00Z", 37 + i);
        end.insight_details
            .insight_context
            .statistics
            .insight_duration = 30;
        records.push(end);
    }
    SecurityHubFindings::new(client, product)
        .with_finding_retries(4, std::time::Duration::from_millis(10))
        .publish(&records)
        .await
        .expect("imported");

    // The requests: POST /findings/import, at most 100 findings each, an Id once per call, the
    // refused finding sent again, each End after its Start was imported.
    let sent = log.take();
    let calls: Vec<Vec<(String, String)>> = sent
        .iter()
        .map(|request| {
            assert_eq!(request.method, "POST");
            assert_eq!(request.path(), "/findings/import");
            request.body["Findings"]
                .as_array()
                .expect("findings")
                .iter()
                .map(|f| {
                    (
                        f["Id"].as_str().unwrap_or_default().to_owned(),
                        f["ProductFields"]["trailsight/state"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .collect();
    let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 1, 22], "{calls:?}");
    assert_eq!(calls[1], [("shared-0".to_owned(), "Start".to_owned())]);
    assert!(sizes.iter().all(|&n| n <= MAX_FINDINGS_PER_CALL));
    for call in &calls {
        let mut ids: Vec<&str> = call.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), call.len(), "an Id twice in one call");
    }
    assert_eq!(
        calls[2][20..],
        [
            ("shared-0".to_owned(), "End".to_owned()),
            ("shared-1".to_owned(), "End".to_owned())
        ]
    );
    let first = &sent[0].body["Findings"][0];
    assert_eq!(first["SchemaVersion"], "2018-10-08");
    assert_eq!(first["ProductArn"], product);
    assert_eq!(first["AwsAccountId"], "111122223333");
    assert_eq!(first["Workflow"]["Status"], "NEW");
    assert_eq!(first["RecordState"], "ACTIVE");
    assert_eq!(first["Resources"][0]["Type"], "AwsAccount");
    let stats = proxy.control("GET", "/__proxy/stats");
    assert_eq!(stats["import_findings"], 3, "{stats}");
    assert_eq!(stats["failed_entries"], 1, "{stats}");

    // What Security Hub holds: one finding per insight; the two that ended were updated in place
    // (the End's statistics and times), the analyst's workflow status left as the Start set it.
    let sdk = moto.sdk_config().await;
    let hub = aws_sdk_securityhub::Client::new(&sdk);
    let mut findings = Vec::new();
    let mut token = None;
    loop {
        let page = hub
            .get_findings()
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .expect("findings");
        findings.extend(page.findings().iter().cloned());
        token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(findings.len(), 120);
    let by_id = |id: &str| {
        findings
            .iter()
            .find(|f| f.id() == Some(id))
            .unwrap_or_else(|| panic!("finding {id}"))
    };
    for (id, state) in [
        ("shared-0", "End"),
        ("shared-1", "End"),
        ("shared-7", "Start"),
    ] {
        let finding = by_id(id);
        let fields = finding.product_fields().expect("product fields");
        assert_eq!(
            fields.get("trailsight/state").map(String::as_str),
            Some(state)
        );
        assert_eq!(
            finding
                .workflow()
                .and_then(|w| w.status())
                .map(|s| s.as_str()),
            Some("NEW")
        );
    }
    let ended = by_id("shared-0");
    assert_eq!(ended.updated_at(), Some("2026-03-02T14:37:00Z"));
    assert_eq!(ended.last_observed_at(), Some("2026-03-02T14:37:00Z"));
    // The End names the same first minute as the Start: CreatedAt does not move.
    assert_eq!(ended.first_observed_at(), Some("2026-03-02T14:07:00Z"));
    assert_eq!(ended.created_at(), Some("2026-03-02T14:07:00Z"));
}
