//! The detect pipeline on moto, through the real SDK clients: counters written as deltas through
//! `DynamoStore` (folded from hand-made CloudTrail records), the detector state in DynamoDB,
//! insights published to EventBridge and captured by a rule → SQS queue, archived to S3, run
//! metrics in CloudWatch; with a state bucket, the state's body as one S3 object per version.
//! Checked: overlapping runs publish each record once (the body in the table or in S3); a run that dies
//! after publishing is completed by the next with the same identifiers; EventBridge's partial
//! failures are retried; a missed schedule catches up to exactly what running every minute
//! gives; the metric names and dimensions the template's alarms read; the archive's key layout.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use trailsight::aws::cloudwatch::{CloudWatchMetrics, cloudwatch_client};
use trailsight::aws::dynamodb::{DynamoStore, create_table};
use trailsight::aws::eventbridge::{EventBridgePublisher, eventbridge_client};
use trailsight::aws::retry::{dynamodb_client, s3_client};
use trailsight::aws::state_body::S3StateBody;
use trailsight::classify::ClassifyOptions;
use trailsight::config::DetectorConfig;
use trailsight::detect::{
    CollectingPublisher, DetectError, InsightPublish, PublishError, RunReport, run_detector,
};
use trailsight::detector::DetectorState;
use trailsight::fold::{Delta, Folder};
use trailsight::insight::{InsightRecord, InsightState};
use trailsight::insight_files::plan_files;
use trailsight::memory::MemoryStore;
use trailsight::metrics::{MetricsLevel, MetricsPublish, RunMetrics};
use trailsight::minute::{Minute, format_minute, parse_minute};
use trailsight::s3key::{KeyKind, classify_key};
use trailsight::s3location::S3Location;
use trailsight::series::InsightType;
use trailsight::store::{DeltaWrite, FileId, StateStore, StoreError};
use trailsight_detect::config::Config;
use trailsight_detect::handler::Detect;
use trailsight_integration::{Moto, TestProxy, atomic_dynamo, sdk_config_for};

const TABLE: &str = "trailsight-detect-test";
const SOURCE: &str = "trailsight";
const DETAIL_TYPE: &str = "AWS Insight via CloudTrail";
const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

// ---------------------------------------------------------------------------------------------
// The scenario: six hours of one account and region, with four spikes after a one-hour warm-up.

/// Minute 0 of the scenario.
fn base() -> Minute {
    parse_minute("2026-03-02T00:00:00Z").expect("base minute")
}

/// Last minute with activity.
const SCENARIO_MINUTES: i64 = 6 * 60;

/// The detector settings of these tests: the defaults, with a one-hour warm-up.
fn detector_config() -> DetectorConfig {
    DetectorConfig {
        warmup_minutes: 60,
        ..DetectorConfig::default()
    }
}

/// A run time after which every minute of the scenario has been evaluated.
fn end_time() -> Minute {
    base() + SCENARIO_MINUTES + detector_config().settle_minutes + 15
}

fn record(minute: Minute, n: usize, source: &str, name: &str, error: Option<&str>) -> Value {
    let t = trailsight::minute::to_datetime(minute);
    let mut r = json!({
        "eventVersion": "1.08",
        "eventTime": format!("{}:{:02}Z", t.format("%Y-%m-%dT%H:%M"), n % 60),
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "recipientAccountId": ACCOUNT,
        "eventID": format!("{minute}-{name}-{n}"),
        "readOnly": false,
        "managementEvent": true,
        "eventCategory": "Management",
        "eventType": "AwsApiCall",
        "userIdentity": {
            "type": "IAMUser",
            "accountId": ACCOUNT,
            "arn": if name == "CreateTags" {
                format!("arn:aws:iam::{ACCOUNT}:user/ops")
            } else {
                format!("arn:aws:iam::{ACCOUNT}:user/intruder")
            },
        },
        "userAgent": "aws-cli/2.15.0",
    });
    if let Some(code) = error {
        r["errorCode"] = json!(code);
        r["errorMessage"] = json!("denied");
    }
    r
}

/// The scenario's records, by minute.
fn scenario_records() -> Vec<(Minute, Value)> {
    let b = base();
    let mut out = Vec::new();
    for m in 0..SCENARIO_MINUTES {
        // Background: two tagging calls a minute, all along.
        for n in 0..2 {
            out.push((
                b + m,
                record(b + m, n, "ec2.amazonaws.com", "CreateTags", None),
            ));
        }
        let burst: &[(i64, usize, &str, &str, Option<&str>)] = &[
            (120, 30, "iam.amazonaws.com", "CreateAccessKey", None),
            (121, 25, "iam.amazonaws.com", "CreateAccessKey", None),
            (
                200,
                20,
                "iam.amazonaws.com",
                "DeleteUser",
                Some("AccessDenied"),
            ),
            (300, 50, "iam.amazonaws.com", "CreateUser", None),
            (302, 40, "iam.amazonaws.com", "CreateUser", None),
        ];
        for &(at, count, source, name, error) in burst {
            if m == at {
                for n in 0..count {
                    out.push((b + m, record(b + m, n, source, name, error)));
                }
            }
        }
    }
    out
}

