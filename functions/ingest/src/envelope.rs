//! Notifications in, object references out. Pure: no I/O, no logging.
//!
//! Every wrapping of the contract's §5, in any nesting Lambda can deliver:
//! - a direct S3 event (`Records[].s3`; keys URL-encoded, `+` a space);
//! - an SQS batch (`Records[].body`), each body being any of the payloads here;
//! - an SNS event (`Records[].Sns.Message`), or an SNS envelope inside an SQS body
//!   (`{"Type":"Notification","Message":...}`, a subscription without raw delivery);
//! - EventBridge's `Object Created` (`detail.bucket.name`, `detail.object.key`, not encoded);
//! - CloudTrail's own SNS message `{"s3Bucket":...,"s3ObjectKey":[...]}` (not encoded).
//!
//! S3's `s3:TestEvent`, SNS subscription confirmations, other S3 event types and other
//! EventBridge events are [`Content::Ignored`]. A shape we do not know is an [`EnvelopeError`]
//! for that message only.

use percent_encoding::percent_decode_str;
use serde_json::Value;
use trailsight::ingest::ObjectVersion;

/// An object to ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// Decoded: the key as S3 stores it.
    pub key: String,
    /// The version the notification names (S3 and EventBridge events carry the version id in a
    /// versioned bucket, and the ETag); CloudTrail's own message names none.
    pub version: ObjectVersion,
}

/// One notification: an SQS message, an SNS record, or the whole event otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The SQS `messageId`, which a partial batch failure names; `None` outside SQS.
    pub message_id: Option<String>,
    pub content: Result<Content, EnvelopeError>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Objects(Vec<ObjectRef>),
    /// Nothing to ingest, for the reason given.
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the message is not JSON ({0})")]
    NotJson(String),
    #[error(
        "unrecognised notification with fields [{0}]: expected an S3 event, an SNS notification, \
         EventBridge's Object Created, or CloudTrail's {{s3Bucket, s3ObjectKey}} message"
    )]
    Unknown(String),
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("notification nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
}

/// Wrappings inside wrappings, at most (SNS inside SQS is two).
const MAX_DEPTH: usize = 4;

/// Splits a Lambda event into its messages, each decoded to the objects it names.
pub fn decode_event(event: &Value) -> Vec<Message> {
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        let source = |r: &Value| {
            r.get("eventSource")
                .or_else(|| r.get("EventSource"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match records.first().and_then(source).as_deref() {
            Some("aws:sqs") => return records.iter().map(sqs_message).collect(),
            Some("aws:sns") => return records.iter().map(sns_record).collect(),
            _ => {}
        }
    }
    vec![Message {
        message_id: None,
        content: decode_payload(event, 0),
    }]
}

fn sqs_message(record: &Value) -> Message {
    let message_id = record
        .get("messageId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let content = match record.get("body").and_then(Value::as_str) {
        Some(body) => decode_text(body, 1),
        None => Err(malformed("SQS message", "no string body")),
    };
    Message {
        message_id,
        content,
    }
}

fn sns_record(record: &Value) -> Message {
    let content = match record.pointer("/Sns/Message").and_then(Value::as_str) {
        Some(text) => decode_text(text, 1),
        None => Err(malformed("SNS record", "no Sns.Message string")),
    };
    Message {
        message_id: None,
        content,
    }
}

fn decode_text(text: &str, depth: usize) -> Result<Content, EnvelopeError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    decode_payload(&value, depth)
}

/// Decodes one notification payload, whatever wraps it.
pub fn decode_payload(value: &Value, depth: usize) -> Result<Content, EnvelopeError> {
    if depth > MAX_DEPTH {
        return Err(EnvelopeError::TooDeep);
    }
    let text = |name: &str| value.get(name).and_then(Value::as_str);
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        return s3_event(records);
    }
    if text("Event") == Some("s3:TestEvent") {
        return Ok(Content::Ignored("S3 test event".into()));
    }
    if let Some(kind) = text("Type") {
        return match (kind, text("Message")) {
            ("Notification", Some(message)) => decode_text(message, depth + 1),
            ("Notification", None) => Err(malformed("SNS notification", "no Message string")),
            (other, _) => Ok(Content::Ignored(format!("SNS {other} message"))),
        };
    }
    if let Some(detail_type) = text("detail-type") {
        return eventbridge(value, detail_type);
    }
    if value.get("s3ObjectKey").is_some() {
        return cloudtrail_message(value);
    }
    let fields = match value.as_object() {
        Some(map) => map.keys().take(8).cloned().collect::<Vec<_>>().join(", "),
        None => format!("not an object: {}", type_name(value)),
    };
    Err(EnvelopeError::Unknown(fields))
}

