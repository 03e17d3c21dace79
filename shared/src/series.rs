//! What Trailsight counts: a series is one insight type's key, as in CloudTrail Insights.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The two insight types of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InsightType {
    ApiCallRateInsight,
    ApiErrorRateInsight,
}

impl InsightType {
    pub const ALL: [InsightType; 2] = [
        InsightType::ApiCallRateInsight,
        InsightType::ApiErrorRateInsight,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InsightType::ApiCallRateInsight => "ApiCallRateInsight",
            InsightType::ApiErrorRateInsight => "ApiErrorRateInsight",
        }
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
}

impl SeriesKey {
    pub fn insight_type(&self) -> InsightType {
        if self.error_code.is_some() {
            InsightType::ApiErrorRateInsight
        } else {
            InsightType::ApiCallRateInsight
        }
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
        Ok(())
    }
}