/// The scenario as "log files": one per quarter hour of its records, folded.
fn scenario_files() -> Vec<(FileId, Delta)> {
    let mut by_file: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for (minute, record) in scenario_records() {
        by_file
            .entry(minute.div_euclid(15))
            .or_default()
            .push(record);
    }
    by_file
        .into_iter()
        .map(|(slot, records)| {
            let mut folder = Folder::new(ClassifyOptions::default());
            for r in &records {
                folder.add_json(r.to_string().as_bytes());
            }
            let (delta, stats) = folder.finish();
            assert_eq!(stats.counted, records.len() as u64, "every record counts");
            (FileId::new("trail", &format!("file-{slot}")), delta)
        })
        .collect()
}

async fn write_scenario(store: &dyn DeltaWrite) {
    for (file, delta) in scenario_files() {
        store.write_delta(&file, &delta).await.expect("write delta");
    }
}

/// What running the detector every minute on the in-memory store gives: the reference.
async fn every_minute_reference(from: Minute, to: Minute) -> Vec<InsightRecord> {
    let store = MemoryStore::new();
    write_scenario(&store).await;
    let publisher = CollectingPublisher::default();
    for now in from..=to {
        run_detector(&detector_config(), now, &store, &store, &publisher)
            .await
            .expect("memory run");
    }
    publisher.records.into_inner().expect("records")
}

/// Records without their identifiers, sorted: what two runs must agree on.
fn comparable(records: &[InsightRecord]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(&r.without_ids()).expect("json"))
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Harness: moto with the table, a bucket, and a rule forwarding our events to a queue.

struct Env {
    moto: Moto,
    sdk: aws_config::SdkConfig,
    store: Arc<DynamoStore>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    s3: aws_sdk_s3::Client,
}

const ARCHIVE_BUCKET: &str = "trailsight-archive";
const STATE_BUCKET: &str = "trailsight-state";
const STATE_PREFIX: &str = "ts";

fn state_location() -> S3Location {
    S3Location::new(STATE_BUCKET, STATE_PREFIX).expect("a valid location")
}

impl Env {
    async fn start() -> Env {
        let moto = Moto::start();
        let sdk = moto.sdk_config().await;
        let ddb = dynamodb_client(&sdk);
        create_table(&ddb, TABLE).await.expect("create table");
        let store = Arc::new(DynamoStore::new(ddb, TABLE));

        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue_url = sqs
            .create_queue()
            .queue_name("insights")
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .expect("queue url")
            .to_owned();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue arn")
            .clone();
        let events = eventbridge_client(&sdk);
        events
            .put_rule()
            .name("trailsight-insights")
            .event_bus_name("default")
            .event_pattern(json!({ "source": [SOURCE] }).to_string())
            .send()
            .await
            .expect("put rule");
        events
            .put_targets()
            .rule("trailsight-insights")
            .event_bus_name("default")
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("put targets");

        let s3 = s3_client(&sdk);
        for bucket in [ARCHIVE_BUCKET, STATE_BUCKET] {
            s3.create_bucket()
                .bucket(bucket)
                .send()
                .await
                .expect("create bucket");
        }
        Env {
            moto,
            sdk,
            store,
            sqs,
            queue_url,
            s3,
        }
    }

    fn publisher(&self) -> EventBridgePublisher {
        self.publisher_at(&self.sdk)
    }

    /// Items of the arrival log (`A#<hour>`), by a scan (tests only; the code never scans).
    async fn count_arrival_items(&self) -> usize {
        dynamodb_client(&self.sdk)
            .scan()
            .table_name(TABLE)
            .filter_expression("begins_with(pk, :a)")
            .expression_attribute_values(
                ":a",
                aws_sdk_dynamodb::types::AttributeValue::S("A#".into()),
            )
            .send()
            .await
            .expect("scan")
            .items()
            .len()
    }

    fn publisher_at(&self, sdk: &aws_config::SdkConfig) -> EventBridgePublisher {
        EventBridgePublisher::new(eventbridge_client(sdk), "default", SOURCE, DETAIL_TYPE)
            .expect("publisher")
            .with_entry_retries(4, Duration::from_millis(20))
    }

