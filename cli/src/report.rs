//! `trailsight report`: one self-contained HTML file that shows why each insight was reported:
//! the key's per-minute series against what the detector expected (its own baseline, read
//! through [`trailsight::detector::explain`]), the episode, the threshold, the statistics and
//! the attributions. No script, no network: inline SVG and CSS only.

mod html;
mod insights;
mod svg;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use trailsight::fold::Cell;
use trailsight::insight::InsightRecord;
use trailsight::minute::Minute;
use trailsight::series::SeriesKey;

use crate::analysis::{Analysis, fold_paths, replay_folded};
use crate::local::{FileResult, LocalFile};

pub use insights::pair_insights;

#[derive(Args)]
pub struct ReportArgs {
    /// Log files or folders (read recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The HTML file to write.
    #[arg(short, long)]
    out: PathBuf,
    /// Draw these Insight records (JSON lines, a JSON array, or `{"Records": [...]}` files,
    /// gzipped or not; a folder is read recursively, e.g. `replay --out`'s) instead of replaying.
    #[arg(long)]
    from_insights: Option<PathBuf>,
    #[command(flatten)]
    analysis: Analysis,
}

/// Every series' count per minute (values left out: the records carry the attributions), and
/// where the trail's data begins and ends.
#[derive(Debug, Default)]
pub struct Activity {
    pub series: BTreeMap<SeriesKey, BTreeMap<Minute, Cell>>,
    pub first: Option<Minute>,
    pub last: Option<Minute>,
}

impl Activity {
    pub fn add(&mut self, key: &SeriesKey, minute: Minute, cell: &Cell) {
        let slot = self
            .series
            .entry(key.clone())
            .or_default()
            .entry(minute)
            .or_default();
        slot.count += cell.count;
        slot.service += cell.service;
        self.first = Some(self.first.map_or(minute, |m| m.min(minute)));
        self.last = Some(self.last.map_or(minute, |m| m.max(minute)));
    }

    fn from_files(files: &[LocalFile]) -> Self {
        let limit = crate::replay::future_limit();
        let mut activity = Activity::default();
        for file in files {
            if let FileResult::Folded(folded) = &file.result {
                for (key, minute, cell) in folded.delta.iter() {
                    // As replay: events dated after tomorrow are skipped.
                    if minute <= limit {
                        activity.add(key, minute, cell);
                    }
                }
            }
        }
        activity
    }
}

pub fn run_report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let files = fold_paths(&args.paths, &args.analysis)?;
    let activity = Activity::from_files(&files);
    let damaged = files
        .iter()
        .filter(|f| matches!(f.result, FileResult::Damaged(_)))
        .count();
    let records = match &args.from_insights {
        Some(path) => {
            // Without a replay, damaged files are reported here (replay reports its own).
            for file in &files {
                if let FileResult::Damaged(error) = &file.result {
                    eprintln!(
                        "skipped damaged file {}: {}",
                        crate::terminal::path(&file.path),
                        crate::terminal::escape(&error.to_string())
                    );
                }
            }
            drop(files);
            read_insight_records(path)?
        }
        None => {
            let mut replayed = replay_folded(files, &args.analysis)?;
            std::mem::take(&mut replayed.records)
        }
    };
    let config = args.analysis.detector();
    let page = html::render(&html::ReportInput {
        records: &records,
        activity: &activity,
        config: &config,
        sources: &args.paths,
    });
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", crate::terminal::path(parent)))?;
    }
    std::fs::write(&args.out, page)
        .with_context(|| format!("writing {}", crate::terminal::path(&args.out)))?;
    eprintln!(
        "report: {} insights ({} records) in {:.1}s",
        pair_insights(&records).len(),
        records.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{}", crate::terminal::path(&args.out));
    Ok(if damaged == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::cli::EXIT_DAMAGED)
    })
}

/// Insight records from a file or a folder of files: JSON lines, a JSON array, or
/// `{"Records": [...]}` (CloudTrail-Insight files), each possibly gzipped.
pub fn read_insight_records(path: &Path) -> anyhow::Result<Vec<InsightRecord>> {
    let found = crate::local::discover(&[path.to_path_buf()])?;
    let mut records = Vec::new();
    for file in &found.files {
        let mut bytes = Vec::new();
        std::fs::File::open(file)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .with_context(|| format!("reading {}", crate::terminal::path(file)))?;
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut text = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes.as_slice())
                .read_to_end(&mut text)
                .with_context(|| format!("gunzipping {}", crate::terminal::path(file)))?;
            bytes = text;
        }
        records.extend(
            parse_insight_records(&bytes)
                .with_context(|| format!("reading {}", crate::terminal::path(file)))?,
        );
    }
    crate::replay::sort_records(&mut records);
    Ok(records)
}

fn parse_insight_records(bytes: &[u8]) -> anyhow::Result<Vec<InsightRecord>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct File {
        records: Vec<InsightRecord>,
    }
    let text = std::str::from_utf8(bytes).context("not UTF-8")?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return Ok(serde_json::from_str(trimmed)?);
    }
    if let Ok(file) = serde_json::from_str::<File>(trimmed) {
        return Ok(file.records);
    }
    let mut records = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        records.push(
            serde_json::from_str(line)
                .with_context(|| format!("line {}: not an Insight record", n + 1))?,
        );
    }
    Ok(records)
}

#[cfg(test)]
mod tests;