/// S3's event: `Records[].s3.bucket.name`, `Records[].s3.object.key` (URL-encoded).
fn s3_event(records: &[Value]) -> Result<Content, EnvelopeError> {
    let mut objects = Vec::new();
    let mut others = Vec::new();
    for record in records {
        let name = record
            .get("eventName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(s3) = record.get("s3") else {
            return Err(malformed("S3 event", "a record has no s3 field"));
        };
        // `ObjectCreated:Put`, `:Post`, `:Copy`, `:CompleteMultipartUpload`; no name: assume one.
        if !name.is_empty() && !name.starts_with("ObjectCreated:") {
            others.push(name.to_owned());
            continue;
        }
        let bucket = s3.pointer("/bucket/name").and_then(Value::as_str);
        let key = s3.pointer("/object/key").and_then(Value::as_str);
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(malformed(
                "S3 event",
                "a record has no bucket name or object key",
            ));
        };
        let field = |name: &str| {
            s3.pointer(&format!("/object/{name}"))
                .and_then(Value::as_str)
        };
        objects.push(ObjectRef {
            bucket: bucket.to_owned(),
            key: decode_s3_key(key)?,
            version: ObjectVersion::new(field("versionId"), field("eTag")),
        });
    }
    if objects.is_empty() && !others.is_empty() {
        return Ok(Content::Ignored(format!("S3 events {}", others.join(", "))));
    }
    Ok(Content::Objects(objects))
}

/// EventBridge's S3 events: only `Object Created` names an object to ingest.
fn eventbridge(value: &Value, detail_type: &str) -> Result<Content, EnvelopeError> {
    if detail_type != "Object Created" {
        return Ok(Content::Ignored(format!(
            "EventBridge event {detail_type:?}"
        )));
    }
    let bucket = value.pointer("/detail/bucket/name").and_then(Value::as_str);
    let key = value.pointer("/detail/object/key").and_then(Value::as_str);
    let field = |name: &str| {
        value
            .pointer(&format!("/detail/object/{name}"))
            .and_then(Value::as_str)
    };
    match (bucket, key) {
        (Some(bucket), Some(key)) => Ok(Content::Objects(vec![ObjectRef {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version: ObjectVersion::new(field("version-id"), field("etag")),
        }])),
        _ => Err(malformed(
            "EventBridge Object Created event",
            "no detail.bucket.name or detail.object.key",
        )),
    }
}

/// CloudTrail's notification: `{"s3Bucket": "...", "s3ObjectKey": ["...", ...]}`.
fn cloudtrail_message(value: &Value) -> Result<Content, EnvelopeError> {
    let what = "CloudTrail notification";
    let bucket = value
        .get("s3Bucket")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(what, "no s3Bucket string"))?;
    let keys = match value.get("s3ObjectKey") {
        Some(Value::Array(keys)) => keys.iter().collect::<Vec<_>>(),
        Some(key @ Value::String(_)) => vec![key],
        _ => return Err(malformed(what, "s3ObjectKey is not a list")),
    };
    keys.into_iter()
        .map(|key| match key.as_str() {
            Some(key) => Ok(ObjectRef {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version: ObjectVersion::default(),
            }),
            None => Err(malformed(what, "an s3ObjectKey entry is not a string")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Content::Objects)
}

/// S3 event keys are URL-encoded with `+` for a space: `a+b%2Bc` is `a b+c`.
pub fn decode_s3_key(key: &str) -> Result<String, EnvelopeError> {
    percent_decode_str(&key.replace('+', " "))
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| malformed("S3 object key", &format!("{key:?}: {e}")))
}