    /// Every event the rule delivered since the last call, as (event, record).
    async fn drain(&self) -> Vec<(Value, InsightRecord)> {
        let mut out = Vec::new();
        let mut empty_polls = 0;
        while empty_polls < 2 {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive");
            let messages = received.messages();
            if messages.is_empty() {
                empty_polls += 1;
                continue;
            }
            for message in messages {
                let event: Value =
                    serde_json::from_str(message.body().expect("body")).expect("event JSON");
                let record: InsightRecord =
                    serde_json::from_value(event["detail"].clone()).expect("detail is a record");
                out.push((event, record));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().expect("handle"))
                    .send()
                    .await
                    .expect("delete");
            }
        }
        out
    }

    async fn drain_records(&self) -> Vec<InsightRecord> {
        self.drain().await.into_iter().map(|(_, r)| r).collect()
    }

    async fn archive_keys(&self) -> Vec<String> {
        self.keys(ARCHIVE_BUCKET).await
    }

    async fn keys(&self, bucket: &str) -> Vec<String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .expect("list");
        let mut keys: Vec<String> = listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }

    /// The same table, with the state's body in the state bucket.
    fn store_with_state_bucket(&self) -> DynamoStore {
        DynamoStore::new(dynamodb_client(&self.sdk), TABLE)
            .with_state_body(S3StateBody::new(s3_client(&self.sdk), state_location()))
    }

    /// The sort keys of the state partition (`HEAD` and any chunks).
    async fn state_items(&self) -> Vec<String> {
        let output = self
            .store
            .client()
            .query()
            .table_name(TABLE)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S("S".into()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("query state partition");
        output
            .items()
            .iter()
            .filter_map(|item| item.get("sk")?.as_s().ok().cloned())
            .collect()
    }

    /// The head's `s3key`, if any.
    async fn head_s3key(&self) -> Option<String> {
        let output = self
            .store
            .client()
            .get_item()
            .table_name(TABLE)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("S".into()))
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("HEAD".into()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("get head");
        output.item()?.get("s3key")?.as_s().ok().cloned()
    }
}

/// Each record's (sharedEventID, state) once, or the duplicates.
fn assert_each_once(records: &[InsightRecord]) {
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for r in records {
        *seen
            .entry((
                r.shared_event_id.clone(),
                format!("{:?}", r.insight_details.state),
            ))
            .or_default() += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "published more than once: {repeated:?}"
    );
    let ids: BTreeSet<&str> = records.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids.len(), records.len(), "an eventID repeats");
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn overlapping_runs_publish_each_record_once() {
    let env = Env::start().await;
    overlapping_runs_on(&env, env.store.as_ref()).await;
    assert_eq!(env.head_s3key().await, None);
}

#[tokio::test]
async fn overlapping_runs_publish_each_record_once_with_the_state_in_s3() {
    let env = Env::start().await;
    let store = env.store_with_state_bucket();
    overlapping_runs_on(&env, &store).await;
    // One object, the current version's; no chunk items.
    let key = env.head_s3key().await.expect("the head names its object");
    assert_eq!(env.keys(STATE_BUCKET).await, vec![key]);
    assert_eq!(env.state_items().await, vec!["HEAD".to_owned()]);
}

async fn overlapping_runs_on(env: &Env, store: &DynamoStore) {
    // The two runs race on the state head's conditional update: through a proxy that gives moto
    // DynamoDB's atomicity (tests/fault_proxy.py --atomic-writes); it flaked without.
    let atomic = atomic_dynamo(&env.moto.endpoint);
    let through = sdk_config_for(&atomic.endpoint).await;
    let mut racing = DynamoStore::new(dynamodb_client(&through), TABLE);
    if let Some(body) = store.state_body() {
        racing = racing.with_state_body(body.clone());
    }
    let store = &racing;
    write_scenario(store).await;
    let config = detector_config();
    let publisher = env.publisher();
    let (mut completed, mut superseded) = (0, 0);
    // Two runs at once at every step, as an overlapping schedule would start them.
    let mut now = base() + 30;
    while now <= end_time() {
        let (a, b) = tokio::join!(
            run_detector(&config, now, store, store, &publisher),
            run_detector(&config, now, store, store, &publisher),
        );
        for result in [a, b] {
            match result {
                Ok(_) => completed += 1,
                Err(DetectError::Store(StoreError::Conflict)) => superseded += 1,
                Err(other) => panic!("run at {}: {other}", format_minute(now)),
            }
        }
        now += 45;
    }
    assert!(completed > 0 && superseded > 0, "{completed} {superseded}");

    let published = env.drain_records().await;
    assert_each_once(&published);
    let reference = every_minute_reference(base() + 30, end_time()).await;
    assert_eq!(comparable(&published), comparable(&reference));
    let starts = published
        .iter()
        .filter(|r| r.insight_details.state == InsightState::Start)
        .count();
    assert_eq!(
        starts, 4,
        "CreateAccessKey, DeleteUser and its error, CreateUser"
    );
    assert_eq!(published.len(), 8, "each insight started and ended");
    let state = store.load_state().await.expect("state").state;
    assert!(state.outbox.is_empty());
}

