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
}
