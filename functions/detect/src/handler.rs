//! One invocation: a scheduled event → one detect run ([`trailsight::detect::run_detector`]) →
//! its metrics and its summary log line.
//!
//! - The evaluation time is the event's `time` (EventBridge's schedule time), floored to the
//!   minute, so a late or retried invocation judges the minutes its schedule meant. An event
//!   without a `time` (a manual test invocation) runs at the current time.
//! - Another run saved the detector state first ([`StoreError::Conflict`]): this run publishes
//!   nothing, logs it and succeeds; the other run owns the minutes.
//! - The event's time is more than [`MAX_AHEAD_MINUTES`] ahead of the clock: refused
//!   (`Trailsight.FutureTime`); judging the future would make every real minute late.
//! - The run stops evaluating before the function's deadline (less [`reserve`]) and saves; the
//!   next run continues where it stopped.
//! - Delivery failed for some records: the pipeline evaluated anyway, kept them in the state's
//!   outbox for the next runs (or moved them to the dead letters after their last attempt); the
//!   invocation then fails loudly (`Trailsight.PublishFailed`) so the Lambda `Errors` metric and
//!   its alarm see it.
//! - Storage failed: the invocation fails (`Trailsight.Retryable` when throttled or unavailable);
//!   the next scheduled run catches up from the last saved state.
//!
//! Metrics are sent once per invocation, whatever happened ([`RunMetrics`]); a failure to send
//! them is logged, never fatal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use lambda_runtime::Diagnostic;
use serde::Serialize;
use serde_json::Value;
use trailsight::aws::archive::{S3Archive, S3DeadLetters};
use trailsight::aws::cloudwatch::{CloudWatchMetrics, cloudwatch_client};
use trailsight::aws::dynamodb::DynamoStore;
use trailsight::aws::eventbridge::{EventBridgePublisher, eventbridge_client};
use trailsight::aws::retry::{dynamodb_client, s3_client};
use trailsight::aws::securityhub::{SecurityHubFindings, securityhub_client};
use trailsight::aws::sns::{SnsAlerts, sns_client};
use trailsight::aws::state_body::S3StateBody;
use trailsight::config::DetectorConfig;
use trailsight::destinations::Destinations;
use trailsight::detect::{DeadLetterSink, DetectError, DetectRun, InsightPublish, RunReport};
use trailsight::eventbus::SourceError;
use trailsight::insight::InsightState;
use trailsight::metrics::{MetricsPublish, RunMetrics};
use trailsight::minute::{Minute, format_minute, parse_minute};
use trailsight::series::InsightType;
use trailsight::store::{DeltaRead, StateStore, StoreError};

use crate::config::Config;

/// The function: settings and clients, built once per container.
pub struct Detect {
    config: DetectorConfig,
    deltas: Arc<dyn DeltaRead>,
    states: Arc<dyn StateStore>,
    publisher: Arc<dyn InsightPublish>,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    metrics: Arc<dyn MetricsPublish>,
}

/// How far ahead of the clock a scheduled time may be (EventBridge's own clock skew is seconds).
pub const MAX_AHEAD_MINUTES: i64 = 5;

/// Time kept back from the function's deadline for saving and delivering: a fifth of what is
/// left, at least 20 seconds.
pub fn reserve(remaining: Duration) -> Duration {
    (remaining / 5).max(Duration::from_secs(20))
}

/// The instant a run must stop evaluating, from the invocation's deadline (ms since the epoch).
pub fn evaluation_deadline(deadline_ms: u64) -> Option<Instant> {
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).ok()?;
    let remaining = Duration::from_millis(deadline_ms.checked_sub(now_ms)?);
    Some(Instant::now() + remaining.saturating_sub(reserve(remaining)))
}

/// Why an invocation fails.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the event's time {0:?} is not an RFC 3339 timestamp")]
    BadEvent(String),
    #[error(
        "the event's time {at} is {ahead} minutes ahead of the clock (at most {MAX_AHEAD_MINUTES}): refused, judging the future would make real data late"
    )]
    FutureTime { at: String, ahead: i64 },
    #[error("detect run at {at} failed: {error}")]
    Store { at: String, error: StoreError },
    #[error(
        "detect run at {at}: {failures} insight records not delivered ({error}); they stay in the detector state's outbox for the next runs ({dead_lettered} moved to the dead letters after their last attempt)"
    )]
    Publish {
        at: String,
        failures: usize,
        dead_lettered: usize,
        error: String,
    },
}

