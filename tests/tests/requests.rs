//! Request-level checks of the DynamoDB store: the exact requests it sends (operation, keys,
//! condition and update expressions, consistency, the format version), recorded on the wire by
//! an SDK interceptor while moto serves them. The exactly-once rules rest on these expressions
//! (DynamoDB evaluates a condition atomically with its write, per item); moto executing them is
//! checked by the other integration tests, what is sent is checked here, against the
//! expressions docs/TABLE.md documents.

use serde_json::Value;
use trailsight::aws::dynamodb::{DynamoStore, create_table};
use trailsight::aws::retry::dynamodb_client;
use trailsight::detector::DetectorState;
use trailsight::fold::{Cell, DeltaBuilder};
use trailsight::minute::parse_minute;
use trailsight::series::SeriesKey;
use trailsight::store::{
    DeltaRead, DeltaWrite, FileId, FileMark, FileMarks, StateStore, StoreError, VersionCommit,
};
use trailsight::stored::FORMAT_VERSION;
use trailsight_integration::Moto;
use trailsight_integration::wire::{RequestLog, only};

async fn store_with_log(moto: &Moto, table: &str) -> (DynamoStore, RequestLog) {
    let sdk = moto.sdk_config().await;
    create_table(&dynamodb_client(&sdk), table)
        .await
        .expect("create table");
    let log = RequestLog::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .interceptor(log.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    (DynamoStore::new(client, table), log)
}

fn s(value: &Value) -> &str {
    value["S"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn delta_parts_are_conditional_puts_and_reads_are_consistent() {
    let moto = Moto::start();
    let (store, log) = store_with_log(&moto, "requests-parts").await;
    let minute = parse_minute("2026-03-02T10:15:00Z").expect("minute");
    let key = SeriesKey {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        event_source: "iam.amazonaws.com".into(),
        event_name: "CreateUser".into(),
        error_code: None,
        principal: None,
    };
    let mut builder = DeltaBuilder::default();
    let cell = Cell {
        count: 3,
        ..Cell::default()
    };
    builder.add(&key, minute, &cell);
    builder.add(&key, minute + 60, &cell);
    let delta = builder.finish();
    let file = FileId::new(
        "bucket",
        "AWSLogs/1/CloudTrail/us-east-1/2026/03/02/a.json.gz",
    );

    let first = store.write_delta(&file, &delta).await.expect("write");
    let sent = log.take();
    let puts = only(&sent, "PutItem");
    assert_eq!(puts.len(), 2, "one part per hour: {sent:?}");
    assert_eq!(first.parts_written, 2);
    for put in &puts {
        let item = &put.body["Item"];
        assert_eq!(put.body["ConditionExpression"], "attribute_not_exists(pk)");
        assert!(s(&item["pk"]).starts_with("D#2026-03-02T1"), "{item}");
        assert!(s(&item["sk"]).starts_with(&format!("{file}#")), "{item}");
        assert!(item["d"]["B"].is_string(), "the part's document: {item}");
        assert!(item["expires_at"]["N"].is_string());
        assert_eq!(item["fv"]["N"], FORMAT_VERSION.to_string());
    }

    // The same delivery again: the same conditional puts, refused, counted as existing.
    let again = store.write_delta(&file, &delta).await.expect("write again");
    assert_eq!(again.parts_written, 0);
    assert_eq!(again.parts_existing, 2);
    let resent = log.take();
    assert_eq!(only(&resent, "PutItem").len(), 2);

    let parts = store
        .read_hour_parts(minute.div_euclid(60) * 60)
        .await
        .expect("read");
    assert_eq!(parts.len(), 1);
    let sent = log.take();
    let queries = only(&sent, "Query");
    assert!(!queries.is_empty());
    for query in queries {
        assert_eq!(query.body["ConsistentRead"], true, "{:?}", query.body);
        assert_eq!(query.body["KeyConditionExpression"], "pk = :pk");
        assert_eq!(
            s(&query.body["ExpressionAttributeValues"][":pk"]),
            "D#2026-03-02T10"
        );
    }
}

#[tokio::test]
async fn a_key_is_claimed_and_committed_under_the_documented_conditions() {
    let moto = Moto::start();
    let (store, log) = store_with_log(&moto, "requests-markers").await;
    let key = FileId::new(
        "bucket",
        "AWSLogs/1/CloudTrail/us-east-1/2026/03/02/b.json.gz",
    );

    assert!(
        store
            .claim_version(&key, "v1", 0, 1_000, 400)
            .await
            .expect("claim")
    );
    let sent = log.take();
    let claims = only(&sent, "UpdateItem");
    assert_eq!(claims.len(), 1);
    let claim = &claims[0].body;
    assert_eq!(s(&claim["Key"]["pk"]), format!("F#{key}"));
    assert_eq!(s(&claim["Key"]["sk"]), "F");
    assert_eq!(
        claim["ConditionExpression"],
        "(attribute_not_exists(seq) AND attribute_not_exists(#status)) AND \
         (attribute_not_exists(pending) OR pending = :tag OR pending_at < :stale)"
    );
    assert_eq!(s(&claim["ExpressionAttributeValues"][":tag"]), "v1");
    assert_eq!(claim["ExpressionAttributeValues"][":stale"]["N"], "400");
    assert_eq!(
        claim["ExpressionAttributeValues"][":fv"]["N"],
        FORMAT_VERSION.to_string()
    );

    // Another version cannot claim the key while v1's claim is fresh.
    assert!(
        !store
            .claim_version(&key, "v2", 0, 1_001, 400)
            .await
            .expect("claim v2")
    );
    log.take();

    let commit = VersionCommit {
        tag: "v1".into(),
        base: 0,
        status: FileMark::Done { records: 7 },
        versions: vec!["v1".into()],
        etags: vec!["e1".into()],
        expires_at: 9_999,
    };
    assert!(store.commit_version(&key, &commit).await.expect("commit"));
    let sent = log.take();
    let commits = only(&sent, "UpdateItem");
    assert_eq!(commits.len(), 1);
    let body = &commits[0].body;
    assert_eq!(
        body["ConditionExpression"],
        "(attribute_not_exists(seq)) AND pending = :tag"
    );
    assert_eq!(body["ExpressionAttributeValues"][":next"]["N"], "1");
    assert_eq!(body["ExpressionAttributeValues"][":records"]["N"], "7");
    assert!(
        body["UpdateExpression"]
            .as_str()
            .is_some_and(|u| u.contains("REMOVE pending, pending_at")),
        "{body}"
    );

    // A commit whose claim is gone writes nothing and says so.
    assert!(
        !store
            .commit_version(&key, &commit)
            .await
            .expect("commit again")
    );
}

#[tokio::test]
async fn the_state_head_moves_only_from_the_version_read() {
    let moto = Moto::start();
    let (store, log) = store_with_log(&moto, "requests-state").await;
    let state = DetectorState::default();

    assert_eq!(store.save_state(&state, 0).await.expect("first save"), 1);
    let sent = log.take();
    let heads = only(&sent, "UpdateItem");
    assert_eq!(heads.len(), 1);
    assert_eq!(
        heads[0].body["ConditionExpression"],
        "attribute_not_exists(pk)"
    );
    assert_eq!(s(&heads[0].body["Key"]["pk"]), "S");
    assert_eq!(s(&heads[0].body["Key"]["sk"]), "HEAD");
    assert_eq!(heads[0].body["ReturnValues"], "ALL_OLD");
    let chunks = only(&sent, "PutItem");
    assert!(!chunks.is_empty());
    for chunk in &chunks {
        assert_eq!(chunk.body["Item"]["fv"]["N"], FORMAT_VERSION.to_string());
        assert!(s(&chunk.body["Item"]["sk"]).starts_with("C#00000000000000000001#"));
    }

    assert_eq!(store.save_state(&state, 1).await.expect("second save"), 2);
    let sent = log.take();
    let heads = only(&sent, "UpdateItem");
    assert_eq!(heads[0].body["ConditionExpression"], "#version = :expected");
    assert_eq!(
        heads[0].body["ExpressionAttributeValues"][":expected"]["N"],
        "1"
    );
    // The winner deletes the version it replaced.
    let deletes = only(&sent, "DeleteItem");
    assert_eq!(deletes.len(), chunks.len(), "{sent:?}");
    assert!(
        deletes
            .iter()
            .all(|d| s(&d.body["Key"]["sk"]).starts_with("C#00000000000000000001#"))
    );

    // A saver that read version 1 loses: a conflict, and it deletes only its own chunks.
    assert!(matches!(
        store.save_state(&state, 1).await,
        Err(StoreError::Conflict)
    ));
    let sent = log.take();
    let own: Vec<String> = only(&sent, "PutItem")
        .iter()
        .map(|p| s(&p.body["Item"]["sk"]).to_owned())
        .collect();
    let deleted: Vec<String> = only(&sent, "DeleteItem")
        .iter()
        .map(|d| s(&d.body["Key"]["sk"]).to_owned())
        .collect();
    assert!(!own.is_empty());
    assert_eq!(
        own.iter().collect::<std::collections::BTreeSet<_>>(),
        deleted.iter().collect()
    );

    // The head and its chunks are read consistently.
    let loaded = store.load_state().await.expect("load");
    assert_eq!(loaded.version, 2);
    let sent = log.take();
    for get in only(&sent, "GetItem") {
        assert_eq!(get.body["ConsistentRead"], true, "{:?}", get.body);
    }
    for query in only(&sent, "Query") {
        assert_eq!(query.body["ConsistentRead"], true, "{:?}", query.body);
    }
}