fn malformed(what: &'static str, detail: &str) -> EnvelopeError {
    EnvelopeError::Malformed {
        what,
        detail: detail.to_owned(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: &str = "trailsight-logs";
    const KEY: &str = "AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json.gz";

    fn fixture(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn objects(message: &Message) -> Vec<(String, String)> {
        match &message.content {
            Ok(Content::Objects(objects)) => objects
                .iter()
                .map(|o| (o.bucket.clone(), o.key.clone()))
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn expected() -> Vec<(String, String)> {
        vec![(BUCKET.to_owned(), KEY.to_owned())]
    }

    #[test]
    fn direct_s3_event() {
        let messages = decode_event(&fixture(include_bytes!("../testdata/s3-event.json")));
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].message_id, None);
        assert_eq!(objects(&messages[0]), expected());
    }

    #[test]
    fn sqs_with_s3_bodies() {
        let messages = decode_event(&fixture(include_bytes!("../testdata/sqs-s3-event.json")));
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].message_id.as_deref(),
            Some("059f36b4-87a3-44ab-83d2-661975830a7d")
        );
        assert_eq!(objects(&messages[0]), expected());
    }

    #[test]
    fn sqs_with_sns_wrapped_s3() {
        let messages = decode_event(&fixture(include_bytes!(
            "../testdata/sqs-sns-s3-event.json"
        )));
        assert_eq!(messages.len(), 1);
        assert!(messages[0].message_id.is_some());
        assert_eq!(objects(&messages[0]), expected());
    }

    #[test]
    fn sns_event_with_s3_message() {
        let messages = decode_event(&fixture(include_bytes!("../testdata/sns-s3-event.json")));
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].message_id, None);
        assert_eq!(objects(&messages[0]), expected());
    }

    #[test]
    fn eventbridge_object_created() {
        let messages = decode_event(&fixture(include_bytes!(
            "../testdata/eventbridge-object-created.json"
        )));
        assert_eq!(objects(&messages[0]), expected());
    }

    #[test]
    fn sqs_with_eventbridge_object_created() {
        let messages = decode_event(&fixture(include_bytes!(
            "../testdata/sqs-eventbridge-object-created.json"
        )));
        assert!(messages[0].message_id.is_some());
        assert_eq!(objects(&messages[0]), expected());
    }

    #[test]
    fn cloudtrail_sns_message_direct_in_sqs_and_in_sns() {
        let direct = decode_event(&fixture(include_bytes!(
            "../testdata/cloudtrail-notification.json"
        )));
        assert_eq!(objects(&direct[0]), expected());
        let in_sqs = decode_event(&fixture(include_bytes!(
            "../testdata/sqs-sns-cloudtrail-notification.json"
        )));
        assert!(in_sqs[0].message_id.is_some());
        assert_eq!(objects(&in_sqs[0]), expected());
        let in_sns = decode_event(&fixture(include_bytes!(
            "../testdata/sns-cloudtrail-notification.json"
        )));
        assert_eq!(objects(&in_sns[0]), expected());
    }

    #[test]
    fn s3_test_event_is_ignored() {
        let messages = decode_event(&fixture(include_bytes!(
            "../testdata/sqs-s3-test-event.json"
        )));
        assert!(
            matches!(&messages[0].content, Ok(Content::Ignored(why)) if why == "S3 test event")
        );
        let direct = decode_event(&serde_json::json!({
            "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-03-02T14:07:00.000Z",
            "Bucket": BUCKET, "RequestId": "X", "HostId": "Y"
        }));
        assert!(matches!(direct[0].content, Ok(Content::Ignored(_))));
    }

    #[test]
    fn an_unknown_message_fails_alone() {
        let messages = decode_event(&fixture(include_bytes!("../testdata/sqs-mixed-batch.json")));
        assert_eq!(messages.len(), 3);
        assert_eq!(objects(&messages[0]), expected());
        match &messages[1].content {
            Err(EnvelopeError::Unknown(fields)) => assert!(fields.contains("hello"), "{fields}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            messages[2].content,
            Err(EnvelopeError::NotJson(_))
        ));
        let unknown = decode_event(&serde_json::json!({"hello": "world"}));
        assert!(unknown[0].content.is_err());
    }

    #[test]
    fn versions_are_read_from_s3_and_eventbridge_events() {
        let etag = || Some("d8e8fca2dc0f896fd7cb4cb0031ba249".to_owned());
        for name in [
            "s3",
            "sqs-s3",
            "sqs-sns-s3",
            "sns-s3",
            "eventbridge",
            "sqs-eventbridge",
        ] {
            let bytes: &[u8] = match name {
                "s3" => include_bytes!("../testdata/s3-event.json"),
                "sqs-s3" => include_bytes!("../testdata/sqs-s3-event.json"),
                "sqs-sns-s3" => include_bytes!("../testdata/sqs-sns-s3-event.json"),
                "sns-s3" => include_bytes!("../testdata/sns-s3-event.json"),
                "eventbridge" => include_bytes!("../testdata/eventbridge-object-created.json"),
                _ => include_bytes!("../testdata/sqs-eventbridge-object-created.json"),
            };
            let messages = decode_event(&fixture(bytes));
            let Ok(Content::Objects(objects)) = &messages[0].content else {
                panic!("{name}");
            };
            assert_eq!(objects[0].version.etag, etag(), "{name}");
            assert_eq!(objects[0].version.version_id, None, "{name}");
        }
        let versioned = decode_event(&serde_json::json!({"Records": [{
            "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": "k", "eTag": "\"abc\"",
                   "versionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"}}
        }]}));
        let Ok(Content::Objects(objects)) = &versioned[0].content else {
            panic!("{versioned:?}");
        };
        assert_eq!(
            objects[0].version,
            ObjectVersion::new(Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"), Some("abc"))
        );
        assert_eq!(
            objects[0].version.tag(),
            Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")
        );
        let eventbridge = decode_event(&serde_json::json!({
            "detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": BUCKET},
                       "object": {"key": "k", "etag": "abc", "version-id": "v2"}}
        }));
        let Ok(Content::Objects(objects)) = &eventbridge[0].content else {
            panic!("{eventbridge:?}");
        };
        assert_eq!(objects[0].version.tag(), Some("v2"));
        let cloudtrail = decode_event(&fixture(include_bytes!(
            "../testdata/cloudtrail-notification.json"
        )));
        let Ok(Content::Objects(objects)) = &cloudtrail[0].content else {
            panic!("{cloudtrail:?}");
        };
        assert_eq!(objects[0].version, ObjectVersion::default());
    }

    #[test]
    fn keys_are_url_decoded_where_s3_encodes_them() {
        assert_eq!(
            decode_s3_key("AWSLogs/111/a%2Bb+c%3D.json.gz").unwrap(),
            "AWSLogs/111/a+b c=.json.gz"
        );
        assert_eq!(decode_s3_key("caf%C3%A9").unwrap(), "café");
        assert!(decode_s3_key("%FF").is_err());
    }

    #[test]
    fn other_s3_and_eventbridge_events_are_ignored() {
        let removed = decode_event(&serde_json::json!({"Records": [{
            "eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": "k"}}
        }]}));
        assert!(matches!(removed[0].content, Ok(Content::Ignored(_))));
        let deleted = decode_event(&serde_json::json!({
            "detail-type": "Object Deleted", "source": "aws.s3",
            "detail": {"bucket": {"name": BUCKET}, "object": {"key": "k"}}
        }));
        assert!(matches!(deleted[0].content, Ok(Content::Ignored(_))));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut payload = serde_json::json!({"s3Bucket": BUCKET, "s3ObjectKey": [KEY]});
        for _ in 0..6 {
            payload = serde_json::json!({"Type": "Notification", "Message": payload.to_string()});
        }
        assert_eq!(decode_payload(&payload, 0), Err(EnvelopeError::TooDeep));
    }
}
