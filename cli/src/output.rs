//! Rendering insights and summaries for people, and Insight files in the service's layout.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use trailsight::insight::{InsightRecord, InsightState};
use trailsight::minute::parse_minute;
use trailsight::s3key::insight_key;

/// A plain text table with aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    // Cells hold log content (API names, ARNs, regions): escaped before they are measured.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| crate::terminal::escape(cell).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| h.to_string()).collect(), &mut out);
    line(widths.iter().map(|w| "-".repeat(*w)).collect(), &mut out);
    for row in rows {
        line(row.clone(), &mut out);
    }
    out
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

/// Insight records as a table: one row per record.
pub fn insights_table(records: &[InsightRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let d = &r.insight_details;
            let s = &d.insight_context.statistics;
            let top = d
                .insight_context
                .attributions
                .iter()
                .find(|a| a.attribute == "userIdentityArn")
                .and_then(|a| a.insight.first())
                .map(|v| shorten(&v.value, 48))
                .unwrap_or_else(|| "-".into());
            vec![
                r.event_time.clone(),
                format!("{:?}", d.state),
                match d.insight_type {
                    trailsight::series::InsightType::ApiCallRateInsight => "call rate".into(),
                    trailsight::series::InsightType::ApiErrorRateInsight => "error rate".into(),
                },
                r.aws_region.clone(),
                format!(
                    "{}:{}",
                    d.event_source.trim_end_matches(".amazonaws.com"),
                    d.event_name
                ),
                d.error_code.clone().unwrap_or_else(|| "-".into()),
                format!("{:.4}", s.baseline.average),
                format!("{:.2}", s.insight.average),
                s.insight_duration.to_string(),
                top,
            ]
        })
        .collect();
    table(
        &[
            "time",
            "state",
            "type",
            "region",
            "api",
            "error",
            "baseline/min",
            "insight/min",
            "minutes",
            "top caller",
        ],
        &rows,
    )
}

/// What [`write_insight_files`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub files: usize,
    /// Records whose account or region is not an AWS identifier (the overflow series' `*`):
    /// no file is named after them.
    pub unplaced: usize,
}

/// Writes records as CloudTrail-Insight files under `dir`, one per (account, region, 5 minutes
/// of `eventTime`), named and laid out as the service does. Paths are built only from validated
/// identifiers ([`insight_key`]), and each is checked to stay under `dir` before it is created.
pub fn write_insight_files(dir: &Path, records: &[InsightRecord]) -> std::io::Result<Written> {
    let mut written = Written::default();
    let mut groups: BTreeMap<(String, String, i64), Vec<&InsightRecord>> = BTreeMap::new();
    for record in records {
        let minute = parse_minute(&record.event_time).unwrap_or_default();
        groups
            .entry((
                record.recipient_account_id.clone(),
                record.aws_region.clone(),
                minute - minute.rem_euclid(5),
            ))
            .or_default()
            .push(record);
    }
    for ((account, region, slot), group) in &groups {
        let id = file_suffix(account, region, *slot, group);
        let Some(key) = insight_key("", account, region, *slot, &id) else {
            written.unplaced += group.len();
            continue;
        };
        let path = contained(dir, &key)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut gz = GzEncoder::new(std::fs::File::create(&path)?, Compression::default());
        serde_json::to_writer(&mut gz, &serde_json::json!({ "Records": group }))?;
        gz.finish()?.flush()?;
        written.files += 1;
    }
    Ok(written)
}

/// `dir` joined with a relative key, refused unless every component is a plain name: the last
/// line of defence should a key ever hold `..`, a root or a drive.
fn contained(dir: &Path, key: &str) -> std::io::Result<PathBuf> {
    let relative = Path::new(key);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if key.is_empty() || !plain {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "refusing to write {} outside {}",
                crate::terminal::escape(key),
                crate::terminal::path(dir)
            ),
        ));
    }
    Ok(dir.join(relative))
}

/// 16 alphanumerics derived from the file's content, so reruns name files the same.
fn file_suffix(account: &str, region: &str, slot: i64, group: &[&InsightRecord]) -> String {
    let mut seed = format!("{account}{region}{slot}");
    for r in group {
        seed.push_str(&r.event_id);
    }
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        h.finish()
    };
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = digest;
    (0..16)
        .map(|_| {
            let c = ALPHABET[(x % 62) as usize] as char;
            x = x / 62 + digest.rotate_left(13);
            c
        })
        .collect()
}

/// Count of Start records.
pub fn starts(records: &[InsightRecord]) -> usize {
    records
        .iter()
        .filter(|r| r.insight_details.state == InsightState::Start)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_keys_are_written_under_the_directory() {
        let dir = Path::new("/tmp/out");
        assert_eq!(
            contained(dir, "AWSLogs/111122223333/x.json.gz").unwrap(),
            dir.join("AWSLogs/111122223333/x.json.gz")
        );
        for key in ["", "../x", "AWSLogs/../../x", "/etc/passwd", "./x"] {
            assert!(contained(dir, key).is_err(), "{key}");
        }
    }
}
