//! The detect run's metrics (sent to CloudWatch by `aws::cloudwatch`): a small fixed set per run, in one `PutMetricData`
//! call. Custom metrics cost about $0.30 a month per name and dimension combination (the
//! contract's §6), so the set is fixed, never grows with the number of APIs, and how much of it is
//! sent is a [`MetricsLevel`] (`TRAILSIGHT_METRICS`, shared with the ingest function's EMF line):
//!
//! - `full`: everything below (seven combinations, $2.10 a month);
//! - `basic` (the default): `DetectorLagMinutes` alone ($0.30). Lag is the one signal no
//!   AWS-vended metric gives; the others have free equivalents: insights started are the alert
//!   rule's `AWS/Events` `MatchedEvents` (and each Start record reaches the alert topic anyway),
//!   failed runs are `AWS/Lambda` `Errors`, series and open insights are in the run's log line. A
//!   failed run sends no lag, so the lag alarm (missing data breaching) also sees a detector that
//!   keeps failing;
//! - `off`: nothing (no `PutMetricData` call at all).
//!
//! | metric | dimensions | value |
//! |---|---|---|
//! | `InsightsStarted` | `InsightType` (both types, zeros included) | Start records published by the run |
//! | `InsightsActive` | `InsightType` (both types, zeros included) | insights open after the run |
//! | `SeriesEvaluated` | none | series the detector keeps |
//! | `DetectorLagMinutes` | none | minutes between the evaluation time and the last minute evaluated |
//! | `RunErrors` | none | 1 when the run failed, else 0 |
//!
//! Seven combinations in all; the alarms and dashboard of `infra/template.yaml` read these names.
//! A failed run sends `RunErrors` alone (its other figures are unknown); a run that lost the
//! race for the detector state to an overlapping run sends `RunErrors` 0 alone (the winner sends
//! the rest). Sending zeros keeps the alarms' `InsightType` series continuous.
//!

use async_trait::async_trait;

use crate::detect::RunReport;
use crate::insight::InsightState;
use crate::series::InsightType;

/// The namespace when none is configured.
pub const DEFAULT_NAMESPACE: &str = "Trailsight";
pub const INSIGHTS_STARTED: &str = "InsightsStarted";
pub const INSIGHTS_ACTIVE: &str = "InsightsActive";
pub const SERIES_EVALUATED: &str = "SeriesEvaluated";
pub const DETECTOR_LAG_MINUTES: &str = "DetectorLagMinutes";
pub const RUN_ERRORS: &str = "RunErrors";
pub const INSIGHTS_UNDELIVERED: &str = "InsightsUndelivered";
pub const INSIGHTS_DEAD_LETTERED: &str = "InsightsDeadLettered";
pub const LATE_EVENTS: &str = "LateEvents";
pub const LATE_MINUTES: &str = "LateMinutes";
pub const SERIES_EVICTED: &str = "SeriesEvicted";
/// The dimension of the per-type metrics.
pub const INSIGHT_TYPE: &str = "InsightType";

/// How many custom metrics the functions send (`TRAILSIGHT_METRICS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsLevel {
    /// Every metric: detect's seven combinations, ingest's four EMF metrics.
    Full,
    /// Only what no free AWS-vended metric gives: `DetectorLagMinutes`; no ingest metrics.
    #[default]
    Basic,
    /// No custom metric at all.
    Off,
}

impl MetricsLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsLevel::Full => "full",
            MetricsLevel::Basic => "basic",
            MetricsLevel::Off => "off",
        }
    }
}

/// A `TRAILSIGHT_METRICS` value that is none of `full`, `basic`, `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a metrics level: expected full, basic or off")]
pub struct BadMetricsLevel(pub String);

impl std::str::FromStr for MetricsLevel {
    type Err = BadMetricsLevel;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(MetricsLevel::Full),
            "basic" => Ok(MetricsLevel::Basic),
            "off" => Ok(MetricsLevel::Off),
            _ => Err(BadMetricsLevel(text.to_owned())),
        }
    }
}

/// A metric's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    /// Minutes have no CloudWatch unit.
    None,
}

/// One value to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub name: &'static str,
    /// (name, value), for the per-type metrics.
    pub dimension: Option<(&'static str, &'static str)>,
    pub value: f64,
    pub unit: Unit,
}

/// What one run tells CloudWatch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunMetrics {
    /// Start records published, per type (`None`: the run did not get that far).
    pub started: Option<[u64; 2]>,
    /// Insights open after the run, per type.
    pub active: Option<[u64; 2]>,
    pub series_evaluated: Option<u64>,
    pub lag_minutes: Option<i64>,
    pub run_errors: u64,
    /// Records waiting in the outbox after the run, dead letters of the run, late events judged,
    /// the oldest late cell's lateness, series evicted (`None`: the run did not get that far).
    pub delivery: Option<[u64; 5]>,
}

