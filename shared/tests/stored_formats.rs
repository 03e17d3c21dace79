//! Stored formats stay readable: fixtures saved by earlier releases, in `tests/fixtures/stored/`,
//! must decode to what the current code computes from the same input.
//!
//! - `delta-v1.json.gz`: a delta part as ingest stored it before formats were versioned (gzip
//!   JSON of a `Delta`, untagged), folded from the invictus dataset's largest file.
//! - `state-v1.json.gz`: a detector state document as detect stored it then (gzip JSON of a
//!   `DetectorState`, untagged), after one run over the whole invictus dataset.
//!
//! `TRAILSIGHT_WRITE_FIXTURES=1 cargo test -p trailsight-core --test stored_formats` writes the
//! current version's fixtures (`*-v<FORMAT_VERSION>.json.gz`) beside them; a format change adds a
//! version and its fixtures, and keeps every earlier one here.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use trailsight::classify::ClassifyOptions;
use trailsight::config::DetectorConfig;
use trailsight::detect::{CollectingPublisher, run_detector};
use trailsight::detector::DetectorState;
use trailsight::fold::Delta;
use trailsight::ingest::fold_bytes;
use trailsight::logfile::ReadLimits;
use trailsight::memory::MemoryStore;
use trailsight::minute::parse_minute;
use trailsight::store::{DeltaWrite, FileId, StateStore};
use trailsight::stored::{self, FORMAT_VERSION, FormatError};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures() -> PathBuf {
    root().join("shared/tests/fixtures/stored")
}

/// The invictus dataset's log files, in name order.
fn invictus_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("testdata/real/invictus-aws-attack-simulation/AWSLogs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("dataset folder") {
            let path = entry.expect("dataset entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(out.len() > 10, "the invictus dataset is missing");
    out
}

fn fold(path: &Path) -> Delta {
    let bytes = std::fs::read(path).expect("log file");
    fold_bytes(&bytes, &ReadLimits::default(), ClassifyOptions::default())
        .expect("a readable log file")
        .delta
}

/// The delta the fixture holds: the fold of the invictus dataset's largest file.
fn fresh_delta() -> Delta {
    let files = invictus_files();
    let largest = files
        .iter()
        .max_by_key(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
        .expect("files");
    fold(largest)
}

/// The state the fixture holds: one detector run, without warm-up, over the whole dataset.
async fn fresh_state() -> DetectorState {
    let store = MemoryStore::new();
    for path in invictus_files() {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        store
            .write_delta(&FileId::new("fixtures", &name), &fold(&path))
            .await
            .expect("memory write");
    }
    let config = DetectorConfig {
        warmup_minutes: 0,
        max_catchup_minutes: 10 * 1440,
        ..DetectorConfig::default()
    };
    let now = parse_minute("2023-07-11T00:00:00Z").expect("a minute");
    run_detector(
        &config,
        now,
        &store,
        &store,
        &CollectingPublisher::default(),
    )
    .await
    .expect("detector run");
    store.load_state().await.expect("state").state
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gzip fixture");
    out
}

fn as_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("serializable")
}

fn write_current_fixtures(delta: &Delta, state: &DetectorState) {
    if std::env::var_os("TRAILSIGHT_WRITE_FIXTURES").is_none() {
        return;
    }
    let dir = fixtures();
    std::fs::create_dir_all(&dir).expect("fixtures folder");
    let write =
        |name: String, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).expect("fixture");
    write(
        format!("delta-v{FORMAT_VERSION}.json.gz"),
        stored::encode(delta).expect("encode"),
    );
    write(
        format!("state-v{FORMAT_VERSION}.json.gz"),
        stored::encode(state).expect("encode"),
    );
}

#[tokio::test]
async fn every_saved_format_reads_as_the_current_code_computes() {
    let delta = fresh_delta();
    let state = fresh_state().await;
    assert!(
        !state.series.is_empty() && !state.recent.is_empty(),
        "the state fixture should hold series and records"
    );
    write_current_fixtures(&delta, &state);
    for version in 1..=FORMAT_VERSION {
        let bytes = std::fs::read(fixtures().join(format!("delta-v{version}.json.gz")))
            .unwrap_or_else(|e| panic!("delta fixture v{version}: {e}"));
        let decoded: Delta = stored::decode(&bytes, u64::MAX).expect("delta fixture decodes");
        assert_eq!(decoded, delta, "delta fixture v{version}");

        let bytes = std::fs::read(fixtures().join(format!("state-v{version}.json.gz")))
            .unwrap_or_else(|e| panic!("state fixture v{version}: {e}"));
        let decoded: DetectorState =
            stored::decode(&bytes, u64::MAX).expect("state fixture decodes");
        assert_eq!(
            as_json(&decoded),
            as_json(&state),
            "state fixture v{version}"
        );
    }
}

#[test]
fn what_is_written_now_carries_its_version() {
    let delta = fresh_delta();
    let bytes = stored::encode(&delta).expect("encode");
    let json = gunzip(&bytes);
    let tagged: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    assert_eq!(tagged["v"], FORMAT_VERSION);
    assert_eq!(tagged["body"], as_json(&delta));
    let decoded: Delta = stored::decode(&bytes, u64::MAX).expect("decode");
    assert_eq!(decoded, delta);
}

#[test]
fn a_newer_format_is_refused_by_name_not_misread() {
    // As `stored::encode` writes it: the tag first.
    let newer = format!(r#"{{"v":{},"body":{{"future":true}}}}"#, FORMAT_VERSION + 1);
    let bytes = stored::gzip(newer.as_bytes());
    match stored::decode::<Delta>(&bytes, u64::MAX) {
        Err(FormatError::Newer { found, .. }) => assert_eq!(found, FORMAT_VERSION + 1),
        other => panic!("expected a newer-format error, got {other:?}"),
    }
}

#[test]
fn damaged_documents_are_errors() {
    assert!(matches!(
        stored::decode::<Delta>(b"not gzip", u64::MAX),
        Err(FormatError::Gzip(_))
    ));
    let bytes = stored::gzip(b"{\"v\": 2, \"body\": {\"k\": 3}}");
    assert!(matches!(
        stored::decode::<Delta>(&bytes, u64::MAX),
        Err(FormatError::Json(_))
    ));
    // A document larger than the reader's bound is refused before it is parsed.
    let big = stored::encode(&fresh_delta()).expect("encode");
    assert!(matches!(
        stored::decode::<Delta>(&big, 64),
        Err(FormatError::TooLarge { .. })
    ));
}
