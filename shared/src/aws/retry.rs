//! How every AWS client retries and times out, and which SDK errors are worth retrying later.
//!
//! All clients are built through [`dynamodb_client`] / [`s3_client`] (or take [`retry_config`] and
//! [`timeout_config`]), so a throttled request is retried by the SDK, in its standard mode
//! (exponential backoff with full jitter, bounded by a client-wide retry quota), before its error
//! reaches our code. What still fails after that is classified by [`is_transient`]: throttling,
//! 5xx and network faults are worth another attempt later (a Lambda retry, an SQS redelivery);
//! anything else is not.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Attempts per request, the first included.
pub const MAX_ATTEMPTS: u32 = 6;
/// First backoff; each retry doubles it (with jitter), up to [`MAX_BACKOFF`]. Six attempts wait
/// at most 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Error codes that mean "slow down" (DynamoDB, S3 and the other services we call).
const THROTTLING_CODES: [&str; 10] = [
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "TransactionInProgressException",
];

/// Error codes of server-side faults that a later attempt may not meet.
const SERVER_CODES: [&str; 6] = [
    "InternalServerError",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Standard retry mode: [`MAX_ATTEMPTS`] attempts, exponential backoff with jitter.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Connection and per-attempt timeouts: a stuck connection becomes a retried attempt instead of
/// a Lambda timeout. (The attempt timeout covers a response's headers, not a streamed body; the
/// SDK's stalled-stream protection covers bodies.)
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(20))
        .build()
}

/// Loads the SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`)
/// with our retry and timeout settings.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

/// A client of one service's SDK crate with our retry and timeout settings, whatever the
/// `SdkConfig` carries: `sdk_client!(aws_sdk_s3, &sdk)`. Every SDK's config builder has the same
/// shape, so one definition builds them all.
#[macro_export]
macro_rules! sdk_client {
    ($sdk_crate:ident, $sdk_config:expr) => {{
        let config = $sdk_crate::config::Builder::from($sdk_config)
            .retry_config($crate::aws::retry::retry_config())
            .timeout_config($crate::aws::retry::timeout_config())
            .build();
        $sdk_crate::Client::from_conf(config)
    }};
}

/// A DynamoDB client with our retry and timeout settings, whatever `sdk` carries.
#[cfg(feature = "dynamodb")]
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    sdk_client!(aws_sdk_dynamodb, sdk)
}

/// An S3 client with our retry and timeout settings, whatever `sdk` carries.
#[cfg(feature = "s3")]
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    sdk_client!(aws_sdk_s3, sdk)
}

/// True when the request may succeed if tried again later: throttling, a 5xx answer, a timeout,
/// a connection that failed or a response that could not be read.
pub fn is_transient<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or_default();
            context.raw().status().is_server_error()
                || THROTTLING_CODES.contains(&code)
                || SERVER_CODES.contains(&code)
        }
        _ => false,
    }
}

/// A one-line description: the service's code, message and HTTP status, or the whole chain of
/// causes of a failure to get an answer (timeouts, connections).
pub fn describe<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(context) => {
            let e = context.err();
            format!(
                "{}: {} (HTTP {})",
                e.code().unwrap_or("error without a code"),
                e.message().unwrap_or("no message"),
                context.raw().status().as_u16()
            )
        }
        other => DisplayErrorContext(other).to_string(),
    }
}

/// What one call of a batch API (EventBridge `PutEvents`, Security Hub `BatchImportFindings`)
/// said of the items it was sent.
#[derive(Debug, Default)]
pub struct ItemFailures {
    /// Items that failed for a reason another attempt may not meet (throttling, an internal
    /// failure): sent again.
    pub transient: Vec<usize>,
    /// Why the transient ones failed (the last reason), for the log and the final error.
    pub reason: String,
    /// Items that failed for good, with why.
    pub permanent: Vec<(usize, String)>,
}

impl ItemFailures {
    /// Notes item `i`'s failure as the service named it (`code: message`): transient when
    /// `transient_codes` has its code, else for good.
    pub fn add(&mut self, i: usize, code: &str, message: Option<&str>, transient_codes: &[&str]) {
        let why = format!("{code}: {}", message.unwrap_or("no message"));
        if transient_codes.contains(&code) {
            self.transient.push(i);
            self.reason = why;
        } else {
            self.permanent.push((i, why));
        }
    }
}