#[tokio::test]
async fn the_state_body_in_s3_is_one_object_per_version_and_old_ones_go() {
    let env = Env::start().await;
    let store = env.store_with_state_bucket();
    let empty = store.load_state().await.expect("load");
    assert_eq!((empty.version, empty.state), (0, DetectorState::default()));

    write_scenario(&store).await;
    let report = run_detector(
        &detector_config(),
        end_time(),
        &store,
        &store,
        &CollectingPublisher::default(),
    )
    .await
    .expect("run");
    assert_eq!(report.published.len(), 8);
    // The run saved twice (its records in the outbox, then the outbox emptied once published);
    // only the last version's object is left.
    let state = store.load_state().await.expect("load");
    let v = state.version;
    assert!(v >= 1);
    assert!(state.state.series.len() >= 5);
    let first = env.head_s3key().await.expect("s3key");
    assert!(
        first.starts_with(&format!("ts/state/v{v}-")) && first.ends_with(".json.gz"),
        "{first}"
    );
    assert_eq!(env.keys(STATE_BUCKET).await, vec![first.clone()]);
    assert_eq!(env.state_items().await, vec!["HEAD".to_owned()]);

    // A save over the current version replaces the object; the old one is deleted.
    let mut next = state.state.clone();
    next.watermark = next.watermark.map(|w| w + 1);
    assert_eq!(store.save_state(&next, v).await.expect("save"), v + 1);
    let second = env.head_s3key().await.expect("s3key");
    assert!(
        second.starts_with(&format!("ts/state/v{}-", v + 1)),
        "{second}"
    );
    assert_eq!(env.keys(STATE_BUCKET).await, vec![second.clone()]);
    let loaded = store.load_state().await.expect("load");
    assert_eq!(loaded.version, v + 1);
    assert!(loaded.state == next);

    // A save over a stale version loses the conditional update and deletes its own object.
    assert!(matches!(
        store.save_state(&DetectorState::default(), v).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(env.keys(STATE_BUCKET).await, vec![second.clone()]);

    // Two savers of the same version (one after the other: moto's conditional updates are not
    // atomic under concurrent requests): the second loses, and only the winner's object stays.
    let small = DetectorState {
        watermark: Some(7),
        ..DetectorState::default()
    };
    let v = v + 1;
    assert_eq!(
        store.save_state(&next, v).await.expect("first saver"),
        v + 1
    );
    assert!(matches!(
        store.save_state(&small, v).await,
        Err(StoreError::Conflict)
    ));
    let third = env.head_s3key().await.expect("s3key");
    assert!(
        third.starts_with(&format!("ts/state/v{}-", v + 1)),
        "{third}"
    );
    assert_eq!(env.keys(STATE_BUCKET).await, vec![third]);
    assert!(store.load_state().await.expect("load").state == next);
    let v = v + 1;

    // Without the bucket, a store says where the state is rather than reading nothing.
    let Err(error) = env.store.load_state().await else {
        panic!("a store without the bucket read a state kept in S3");
    };
    assert!(
        error.to_string().contains("TRAILSIGHT_STATE_BUCKET"),
        "{error}"
    );

    // Back to chunks (the bucket unset): the head loses its s3key, and the last object stays (a
    // store without the bucket cannot delete it); back to S3 again: the chunks go.
    assert_eq!(
        env.store.save_state(&small, v).await.expect("to chunks"),
        v + 1
    );
    assert_eq!(env.head_s3key().await, None);
    assert_eq!(env.keys(STATE_BUCKET).await.len(), 1);
    assert_eq!(env.state_items().await.len(), 2, "head and one chunk");
    assert!(env.store.load_state().await.expect("load").state == small);
    assert_eq!(store.load_state().await.expect("load").version, v + 1);
    assert_eq!(store.save_state(&next, v + 1).await.expect("to S3"), v + 2);
    assert_eq!(env.state_items().await, vec!["HEAD".to_owned()]);
    assert_eq!(env.keys(STATE_BUCKET).await.len(), 2);
}

#[tokio::test]
async fn a_deleted_state_object_is_corruption_not_an_empty_state() {
    let env = Env::start().await;
    let store = env.store_with_state_bucket();
    let state = DetectorState {
        watermark: Some(9),
        ..DetectorState::default()
    };
    assert_eq!(store.save_state(&state, 0).await.expect("save"), 1);
    let key = env.head_s3key().await.expect("s3key");
    env.s3
        .delete_object()
        .bucket(STATE_BUCKET)
        .key(&key)
        .send()
        .await
        .expect("delete");
    let Err(error) = store.load_state().await else {
        panic!("a state whose object is gone was read");
    };
    assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
    assert!(error.to_string().contains(&key), "{error}");
}

/// Publishes, signals, then never returns: the run is dropped there, as if its Lambda died
/// between publishing and recording that it published.
struct DiesAfterPublishing {
    inner: EventBridgePublisher,
    published: tokio::sync::Notify,
}

#[async_trait]
impl InsightPublish for DiesAfterPublishing {
    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)> {
        self.inner.publish(records).await?;
        self.published.notify_one();
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[tokio::test]
async fn a_run_that_dies_after_publishing_is_completed_with_the_same_ids() {
    let env = Env::start().await;
    write_scenario(env.store.as_ref()).await;
    let config = detector_config();
    let store = env.store.as_ref();
    let dying = DiesAfterPublishing {
        inner: env.publisher(),
        published: tokio::sync::Notify::new(),
    };
    let now = end_time();
    tokio::select! {
        result = run_detector(&config, now, store, store, &dying) => {
            panic!("the run should have died while publishing: {:?}", result.map(|r| r.published.len()))
        }
        () = dying.published.notified() => {}
    }
    let first = env.drain_records().await;
    assert_eq!(first.len(), 8);
    // What the dead run left: its records, still in the outbox.
    let left = env.store.load_state().await.expect("state").state;
    assert_eq!(left.outbox.len(), 8);

    let report = run_detector(&config, now, store, store, &env.publisher())
        .await
        .expect("recovery run");
    assert_eq!(report.published.len(), 8);
    assert_eq!(report.minutes, 0, "nothing new to evaluate");
    let second = env.drain_records().await;
    let ids = |records: &[InsightRecord]| -> BTreeSet<(String, String)> {
        records
            .iter()
            .map(|r| (r.event_id.clone(), r.shared_event_id.clone()))
            .collect()
    };
    assert_eq!(
        ids(&first),
        ids(&second),
        "the same eventIDs and sharedEventIDs"
    );
    assert_eq!(
        first
            .iter()
            .map(|r| r.event_id.clone())
            .collect::<Vec<_>>()
            .len(),
        8
    );
    for r in &second {
        let original = first
            .iter()
            .find(|o| o.event_id == r.event_id)
            .expect("original");
        assert_eq!(original, r, "republished unchanged");
    }
    // Nothing is left: a third run publishes nothing.
    let report = run_detector(&config, now + 1, store, store, &env.publisher())
        .await
        .expect("third run");
    assert!(report.published.is_empty());
    assert!(env.drain_records().await.is_empty());
    assert!(
        env.store
            .load_state()
            .await
            .expect("state")
            .state
            .outbox
            .is_empty()
    );
}

/// `tests/eventbridge_fault_proxy.py` in front of moto; killed on drop.
struct EventBridgeFaults {
    proxy: TestProxy,
    endpoint: String,
}

impl EventBridgeFaults {
    fn start(upstream: &str, fail_calls: i64) -> EventBridgeFaults {
        let args = ["--fail-calls".to_owned(), fail_calls.to_string()];
        let proxy = TestProxy::start("tests/eventbridge_fault_proxy.py", upstream, &args);
        let endpoint = proxy.endpoint.clone();
        EventBridgeFaults { proxy, endpoint }
    }

    /// The proxy's counters; `fail` resets the failing calls left.
    fn control(&self, fail: Option<i64>) -> Value {
        match fail {
            Some(n) => self.proxy.control("POST", &format!("/__proxy/fail?n={n}")),
            None => self.proxy.control("GET", "/__proxy/stats"),
        }
    }
}

#[tokio::test]
async fn eventbridge_partial_failures_are_retried_and_published_once() {
    let env = Env::start().await;
    write_scenario(env.store.as_ref()).await;
    let config = detector_config();
    let store = env.store.as_ref();
    let proxy = EventBridgeFaults::start(&env.moto.endpoint, 1);
    let through_proxy = env.publisher_at(&sdk_config_for(&proxy.endpoint).await);

    // The first PutEvents answers HTTP 200 with FailedEntryCount 1; the entry is retried.
    let report = run_detector(&config, end_time(), store, store, &through_proxy)
        .await
        .expect("run");
    assert_eq!(report.published.len(), 8);
    let stats = proxy.control(None);
    assert_eq!(stats["failed_entries"], 1, "{stats}");
    assert_eq!(
        stats["put_events"], 2,
        "one call for 8 entries, one retry: {stats}"
    );
    let published = env.drain_records().await;
    assert_each_once(&published);
    assert_eq!(published.len(), 8);
    assert_eq!(comparable(&published), comparable(&report.published));

    // An entry that keeps failing: the run fails, the outbox keeps exactly that record, and the
    // next run publishes it with its identifiers.
    let env = Env::start().await;
    write_scenario(env.store.as_ref()).await;
    let store = env.store.as_ref();
    let proxy = EventBridgeFaults::start(&env.moto.endpoint, -1);
    let through_proxy = env.publisher_at(&sdk_config_for(&proxy.endpoint).await);
    let report = run_detector(&config, end_time(), store, store, &through_proxy)
        .await
        .expect("a delivery failure does not fail the run's evaluation");
    assert_eq!(report.delivery_failures, 1);
    assert_eq!(report.undelivered, 1);
    assert!(
        report
            .delivery_error
            .as_deref()
            .is_some_and(|e| e.contains("1 of 8")),
        "{report:?}"
    );
    assert_eq!(
        report.evaluated.map(|(_, to)| to),
        Some(end_time() - config.settle_minutes)
    );
    assert_eq!(proxy.control(None)["put_events"], 4, "four attempts");
    let first = env.drain_records().await;
    assert_eq!(first.len(), 7);
    let kept: Vec<InsightRecord> = env
        .store
        .load_state()
        .await
        .expect("state")
        .state
        .outbox
        .into_iter()
        .map(|p| p.record)
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(!first.iter().any(|r| r.event_id == kept[0].event_id));

    proxy.control(Some(0));
    let report = run_detector(&config, end_time(), store, store, &through_proxy)
        .await
        .expect("the next run");
    assert_eq!(report.published, kept);
    let second = env.drain_records().await;
    assert_eq!(second, kept);
    let all: Vec<InsightRecord> = first.into_iter().chain(second).collect();
    assert_each_once(&all);
    assert_eq!(all.len(), 8);
}

#[tokio::test]
async fn a_missed_schedule_catches_up_to_the_every_minute_result() {
    let env = Env::start().await;
    write_scenario(env.store.as_ref()).await;
    let config = detector_config();
    let store = env.store.as_ref();
    let publisher = env.publisher();
    let start = base() + 30;
    // Every fifth minute (T, skip T+1..T+4, T+5...), and one outage of two hours over the
    // DeleteUser and CreateUser insights.
    let mut runs = Vec::new();
    let mut now = start;
    while now <= end_time() {
        if !(base() + 190..base() + 310).contains(&now) {
            runs.push(now);
        }
        now += 5;
    }
    runs.push(end_time());
    let mut reports: Vec<RunReport> = Vec::new();
    for &now in &runs {
        reports.push(
            run_detector(&config, now, store, store, &publisher)
                .await
                .expect("run"),
        );
    }
    // (The first run evaluates its whole catch-up window; the one after the outage, 125 minutes.)
    let catch_up = reports
        .iter()
        .skip(1)
        .find(|r| r.minutes > 100)
        .expect("the run after the outage evaluates its minutes");
    assert!(catch_up.published.len() >= 2, "{catch_up:?}");

    let published = env.drain_records().await;
    let reference = every_minute_reference(start, end_time()).await;
    assert_eq!(reference.len(), 8);
    assert_eq!(comparable(&published), comparable(&reference));
    // Same episodes, same times: the schedule changes nothing but when records go out.
    let times = |records: &[InsightRecord]| -> Vec<(String, String)> {
        let mut t: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    r.event_time.clone(),
                    format!("{:?}", r.insight_details.state),
                )
            })
            .collect();
        t.sort();
        t
    };
    assert_eq!(times(&published), times(&reference));
}

