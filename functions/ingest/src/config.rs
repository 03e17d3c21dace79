//! The function's settings, read once from its environment (names as in `infra/template.yaml`).
//! AWS endpoints, region and credentials come from the SDK's own variables (`AWS_ENDPOINT_URL`...).

use trailsight::classify::ClassifyOptions;
use trailsight::envvars::EnvVars;
use trailsight::logfile::ReadLimits;
use trailsight::metrics::MetricsLevel;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `TRAILSIGHT_TABLE` (required).
    pub table: String,
    /// `TRAILSIGHT_MAX_COMPRESSED_BYTES`, `TRAILSIGHT_MAX_DECOMPRESSED_BYTES`,
    /// `TRAILSIGHT_MAX_RECORDS`, `TRAILSIGHT_MAX_SERIES_PER_FILE`; the library's defaults
    /// otherwise.
    pub limits: ReadLimits,
    /// `TRAILSIGHT_INCLUDE_READ_APIS`, `TRAILSIGHT_INCLUDE_DATA_EVENTS`,
    /// `TRAILSIGHT_PRINCIPAL_INSIGHTS` (`true`/`false`).
    pub classify: ClassifyOptions,
    /// `TRAILSIGHT_METRIC_NAMESPACE`, default `Trailsight`.
    pub metric_namespace: String,
    /// `TRAILSIGHT_METRICS`: `full` writes the EMF metrics; `basic` (default) and `off` write
    /// none (every counter stays in the summary log line, and the dead-letter queue's depth is a
    /// free AWS/SQS metric).
    pub metrics: MetricsLevel,
    /// Memory that objects in flight may hold: half of `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (which
    /// Lambda sets, in MB; 128 when absent).
    pub memory_budget_bytes: u64,
    /// `TRAILSIGHT_TRAIL_BUCKETS`: the trail bucket(s), comma-separated. A notification naming
    /// any other bucket is refused at once (final, never retried): log files are untrusted, and
    /// so is a notification pointing at a bucket someone else fills. Empty (unset) accepts every
    /// bucket, for local runs; the template always sets it.
    pub trail_buckets: Vec<String>,
}

/// A variable that is missing or invalid, named.
pub use trailsight::envvars::EnvVarError as ConfigError;

pub const DEFAULT_NAMESPACE: &str = "Trailsight";

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
        let defaults = ReadLimits::default();
        let limits = ReadLimits {
            max_compressed_bytes: env.positive(
                "TRAILSIGHT_MAX_COMPRESSED_BYTES",
                defaults.max_compressed_bytes,
            )?,
            max_decompressed_bytes: env.positive(
                "TRAILSIGHT_MAX_DECOMPRESSED_BYTES",
                defaults.max_decompressed_bytes,
            )?,
            max_records: env.positive("TRAILSIGHT_MAX_RECORDS", defaults.max_records)?,
            max_series: usize::try_from(
                env.positive("TRAILSIGHT_MAX_SERIES_PER_FILE", defaults.max_series as u64)?,
            )
            .unwrap_or(usize::MAX),
            ..defaults
        };
        Ok(Config {
            table,
            limits,
            classify: ClassifyOptions {
                include_read_apis: env.flag("TRAILSIGHT_INCLUDE_READ_APIS", false)?,
                include_data_events: env.flag("TRAILSIGHT_INCLUDE_DATA_EVENTS", false)?,
                principal_insights: env.flag(trailsight::envvars::PRINCIPAL_INSIGHTS, false)?,
            },
            metric_namespace: env
                .get("TRAILSIGHT_METRIC_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            metrics: env.parsed(
                "TRAILSIGHT_METRICS",
                MetricsLevel::default(),
                "full, basic or off",
            )?,
            memory_budget_bytes: env.positive("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 128)? << 19,
            trail_buckets: env
                .get("TRAILSIGHT_TRAIL_BUCKETS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
            Err(ConfigError::Missing {
                name: "TRAILSIGHT_TABLE",
                ..
            })
        ));
        assert!(config(&[("TRAILSIGHT_TABLE", " ")]).is_err());
        let message = config(&[]).unwrap_err().to_string();
        assert!(message.contains("TRAILSIGHT_TABLE is not set"), "{message}");
    }

    #[test]
    fn trail_buckets_are_a_comma_separated_list() {
        let c = config(&[("TRAILSIGHT_TABLE", "t")]).unwrap();
        assert!(c.trail_buckets.is_empty());
        let c = config(&[
            ("TRAILSIGHT_TABLE", "t"),
            ("TRAILSIGHT_TRAIL_BUCKETS", " trail-a, trail-b ,"),
        ])
        .unwrap();
        assert_eq!(c.trail_buckets, vec!["trail-a", "trail-b"]);
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&[("TRAILSIGHT_TABLE", "t")]).unwrap();
        assert_eq!(c.metric_namespace, "Trailsight");
        assert_eq!(c.metrics, MetricsLevel::Basic);
        assert_eq!(c.limits, ReadLimits::default());
        assert_eq!(c.classify, ClassifyOptions::default());
        assert_eq!(c.memory_budget_bytes, 64 << 20);
        let c = config(&[
            ("TRAILSIGHT_TABLE", "t"),
            ("TRAILSIGHT_MAX_COMPRESSED_BYTES", "52428800"),
            ("TRAILSIGHT_MAX_DECOMPRESSED_BYTES", "536870912"),
            ("TRAILSIGHT_MAX_RECORDS", "500000"),
            ("TRAILSIGHT_MAX_SERIES_PER_FILE", "2000"),
            ("TRAILSIGHT_INCLUDE_READ_APIS", "true"),
            ("TRAILSIGHT_INCLUDE_DATA_EVENTS", "False"),
            ("TRAILSIGHT_PRINCIPAL_INSIGHTS", "true"),
            ("TRAILSIGHT_METRIC_NAMESPACE", "Custom/NS"),
            ("TRAILSIGHT_METRICS", "full"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
        ])
        .unwrap();
        assert_eq!(c.limits.max_compressed_bytes, 52_428_800);
        assert_eq!(c.limits.max_decompressed_bytes, 536_870_912);
        assert_eq!(c.limits.max_records, 500_000);
        assert_eq!(c.limits.max_series, 2_000);
        assert!(c.classify.include_read_apis);
        assert!(!c.classify.include_data_events);
        assert!(c.classify.principal_insights);
        assert_eq!(c.metric_namespace, "Custom/NS");
        assert_eq!(c.metrics, MetricsLevel::Full);
        let off = config(&[("TRAILSIGHT_TABLE", "t"), ("TRAILSIGHT_METRICS", " Off ")]).unwrap();
        assert_eq!(off.metrics, MetricsLevel::Off);
        assert_eq!(c.memory_budget_bytes, 256 << 20);
    }

    #[test]
    fn bad_values_are_named() {
        let e = config(&[
            ("TRAILSIGHT_TABLE", "t"),
            ("TRAILSIGHT_MAX_RECORDS", "lots"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("TRAILSIGHT_MAX_RECORDS") && e.contains("lots"),
            "{e}"
        );
        assert!(
            config(&[
                ("TRAILSIGHT_TABLE", "t"),
                ("TRAILSIGHT_INCLUDE_READ_APIS", "maybe")
            ])
            .is_err()
        );
        assert!(config(&[("TRAILSIGHT_TABLE", "t"), ("TRAILSIGHT_MAX_RECORDS", "0")]).is_err());
        let e = config(&[("TRAILSIGHT_TABLE", "t"), ("TRAILSIGHT_METRICS", "all")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("TRAILSIGHT_METRICS") && e.contains("all"), "{e}");
    }
}
