//! The function's settings, read once from its environment (names as in `infra/template.yaml`),
//! checked at start-up so a bad value stops the function before its first run, with a message
//! naming the variable. Empty values count as unset (the template passes optional parameters as
//! empty strings). AWS endpoints, region and credentials come from the SDK's own variables
//! (`AWS_ENDPOINT_URL`...).

use trailsight::config::{ApiFilter, DetectorConfig};
use trailsight::envvars::{EnvVarError, EnvVars};
use trailsight::eventbus::{
    DEFAULT_BUS, DEFAULT_DETAIL_TYPE, DEFAULT_SOURCE, SourceError, validate_source,
};
use trailsight::metrics::{DEFAULT_NAMESPACE, MetricsLevel};
use trailsight::s3location::{LocationError, S3Location};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `TRAILSIGHT_TABLE` (required).
    pub table: String,
    /// `TRAILSIGHT_EVENT_BUS`, default `default`.
    pub event_bus: String,
    /// `TRAILSIGHT_EVENT_SOURCE`, default `trailsight`; `aws.` sources are refused.
    pub event_source: String,
    /// `TRAILSIGHT_DETAIL_TYPE`, default `AWS Insight via CloudTrail`.
    pub detail_type: String,
    /// `TRAILSIGHT_METRIC_NAMESPACE`, default `Trailsight`.
    pub metric_namespace: String,
    /// `TRAILSIGHT_METRICS`: `full`, `basic` (default) or `off`.
    pub metrics: MetricsLevel,
    /// `TRAILSIGHT_ARCHIVE_BUCKET` and `TRAILSIGHT_ARCHIVE_PREFIX`: where archived Insight
    /// files go; no archive without a bucket.
    pub archive: Option<S3Location>,
    /// `TRAILSIGHT_STATE_BUCKET` and `TRAILSIGHT_STATE_PREFIX`: where the detector state's body
    /// (one S3 object per version) and dead letters go; without a bucket, the body stays in the
    /// table as chunk items.
    pub state: Option<S3Location>,
    /// `TRAILSIGHT_ALERTS_TOPIC_ARN`: the SNS topic that receives one alert per record (the
    /// Amazon Q Developer chat format, text for e-mail); no alerts without it.
    pub alerts_topic: Option<String>,
    /// `TRAILSIGHT_SECURITY_HUB_PRODUCT_ARN`: the account's default Security Hub product
    /// (`arn:<partition>:securityhub:<region>:<account>:product/<account>/default`); each record
    /// is imported as a finding under it. No findings without it.
    pub security_hub_product: Option<String>,
    /// `TRAILSIGHT_SENSITIVITY`, `TRAILSIGHT_MIN_CALLS`, `TRAILSIGHT_SETTLE_MINUTES`,
    /// `TRAILSIGHT_MAX_CATCHUP_MINUTES`, `TRAILSIGHT_IGNORE_AWS_SERVICE_CALLERS`,
    /// `TRAILSIGHT_API_ALLOW`, `TRAILSIGHT_API_DENY`, `TRAILSIGHT_LATE_WINDOW_MINUTES`,
    /// `TRAILSIGHT_EVICT_IDLE_MINUTES`, `TRAILSIGHT_DELIVERY_ATTEMPTS`,
    /// `TRAILSIGHT_DROP_HOLD_MINUTES`, `TRAILSIGHT_ADAPT_AFTER_MINUTES`,
    /// `TRAILSIGHT_PRINCIPAL_INSIGHTS`; [`DetectorConfig::default`]
    /// otherwise.
    pub detector: DetectorConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable that is missing or invalid, named.
    #[error(transparent)]
    Env(#[from] EnvVarError),
    #[error("TRAILSIGHT_EVENT_SOURCE: {0}")]
    Source(SourceError),
    #[error(
        "{prefix_var} is set ({prefix:?}) but {bucket_var} is not: set the bucket, or clear the prefix"
    )]
    PrefixWithoutBucket {
        prefix_var: &'static str,
        bucket_var: &'static str,
        prefix: String,
    },
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::read(&EnvVars::process())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Self::read(&EnvVars::new(lookup))
    }

    fn read(env: &EnvVars<impl Fn(&str) -> Option<String>>) -> Result<Config, ConfigError> {
        let table = env.required(
            "TRAILSIGHT_TABLE",
            "it must name the DynamoDB table (see infra/template.yaml)",
        )?;
        let event_source = env
            .get("TRAILSIGHT_EVENT_SOURCE")
            .unwrap_or_else(|| DEFAULT_SOURCE.into());
        validate_source(&event_source).map_err(ConfigError::Source)?;

        let defaults = DetectorConfig::default();
        let min_calls = env.integer(
            "TRAILSIGHT_MIN_CALLS",
            defaults.min_calls as i64,
            1,
            "a positive whole number",
        )? as u64;
        let settle_minutes = env.integer(
            "TRAILSIGHT_SETTLE_MINUTES",
            defaults.settle_minutes,
            0,
            "a whole number of minutes, 0 or more",
        )?;
        let max_catchup_minutes = env.integer(
            "TRAILSIGHT_MAX_CATCHUP_MINUTES",
            defaults.max_catchup_minutes,
            1,
            "a positive whole number of minutes",
        )?;
        let late_window_minutes = env.integer(
            "TRAILSIGHT_LATE_WINDOW_MINUTES",
            defaults.late_window_minutes,
            0,
            "a whole number of minutes, 0 or more",
        )?;
        let evict_idle_minutes = env.integer(
            "TRAILSIGHT_EVICT_IDLE_MINUTES",
            defaults.evict_idle_minutes,
            1440,
            "a whole number of minutes, at least 1440 (a day)",
        )?;
        let delivery_attempts = env
            .integer(
                "TRAILSIGHT_DELIVERY_ATTEMPTS",
                i64::from(defaults.delivery_attempts),
                1,
                "a positive whole number",
            )?
            .min(i64::from(u32::MAX)) as u32;
        let drop_hold_minutes = env.integer(
            "TRAILSIGHT_DROP_HOLD_MINUTES",
            defaults.drop_hold_minutes,
            0,
            "a whole number of minutes, 0 or more",
        )?;
        let adapt_after_minutes = env.integer(
            "TRAILSIGHT_ADAPT_AFTER_MINUTES",
            defaults.adapt_after_minutes,
            60,
            "a whole number of minutes, at least 60",
        )?;
        let sensitivity = env.parsed(
            "TRAILSIGHT_SENSITIVITY",
            defaults.sensitivity,
            "low, medium or high",
        )?;
        let ignore_aws_service_callers = env.flag(
            "TRAILSIGHT_IGNORE_AWS_SERVICE_CALLERS",
            defaults.ignore_aws_service_callers,
        )?;
        let principal_insights = env.flag(
            trailsight::envvars::PRINCIPAL_INSIGHTS,
            defaults.principal_insights,
        )?;
        let principal_warmup_hours = env.integer(
            "TRAILSIGHT_PRINCIPAL_WARMUP_HOURS",
            defaults.principal_warmup_minutes / 60,
            1,
            "a whole number of hours, at least 1",
        )?;
        let max_principals_per_account = env.positive(
            "TRAILSIGHT_MAX_PRINCIPALS_PER_ACCOUNT",
            defaults.max_principals_per_account as u64,
        )?;
        let api_filter = ApiFilter::parse(
            &env.get("TRAILSIGHT_API_ALLOW").unwrap_or_default(),
            &env.get("TRAILSIGHT_API_DENY").unwrap_or_default(),
        );

        let archive = location(
            env,
            "TRAILSIGHT_ARCHIVE_BUCKET",
            "TRAILSIGHT_ARCHIVE_PREFIX",
        )?;
        let state = location(env, "TRAILSIGHT_STATE_BUCKET", "TRAILSIGHT_STATE_PREFIX")?;

        let alerts_topic = match env.get("TRAILSIGHT_ALERTS_TOPIC_ARN") {
            Some(arn) if !is_topic_arn(&arn) => {
                return Err(ConfigError::Env(EnvVarError::Invalid {
                    name: "TRAILSIGHT_ALERTS_TOPIC_ARN",
                    value: arn,
                    expected: "an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>)",
                }));
            }
            other => other,
        };

        let security_hub_product = match env.get("TRAILSIGHT_SECURITY_HUB_PRODUCT_ARN") {
            Some(arn) if !is_default_product_arn(&arn) => {
                return Err(ConfigError::Env(EnvVarError::Invalid {
                    name: "TRAILSIGHT_SECURITY_HUB_PRODUCT_ARN",
                    value: arn,
                    expected: "a Security Hub default product ARN \
                               (arn:<partition>:securityhub:<region>:<account>:product/<account>/default)",
                }));
            }
            other => other,
        };

        let metrics = env.parsed(
            "TRAILSIGHT_METRICS",
            MetricsLevel::default(),
            "full, basic or off",
        )?;
        Ok(Config {
            table,
            event_bus: env
                .get("TRAILSIGHT_EVENT_BUS")
                .unwrap_or_else(|| DEFAULT_BUS.into()),
            event_source,
            detail_type: env
                .get("TRAILSIGHT_DETAIL_TYPE")
                .unwrap_or_else(|| DEFAULT_DETAIL_TYPE.into()),
            metric_namespace: env
                .get("TRAILSIGHT_METRIC_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            metrics,
            archive,
            state,
            alerts_topic,
            security_hub_product,
            detector: DetectorConfig {
                sensitivity,
                min_calls,
                settle_minutes,
                max_catchup_minutes,
                ignore_aws_service_callers,
                api_filter,
                late_window_minutes,
                evict_idle_minutes,
                delivery_attempts,
                drop_hold_minutes,
                adapt_after_minutes,
                principal_insights,
                max_principals_per_account: usize::try_from(max_principals_per_account)
                    .unwrap_or(usize::MAX),
                ..defaults
            }
            .with_principal_warmup_minutes(principal_warmup_hours.saturating_mul(60)),
        })
    }
}

