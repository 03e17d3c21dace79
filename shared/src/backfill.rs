//! Backfill: ingest the log files a trail delivered in the last days, through the same pipeline
//! as the ingest Lambda ([`ObjectIngest`]), so a backfill that overlaps live ingestion (or
//! another backfill) counts every file once.
//!
//! Listing walks CloudTrail's layout (through [`LogObjects`]) instead of listing the whole
//! bucket: `<prefix>/AWSLogs/` → accounts (through `o-xxxx/` for organization trails) →
//! `CloudTrail/` → regions → one listing per delivery day. Only keys that [`classify_key`] calls
//! log files, with a delivery minute inside the window, are ingested.

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt, stream};

use crate::classify::ClassifyOptions;
use crate::ingest::{IngestOutcome, ObjectVersion};
use crate::logfile::ReadLimits;
use crate::minute::{MINUTES_PER_DAY, Minute, day_start, to_datetime};
use crate::object_ingest::{IngestError, ObjectIngest};
use crate::objects::{LogObjects, ObjectError};
use crate::s3key::{KeyKind, classify_key};
use crate::s3location::S3Location;
use crate::store::{DeltaWrite, FileMarks};

/// Listings in flight.
const LISTINGS_IN_FLIGHT: usize = 8;

/// How to backfill.
#[derive(Debug, Clone, Copy)]
pub struct BackfillOptions {
    pub classify: ClassifyOptions,
    /// Files ingested at once.
    pub concurrency: usize,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            classify: ClassifyOptions::default(),
            concurrency: 4,
        }
    }
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillReport {
    /// Log files found in the window.
    pub listed: usize,
    /// Files folded and stored by this run.
    pub stored: usize,
    /// Files already ingested (or already recorded as failed).
    pub duplicates: usize,
    /// Files whose content is not a log.
    pub not_logs: usize,
    /// Files recorded as unreadable (corrupt, over a limit).
    pub failed: usize,
    /// Files not ingested because of an error (S3 or storage): a rerun will pick them up.
    pub errors: Vec<(String, String)>,
    pub records: u64,
    pub counted: u64,
    pub cells: usize,
    pub parts_written: usize,
    pub parts_existing: usize,
}

impl BackfillReport {
    fn add(&mut self, key: &str, outcome: Result<IngestOutcome, IngestError>) {
        match outcome {
            Ok(IngestOutcome::Stored {
                records,
                counted,
                cells,
                write,
                ..
            }) => {
                self.stored += 1;
                self.records += records;
                self.counted += counted;
                self.cells += cells;
                self.parts_written += write.parts_written;
                self.parts_existing += write.parts_existing;
            }
            Ok(IngestOutcome::Duplicate) => self.duplicates += 1,
            Ok(IngestOutcome::NotALog { .. }) => self.not_logs += 1,
            Ok(IngestOutcome::Failed { .. }) => self.failed += 1,
            Err(error) => self.errors.push((key.to_owned(), error.to_string())),
        }
    }
}

/// What a backfill reads from and writes to.
#[derive(Clone, Copy)]
pub struct Backfill<'a> {
    pub objects: &'a dyn LogObjects,
    pub marks: &'a dyn FileMarks,
    pub deltas: &'a dyn DeltaWrite,
    pub limits: &'a ReadLimits,
    pub options: BackfillOptions,
}

impl Backfill<'_> {
    /// Ingests the log files delivered under `trail` during the `days` days before `now` (whole
    /// UTC days: from 00:00 of the first). `progress(done, total)` is called after each file.
    pub async fn run(
        &self,
        trail: &S3Location,
        days: u32,
        now: Minute,
        progress: &(dyn Fn(usize, usize) + Send + Sync),
    ) -> Result<BackfillReport, ObjectError> {
        let from = day_start(now) - i64::from(days) * MINUTES_PER_DAY;
        let keys = list_log_keys(self.objects, trail, from, now).await?;
        let total = keys.len();
        let mut report = BackfillReport {
            listed: total,
            ..BackfillReport::default()
        };
        progress(0, total);
        let ingest = ObjectIngest {
            objects: self.objects,
            limits: self.limits,
            options: self.options.classify,
            marks: self.marks,
            deltas: self.deltas,
            budget: None,
        };
        let bucket = trail.bucket();
        let mut results = stream::iter(keys)
            .map(|key| async move {
                let outcome = ingest.ingest(bucket, &key, &ObjectVersion::default()).await;
                (key, outcome)
            })
            .buffer_unordered(self.options.concurrency.max(1));
        let mut done = 0;
        while let Some((key, outcome)) = results.next().await {
            if let Err(error) = &outcome {
                tracing::warn!(bucket, key, %error, "Backfill could not ingest a file.");
            }
            report.add(&key, outcome);
            done += 1;
            progress(done, total);
        }
        Ok(report)
    }
}

