//! One CloudTrail record, parsed leniently and cheaply.
//!
//! Only the fields Trailsight uses are read; every other field (request parameters, response
//! elements, ...) is skipped by the parser without being materialised. Strings borrow from the
//! input buffer unless they contain escapes. Optional fields are `Option`s, booleans accept the
//! string forms some log shippers write (`"true"`), and numbers never matter.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

/// The fields of a CloudTrail record that classification, counting and attribution need.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Record<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub event_version: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub event_time: Option<Cow<'a, str>>,
    /// Log shippers (Logstash, Elastic) sometimes drop `eventTime` and keep only this.
    #[serde(rename = "@timestamp", borrow, deserialize_with = "text")]
    pub shipper_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub event_source: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub event_name: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub aws_region: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", borrow, deserialize_with = "text")]
    pub event_id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub event_type: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub event_category: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient_bool")]
    pub management_event: Option<bool>,
    #[serde(deserialize_with = "lenient_bool")]
    pub read_only: Option<bool>,
    #[serde(borrow, deserialize_with = "text")]
    pub error_code: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user_identity: Option<UserIdentity<'a>>,
}

/// The caller, as far as attribution and the "AWS service on your behalf" option need it.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct UserIdentity<'a> {
    #[serde(rename = "type", borrow, deserialize_with = "text")]
    pub identity_type: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub arn: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub invoked_by: Option<Cow<'a, str>>,
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

    /// True for calls an AWS service made on the user's behalf (`AWSService` identity, or a
    /// service principal in `invokedBy`).
    pub fn is_aws_service_call(&self) -> bool {
        let Some(identity) = &self.user_identity else {
            return false;
        };
        if identity.identity_type.as_deref() == Some("AWSService") {
            return true;
        }
        matches!(identity.invoked_by.as_deref(), Some(by) if by.ends_with(".amazonaws.com"))
    }
}

/// A string field that borrows from the input when it has no escapes (serde's own `Cow` support
/// does not borrow inside an `Option`). Numbers and booleans where a string belongs are kept as
/// text; objects and arrays read as absent.
fn text<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
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
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
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
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
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
    }
}