/// The metrics' slot of a type; Trailsight's per-principal types have none (no metric of their
/// own: each dimension value is a billed metric).
fn type_index(t: InsightType) -> Option<usize> {
    match t {
        InsightType::ApiCallRateInsight => Some(0),
        InsightType::ApiErrorRateInsight => Some(1),
        InsightType::PrincipalApiCallRateInsight | InsightType::PrincipalFirstSeenInsight => None,
    }
}

impl RunMetrics {
    /// The metrics of a run that completed.
    pub fn from_report(report: &RunReport) -> Self {
        let mut started = [0u64; 2];
        for record in &report.published {
            if record.insight_details.state == InsightState::Start
                && let Some(i) = type_index(record.insight_details.insight_type)
            {
                started[i] += 1;
            }
        }
        let mut active = [0u64; 2];
        for (t, n) in &report.open {
            if let Some(i) = type_index(*t) {
                active[i] += *n as u64;
            }
        }
        Self {
            started: Some(started),
            active: Some(active),
            series_evaluated: Some(report.series as u64),
            lag_minutes: Some(report.lag_minutes),
            run_errors: 0,
            delivery: Some([
                report.undelivered as u64,
                report.dead_lettered as u64,
                report.late.events,
                report.late.max_lateness_minutes.max(0) as u64,
                report.evicted,
            ]),
        }
    }

    /// A run that failed: `RunErrors` 1 and nothing else.
    pub fn failed() -> Self {
        Self {
            run_errors: 1,
            ..Self::default()
        }
    }

    /// A run that found another run had saved first: `RunErrors` 0 and nothing else.
    pub fn superseded() -> Self {
        Self::default()
    }

    /// The values to send at `level`, in a fixed order.
    pub fn datums_at(&self, level: MetricsLevel) -> Vec<Datum> {
        match level {
            MetricsLevel::Full => self.datums(),
            MetricsLevel::Basic => self
                .datums()
                .into_iter()
                .filter(|d| d.name == DETECTOR_LAG_MINUTES)
                .collect(),
            MetricsLevel::Off => Vec::new(),
        }
    }

    /// Every value (the `full` level), in a fixed order.
    pub fn datums(&self) -> Vec<Datum> {
        let mut out = Vec::new();
        for (name, values) in [
            (INSIGHTS_STARTED, self.started),
            (INSIGHTS_ACTIVE, self.active),
        ] {
            if let Some(values) = values {
                for (i, t) in InsightType::ALL.into_iter().enumerate() {
                    out.push(Datum {
                        name,
                        dimension: Some((INSIGHT_TYPE, t.as_str())),
                        value: values[i] as f64,
                        unit: Unit::Count,
                    });
                }
            }
        }
        if let Some(series) = self.series_evaluated {
            out.push(Datum {
                name: SERIES_EVALUATED,
                dimension: None,
                value: series as f64,
                unit: Unit::Count,
            });
        }
        if let Some(lag) = self.lag_minutes {
            out.push(Datum {
                name: DETECTOR_LAG_MINUTES,
                dimension: None,
                value: lag as f64,
                unit: Unit::None,
            });
        }
        if let Some(values) = self.delivery {
            let names = [
                INSIGHTS_UNDELIVERED,
                INSIGHTS_DEAD_LETTERED,
                LATE_EVENTS,
                LATE_MINUTES,
                SERIES_EVICTED,
            ];
            for (name, value) in names.into_iter().zip(values) {
                out.push(Datum {
                    name,
                    dimension: None,
                    value: value as f64,
                    unit: if name == LATE_MINUTES {
                        Unit::None
                    } else {
                        Unit::Count
                    },
                });
            }
        }
        out.push(Datum {
            name: RUN_ERRORS,
            dimension: None,
            value: self.run_errors as f64,
            unit: Unit::Count,
        });
        out
    }
}

#[derive(Debug, thiserror::Error)]
#[error("sending metrics to CloudWatch namespace {namespace} failed: {reason}")]
pub struct MetricsError {
    pub namespace: String,
    pub reason: String,
}

/// Where a run's metrics go (CloudWatch; anything else in tests).
#[async_trait]
pub trait MetricsPublish: Send + Sync {
    async fn put_run_metrics(&self, metrics: &RunMetrics) -> Result<(), MetricsError>;
}

/// Keeps the metrics in memory (tests, local runs).
#[derive(Debug, Default)]
pub struct CollectingMetrics {
    pub runs: std::sync::Mutex<Vec<RunMetrics>>,
}