impl HandlerError {
    /// The Lambda error type, so that alarms and retries can tell a fault from bad input.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::BadEvent(_) => "Trailsight.BadEvent",
            HandlerError::FutureTime { .. } => "Trailsight.FutureTime",
            HandlerError::Store { error, .. } if error.is_retryable() => "Trailsight.Retryable",
            HandlerError::Store { .. } => "Trailsight.StoreError",
            HandlerError::Publish { .. } => "Trailsight.PublishFailed",
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// What a run did: the invocation's response and its log line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    /// The evaluation time (the event's, floored to the minute).
    pub evaluation_time: String,
    /// `completed`, or `superseded` when another run saved the state first.
    pub outcome: &'static str,
    pub first_minute: Option<String>,
    pub last_minute: Option<String>,
    pub minutes: i64,
    pub series: usize,
    pub published: usize,
    pub started: usize,
    pub ended: usize,
    pub open_call_rate: usize,
    pub open_error_rate: usize,
    pub lag_minutes: i64,
    /// Late data judged: cells, events, the oldest one's lateness, spikes found in it.
    pub late_cells: u64,
    pub late_events: u64,
    pub late_max_minutes: i64,
    pub late_spikes: usize,
    /// Hour partitions that received parts after leaving the late window (not judged).
    pub late_beyond_window: usize,
    /// The run stopped at its deadline; the next run continues.
    pub stopped_at_deadline: bool,
    pub evicted: u64,
    /// Principal insights: principal-minutes not tracked (the account at its cap of principals).
    pub principals_untracked: u64,
    pub undelivered: usize,
    pub dead_lettered: usize,
}

impl RunSummary {
    fn completed(now: Minute, report: &RunReport) -> Self {
        let count = |state| {
            report
                .published
                .iter()
                .filter(|r| r.insight_details.state == state)
                .count()
        };
        let open = |t| report.open.get(&t).copied().unwrap_or(0);
        RunSummary {
            evaluation_time: format_minute(now),
            outcome: "completed",
            first_minute: report.evaluated.map(|(from, _)| format_minute(from)),
            last_minute: report.evaluated.map(|(_, to)| format_minute(to)),
            minutes: report.minutes,
            series: report.series,
            published: report.published.len(),
            started: count(InsightState::Start),
            ended: count(InsightState::End),
            open_call_rate: open(InsightType::ApiCallRateInsight),
            open_error_rate: open(InsightType::ApiErrorRateInsight),
            lag_minutes: report.lag_minutes,
            late_cells: report.late.cells,
            late_events: report.late.events,
            late_max_minutes: report.late.max_lateness_minutes,
            late_spikes: report.late.spikes,
            late_beyond_window: report.late_beyond_window,
            stopped_at_deadline: report.stopped_at_deadline,
            evicted: report.evicted,
            principals_untracked: report.principals_untracked,
            undelivered: report.undelivered,
            dead_lettered: report.dead_lettered,
        }
    }

    fn superseded(now: Minute) -> Self {
        RunSummary {
            evaluation_time: format_minute(now),
            outcome: "superseded",
            ..RunSummary::default()
        }
    }

    /// The summary log line.
    pub fn log(&self) {
        tracing::info!(
            evaluation_time = self.evaluation_time,
            outcome = self.outcome,
            first_minute = self.first_minute,
            last_minute = self.last_minute,
            minutes = self.minutes,
            series = self.series,
            published = self.published,
            started = self.started,
            ended = self.ended,
            open_call_rate = self.open_call_rate,
            open_error_rate = self.open_error_rate,
            lag_minutes = self.lag_minutes,
            late_cells = self.late_cells,
            late_events = self.late_events,
            late_max_minutes = self.late_max_minutes,
            late_spikes = self.late_spikes,
            late_beyond_window = self.late_beyond_window,
            stopped_at_deadline = self.stopped_at_deadline,
            evicted = self.evicted,
            principals_untracked = self.principals_untracked,
            undelivered = self.undelivered,
            dead_lettered = self.dead_lettered,
            "Detect run done."
        );
        if self.late_beyond_window > 0 {
            tracing::warn!(
                hours = self.late_beyond_window,
                "Log files arrived for hours older than the late window: counted, not judged."
            );
        }
        if self.principals_untracked > 0 {
            tracing::warn!(
                principal_minutes = self.principals_untracked,
                "Principals over the per-account cap were not tracked: their calls count in the account's series, but no principal insight judges them (TRAILSIGHT_MAX_PRINCIPALS_PER_ACCOUNT)."
            );
        }
        if self.stopped_at_deadline {
            tracing::warn!(
                last_minute = self.last_minute,
                lag_minutes = self.lag_minutes,
                "Stopped at the function's deadline; the next run continues the catch-up."
            );
        }
    }
}