/// The log files under `trail` delivered between `from` and `to` (minutes, inclusive), sorted.
pub async fn list_log_keys(
    objects: &dyn LogObjects,
    trail: &S3Location,
    from: Minute,
    to: Minute,
) -> Result<Vec<String>, ObjectError> {
    let bucket = trail.bucket();
    let mut accounts = Vec::new();
    for dir in objects.list_dirs(bucket, &trail.key("AWSLogs/")).await? {
        if last_segment(&dir).starts_with("o-") {
            accounts.extend(objects.list_dirs(bucket, &dir).await?);
        } else {
            accounts.push(dir);
        }
    }
    let region_lists: Vec<Vec<String>> = stream::iter(accounts)
        .map(|account| async move {
            objects
                .list_dirs(bucket, &format!("{account}CloudTrail/"))
                .await
        })
        .buffer_unordered(LISTINGS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut day_dirs = Vec::new();
    for region in region_lists.into_iter().flatten() {
        let mut day = day_start(from);
        while day <= to {
            day_dirs.push(format!("{region}{}/", to_datetime(day).format("%Y/%m/%d")));
            day += MINUTES_PER_DAY;
        }
    }
    let listings: Vec<Vec<String>> = stream::iter(day_dirs)
        .map(|dir| async move { objects.list_keys(bucket, &dir).await })
        .buffer_unordered(LISTINGS_IN_FLIGHT)
        .try_collect()
        .await?;
    let keys: BTreeSet<String> = listings
        .into_iter()
        .flatten()
        .filter(|key| {
            matches!(classify_key(key), KeyKind::Log { delivered, .. } if (from..=to).contains(&delivered))
        })
        .collect();
    Ok(keys.into_iter().collect())
}

fn last_segment(dir: &str) -> &str {
    dir.trim_end_matches('/').rsplit('/').next().unwrap_or(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryObjects, MemoryStore};
    use crate::minute::parse_minute;
    use crate::stored::gzip;

    const ACCOUNT: &str = "111122223333";

    fn log_key(root: &str, region: &str, delivered: &str, id: &str) -> String {
        // delivered: "2026-03-02T14:05"
        let day = &delivered[..10].replace('-', "/");
        let stamp = format!(
            "{}T{}Z",
            delivered[..10].replace('-', ""),
            &delivered[11..16].replace(':', "")
        );
        format!(
            "{root}{ACCOUNT}/CloudTrail/{region}/{day}/{ACCOUNT}_CloudTrail_{region}_{stamp}_{id}.json.gz"
        )
    }

    fn log(event_time: &str, calls: usize) -> Vec<u8> {
        let records: Vec<serde_json::Value> = (0..calls)
            .map(|i| {
                serde_json::json!({
                    "eventVersion": "1.08",
                    "eventTime": event_time,
                    "eventSource": "iam.amazonaws.com",
                    "eventName": "CreateUser",
                    "eventID": format!("{event_time}-{i}"),
                    "awsRegion": "us-east-1",
                    "recipientAccountId": ACCOUNT,
                    "eventType": "AwsApiCall",
                    "managementEvent": true,
                    "readOnly": false,
                    "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::{ACCOUNT}:user/a")}
                })
            })
            .collect();
        gzip(&serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap())
    }

    fn trail(objects: &MemoryObjects, prefix: &str) -> S3Location {
        let root = S3Location::new("trail-logs", prefix)
            .unwrap()
            .key("AWSLogs/");
        let org_root = format!("{root}o-abc123/");
        for (root, region, delivered, id) in [
            (&root, "us-east-1", "2026-03-02T14:05", "inwindow1"),
            (&root, "eu-west-1", "2026-03-03T01:10", "inwindow2"),
            (&org_root, "us-east-1", "2026-03-03T02:00", "inwindow3"),
            // Delivered before the window's first day.
            (&root, "us-east-1", "2026-02-27T23:55", "tooearly"),
        ] {
            let key = log_key(root, region, delivered, id);
            objects.put("trail-logs", &key, log(&format!("{delivered}:00Z"), 3));
        }
        // Beside the logs: a digest and an Insight file are not logs, a file outside the trail's
        // prefix is not listed.
        objects.put(
            "trail-logs",
            &format!("{root}{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/03/02/{ACCOUNT}_CloudTrail-Digest_us-east-1_t_20260302T140500Z.json.gz"),
            b"{}".to_vec(),
        );
        objects.put(
            "trail-logs",
            &log_key(
                "elsewhere/AWSLogs/",
                "us-east-1",
                "2026-03-02T14:05",
                "otherprefix",
            ),
            log("2026-03-02T14:05:00Z", 1),
        );
        S3Location::new("trail-logs", prefix).unwrap()
    }

    fn now() -> Minute {
        parse_minute("2026-03-03T12:00:00Z").unwrap()
    }

    #[tokio::test]
    async fn the_walk_finds_the_window_s_logs_through_organization_folders() {
        let objects = MemoryObjects::new();
        let location = trail(&objects, "/org-trail/");
        let from = day_start(now()) - 2 * MINUTES_PER_DAY;
        let keys = list_log_keys(&objects, &location, from, now())
            .await
            .unwrap();
        let ids: Vec<&str> = keys
            .iter()
            .map(|k| k.rsplit('_').next().unwrap().trim_end_matches(".json.gz"))
            .collect();
        assert_eq!(ids, ["inwindow2", "inwindow1", "inwindow3"], "{keys:?}");
        assert!(keys.iter().all(|k| k.starts_with("org-trail/AWSLogs/")));
    }

    #[tokio::test]
    async fn a_second_backfill_counts_nothing_again() {
        let objects = MemoryObjects::new();
        let location = trail(&objects, "");
        let store = MemoryStore::new();
        let limits = ReadLimits::default();
        let backfill = Backfill {
            objects: &objects,
            marks: &store,
            deltas: &store,
            limits: &limits,
            options: BackfillOptions::default(),
        };
        let calls = std::sync::Mutex::new(Vec::new());
        let progress = |done, total| calls.lock().unwrap().push((done, total));
        let first = backfill.run(&location, 2, now(), &progress).await.unwrap();
        assert_eq!((first.listed, first.stored, first.records), (3, 3, 9));
        assert_eq!(first.counted, 9);
        assert!(first.errors.is_empty());
        assert_eq!(calls.lock().unwrap().last(), Some(&(3, 3)));
        let second = backfill.run(&location, 2, now(), &|_, _| {}).await.unwrap();
        assert_eq!((second.listed, second.stored, second.duplicates), (3, 0, 3));
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_log_is_recorded_not_retried() {
        let objects = MemoryObjects::new();
        let location = S3Location::new("trail-logs", "").unwrap();
        let key = log_key("AWSLogs/", "us-east-1", "2026-03-03T01:00", "corrupt");
        objects.put("trail-logs", &key, b"\x1f\x8b not really gzip".to_vec());
        let store = MemoryStore::new();
        let limits = ReadLimits::default();
        let backfill = Backfill {
            objects: &objects,
            marks: &store,
            deltas: &store,
            limits: &limits,
            options: BackfillOptions::default(),
        };
        let report = backfill.run(&location, 1, now(), &|_, _| {}).await.unwrap();
        assert_eq!((report.listed, report.failed, report.stored), (1, 1, 0));
        let again = backfill.run(&location, 1, now(), &|_, _| {}).await.unwrap();
        assert_eq!(again.duplicates, 1);
    }

    /// The backfill's future can run on any tokio worker (the CLI spawns it).
    #[test]
    fn the_backfill_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let objects = MemoryObjects::new();
        let store = MemoryStore::new();
        let limits = ReadLimits::default();
        let location = S3Location::new("bucket", "").unwrap();
        let backfill = Backfill {
            objects: &objects,
            marks: &store,
            deltas: &store,
            limits: &limits,
            options: BackfillOptions::default(),
        };
        let future = backfill.run(&location, 1, 0, &|_, _| {});
        assert_send(&future);
    }

    #[test]
    fn segments() {
        assert_eq!(last_segment("p/AWSLogs/o-abc123/"), "o-abc123");
        assert_eq!(last_segment("AWSLogs/111/"), "111");
    }
}
