//! Settings read from environment variables, checked so that a bad value stops a function at
//! start-up with a message naming the variable. Pure: the variables come through a lookup (the
//! process environment, or a map in tests).
//!
//! Values are trimmed, and an empty value counts as unset: the deployment template passes
//! optional parameters as empty strings.

use std::str::FromStr;

/// `true`/`false` (default `false`): per-principal insights. Both functions read it: ingest folds
/// the principal series, detect judges them; the template passes one parameter to both.
pub const PRINCIPAL_INSIGHTS: &str = "TRAILSIGHT_PRINCIPAL_INSIGHTS";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvVarError {
    #[error("{name} is not set: {why}")]
    Missing {
        name: &'static str,
        why: &'static str,
    },
    #[error("{name}={value:?} is not valid: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Typed reads of variables through a lookup.
pub struct EnvVars<F> {
    lookup: F,
}

impl EnvVars<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        EnvVars {
            lookup: |name: &str| std::env::var(name).ok(),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> EnvVars<F> {
    pub fn new(lookup: F) -> Self {
        EnvVars { lookup }
    }

    /// The trimmed value; `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A value that must be set; `why` says what it is for.
    pub fn required(&self, name: &'static str, why: &'static str) -> Result<String, EnvVarError> {
        self.get(name).ok_or(EnvVarError::Missing { name, why })
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, any case); `default` when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, EnvVarError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(EnvVarError::Invalid {
                name,
                value,
                expected: "true or false",
            }),
        }
    }

    /// A whole number of at least `min`; `default` when unset.
    pub fn integer(
        &self,
        name: &'static str,
        default: i64,
        min: i64,
        expected: &'static str,
    ) -> Result<i64, EnvVarError> {
        self.parsed_if(name, default, expected, |n: &i64| *n >= min)
    }

    /// A positive whole number; `default` when unset.
    pub fn positive(&self, name: &'static str, default: u64) -> Result<u64, EnvVarError> {
        self.parsed_if(name, default, "a positive whole number", |n: &u64| *n > 0)
    }

    /// Any value `T` parses from; `default` when unset.
    pub fn parsed<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        expected: &'static str,
    ) -> Result<T, EnvVarError> {
        self.parsed_if(name, default, expected, |_| true)
    }

    fn parsed_if<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        expected: &'static str,
        valid: impl Fn(&T) -> bool,
    ) -> Result<T, EnvVarError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        match value.parse::<T>() {
            Ok(parsed) if valid(&parsed) => Ok(parsed),
            _ => Err(EnvVarError::Invalid {
                name,
                value,
                expected,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> EnvVars<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvVars::new(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        let env = vars(&[("A", "  "), ("B", " x ")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B").as_deref(), Some("x"));
        assert_eq!(env.get("C"), None);
        let missing = env.required("A", "it names the table").unwrap_err();
        assert_eq!(missing.to_string(), "A is not set: it names the table");
    }

    #[test]
    fn flags_numbers_and_parsed_values() {
        let env = vars(&[
            ("YES", "Yes"),
            ("NO", "0"),
            ("BAD", "maybe"),
            ("N", " 42 "),
            ("ZERO", "0"),
            ("NEG", "-3"),
            ("WORD", "lots"),
        ]);
        assert_eq!(env.flag("YES", false), Ok(true));
        assert_eq!(env.flag("NO", true), Ok(false));
        assert_eq!(env.flag("UNSET", true), Ok(true));
        let bad = env.flag("BAD", false).unwrap_err().to_string();
        assert!(bad.contains("BAD") && bad.contains("maybe"), "{bad}");
        assert_eq!(env.positive("N", 1), Ok(42));
        assert_eq!(env.positive("UNSET", 7), Ok(7));
        assert!(env.positive("ZERO", 1).is_err());
        assert!(env.positive("WORD", 1).is_err());
        assert_eq!(env.integer("ZERO", 5, 0, "0 or more"), Ok(0));
        assert!(env.integer("NEG", 5, 0, "0 or more").is_err());
        assert_eq!(env.parsed::<f64>("N", 0.0, "a number"), Ok(42.0));
        assert!(env.parsed::<f64>("WORD", 0.0, "a number").is_err());
    }
}
