//! What Trailsight counts: a series is one insight type's key, as in CloudTrail Insights, or,
//! with principal insights on, one principal's key ([`SeriesKey::principal`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The two insight types of the contract, and Trailsight's own per-principal types (opt-in,
/// docs/DETECTION.md "Per-principal insights").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InsightType {
    ApiCallRateInsight,
    ApiErrorRateInsight,
    /// A principal calling an API (or a service's APIs) far above its own usual rate.
    PrincipalApiCallRateInsight,
    /// A principal calling a sensitive API it never called, working in a region it never used,
    /// or sweeping within 15 minutes: 3 services or 6 read APIs it never used, 2 roles it never
    /// assumed.
    PrincipalFirstSeenInsight,
}

impl InsightType {
    /// The managed service's types (what metrics and run reports count).
    pub const ALL: [InsightType; 2] = [
        InsightType::ApiCallRateInsight,
        InsightType::ApiErrorRateInsight,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InsightType::ApiCallRateInsight => "ApiCallRateInsight",
            InsightType::ApiErrorRateInsight => "ApiErrorRateInsight",
            InsightType::PrincipalApiCallRateInsight => "PrincipalApiCallRateInsight",
            InsightType::PrincipalFirstSeenInsight => "PrincipalFirstSeenInsight",
        }
    }

    /// Trailsight's per-principal types, which CloudTrail does not have.
    pub fn is_principal(self) -> bool {
        matches!(
            self,
            InsightType::PrincipalApiCallRateInsight | InsightType::PrincipalFirstSeenInsight
        )
    }
}

impl fmt::Display for InsightType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A series: account, region, API, and for error-rate series the error code.
///
/// `error_code: None` is the call-rate series of the API (its write calls, failed or not);
/// `Some(code)` is the error-rate series of that API and error code.
///
/// `principal: Some(arn)` is a principal series (principal insights, opt-in): the calls, read and
/// write, of one normalised principal ([`crate::principal::normalise`]) to the API, or to any API
/// of the service when `event_name` is [`SERVICE_WIDE`]. `Some(`[`ALL_PRINCIPALS`]`)` is the
/// account's rate of the API over all principals, learnt and never reported. A principal series
/// never has an error code. The field is last so that the order of the other series, and their
/// stored form, are those of before.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    #[serde(rename = "a")]
    pub account: String,
    #[serde(rename = "r")]
    pub region: String,
    #[serde(rename = "s")]
    pub event_source: String,
    #[serde(rename = "n")]
    pub event_name: String,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// The `event_name` of a principal's service-wide series.
pub const SERVICE_WIDE: &str = "*";
/// The `principal` of the account's rate of an API over all its principals.
pub const ALL_PRINCIPALS: &str = "*";

impl SeriesKey {
    pub fn insight_type(&self) -> InsightType {
        if self.principal.is_some() {
            InsightType::PrincipalApiCallRateInsight
        } else if self.error_code.is_some() {
            InsightType::ApiErrorRateInsight
        } else {
            InsightType::ApiCallRateInsight
        }
    }

    /// The principal of a principal series that can be reported (not the account's rate).
    pub fn reported_principal(&self) -> Option<&str> {
        self.principal.as_deref().filter(|p| *p != ALL_PRINCIPALS)
    }

    /// A principal's service-wide series.
    pub fn is_service_wide(&self) -> bool {
        self.principal.is_some() && self.event_name == SERVICE_WIDE
    }

    /// `eventSource:eventName`, the form allow/deny patterns match against.
    pub fn api(&self) -> String {
        format!("{}:{}", self.event_source, self.event_name)
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}:{}",
            self.account, self.region, self.event_source, self.event_name
        )?;
        if let Some(code) = &self.error_code {
            write!(f, "[{code}]")?;
        }
        if let Some(principal) = &self.principal {
            write!(f, "@{principal}")?;
        }
        Ok(())
    }
}