/// `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`, the same account
/// twice (an account imports its own findings under its default product).
fn is_default_product_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "securityhub"
        && parts[..5].iter().all(|p| !p.is_empty())
        && parts[5] == format!("product/{}/default", parts[4])
}

/// `arn:<partition>:sns:<region>:<account>:<name>`, each part present.
fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "sns"
        && parts.iter().all(|p| !p.is_empty())
        && !arn.chars().any(char::is_whitespace)
}

/// A bucket and prefix read from two variables, checked once: no prefix without a bucket, a
/// bucket name S3 accepts, a prefix that leaves room for keys.
fn location(
    env: &EnvVars<impl Fn(&str) -> Option<String>>,
    bucket_var: &'static str,
    prefix_var: &'static str,
) -> Result<Option<S3Location>, ConfigError> {
    let prefix = env.get(prefix_var).unwrap_or_default();
    let Some(bucket) = env.get(bucket_var) else {
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            return Ok(None);
        }
        return Err(ConfigError::PrefixWithoutBucket {
            prefix_var,
            bucket_var,
            prefix: prefix.to_owned(),
        });
    };
    match S3Location::new(&bucket, &prefix) {
        Ok(location) => Ok(Some(location)),
        Err(LocationError::Bucket(_)) => Err(ConfigError::Env(EnvVarError::Invalid {
            name: bucket_var,
            value: bucket,
            expected: "an S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)",
        })),
        Err(_) => Err(ConfigError::Env(EnvVarError::Invalid {
            name: prefix_var,
            value: prefix,
            expected: "a key prefix of at most 512 bytes, without control characters",
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use trailsight::config::Sensitivity;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn the_table_is_required() {
        assert!(matches!(
            config(&[]),
            Err(ConfigError::Env(EnvVarError::Missing {
                name: "TRAILSIGHT_TABLE",
                ..
            }))
        ));
        assert!(config(&[("TRAILSIGHT_TABLE", "  ")]).is_err());
        let message = config(&[]).unwrap_err().to_string();
        assert!(message.contains("TRAILSIGHT_TABLE is not set"), "{message}");
    }

    #[test]
    fn defaults_are_the_libraries() {
        let c = config(&[("TRAILSIGHT_TABLE", "t")]).unwrap();
        assert_eq!(c.table, "t");
        assert_eq!(c.event_bus, "default");
        assert_eq!(c.event_source, "trailsight");
        assert_eq!(c.detail_type, "AWS Insight via CloudTrail");
        assert_eq!(c.metric_namespace, "Trailsight");
        assert_eq!(c.metrics, MetricsLevel::Basic);
        assert_eq!(c.alerts_topic, None);
        assert_eq!(c.archive, None);
        assert_eq!(c.state, None);
        assert_eq!(c.detector, DetectorConfig::default());
        // The template passes unset parameters as empty strings.
        let empty = config(&[
            ("TRAILSIGHT_TABLE", "t"),
            ("TRAILSIGHT_ARCHIVE_BUCKET", ""),
            ("TRAILSIGHT_ARCHIVE_PREFIX", ""),
            ("TRAILSIGHT_STATE_BUCKET", ""),
            ("TRAILSIGHT_STATE_PREFIX", ""),
            ("TRAILSIGHT_METRICS", ""),
            ("TRAILSIGHT_API_ALLOW", ""),
            ("TRAILSIGHT_API_DENY", ""),
        ])
        .unwrap();
        assert_eq!(empty, c);
    }

    #[test]
    fn every_variable_is_read() {
        let c = config(&[
            ("TRAILSIGHT_TABLE", "t"),
            ("TRAILSIGHT_EVENT_BUS", "security"),
            ("TRAILSIGHT_EVENT_SOURCE", "com.example.trailsight"),
            ("TRAILSIGHT_DETAIL_TYPE", "Insight"),
            ("TRAILSIGHT_METRIC_NAMESPACE", "Sec/Trailsight"),
            ("TRAILSIGHT_METRICS", "Full"),
            ("TRAILSIGHT_ARCHIVE_BUCKET", "archive-bucket"),
            ("TRAILSIGHT_ARCHIVE_PREFIX", "insights"),
            ("TRAILSIGHT_STATE_BUCKET", "state-bucket.example"),
            ("TRAILSIGHT_STATE_PREFIX", "/trailsight/"),
            ("TRAILSIGHT_SENSITIVITY", "High"),
            ("TRAILSIGHT_MIN_CALLS", "10"),
            ("TRAILSIGHT_SETTLE_MINUTES", "0"),
            ("TRAILSIGHT_MAX_CATCHUP_MINUTES", "1440"),
            ("TRAILSIGHT_IGNORE_AWS_SERVICE_CALLERS", "true"),
            ("TRAILSIGHT_API_ALLOW", "iam.amazonaws.com:*"),
            ("TRAILSIGHT_API_DENY", "kms.amazonaws.com:Decrypt, *:Get*"),
            ("TRAILSIGHT_LATE_WINDOW_MINUTES", "720"),
            ("TRAILSIGHT_EVICT_IDLE_MINUTES", "43200"),
            ("TRAILSIGHT_DELIVERY_ATTEMPTS", "3"),
            ("TRAILSIGHT_DROP_HOLD_MINUTES", "60"),
            ("TRAILSIGHT_ADAPT_AFTER_MINUTES", "2880"),
            ("TRAILSIGHT_PRINCIPAL_INSIGHTS", "true"),
            ("TRAILSIGHT_PRINCIPAL_WARMUP_HOURS", "12"),
            ("TRAILSIGHT_MAX_PRINCIPALS_PER_ACCOUNT", "1000"),
        ])
        .unwrap();
        assert!(c.detector.principal_insights);
        assert_eq!(c.detector.max_principals_per_account, 1000);
        // The warm-up, and a principal series' minimum age with it (at most a day).
        assert_eq!(
            (
                c.detector.principal_warmup_minutes,
                c.detector.principal_series_min_age_minutes
            ),
            (720, 720)
        );
        assert_eq!(
            (
                c.detector.late_window_minutes,
                c.detector.evict_idle_minutes,
                c.detector.delivery_attempts,
                c.detector.drop_hold_minutes
            ),
            (720, 43200, 3, 60)
        );
        assert_eq!(c.detector.adapt_after_minutes, 2880);
        assert!(
            config(&[
                ("TRAILSIGHT_TABLE", "t"),
                ("TRAILSIGHT_EVICT_IDLE_MINUTES", "60")
            ])
            .is_err(),
            "evicting after an hour would forget every quiet key"
        );
        assert_eq!(c.event_bus, "security");
        assert_eq!(c.event_source, "com.example.trailsight");
        assert_eq!(c.detail_type, "Insight");
        assert_eq!(c.metric_namespace, "Sec/Trailsight");
        assert_eq!(c.metrics, MetricsLevel::Full);
        let off = config(&[("TRAILSIGHT_TABLE", "t"), ("TRAILSIGHT_METRICS", "off")]).unwrap();
        assert_eq!(off.metrics, MetricsLevel::Off);
        assert_eq!(
            c.archive,
            Some(S3Location::new("archive-bucket", "insights").unwrap())
        );
        assert_eq!(
            c.state,
            Some(S3Location::new("state-bucket.example", "trailsight").unwrap())
        );
        let d = &c.detector;
        assert_eq!(d.sensitivity, Sensitivity::High);
        assert_eq!(
            (d.min_calls, d.settle_minutes, d.max_catchup_minutes),
            (10, 0, 1440)
        );
        assert!(d.ignore_aws_service_callers);
        assert_eq!(
            d.api_filter,
            ApiFilter::parse("iam.amazonaws.com:*", "kms.amazonaws.com:Decrypt,*:Get*")
        );
        assert_eq!(d.warmup_minutes, DetectorConfig::default().warmup_minutes);
    }

    #[test]
    fn reserved_sources_stop_the_function() {
        let error = config(&[
            ("TRAILSIGHT_TABLE", "t"),
            ("TRAILSIGHT_EVENT_SOURCE", "aws.cloudtrail"),
        ])
        .unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Source(SourceError::Reserved(_))
        ));
        let message = error.to_string();
        assert!(
            message.contains("TRAILSIGHT_EVENT_SOURCE") && message.contains("aws."),
            "{message}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        for (name, value) in [
            ("TRAILSIGHT_MIN_CALLS", "0"),
            ("TRAILSIGHT_MIN_CALLS", "ten"),
            ("TRAILSIGHT_SETTLE_MINUTES", "-1"),
            ("TRAILSIGHT_MAX_CATCHUP_MINUTES", "0"),
            ("TRAILSIGHT_SENSITIVITY", "extreme"),
            ("TRAILSIGHT_IGNORE_AWS_SERVICE_CALLERS", "maybe"),
            ("TRAILSIGHT_METRICS", "some"),
            ("TRAILSIGHT_STATE_BUCKET", "Upper_Case"),
            ("TRAILSIGHT_STATE_BUCKET", "s3://bucket"),
            ("TRAILSIGHT_STATE_BUCKET", "ab"),
            ("TRAILSIGHT_STATE_BUCKET", "-bucket"),
            ("TRAILSIGHT_ARCHIVE_BUCKET", "Archive"),
            ("TRAILSIGHT_ALERTS_TOPIC_ARN", "my-topic"),
            ("TRAILSIGHT_PRINCIPAL_WARMUP_HOURS", "0"),
            ("TRAILSIGHT_MAX_PRINCIPALS_PER_ACCOUNT", "0"),
            ("TRAILSIGHT_SECURITY_HUB_PRODUCT_ARN", "default"),
            (
                "TRAILSIGHT_SECURITY_HUB_PRODUCT_ARN",
                "arn:aws:securityhub:eu-west-1:111122223333:product/444455556666/default",
            ),
            (
                "TRAILSIGHT_SECURITY_HUB_PRODUCT_ARN",
                "arn:aws:securityhub:eu-west-1:111122223333:product/aws/guardduty",
            ),
            (
                "TRAILSIGHT_ALERTS_TOPIC_ARN",
                "arn:aws:sqs:us-east-1:111122223333:q",
            ),
        ] {
            let message = config(&[("TRAILSIGHT_TABLE", "t"), (name, value)])
                .unwrap_err()
                .to_string();
            assert!(
                message.contains(name) && message.contains(value),
                "{message}"
            );
        }
        let error = config(&[
            ("TRAILSIGHT_TABLE", "t"),
            ("TRAILSIGHT_ARCHIVE_PREFIX", "p"),
        ]);
        assert_eq!(
            error,
            Err(ConfigError::PrefixWithoutBucket {
                prefix_var: "TRAILSIGHT_ARCHIVE_PREFIX",
                bucket_var: "TRAILSIGHT_ARCHIVE_BUCKET",
                prefix: "p".into()
            })
        );
        let error = config(&[("TRAILSIGHT_TABLE", "t"), ("TRAILSIGHT_STATE_PREFIX", "p/")]);
        assert_eq!(
            error,
            Err(ConfigError::PrefixWithoutBucket {
                prefix_var: "TRAILSIGHT_STATE_PREFIX",
                bucket_var: "TRAILSIGHT_STATE_BUCKET",
                prefix: "p".into()
            })
        );
        let message = error.unwrap_err().to_string();
        assert!(message.contains("TRAILSIGHT_STATE_BUCKET"), "{message}");
    }

    #[test]
    fn an_alerts_topic_is_an_sns_arn() {
        let arn = "arn:aws:sns:eu-west-1:111122223333:trailsight-alerts";
        let c = config(&[
            ("TRAILSIGHT_TABLE", "t"),
            ("TRAILSIGHT_ALERTS_TOPIC_ARN", arn),
        ])
        .unwrap();
        assert_eq!(c.alerts_topic.as_deref(), Some(arn));
    }

    #[test]
    fn findings_go_under_the_accounts_default_product() {
        let arn = "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default";
        let c = config(&[
            ("TRAILSIGHT_TABLE", "t"),
            ("TRAILSIGHT_SECURITY_HUB_PRODUCT_ARN", arn),
        ])
        .unwrap();
        assert_eq!(c.security_hub_product.as_deref(), Some(arn));
        let c = config(&[("TRAILSIGHT_TABLE", "t")]).unwrap();
        assert_eq!(c.security_hub_product, None);
    }

    #[test]
    fn a_state_bucket_without_a_prefix_keeps_the_bucket_root() {
        let c = config(&[
            ("TRAILSIGHT_TABLE", "t"),
            ("TRAILSIGHT_STATE_BUCKET", "b-1.x"),
        ])
        .unwrap();
        assert_eq!(c.state, Some(S3Location::new("b-1.x", "").unwrap()));
    }
}
