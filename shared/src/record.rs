//! One CloudTrail record, parsed leniently and cheaply.
//!
//! Only the fields Trailsight uses are read; every other field (request parameters, response
//! elements, ...) is skipped by the parser without being materialised. Strings borrow from the
//! input buffer unless they contain escapes. Optional fields are `Option`s, booleans accept the
//! string forms some log shippers write (`"true"`), and numbers never matter.

use std::borrow::Cow;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The fields of a CloudTrail record that classification, counting and attribution need.
///
/// Deserialised by hand rather than derived: member names are matched as raw bytes (serde's
/// derive validates every name as UTF-8 first, which took a third of the parse), values we do not
/// use are skipped, and a repeated member keeps its last value (as Python's json does).
#[derive(Debug, Default, PartialEq)]
pub struct Record<'a> {
    pub event_version: Option<Cow<'a, str>>,
    pub event_time: Option<Cow<'a, str>>,
    /// Log shippers (Logstash, Elastic) sometimes drop `eventTime` and keep only this.
    pub shipper_timestamp: Option<Cow<'a, str>>,
    pub event_source: Option<Cow<'a, str>>,
    pub event_name: Option<Cow<'a, str>>,
    pub aws_region: Option<Cow<'a, str>>,
    pub event_id: Option<Cow<'a, str>>,
    pub event_type: Option<Cow<'a, str>>,
    pub event_category: Option<Cow<'a, str>>,
    pub management_event: Option<bool>,
    pub read_only: Option<bool>,
    pub error_code: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    /// `sessionCredentialFromConsole` (`"true"` on calls made from an AWS Management Console
    /// session).
    pub session_credential_from_console: Option<bool>,
    pub recipient_account_id: Option<Cow<'a, str>>,
    pub user_identity: Option<UserIdentity<'a>>,
    /// `requestParameters.roleArn`: the role an `AssumeRole` call asks for (the only request
    /// parameter read; the rest of `requestParameters` is skipped).
    pub role_arn: Option<Cow<'a, str>>,
}

/// The caller, as far as attribution and the "AWS service on your behalf" option need it.
#[derive(Debug, Default, PartialEq)]
pub struct UserIdentity<'a> {
    pub identity_type: Option<Cow<'a, str>>,
    pub arn: Option<Cow<'a, str>>,
    pub account_id: Option<Cow<'a, str>>,
    pub invoked_by: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Record<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = Record<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a CloudTrail record (an object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record<'de>, A::Error> {
                let mut r = Record::default();
                while let Some(Name(name)) = map.next_key()? {
                    match name.as_ref() {
                        b"eventVersion" => r.event_version = map.next_value_seed(Text)?,
                        b"eventTime" => r.event_time = map.next_value_seed(Text)?,
                        b"@timestamp" => r.shipper_timestamp = map.next_value_seed(Text)?,
                        b"eventSource" => r.event_source = map.next_value_seed(Text)?,
                        b"eventName" => r.event_name = map.next_value_seed(Text)?,
                        b"awsRegion" => r.aws_region = map.next_value_seed(Text)?,
                        b"eventID" => r.event_id = map.next_value_seed(Text)?,
                        b"eventType" => r.event_type = map.next_value_seed(Text)?,
                        b"eventCategory" => r.event_category = map.next_value_seed(Text)?,
                        b"managementEvent" => r.management_event = map.next_value_seed(Flag)?,
                        b"readOnly" => r.read_only = map.next_value_seed(Flag)?,
                        b"errorCode" => r.error_code = map.next_value_seed(Text)?,
                        b"userAgent" => r.user_agent = map.next_value_seed(Text)?,
                        b"sessionCredentialFromConsole" => {
                            r.session_credential_from_console = map.next_value_seed(Flag)?
                        }
                        b"recipientAccountId" => {
                            r.recipient_account_id = map.next_value_seed(Text)?
                        }
                        b"userIdentity" => r.user_identity = map.next_value()?,
                        b"requestParameters" => r.role_arn = map.next_value_seed(RoleArn)?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(r)
            }
        }
        deserializer.deserialize_map(RecordVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for UserIdentity<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdentityVisitor;
        impl<'de> Visitor<'de> for IdentityVisitor {
            type Value = UserIdentity<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a userIdentity object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UserIdentity<'de>, A::Error> {
                let mut u = UserIdentity::default();
                while let Some(Name(name)) = map.next_key()? {
                    match name.as_ref() {
                        b"type" => u.identity_type = map.next_value_seed(Text)?,
                        b"arn" => u.arn = map.next_value_seed(Text)?,
                        b"accountId" => u.account_id = map.next_value_seed(Text)?,
                        b"invokedBy" => u.invoked_by = map.next_value_seed(Text)?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(u)
            }
        }
        deserializer.deserialize_map(IdentityVisitor)
    }
}

/// A member name, as raw bytes (borrowed unless it has escapes).
struct Name<'de>(Cow<'de, [u8]>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_vec())))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v.as_bytes())))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.as_bytes().to_vec())))
            }
        }
        deserializer.deserialize_bytes(NameVisitor)
    }
}