/// The evaluation time an event asks for: its `time`, floored to the minute; `None` when it has
/// none.
pub fn evaluation_time(event: &Value) -> Result<Option<Minute>, HandlerError> {
    match event.get("time") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_minute(text)
            .map(Some)
            .ok_or_else(|| HandlerError::BadEvent(text.clone())),
        Some(other) => Err(HandlerError::BadEvent(other.to_string())),
    }
}

fn now_minute() -> Minute {
    chrono::Utc::now().timestamp().div_euclid(60)
}

impl Detect {
    /// The function on DynamoDB (the state's body in S3, when a state bucket is configured),
    /// EventBridge (then the S3 archive, the alerts topic and Security Hub, when configured) and
    /// CloudWatch, with the SDK settings
    /// of [`trailsight::aws::retry`].
    pub fn new(config: &Config, sdk: &SdkConfig) -> Result<Detect, SourceError> {
        let mut store = DynamoStore::new(dynamodb_client(sdk), &config.table);
        if let Some(state) = &config.state {
            store = store.with_state_body(S3StateBody::new(s3_client(sdk), state.clone()));
        }
        let store = Arc::new(store);
        let events: Arc<dyn InsightPublish> = Arc::new(EventBridgePublisher::new(
            eventbridge_client(sdk),
            &config.event_bus,
            &config.event_source,
            &config.detail_type,
        )?);
        let archive = config.archive.as_ref().map(|a| {
            Arc::new(S3Archive::new(s3_client(sdk), a.clone())) as Arc<dyn InsightPublish>
        });
        let alerts = config.alerts_topic.as_ref().map(|topic| {
            Arc::new(SnsAlerts::new(sns_client(sdk), topic)) as Arc<dyn InsightPublish>
        });
        let findings = config.security_hub_product.as_ref().map(|product| {
            Arc::new(SecurityHubFindings::new(securityhub_client(sdk), product))
                as Arc<dyn InsightPublish>
        });
        let dead_letters = config.state.as_ref().map(|state| {
            Arc::new(S3DeadLetters::new(s3_client(sdk), state.clone())) as Arc<dyn DeadLetterSink>
        });
        let metrics = Arc::new(CloudWatchMetrics::new(
            cloudwatch_client(sdk),
            &config.metric_namespace,
            config.metrics,
        ));
        Ok(Detect::with_parts(
            config.detector.clone(),
            store.clone(),
            store,
            Arc::new(
                Destinations::new(events, archive)
                    .with_alerts(alerts)
                    .with_findings(findings),
            ),
            metrics,
        )
        .with_dead_letters(dead_letters))
    }

    /// Where records go after their last delivery attempt (besides the state's own list).
    pub fn with_dead_letters(mut self, dead_letters: Option<Arc<dyn DeadLetterSink>>) -> Self {
        self.dead_letters = dead_letters;
        self
    }

    /// The function on any storage, publisher and metrics (tests inject faults through these).
    pub fn with_parts(
        config: DetectorConfig,
        deltas: Arc<dyn DeltaRead>,
        states: Arc<dyn StateStore>,
        publisher: Arc<dyn InsightPublish>,
        metrics: Arc<dyn MetricsPublish>,
    ) -> Detect {
        Detect {
            config,
            deltas,
            states,
            publisher,
            dead_letters: None,
            metrics,
        }
    }

    /// The Lambda entry point: `deadline` is when evaluation must stop (see [`evaluation_deadline`]).
    pub async fn handle(
        &self,
        event: Value,
        deadline: Option<Instant>,
    ) -> Result<RunSummary, HandlerError> {
        let now = match evaluation_time(&event) {
            Ok(Some(now)) if now - now_minute() > MAX_AHEAD_MINUTES => {
                let error = HandlerError::FutureTime {
                    at: format_minute(now),
                    ahead: now - now_minute(),
                };
                tracing::error!(%error, "Refused event.");
                return Err(error);
            }
            Ok(Some(now)) => now,
            Ok(None) => {
                let now = now_minute();
                tracing::warn!(
                    evaluation_time = format_minute(now),
                    "The event has no time (not a scheduled event?): evaluating at the current time."
                );
                now
            }
            Err(error) => {
                tracing::error!(%error, "Bad event.");
                return Err(error);
            }
        };
        self.run_until(now, deadline).await
    }

    /// One run at `now` without a deadline.
    pub async fn run(&self, now: Minute) -> Result<RunSummary, HandlerError> {
        self.run_until(now, None).await
    }

