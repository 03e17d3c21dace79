//! Peak memory of the ingest path on a large log file: the compressed object held in memory (as
//! the Lambda holds what S3 returns) and its fold.
//!
//! ```text
//! cargo run --release -p trailsight-ingest --example fold_rss -- generate /tmp/big.json.gz 100 15 20
//! cargo run --release -p trailsight-ingest --example fold_rss -- fold /tmp/big.json.gz
//! ```
//! `generate <path> <MB> <minutes> <variants>` writes a CloudTrail log file of about <MB>
//! megabytes uncompressed, from the real records of the invictus dataset: every record gets a
//! fresh `eventID`, an `eventTime` spread over <minutes> minutes, one of 40 caller ARNs, and its
//! `eventName` one of <variants> variants (more series). `fold` reads the file into memory, folds
//! it with the default limits and prints the process's peak resident set (`VmHWM`), in a
//! process that did nothing else.

use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde_json::Value;
use trailsight::classify::ClassifyOptions;
use trailsight::ingest::fold_object;
use trailsight::logfile::ReadLimits;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", path, rest @ ..] => {
            let number = |i: usize, default: u64| -> anyhow::Result<u64> {
                Ok(rest
                    .get(i)
                    .map(|s| s.parse())
                    .transpose()?
                    .unwrap_or(default))
            };
            generate(path, number(0, 100)?, number(1, 15)?, number(2, 20)?)
        }
        ["fold", path] => fold(path),
        _ => {
            anyhow::bail!("usage: fold_rss generate <path> [MB] [minutes] [variants] | fold <path>")
        }
    }
}

fn templates() -> anyhow::Result<Vec<Value>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/real/invictus-aws-attack-simulation");
    let mut records = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                let mut text = String::new();
                MultiGzDecoder::new(std::fs::File::open(&path)?).read_to_string(&mut text)?;
                let file: Value = serde_json::from_str(&text)?;
                if let Some(Value::Array(items)) = file.get("Records") {
                    records.extend(items.iter().cloned());
                }
            }
        }
    }
    anyhow::ensure!(!records.is_empty(), "no template records found");
    Ok(records)
}

fn generate(path: &str, megabytes: u64, minutes: u64, variants: u64) -> anyhow::Result<()> {
    let templates = templates()?;
    let file = std::fs::File::create(path)?;
    let mut out = GzEncoder::new(BufWriter::new(file), Compression::default());
    let target = megabytes * 1_000_000;
    let mut written = 0u64;
    let mut n = 0u64;
    out.write_all(b"{\"Records\":[")?;
    while written < target {
        let mut record = templates[(n as usize) % templates.len()].clone();
        if let Value::Object(map) = &mut record {
            map.insert(
                "eventID".into(),
                format!("{n:08x}-0000-4000-8000-{n:012x}").into(),
            );
            let second = (n * 7919) % (minutes * 60);
            map.insert(
                "eventTime".into(),
                format!("2026-03-02T14:{:02}:{:02}Z", second / 60 % 60, second % 60).into(),
            );
            if let Some(Value::String(name)) = map.get_mut("eventName") {
                name.push_str(&format!("V{}", n % variants));
            }
            if let Some(Value::Object(identity)) = map.get_mut("userIdentity") {
                identity.insert(
                    "arn".into(),
                    format!("arn:aws:iam::218007301253:user/user-{}", n % 40).into(),
                );
            }
        }
        let text = serde_json::to_vec(&record)?;
        if n > 0 {
            out.write_all(b",")?;
        }
        out.write_all(&text)?;
        written += text.len() as u64 + 1;
        n += 1;
    }
    out.write_all(b"]}")?;
    out.finish()?.flush()?;
    let compressed = std::fs::metadata(path)?.len();
    println!(
        "{path}: {n} records, {:.1} MB uncompressed, {:.1} MB gzip",
        written as f64 / 1e6,
        compressed as f64 / 1e6
    );
    Ok(())
}

fn fold(path: &str) -> anyhow::Result<()> {
    let before = peak_rss_kb()?;
    let bytes = std::fs::read(path)?;
    let after_read = peak_rss_kb()?;
    let started = Instant::now();
    let folded = fold_object(
        bytes.as_slice(),
        &ReadLimits::default(),
        ClassifyOptions::default(),
    )?;
    let elapsed = started.elapsed();
    let after_fold = peak_rss_kb()?;
    println!(
        "{path}: {:.1} MB gzip, {:.1} MB JSON, {} records, {} counted, {} series, {} cells, folded in {elapsed:.2?} ({:.0} MB/s)",
        bytes.len() as f64 / 1e6,
        folded.read.decompressed_bytes as f64 / 1e6,
        folded.fold.records,
        folded.fold.counted,
        folded.delta.series.len(),
        folded.delta.cells.len(),
        folded.read.decompressed_bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
    println!(
        "VmHWM: {:.1} MB at start, {:.1} MB with the object in memory, {:.1} MB after the fold",
        before as f64 / 1024.0,
        after_read as f64 / 1024.0,
        after_fold as f64 / 1024.0
    );
    Ok(())
}

/// The process's peak resident set, in KiB (`VmHWM` of /proc/self/status).
fn peak_rss_kb() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/self/status"))
}
