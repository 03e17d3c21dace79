//! What one invocation did: its counters, written once as a summary log line and, at the `full`
//! metrics level only, once as a CloudWatch embedded-metric-format (EMF) line. EMF metrics are
//! billed as custom metrics ($0.30 a month per name and dimension combination): per invocation,
//! never per file or per record, with one dimension (`Function=ingest`), they cost four. At the
//! `basic` (default) and `off` levels there is no EMF line: the counters stay in the log line
//! (CloudWatch Logs Insights reads them), and what an operator must be told about, notifications
//! that cannot be ingested, shows as the dead-letter queue's depth, a free AWS/SQS metric.

use serde_json::{Value, json};
use trailsight::ingest::IngestOutcome;
use trailsight::metrics::MetricsLevel;

/// Counters of one invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Notifications (SQS messages, SNS records, or the event itself).
    pub messages: usize,
    /// Files folded and stored.
    pub files: usize,
    /// Records in the files stored.
    pub records: u64,
    /// Of which counted in a series.
    pub counted: u64,
    /// (series, minute) cells in the files stored.
    pub cells: usize,
    /// Events that earlier versions of their keys had already counted (a re-uploaded object).
    pub recounted: u64,
    /// Records counted in the overflow series (files with more distinct series than the cap).
    pub overflow: u64,
    pub parts_written: usize,
    /// Parts found already written (a retry completing an earlier attempt).
    pub parts_existing: usize,
    /// Files already processed.
    pub duplicates: usize,
    /// Keys or objects that are not log files.
    pub skipped: usize,
    /// Notifications that name nothing to ingest (S3's test event, other event types).
    pub ignored: usize,
    /// Files that cannot be read (recorded, not retried) or are gone.
    pub failed: usize,
    /// Objects in a bucket other than the trail bucket(s): refused, never read nor retried.
    pub foreign_bucket: usize,
    /// Files left for a retry (throttling, storage or S3 unavailable).
    pub retried: usize,
    /// Notifications reported back for a retry.
    pub messages_retried: usize,
}

impl Summary {
    pub fn add(&mut self, outcome: &IngestOutcome) {
        match outcome {
            IngestOutcome::Stored {
                records,
                counted,
                cells,
                write,
                recounted,
                overflow,
            } => {
                self.files += 1;
                self.recounted += recounted;
                self.overflow += overflow;
                self.records += records;
                self.counted += counted;
                self.cells += cells;
                self.parts_written += write.parts_written;
                self.parts_existing += write.parts_existing;
            }
            IngestOutcome::Duplicate => self.duplicates += 1,
            IngestOutcome::NotALog { .. } => self.skipped += 1,
            IngestOutcome::Failed { .. } => self.failed += 1,
        }
    }

    /// The summary log line.
    pub fn log(&self) {
        tracing::info!(
            messages = self.messages,
            files = self.files,
            records = self.records,
            counted = self.counted,
            cells = self.cells,
            recounted = self.recounted,
            overflow = self.overflow,
            parts_written = self.parts_written,
            parts_existing = self.parts_existing,
            duplicates = self.duplicates,
            skipped = self.skipped,
            ignored = self.ignored,
            failed = self.failed,
            foreign_bucket = self.foreign_bucket,
            retried = self.retried,
            messages_retried = self.messages_retried,
            "Invocation done."
        );
    }

    /// One EMF document: `FilesIngested`, `FilesSkipped` (duplicates and non-logs),
    /// `FilesFailed` (unreadable, gone, or in another bucket than the trail's), `RecordsIngested`, under `namespace` with `Function=ingest`.
    pub fn emf(&self, namespace: &str, timestamp_ms: i64) -> Value {
        let metrics: Vec<Value> = [
            "FilesIngested",
            "FilesSkipped",
            "FilesFailed",
            "RecordsIngested",
        ]
        .iter()
        .map(|name| json!({"Name": name, "Unit": "Count"}))
        .collect();
        json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["Function"]],
                    "Metrics": metrics,
                }],
            },
            "Function": "ingest",
            "FilesIngested": self.files,
            "FilesSkipped": self.duplicates + self.skipped,
            "FilesFailed": self.failed + self.foreign_bucket,
            "RecordsIngested": self.records,
        })
    }

    /// The EMF line at `level`: only at `full`.
    pub fn emf_at(&self, namespace: &str, level: MetricsLevel, timestamp_ms: i64) -> Option<Value> {
        (level == MetricsLevel::Full).then(|| self.emf(namespace, timestamp_ms))
    }

    /// Writes the EMF line (at `full`) to stdout, where Lambda's log capture (and CloudWatch's
    /// EMF extraction) finds it; not through `tracing`, whose JSON would nest it.
    pub fn emit_metrics(&self, namespace: &str, level: MetricsLevel) {
        if let Some(line) = self.emf_at(namespace, level, now_ms()) {
            println!("{line}");
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailsight::store::WriteReport;

    #[test]
    fn emf_has_the_four_metrics_under_one_dimension() {
        let mut summary = Summary::default();
        summary.add(&IngestOutcome::Stored {
            records: 10,
            counted: 7,
            cells: 3,
            write: WriteReport {
                parts_written: 1,
                parts_existing: 0,
                requests: 1,
            },
            recounted: 0,
            overflow: 0,
        });
        summary.add(&IngestOutcome::Duplicate);
        summary.add(&IngestOutcome::NotALog {
            reason: "digest".into(),
        });
        summary.add(&IngestOutcome::Failed {
            reason: "corrupt".into(),
        });
        let emf = summary.emf("Trailsight", 1_700_000_000_000);
        let directive = &emf["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Trailsight");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "FilesIngested",
                "FilesSkipped",
                "FilesFailed",
                "RecordsIngested"
            ]
        );
        assert_eq!(emf["Function"], "ingest");
        assert_eq!(emf["FilesIngested"], 1);
        assert_eq!(emf["FilesSkipped"], 2);
        assert_eq!(emf["FilesFailed"], 1);
        assert_eq!(emf["RecordsIngested"], 10);
        assert_eq!(emf["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }

    /// The freshness alarm's log metric filter (infra/template.yaml, `IngestedFilesMetricFilter`)
    /// reads `$.fields.message` and `$.fields.files` of this line in Lambda's JSON log format.
    #[test]
    fn the_summary_line_has_the_fields_the_freshness_filter_reads() {
        use lambda_runtime::tracing::subscriber;
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let json = subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let summary = Summary {
            files: 3,
            ..Summary::default()
        };
        tracing::subscriber::with_default(json, || summary.log());
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["fields"]["message"], "Invocation done.");
        assert_eq!(line["fields"]["files"], 3);
        assert_eq!(line["level"], "INFO");
    }

    #[test]
    fn only_the_full_level_writes_emf() {
        let summary = Summary::default();
        let full = summary.emf_at("Trailsight", MetricsLevel::Full, 1);
        assert_eq!(full, Some(summary.emf("Trailsight", 1)));
        assert_eq!(summary.emf_at("Trailsight", MetricsLevel::Basic, 1), None);
        assert_eq!(summary.emf_at("Trailsight", MetricsLevel::Off, 1), None);
    }
}