    /// One run at `now` that stops evaluating at `deadline`, its metrics and its log line.
    pub async fn run_until(
        &self,
        now: Minute,
        deadline: Option<Instant>,
    ) -> Result<RunSummary, HandlerError> {
        let result = DetectRun {
            deltas: self.deltas.as_ref(),
            states: self.states.as_ref(),
            publisher: self.publisher.as_ref(),
            dead_letters: self.dead_letters.as_deref(),
            deadline,
        }
        .run(&self.config, now)
        .await;
        let at = format_minute(now);
        let (metrics, outcome) = match result {
            Ok(report) => {
                let summary = RunSummary::completed(now, &report);
                summary.log();
                let outcome = match &report.delivery_error {
                    Some(error) if report.delivery_failures > 0 => Err(HandlerError::Publish {
                        at,
                        failures: report.delivery_failures,
                        dead_lettered: report.dead_lettered,
                        error: error.clone(),
                    }),
                    _ => Ok(summary),
                };
                (RunMetrics::from_report(&report), outcome)
            }
            Err(DetectError::Store(StoreError::Conflict)) => {
                tracing::info!(
                    evaluation_time = at,
                    "Another detect run saved the detector state first; this run publishes nothing."
                );
                (RunMetrics::superseded(), Ok(RunSummary::superseded(now)))
            }
            Err(DetectError::Store(error)) => {
                (RunMetrics::failed(), Err(HandlerError::Store { at, error }))
            }
        };
        if let Err(error) = self.metrics.put_run_metrics(&metrics).await {
            tracing::warn!(%error, "Run metrics not sent.");
        }
        match &outcome {
            Ok(summary) if summary.outcome != "completed" => summary.log(),
            Ok(_) => {}
            Err(error) => tracing::error!(
                error_type = error.error_type(),
                %error,
                "Detect run failed."
            ),
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
    use trailsight::detect::{CollectingPublisher, PublishError};
    use trailsight::detector::{DetectorState, Pending};
    use trailsight::insight::InsightRecord;
    use trailsight::memory::MemoryStore;
    use trailsight::metrics::CollectingMetrics;
    use trailsight::store::VersionedState;

    const SCHEDULED: &[u8] = include_bytes!("../testdata/scheduled-event.json");

    #[test]
    fn scheduled_events_round_trip_and_give_their_minute() {
        let event: CloudWatchEvent = serde_json::from_slice(SCHEDULED).unwrap();
        assert_eq!(event.detail_type.as_deref(), Some("Scheduled Event"));
        let value = serde_json::to_value(&event).unwrap();
        let minute = evaluation_time(&value).unwrap().unwrap();
        assert_eq!(format_minute(minute), "2026-03-02T14:07:00Z");
        let raw: Value = serde_json::from_slice(SCHEDULED).unwrap();
        assert_eq!(evaluation_time(&raw).unwrap(), Some(minute));
        assert_eq!(evaluation_time(&serde_json::json!({})).unwrap(), None);
        let bad = evaluation_time(&serde_json::json!({"time": "yesterday"})).unwrap_err();
        assert_eq!(bad.error_type(), "Trailsight.BadEvent");
        assert!(evaluation_time(&serde_json::json!({"time": 5})).is_err());
    }

    fn detect(
        store: Arc<MemoryStore>,
        publisher: Arc<dyn InsightPublish>,
        metrics: Arc<CollectingMetrics>,
    ) -> Detect {
        Detect::with_parts(
            DetectorConfig::default(),
            store.clone(),
            store,
            publisher,
            metrics,
        )
    }

    #[tokio::test]
    async fn a_run_reports_its_minutes_and_sends_metrics() {
        let store = Arc::new(MemoryStore::new());
        let metrics = Arc::new(CollectingMetrics::default());
        let detect = detect(
            store,
            Arc::new(CollectingPublisher::default()),
            metrics.clone(),
        );
        let event: Value = serde_json::from_slice(SCHEDULED).unwrap();
        let summary = detect.handle(event, None).await.unwrap();
        assert_eq!(summary.outcome, "completed");
        assert_eq!(summary.evaluation_time, "2026-03-02T14:07:00Z");
        // The first run evaluates up to the settle delay before the evaluation time.
        assert_eq!(summary.last_minute.as_deref(), Some("2026-03-02T13:47:00Z"));
        assert_eq!(summary.lag_minutes, 20);
        let runs = metrics.runs.lock().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].lag_minutes, Some(20));
        assert_eq!(runs[0].run_errors, 0);
    }

    /// A state store whose saves always lose the race.
    struct AlwaysConflict;

    #[async_trait]
    impl StateStore for AlwaysConflict {
        async fn load_state(&self) -> Result<VersionedState, StoreError> {
            Ok(VersionedState {
                state: DetectorState::default(),
                version: 3,
            })
        }
        async fn save_state(&self, _: &DetectorState, _: u64) -> Result<u64, StoreError> {
            Err(StoreError::Conflict)
        }
    }

