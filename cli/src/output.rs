//! Rendering insights and summaries for people, and Insight files in the service's layout.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use trailsight::insight::{InsightRecord, InsightState};
use trailsight::insight_files::{encode_file, plan_files};
use trailsight::minute::parse_minute;

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
                    trailsight::series::InsightType::PrincipalApiCallRateInsight => {
                        "principal rate".into()
                    }
                    trailsight::series::InsightType::PrincipalFirstSeenInsight => {
                        "first seen".into()
                    }
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
/// of `eventTime`), laid out, named and encoded by [`plan_files`] and [`encode_file`] (as the
/// detect function's S3 archive writes them: the same records give the same file names). Paths
/// are built only from validated identifiers, and each is checked to stay under `dir` before it
/// is created.
pub fn write_insight_files(dir: &Path, records: &[InsightRecord]) -> std::io::Result<Written> {
    let mut written = Written::default();
    let mut slots: BTreeMap<i64, Vec<InsightRecord>> = BTreeMap::new();
    for record in records {
        let minute = parse_minute(&record.event_time).unwrap_or_default();
        slots
            .entry(minute - minute.rem_euclid(5))
            .or_default()
            .push(record.clone());
    }
    for slot in slots.values() {
        let files = plan_files("", slot);
        written.unplaced += slot.len() - files.iter().map(|f| f.records.len()).sum::<usize>();
        for file in files {
            let path = contained(dir, &file.key)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let group: Vec<&InsightRecord> = file.records.iter().map(|&i| &slot[i]).collect();
            std::fs::write(&path, encode_file(&group)?)?;
            written.files += 1;
        }
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
