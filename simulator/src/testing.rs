//! Test helpers: temporary folders, the files and records a scenario wrote, per-minute counts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::DateTime;
use flate2::read::GzDecoder;
use serde_json::Value;

use crate::anomalies::{default_injections, plan_anomalies};
use crate::changes::plan_changes;
use crate::labels::Labels;
use crate::options::SimulateOptions;
use crate::simulate::labels;
use crate::world::World;

pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        TempDir(std::env::temp_dir().join(format!(
            "trailsight-sim-{tag}-{}-{nanos}-{n}",
            std::process::id()
        )))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub(crate) fn log_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "gz"))
        .collect()
}

pub(crate) fn read_records(path: &Path) -> Vec<Value> {
    let mut s = String::new();
    GzDecoder::new(File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    let v: Value = serde_json::from_str(&s).unwrap();
    v["Records"].as_array().unwrap().clone()
}

pub(crate) fn ts(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

/// Delivery time from a file name (`..._20260302T1405Z_xxxx.json.gz`).
pub(crate) fn delivery_of(path: &Path) -> i64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    let parts: Vec<&str> = name.split('_').collect();
    let stamp = parts[parts.len() - 2];
    let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ").unwrap();
    t.and_utc().timestamp()
}

pub(crate) fn opts(out: &Path, days: u32, regions: &[&str], seed: u64) -> SimulateOptions {
    let mut o = SimulateOptions::new(out.to_path_buf());
    o.days = days;
    o.seed = seed;
    o.regions = regions.iter().map(|r| r.to_string()).collect();
    o
}

/// Per-minute counts of every (region, source, name, call|errorCode) key.
pub(crate) fn minute_counts(
    dir: &Path,
) -> BTreeMap<(String, String, String, String), BTreeMap<i64, u32>> {
    let mut m: BTreeMap<_, BTreeMap<i64, u32>> = BTreeMap::new();
    for f in log_files(dir) {
        let mut ids = BTreeSet::new();
        for r in read_records(&f) {
            if !ids.insert(r["eventID"].as_str().unwrap().to_string()) {
                continue;
            }
            let t = ts(r["eventTime"].as_str().unwrap()).div_euclid(60);
            let key = |what: &str| {
                (
                    r["awsRegion"].as_str().unwrap().to_string(),
                    r["eventSource"].as_str().unwrap().to_string(),
                    r["eventName"].as_str().unwrap().to_string(),
                    what.to_string(),
                )
            };
            if r["readOnly"] == false {
                *m.entry(key("call")).or_default().entry(t).or_default() += 1;
            }
            if let Some(e) = r["errorCode"].as_str() {
                *m.entry(key(e)).or_default().entry(t).or_default() += 1;
            }
        }
    }
    m
}

/// The labels of a 9-day, two-region scenario (the defaults) with seed-chosen anomalies and
/// routine changes, planned but not generated (labels do not need the traffic).
pub(crate) fn planned(seed: u64) -> Labels {
    let mut opts = SimulateOptions::new(std::env::temp_dir());
    opts.seed = seed;
    opts.changes = true;
    let world = World::new(&opts);
    let plans = plan_anomalies(&world, &default_injections(&world)).unwrap();
    let changes = plan_changes(&world, &plans).unwrap();
    labels(&world, &plans, &changes, 1234)
}
