//! UTC minutes as integers: the unit of counting.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// Minutes since 1970-01-01T00:00Z.
pub type Minute = i64;

pub const MINUTES_PER_HOUR: i64 = 60;
pub const MINUTES_PER_DAY: i64 = 1440;
pub const MINUTES_PER_WEEK: i64 = 10080;

/// Parses the minute of a CloudTrail timestamp (`2023-07-10T11:42:36Z`, with or without fraction
/// or offset). The fast path reads the fixed-width prefix; other forms go through chrono.
pub fn parse_minute(text: &str) -> Option<Minute> {
    let b = text.as_bytes();
    if b.len() >= 17
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':'
    {
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let mut v = 0i64;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
            }
            Some(v)
        };
        let tail = &text[16..];
        // Only plain UTC forms take the fast path; offsets go through chrono.
        let utc = tail.len() <= 1
            || tail.ends_with('Z')
            || tail.starts_with(':') && !tail[1..].contains(['+', '-']);
        if utc {
            let (y, mo, d, h, mi) = (
                num(0..4)?,
                num(5..7)?,
                num(8..10)?,
                num(11..13)?,
                num(14..16)?,
            );
            if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 {
                return None;
            }
            let days = NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32)?
                .signed_duration_since(epoch_date())
                .num_days();
            return Some(days * MINUTES_PER_DAY + h * 60 + mi);
        }
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp().div_euclid(60))
}

fn epoch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

pub fn to_datetime(minute: Minute) -> DateTime<Utc> {
    Utc.timestamp_opt(minute * 60, 0)
        .single()
        .unwrap_or_default()
}

pub fn from_datetime(t: DateTime<Utc>) -> Minute {
    t.timestamp().div_euclid(60)
}

/// `2026-03-02T14:07:00Z`, the form Insight records use.
pub fn format_minute(minute: Minute) -> String {
    to_datetime(minute).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Start of the UTC day containing `minute`.
pub fn day_start(minute: Minute) -> Minute {
    minute.div_euclid(MINUTES_PER_DAY) * MINUTES_PER_DAY
}

pub fn hour_of_day(minute: Minute) -> usize {
    (minute.rem_euclid(MINUTES_PER_DAY) / 60) as usize
}

/// 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday).
pub fn day_of_week(minute: Minute) -> usize {
    ((minute.div_euclid(MINUTES_PER_DAY) + 3).rem_euclid(7)) as usize
}

/// Hour of the week, 0 = Monday 00:00 UTC.
pub fn hour_of_week(minute: Minute) -> usize {
    day_of_week(minute) * 24 + hour_of_day(minute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cloudtrail_forms() {
        let m = parse_minute("2023-07-10T11:42:36Z").unwrap();
        assert_eq!(format_minute(m), "2023-07-10T11:42:00Z");
        assert_eq!(
            parse_minute("2020-09-14T00:44:23.000Z"),
            parse_minute("2020-09-14T00:44:59Z")
        );
        assert_eq!(parse_minute("2023-07-10T13:42:36+02:00"), Some(m));
        assert_eq!(parse_minute("2023-07-10T11:42Z"), Some(m));
        assert_eq!(parse_minute("garbage"), None);
        assert_eq!(parse_minute("2023-13-10T11:42:36Z"), None);
        assert_eq!(parse_minute(""), None);
    }

    #[test]
    fn calendar_helpers() {
        let monday = parse_minute("2026-03-02T14:07:00Z").unwrap();
        assert_eq!(day_of_week(monday), 0);
        assert_eq!(hour_of_day(monday), 14);
        assert_eq!(hour_of_week(monday + MINUTES_PER_DAY * 6), 6 * 24 + 14);
        assert_eq!(format_minute(day_start(monday)), "2026-03-02T00:00:00Z");
    }
}