#[tokio::test]
async fn the_detect_function_publishes_archives_and_reports_metrics() {
    let env = Env::start().await;
    write_scenario(env.store.as_ref()).await;
    let vars: HashMap<&str, &str> = [
        ("TRAILSIGHT_TABLE", TABLE),
        ("TRAILSIGHT_ARCHIVE_BUCKET", ARCHIVE_BUCKET),
        ("TRAILSIGHT_ARCHIVE_PREFIX", "insights"),
        ("TRAILSIGHT_METRIC_NAMESPACE", "TrailsightTest"),
        ("TRAILSIGHT_STATE_BUCKET", STATE_BUCKET),
        ("TRAILSIGHT_STATE_PREFIX", STATE_PREFIX),
        ("TRAILSIGHT_METRICS", "full"),
    ]
    .into_iter()
    .collect();
    let mut config =
        Config::from_lookup(|name| vars.get(name).map(|v| v.to_string())).expect("config");
    config.detector = detector_config();
    let detect = Detect::new(&config, &env.sdk).expect("function");
    let event = |at: Minute| {
        json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": format!("{}", trailsight::minute::to_datetime(at).format("%Y-%m-%dT%H:%M:37Z")),
            "region": REGION,
            "resources": ["arn:aws:events:us-east-1:111122223333:rule/tick"],
            "detail": {}
        })
    };
    let summary = detect
        .handle(event(end_time()), None)
        .await
        .expect("invocation");
    assert_eq!(summary.outcome, "completed");
    assert_eq!(summary.evaluation_time, format_minute(end_time()));
    assert_eq!(
        (summary.published, summary.started, summary.ended),
        (8, 4, 4)
    );
    assert_eq!(summary.lag_minutes, detector_config().settle_minutes);
    // The state's body went to the state bucket, named by the head.
    let state_key = env.head_s3key().await.expect("s3key");
    assert_eq!(env.keys(STATE_BUCKET).await, vec![state_key]);
    assert_eq!(env.state_items().await, vec!["HEAD".to_owned()]);

    // EventBridge: the record as detail, our source, the service's detail-type.
    let events = env.drain().await;
    assert_eq!(events.len(), 8);
    for (event, record) in &events {
        assert_eq!(event["source"], SOURCE);
        assert_eq!(event["detail-type"], DETAIL_TYPE);
        assert_eq!(event["detail"]["eventID"], record.event_id.as_str());
        assert_eq!(event["detail"]["eventCategory"], "Insight");
    }
    let records: Vec<InsightRecord> = events.into_iter().map(|(_, r)| r).collect();

    // S3: one file for the batch's account and region, at the key the layout gives, holding
    // every record; the ingest function would skip it.
    let keys = env.archive_keys().await;
    let mut expected: Vec<String> = plan_files("insights", &records)
        .into_iter()
        .map(|f| f.key)
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
    let key = &keys[0];
    assert!(
        key.starts_with(&format!(
            "insights/AWSLogs/{ACCOUNT}/CloudTrail-Insight/{REGION}/2026/03/02/{ACCOUNT}_CloudTrail-Insight_{REGION}_20260302T"
        )),
        "{key}"
    );
    assert!(matches!(classify_key(key), KeyKind::Skip(_)));
    let object = env
        .s3
        .get_object()
        .bucket(ARCHIVE_BUCKET)
        .key(key)
        .send()
        .await
        .expect("get archive file");
    let bytes = object.body.collect().await.expect("body").into_bytes();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("gzip");
    let file: Value = serde_json::from_str(&text).expect("json");
    let archived: Vec<InsightRecord> =
        serde_json::from_value(file["Records"].clone()).expect("Records");
    assert_eq!(comparable(&archived), comparable(&records));

    // CloudWatch: the documented names and dimensions, both insight types, zeros included.
    let cloudwatch = cloudwatch_client(&env.sdk);
    let listed = cloudwatch
        .list_metrics()
        .namespace("TrailsightTest")
        .send()
        .await
        .expect("list metrics");
    let mut combos: Vec<String> = listed
        .metrics()
        .iter()
        .map(|m| {
            let dims: Vec<String> = m
                .dimensions()
                .iter()
                .map(|d| format!("{}={}", d.name().unwrap_or(""), d.value().unwrap_or("")))
                .collect();
            format!("{}{:?}", m.metric_name().unwrap_or(""), dims)
        })
        .collect();
    combos.sort();
    assert_eq!(
        combos,
        vec![
            "DetectorLagMinutes[]",
            "InsightsActive[\"InsightType=ApiCallRateInsight\"]",
            "InsightsActive[\"InsightType=ApiErrorRateInsight\"]",
            "InsightsDeadLettered[]",
            "InsightsStarted[\"InsightType=ApiCallRateInsight\"]",
            "InsightsStarted[\"InsightType=ApiErrorRateInsight\"]",
            "InsightsUndelivered[]",
            "LateEvents[]",
            "LateMinutes[]",
            "RunErrors[]",
            "SeriesEvaluated[]",
            "SeriesEvicted[]",
        ]
    );
    let sum = |name: &'static str, insight_type: Option<InsightType>| {
        let cloudwatch = cloudwatch.clone();
        async move {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs() as i64;
            let mut request = cloudwatch
                .get_metric_statistics()
                .namespace("TrailsightTest")
                .metric_name(name)
                .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    now - 3600,
                ))
                .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    now + 3600,
                ))
                .period(60)
                .statistics(aws_sdk_cloudwatch::types::Statistic::Sum);
            if let Some(t) = insight_type {
                request = request.dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("InsightType")
                        .value(t.as_str())
                        .build(),
                );
            }
            let output = request.send().await.expect("statistics");
            output
                .datapoints()
                .iter()
                .filter_map(|d| d.sum())
                .sum::<f64>()
        }
    };
    // Three call-rate insights (CreateAccessKey, DeleteUser, CreateUser) and one error-rate.
    assert_eq!(
        sum("InsightsStarted", Some(InsightType::ApiCallRateInsight)).await,
        3.0
    );
    assert_eq!(
        sum("InsightsStarted", Some(InsightType::ApiErrorRateInsight)).await,
        1.0
    );
    assert_eq!(
        sum("InsightsActive", Some(InsightType::ApiCallRateInsight)).await,
        0.0
    );
    assert_eq!(sum("SeriesEvaluated", None).await, 5.0);
    assert_eq!(sum("RunErrors", None).await, 0.0);
    assert_eq!(
        sum("DetectorLagMinutes", None).await,
        detector_config().settle_minutes as f64
    );

    // The same minute again: nothing new, no second archive file.
    let again = detect.handle(event(end_time()), None).await.expect("again");
    assert_eq!(again.published, 0);
    assert_eq!(env.archive_keys().await, keys);
}