#[async_trait]
impl MetricsPublish for CollectingMetrics {
    async fn put_run_metrics(&self, metrics: &RunMetrics) -> Result<(), MetricsError> {
        self.runs
            .lock()
            .map_err(|_| MetricsError {
                namespace: "memory".into(),
                reason: "lock poisoned".into(),
            })?
            .push(metrics.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insight::{
        Average, InsightRecord, InsightState, RecordParts, Statistics, build_record,
    };
    use crate::series::SeriesKey;

    fn record(error: Option<&str>, state: InsightState) -> InsightRecord {
        build_record(RecordParts {
            key: &SeriesKey {
                account: "1".into(),
                region: "r".into(),
                event_source: "iam.amazonaws.com".into(),
                event_name: "CreateUser".into(),
                error_code: error.map(str::to_owned),
                principal: None,
            },
            state,
            event_time: 0,
            shared_event_id: "s",
            statistics: Statistics {
                baseline: Average { average: 0.0 },
                insight: Average { average: 1.0 },
                insight_duration: 1,
                baseline_duration: 10080,
            },
            attributions: vec![],
        })
    }

    #[test]
    fn a_completed_run_sends_the_fixed_set() {
        let mut report = RunReport {
            series: 42,
            lag_minutes: 23,
            published: vec![
                record(None, InsightState::Start),
                record(None, InsightState::Start),
                record(None, InsightState::End),
                record(Some("AccessDenied"), InsightState::End),
            ],
            ..RunReport::default()
        };
        report.open.insert(InsightType::ApiErrorRateInsight, 3);
        let datums = RunMetrics::from_report(&report).datums();
        let flat: Vec<(&str, Option<&str>, f64)> = datums
            .iter()
            .map(|d| (d.name, d.dimension.map(|(_, v)| v), d.value))
            .collect();
        assert_eq!(
            flat,
            vec![
                ("InsightsStarted", Some("ApiCallRateInsight"), 2.0),
                ("InsightsStarted", Some("ApiErrorRateInsight"), 0.0),
                ("InsightsActive", Some("ApiCallRateInsight"), 0.0),
                ("InsightsActive", Some("ApiErrorRateInsight"), 3.0),
                ("SeriesEvaluated", None, 42.0),
                ("DetectorLagMinutes", None, 23.0),
                ("InsightsUndelivered", None, 0.0),
                ("InsightsDeadLettered", None, 0.0),
                ("LateEvents", None, 0.0),
                ("LateMinutes", None, 0.0),
                ("SeriesEvicted", None, 0.0),
                ("RunErrors", None, 0.0),
            ]
        );
        assert!(
            datums
                .iter()
                .filter_map(|d| d.dimension)
                .all(|(name, _)| name == "InsightType")
        );
    }

    #[test]
    fn levels_parse_and_basic_keeps_only_the_lag() {
        assert_eq!("full".parse(), Ok(MetricsLevel::Full));
        assert_eq!(" Basic ".parse(), Ok(MetricsLevel::Basic));
        assert_eq!("OFF".parse(), Ok(MetricsLevel::Off));
        assert!("some".parse::<MetricsLevel>().is_err());
        assert_eq!(MetricsLevel::default(), MetricsLevel::Basic);
        for level in [MetricsLevel::Full, MetricsLevel::Basic, MetricsLevel::Off] {
            assert_eq!(level.as_str().parse(), Ok(level));
        }

        let report = RunReport {
            series: 4,
            lag_minutes: 21,
            ..RunReport::default()
        };
        let completed = RunMetrics::from_report(&report);
        assert_eq!(completed.datums_at(MetricsLevel::Full), completed.datums());
        let basic = completed.datums_at(MetricsLevel::Basic);
        assert_eq!(basic.len(), 1);
        assert_eq!(
            (basic[0].name, basic[0].value),
            (DETECTOR_LAG_MINUTES, 21.0)
        );
        assert!(completed.datums_at(MetricsLevel::Off).is_empty());
        // A failed or superseded run has no lag to report: nothing at basic.
        assert!(
            RunMetrics::failed()
                .datums_at(MetricsLevel::Basic)
                .is_empty()
        );
        assert!(
            RunMetrics::superseded()
                .datums_at(MetricsLevel::Basic)
                .is_empty()
        );
    }

    #[test]
    fn failed_and_superseded_runs_send_run_errors_alone() {
        let failed = RunMetrics::failed().datums();
        assert_eq!(failed.len(), 1);
        assert_eq!((failed[0].name, failed[0].value), ("RunErrors", 1.0));
        let superseded = RunMetrics::superseded().datums();
        assert_eq!(
            (superseded.len(), superseded[0].name, superseded[0].value),
            (1, "RunErrors", 0.0)
        );
    }
}