/// Sends the items of `batch` (indices into the caller's items) with `send`, then sends again
/// the items a call reports as transient failures, after a backoff that doubles from `backoff`,
/// `attempts` calls at most. Returns the items that still failed, with why. A call that fails
/// as a whole (`Err`, after the SDK's own retries) fails every item it was sent. `what` names
/// the items in the log.
pub async fn send_with_item_retries<F, Fut>(
    batch: &[usize],
    attempts: u32,
    backoff: Duration,
    what: &'static str,
    mut send: F,
) -> Vec<(usize, String)>
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = Result<ItemFailures, String>>,
{
    let attempts = attempts.max(1);
    let mut failed = Vec::new();
    let mut pending: Vec<usize> = batch.to_vec();
    let mut reason = String::new();
    for attempt in 0..attempts {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            let wait = backoff * 2u32.saturating_pow(attempt - 1);
            tracing::warn!(
                items = what,
                count = pending.len(),
                attempt = attempt + 1,
                wait_ms = wait.as_millis() as u64,
                reason,
                "Retrying the items of a batch the service did not take."
            );
            tokio::time::sleep(wait).await;
        }
        match send(pending.clone()).await {
            Ok(outcome) => {
                failed.extend(outcome.permanent);
                if !outcome.transient.is_empty() {
                    reason = outcome.reason;
                }
                pending = outcome.transient;
            }
            Err(why) => {
                failed.extend(pending.into_iter().map(|i| (i, why.clone())));
                return failed;
            }
        }
    }
    failed.extend(
        pending
            .into_iter()
            .map(|i| (i, format!("{reason} (after {attempts} attempts)"))),
    );
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_is_standard_with_backoff() {
        let config = retry_config();
        assert_eq!(config.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(config.initial_backoff(), INITIAL_BACKOFF);
        assert_eq!(config.mode(), aws_config::retry::RetryMode::Standard);
    }

    fn run<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    #[test]
    fn transient_items_are_sent_again_until_taken() {
        let mut calls: Vec<Vec<usize>> = Vec::new();
        let failed = run(send_with_item_retries(
            &[0, 1, 2, 3],
            4,
            Duration::ZERO,
            "items",
            |pending| {
                calls.push(pending.clone());
                let round = calls.len();
                async move {
                    Ok(match round {
                        // 1 throttled, 3 refused for good.
                        1 => ItemFailures {
                            transient: vec![1],
                            reason: "ThrottlingException: slow down".into(),
                            permanent: vec![(3, "InvalidArgument: bad".into())],
                        },
                        _ => ItemFailures::default(),
                    })
                }
            },
        ));
        assert_eq!(calls, vec![vec![0, 1, 2, 3], vec![1]]);
        assert_eq!(failed, vec![(3, "InvalidArgument: bad".to_string())]);
    }

    #[test]
    fn items_still_failing_after_the_last_attempt_say_why_and_how_often() {
        let mut calls = 0;
        let failed = run(send_with_item_retries(
            &[7, 8],
            3,
            Duration::ZERO,
            "items",
            |pending| {
                calls += 1;
                async move {
                    Ok(ItemFailures {
                        transient: pending,
                        reason: "InternalFailure: try later".into(),
                        permanent: Vec::new(),
                    })
                }
            },
        ));
        assert_eq!(calls, 3);
        let why = "InternalFailure: try later (after 3 attempts)".to_string();
        assert_eq!(failed, vec![(7, why.clone()), (8, why)]);
    }

    #[test]
    fn a_call_that_fails_as_a_whole_fails_every_item_it_was_sent_and_stops() {
        let mut calls = 0;
        let failed = run(send_with_item_retries(
            &[0, 1, 2],
            5,
            Duration::ZERO,
            "items",
            |pending| {
                calls += 1;
                let round = calls;
                async move {
                    if round == 1 {
                        Ok(ItemFailures {
                            transient: pending[1..].to_vec(),
                            reason: "ThrottlingException".into(),
                            permanent: Vec::new(),
                        })
                    } else {
                        Err("PutEvents failed: connection reset".to_string())
                    }
                }
            },
        ));
        assert_eq!(calls, 2);
        let why = "PutEvents failed: connection reset".to_string();
        assert_eq!(failed, vec![(1, why.clone()), (2, why)]);
    }

    #[test]
    fn zero_attempts_still_sends_once() {
        let mut calls = 0;
        let failed = run(send_with_item_retries(
            &[0],
            0,
            Duration::ZERO,
            "items",
            |_| {
                calls += 1;
                async { Ok(ItemFailures::default()) }
            },
        ));
        assert_eq!(calls, 1);
        assert!(failed.is_empty());
    }
}