#[tokio::test]
async fn failed_runs_report_run_errors_and_metrics_go_out_in_one_call() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let metrics = CloudWatchMetrics::new(cloudwatch_client(&sdk), "Trailsight", MetricsLevel::Full);
    metrics
        .put_run_metrics(&RunMetrics::failed())
        .await
        .expect("put");
    let listed = cloudwatch_client(&sdk)
        .list_metrics()
        .namespace("Trailsight")
        .send()
        .await
        .expect("list");
    let names: Vec<&str> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    assert_eq!(names, vec!["RunErrors"]);
}

#[tokio::test]
async fn the_basic_level_sends_the_lag_alone_and_off_sends_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let completed = RunMetrics::from_report(&RunReport {
        series: 3,
        lag_minutes: 20,
        ..RunReport::default()
    });
    let basic = CloudWatchMetrics::new(cloudwatch_client(&sdk), "Basic", MetricsLevel::Basic);
    let off = CloudWatchMetrics::new(cloudwatch_client(&sdk), "Off", MetricsLevel::Off);
    for run in [completed, RunMetrics::failed(), RunMetrics::superseded()] {
        basic.put_run_metrics(&run).await.expect("put basic");
        off.put_run_metrics(&run).await.expect("put off");
    }
    let names = |namespace: &'static str| {
        let sdk = sdk.clone();
        async move {
            let listed = cloudwatch_client(&sdk)
                .list_metrics()
                .namespace(namespace)
                .send()
                .await
                .expect("list");
            listed
                .metrics()
                .iter()
                .filter_map(|m| m.metric_name().map(str::to_owned))
                .collect::<Vec<String>>()
        }
    };
    assert_eq!(names("Basic").await, vec!["DetectorLagMinutes".to_owned()]);
    assert!(names("Off").await.is_empty());
}

