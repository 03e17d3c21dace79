//! Time: regions' local time (business hours, weekends) and timestamps as CloudTrail writes them.

use chrono::{DateTime, Datelike, Timelike, Utc};

pub(crate) fn tz_offset_hours(region: &str) -> f64 {
    if region.starts_with("us-west") {
        -8.0
    } else if region.starts_with("us-") || region.starts_with("ca-") {
        -5.0
    } else if region.starts_with("sa-") {
        -3.0
    } else if region.starts_with("eu-central") || region.starts_with("eu-north") {
        1.0
    } else if region.starts_with("ap-south") {
        5.5
    } else if region.starts_with("ap-northeast") {
        9.0
    } else if region.starts_with("ap-") {
        8.0
    } else {
        0.0
    }
}

/// Local (hour of day as a fraction, is weekend) for a unix time in a region.
pub(crate) fn local_time(t: i64, region: &str) -> (f64, bool) {
    let local = t + (tz_offset_hours(region) * 3600.0) as i64;
    let secs_of_day = local.rem_euclid(86_400);
    // 1970-01-01 was a Thursday: day 0 -> Thursday.
    let dow = (local.div_euclid(86_400) + 3).rem_euclid(7); // 0 = Monday
    (secs_of_day as f64 / 3600.0, dow >= 5)
}

/// Unix seconds as a time (the epoch if out of range).
pub(crate) fn utc(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (empty if out of range).
pub(crate) fn rfc3339(t: i64) -> String {
    match DateTime::from_timestamp(t, 0) {
        Some(d) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        None => String::new(),
    }
}