    #[tokio::test]
    async fn a_conflict_is_not_a_failure() {
        let metrics = Arc::new(CollectingMetrics::default());
        let detect = Detect::with_parts(
            DetectorConfig::default(),
            Arc::new(MemoryStore::new()),
            Arc::new(AlwaysConflict),
            Arc::new(CollectingPublisher::default()),
            metrics.clone(),
        );
        let summary = detect.run(30_000_000).await.unwrap();
        assert_eq!(summary.outcome, "superseded");
        assert_eq!(summary.published, 0);
        assert_eq!(metrics.runs.lock().unwrap()[0], RunMetrics::superseded());
    }

    /// A publisher that accepts nothing.
    struct Down;

    #[async_trait]
    impl InsightPublish for Down {
        async fn publish(
            &self,
            records: &[InsightRecord],
        ) -> Result<(), (Vec<usize>, PublishError)> {
            Err((
                (0..records.len()).collect(),
                PublishError::Failed("down".into()),
            ))
        }
    }

    #[tokio::test]
    async fn publish_failures_fail_the_invocation_and_keep_the_outbox() {
        let store = Arc::new(MemoryStore::new());
        let mut state = DetectorState::default();
        let pending = trailsight::insight::build_record(trailsight::insight::RecordParts {
            key: &trailsight::series::SeriesKey {
                account: "1".into(),
                region: "r".into(),
                event_source: "iam.amazonaws.com".into(),
                event_name: "CreateUser".into(),
                error_code: None,
                principal: None,
            },
            state: InsightState::Start,
            event_time: 0,
            shared_event_id: "s",
            statistics: trailsight::insight::Statistics {
                baseline: trailsight::insight::Average { average: 0.0 },
                insight: trailsight::insight::Average { average: 9.0 },
                insight_duration: 1,
                baseline_duration: 10080,
            },
            attributions: vec![],
        });
        state.outbox.push(Pending::new(pending.clone()));
        state.watermark = Some(30_000_000 - 25);
        store.save_state(&state, 0).await.unwrap();
        let metrics = Arc::new(CollectingMetrics::default());
        let detect = detect(store.clone(), Arc::new(Down), metrics.clone());
        let error = detect.run(30_000_000).await.unwrap_err();
        assert_eq!(error.error_type(), "Trailsight.PublishFailed");
        assert!(error.to_string().contains("outbox"), "{error}");
        // The run evaluated its minutes all the same, and says how many records wait.
        let sent = metrics.runs.lock().unwrap()[0].clone();
        assert_eq!(sent.lag_minutes, Some(20));
        assert_eq!(sent.delivery.map(|d| d[0]), Some(1));
        let saved = store.load_state().await.unwrap().state;
        assert_eq!(saved.watermark, Some(30_000_000 - 20));
        assert_eq!(saved.outbox.len(), 1);
        assert_eq!(saved.outbox[0].record, pending);
        assert_eq!(saved.outbox[0].attempts, 1);
        assert!(
            saved.outbox[0]
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("down")
        );
    }

    #[tokio::test]
    async fn a_scheduled_time_ahead_of_the_clock_is_refused() {
        let store = Arc::new(MemoryStore::new());
        let metrics = Arc::new(CollectingMetrics::default());
        let detect = detect(store, Arc::new(CollectingPublisher::default()), metrics);
        let ahead = chrono::Utc::now() + chrono::Duration::minutes(30);
        let event = serde_json::json!({"time": ahead.to_rfc3339()});
        let error = detect.handle(event, None).await.unwrap_err();
        assert_eq!(error.error_type(), "Trailsight.FutureTime");
        let near = chrono::Utc::now() + chrono::Duration::minutes(2);
        let event = serde_json::json!({"time": near.to_rfc3339()});
        assert!(detect.handle(event, None).await.is_ok());
    }

    #[test]
    fn the_deadline_keeps_time_to_save() {
        assert_eq!(reserve(Duration::from_secs(300)), Duration::from_secs(60));
        assert_eq!(reserve(Duration::from_secs(30)), Duration::from_secs(20));
        let in_five_minutes = chrono::Utc::now().timestamp_millis() as u64 + 300_000;
        let deadline = evaluation_deadline(in_five_minutes).unwrap();
        let left = deadline - Instant::now();
        assert!(left <= Duration::from_secs(240) && left > Duration::from_secs(200));
        assert!(evaluation_deadline(0).is_none(), "a deadline in the past");
    }
}