#[tokio::test]
async fn a_file_written_after_its_minutes_were_judged_is_found_through_the_arrival_log() {
    // The CreateUser burst (minutes 300 and 302) is in the file of minutes 300-314; that file is
    // written only after the detector has judged those minutes. DynamoStore notes it in the
    // arrival log (A#<hour>), the next run reads that hour again and reports the burst late.
    let env = Env::start().await;
    let config = detector_config();
    let store = env.store.as_ref();
    let publisher = env.publisher();
    let late_slot = (base() + 300).div_euclid(15);
    let late_id = FileId::new("trail", &format!("file-{late_slot}"));
    let files = scenario_files();
    for (file, delta) in &files {
        if *file != late_id {
            store.write_delta(file, delta).await.expect("write");
        }
    }
    let on_time = run_detector(&config, end_time(), store, store, &publisher)
        .await
        .expect("run");
    let started = |records: &[InsightRecord]| -> BTreeSet<(String, String)> {
        records
            .iter()
            .filter(|r| r.insight_details.state == InsightState::Start)
            .map(|r| (r.insight_details.event_name.clone(), r.event_time.clone()))
            .collect()
    };
    assert!(
        !started(&on_time.published)
            .iter()
            .any(|(name, _)| name == "CreateUser"),
        "{:?}",
        started(&on_time.published)
    );

    let (_, late) = files
        .iter()
        .find(|(file, _)| *file == late_id)
        .expect("the late file");
    store.write_delta(&late_id, late).await.expect("late write");
    let arrival_items = env.count_arrival_items().await;
    assert!(arrival_items >= 1, "{arrival_items}");
    let report = run_detector(&config, end_time() + 1, store, store, &publisher)
        .await
        .expect("the next run");
    assert!(report.late.cells > 0, "{report:?}");
    assert_eq!(report.late.spikes, 1, "{report:?}");
    assert!(report.late.max_lateness_minutes > 0);
    let late_starts = started(&report.published);
    assert!(
        late_starts.contains(&("CreateUser".to_owned(), format_minute(base() + 300))),
        "{late_starts:?}"
    );
    // The same outcome as on-time delivery, where the burst's Start carries the same minute.
    let reference = every_minute_reference(end_time(), end_time()).await;
    assert!(started(&reference).contains(&("CreateUser".to_owned(), format_minute(base() + 300))));

    // Nothing is judged twice: a third run finds no late data.
    let again = run_detector(&config, end_time() + 2, store, store, &publisher)
        .await
        .expect("third run");
    assert_eq!(again.late.cells, 0, "{again:?}");
}