/// Reads a value with [`text`].
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        text(deserializer)
    }
}

/// Reads `roleArn` out of `requestParameters` (any other member, and any value that is not an
/// object, is skipped; `roleArn` is read as [`text`]).
struct RoleArn;

impl<'de> DeserializeSeed<'de> for RoleArn {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Option<Cow<'de, str>>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("requestParameters")
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(None)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut role = None;
                while let Some(Name(name)) = map.next_key()? {
                    if name.as_ref() == b"roleArn" {
                        role = map.next_value_seed(Text)?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(role)
            }
        }
        deserializer.deserialize_option(ParamsVisitor)
    }
}

/// Reads a value with [`lenient_bool`].
struct Flag;

impl<'de> DeserializeSeed<'de> for Flag {
    type Value = Option<bool>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        lenient_bool(deserializer)
    }
}

impl<'a> Record<'a> {
    /// Parses one record from its JSON text. Unknown fields are ignored.
    pub fn parse(json: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// When the event happened: `eventTime`, else a log shipper's `@timestamp`.
    pub fn time(&self) -> Option<&str> {
        self.event_time
            .as_deref()
            .or(self.shipper_timestamp.as_deref())
    }

    /// The account the record belongs to: `recipientAccountId`, else the caller's account.
    pub fn account(&self) -> Option<&str> {
        self.recipient_account_id
            .as_deref()
            .or_else(|| self.user_identity.as_ref()?.account_id.as_deref())
    }

    /// The caller's ARN, when CloudTrail recorded one (AWS service callers have none).
    pub fn user_arn(&self) -> Option<&str> {
        self.user_identity.as_ref()?.arn.as_deref()
    }

    /// True for calls made from an AWS Management Console session: a person, whatever else the
    /// record says (`sessionCredentialFromConsole`, sign-in or console as `invokedBy`, a console
    /// user agent such as `console.amazonaws.com`, `console.ec2.amazonaws.com` or
    /// `signin.amazonaws.com`).
    pub fn is_console_call(&self) -> bool {
        if self.session_credential_from_console == Some(true) {
            return true;
        }
        let invoked_by = self
            .user_identity
            .as_ref()
            .and_then(|i| i.invoked_by.as_deref());
        if invoked_by.is_some_and(is_console_principal) {
            return true;
        }
        self.user_agent
            .as_deref()
            .is_some_and(|agent| is_console_principal(agent.trim()))
    }

    /// True for calls an AWS service made on the user's behalf (`AWSService` identity, or a
    /// service principal in `invokedBy`), never for a person at the console
    /// ([`Self::is_console_call`]).
    pub fn is_aws_service_call(&self) -> bool {
        let Some(identity) = &self.user_identity else {
            return false;
        };
        if self.is_console_call() {
            return false;
        }
        if identity.identity_type.as_deref() == Some("AWSService") {
            return true;
        }
        matches!(identity.invoked_by.as_deref(), Some(by) if by.ends_with(".amazonaws.com"))
    }
}

/// `signin.amazonaws.com`, `console.amazonaws.com` and the per-service consoles
/// (`console.ec2.amazonaws.com`...): what a console session puts in `invokedBy` or `userAgent`.
fn is_console_principal(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "signin.amazonaws.com"
        || (name.starts_with("console.") && name.ends_with(".amazonaws.com"))
        || name == "console.amazonaws.com"
}

/// The visits the lenient fields share: `null`, and an object or an array where a scalar was
/// expected, read as absent (consumed, never an error); `Some` unwraps.
macro_rules! absent_unless_scalar {
    ($de:lifetime) => {
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<$de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_map<A: serde::de::MapAccess<$de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<$de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    };
}

/// A string field that borrows from the input when it has no escapes (serde's own `Cow` support
/// does not borrow inside an `Option`). Numbers and booleans where a string belongs are kept as
/// text; objects and arrays read as absent.
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct TextVisitor;
    impl<'de> serde::de::Visitor<'de> for TextVisitor {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        absent_unless_scalar!('de);
    }
    deserializer.deserialize_option(TextVisitor)
}

/// Accepts `true`/`false`, `"true"`/`"false"` (any case), `null`; anything else reads as absent.
fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    struct BoolVisitor;
    impl<'de> serde::de::Visitor<'de> for BoolVisitor {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(if v.eq_ignore_ascii_case("true") {
                Some(true)
            } else if v.eq_ignore_ascii_case("false") {
                Some(false)
            } else {
                None
            })
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        absent_unless_scalar!('de);
    }
    deserializer.deserialize_option(BoolVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fields_it_needs_and_ignores_the_rest() {
        let json = br#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/A/b","accountId":"1"},
            "eventTime":"2023-07-10T11:42:36Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1",
            "requestParameters":{"userName":"x","nested":[1,2.5,{"a":null}]},"eventID":"e1","readOnly":false,"eventType":"AwsApiCall",
            "managementEvent":true,"recipientAccountId":"111","eventCategory":"Management","errorCode":"AccessDenied","userAgent":"aws-cli/2"}"#;
        let record = Record::parse(json).unwrap();
        assert_eq!(record.event_name.as_deref(), Some("CreateUser"));
        assert_eq!(record.read_only, Some(false));
        assert_eq!(record.management_event, Some(true));
        assert_eq!(record.account(), Some("111"));
        assert_eq!(record.user_arn(), Some("arn:aws:sts::1:assumed-role/A/b"));
        assert_eq!(record.error_code.as_deref(), Some("AccessDenied"));
        assert!(matches!(record.event_source, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn optional_fields_are_optional_and_bools_are_lenient() {
        let record =
            Record::parse(br#"{"eventName":"RunInstances","readOnly":"TRUE","managementEvent":1}"#)
                .unwrap();
        assert_eq!(record.read_only, Some(true));
        assert_eq!(record.management_event, None);
        assert_eq!(record.account(), None);
        assert!(!record.is_aws_service_call());
    }

    #[test]
    fn odd_types_do_not_fail_the_record() {
        let record = Record::parse(
            br#"{"recipientAccountId":123,"userAgent":{"a":1},"errorCode":null,"eventName":["x"]}"#,
        )
        .unwrap();
        assert_eq!(record.recipient_account_id.as_deref(), Some("123"));
        assert_eq!(record.user_agent, None);
        assert_eq!(record.error_code, None);
        assert_eq!(record.event_name, None);
    }

    #[test]
    fn odd_booleans_read_as_absent() {
        let record =
            Record::parse(br#"{"readOnly":{"a":[true]},"managementEvent":"yes"}"#).unwrap();
        assert_eq!(record.read_only, None);
        assert_eq!(record.management_event, None);
        let record = Record::parse(br#"{"readOnly":null,"managementEvent":"False"}"#).unwrap();
        assert_eq!(record.read_only, None);
        assert_eq!(record.management_event, Some(false));
    }

    #[test]
    fn member_names_are_matched_as_bytes_even_when_escaped() {
        let record = Record::parse(
            br#"{"event\u004eame":"A","userIdentity":{"\u0061rn":"x","type":"Root"},"eventName":"B"}"#,
        )
        .unwrap();
        // The later of two members with one name wins, as in Python's json.
        assert_eq!(record.event_name.as_deref(), Some("B"));
        assert_eq!(record.user_arn(), Some("x"));
        assert!(Record::parse(b"[1,2]").is_err());
        assert!(Record::parse(b"\"text\"").is_err());
        // A name that is not UTF-8 is simply not one of ours.
        let mut bytes = br#"{""#.to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(br#"":1,"eventName":"C"}"#);
        assert_eq!(
            Record::parse(&bytes).unwrap().event_name.as_deref(),
            Some("C")
        );
    }

    /// What a reader of `serde_json::Value` would take from the same text.
    fn reference_text(value: &serde_json::Value) -> Option<String> {
        match value {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    use proptest::prelude::*;

    proptest::proptest! {
        #[test]
        fn agrees_with_a_value_based_reading(
            members in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "eventName", "eventSource", "awsRegion", "errorCode", "readOnly",
                        "recipientAccountId", "requestParameters", "userAgent", "eventID",
                    ]),
                    proptest::prop_oneof![
                        "[a-zA-Z0-9 \"\\\\/é]{0,12}".prop_map(serde_json::Value::from),
                        proptest::num::i32::ANY.prop_map(serde_json::Value::from),
                        proptest::bool::ANY.prop_map(serde_json::Value::from),
                        proptest::strategy::Just(serde_json::Value::Null),
                        proptest::strategy::Just(serde_json::json!({"a": [1, {"b": "}"}]})),
                    ],
                ),
                0..8,
            )
        ) {
            let mut text = String::from("{");
            for (i, (name, value)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&format!("{}:{}", serde_json::Value::from(*name), value));
            }
            text.push('}');
            let record = Record::parse(text.as_bytes()).unwrap();
            let last = |name: &str| members.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v);
            for (name, field) in [
                ("eventName", &record.event_name),
                ("eventSource", &record.event_source),
                ("awsRegion", &record.aws_region),
                ("errorCode", &record.error_code),
                ("recipientAccountId", &record.recipient_account_id),
                ("userAgent", &record.user_agent),
                ("eventID", &record.event_id),
            ] {
                prop_assert_eq!(field.as_deref().map(str::to_owned), last(name).and_then(reference_text));
            }
            let read_only = last("readOnly").and_then(|v| match v {
                serde_json::Value::Bool(b) => Some(*b),
                serde_json::Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
                serde_json::Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
                _ => None,
            });
            prop_assert_eq!(record.read_only, read_only);
        }
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let record = Record::parse(br#"{"userAgent":"a\"b\u00e9"}"#).unwrap();
        assert_eq!(record.user_agent.as_deref(), Some("a\"b\u{e9}"));
    }

    #[test]
    fn service_callers_are_recognised() {
        let a = Record::parse(
            br#"{"userIdentity":{"type":"AWSService","invokedBy":"autoscaling.amazonaws.com"}}"#,
        )
        .unwrap();
        let b = Record::parse(br#"{"userIdentity":{"type":"AssumedRole","invokedBy":"cloudformation.amazonaws.com"}}"#).unwrap();
        let c = Record::parse(br#"{"userIdentity":{"type":"IAMUser","invokedBy":"AWS Internal"}}"#)
            .unwrap();
        assert!(a.is_aws_service_call());
        assert!(b.is_aws_service_call());
        assert!(!c.is_aws_service_call());
        // People at the console, in the record shapes CloudTrail writes for them.
        let console = [
            // Older records: the console signs in on the user's behalf.
            br#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/alice","invokedBy":"signin.amazonaws.com"},"userAgent":"signin.amazonaws.com"}"#.as_slice(),
            // An assumed role from the console (SSO), flagged at the record's top level.
            br#"{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin/bob"},"sessionCredentialFromConsole":"true","userAgent":"Mozilla/5.0"}"#.as_slice(),
            // A service console as the user agent.
            br#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/carol","invokedBy":"AWS Internal"},"userAgent":"console.ec2.amazonaws.com"}"#.as_slice(),
            // Console flag beside a service principal: still a person.
            br#"{"userIdentity":{"type":"AssumedRole","invokedBy":"s3.amazonaws.com"},"sessionCredentialFromConsole":true}"#.as_slice(),
        ];
        for json in console {
            let record = Record::parse(json).unwrap();
            assert!(
                record.is_console_call(),
                "{}",
                String::from_utf8_lossy(json)
            );
            assert!(
                !record.is_aws_service_call(),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
        // A service principal that merely contains "console" is not a console.
        let not_console = Record::parse(
            br#"{"userIdentity":{"type":"AWSService","invokedBy":"consoleapp.example.com"}}"#,
        )
        .unwrap();
        assert!(!not_console.is_console_call());
        assert!(not_console.is_aws_service_call());
    }
}