#[tokio::test]
async fn undeliverable_records_go_to_the_dead_letters_in_s3_and_evaluation_goes_on() {
    use trailsight::aws::archive::S3DeadLetters;
    use trailsight::detect::DetectRun;
    let env = Env::start().await;
    write_scenario(env.store.as_ref()).await;
    let config = DetectorConfig {
        delivery_attempts: 2,
        ..detector_config()
    };
    let store = env.store.as_ref();
    let proxy = EventBridgeFaults::start(&env.moto.endpoint, -1);
    let failing = env.publisher_at(&sdk_config_for(&proxy.endpoint).await);
    let dead_letters = S3DeadLetters::new(env.s3.clone(), state_location());
    let detect = DetectRun {
        deltas: store,
        states: store,
        publisher: &failing,
        dead_letters: Some(&dead_letters),
        deadline: None,
    };
    let run = |now: Minute| detect.run(&config, now);
    let first = run(end_time()).await.expect("first");
    assert_eq!((first.delivery_failures, first.dead_lettered), (1, 0));
    let second = run(end_time() + 5).await.expect("second");
    assert_eq!((second.delivery_failures, second.dead_lettered), (1, 1));
    assert_eq!(second.undelivered, 0, "nothing waits for the dead letter");
    // The evaluation went on through both runs.
    assert_eq!(
        second.evaluated.map(|(_, to)| to),
        Some(end_time() + 5 - config.settle_minutes)
    );
    let listed = env
        .s3
        .list_objects_v2()
        .bucket(STATE_BUCKET)
        .prefix(format!("{STATE_PREFIX}/dead-letters/"))
        .send()
        .await
        .expect("list");
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let body = env
        .s3
        .get_object()
        .bucket(STATE_BUCKET)
        .key(&keys[0])
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    let letter: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(letter["attempts"], 2);
    assert!(
        letter["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("eventbridge")
    );
    let state = store.load_state().await.expect("state").state;
    assert_eq!(state.dead_letters.len(), 1);
    assert!(state.outbox.is_empty());
}
