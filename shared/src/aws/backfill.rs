//! Backfill: ingest the log files a trail delivered in the last days, through the same pipeline
//! as the ingest Lambda ([`ObjectIngest`]), so a backfill that overlaps live ingestion (or
//! another backfill) counts every file once.
//!
//! Listing walks CloudTrail's layout instead of listing the whole bucket:
//! `<prefix>AWSLogs/` → accounts (through `o-xxxx/` for organization trails) → `CloudTrail/` →
//! regions → one listing per delivery day. Only keys that [`classify_key`] calls log files, with a
//! delivery minute inside the window, are ingested.

use std::collections::BTreeSet;

use aws_sdk_s3::Client;
use futures::{StreamExt, TryStreamExt, stream};

use crate::aws::retry::{describe, is_transient};
use crate::aws::s3::{IngestError, ObjectError, ObjectIngest};
use crate::classify::ClassifyOptions;
use crate::ingest::IngestOutcome;
use crate::ingest::ObjectVersion;
use crate::logfile::ReadLimits;
use crate::minute::{MINUTES_PER_DAY, Minute, day_start, to_datetime};
use crate::s3key::{KeyKind, classify_key};
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

/// Ingests the log files delivered under `prefix` in `bucket` during the `days` days before
/// `now` (whole UTC days: from 00:00 of the first). `progress(done, total)` is called after each
/// file.
#[allow(clippy::too_many_arguments)]
pub async fn backfill<S>(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    days: u32,
    now: Minute,
    store: &S,
    limits: &ReadLimits,
    options: BackfillOptions,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<BackfillReport, ObjectError>
where
    S: FileMarks + DeltaWrite,
{
    let from = day_start(now) - i64::from(days) * MINUTES_PER_DAY;
    let keys = list_log_keys(s3, bucket, prefix, from, now).await?;
    let total = keys.len();
    let mut report = BackfillReport {
        listed: total,
        ..BackfillReport::default()
    };
    progress(0, total);
    let ingest = ObjectIngest {
        s3,
        limits,
        options: options.classify,
        marks: store,
        deltas: store,
        budget: None,
    };
    let mut results = stream::iter(keys)
        .map(|key| async move {
            let outcome = ingest.ingest(bucket, &key, &ObjectVersion::default()).await;
            (key, outcome)
        })
        .buffer_unordered(options.concurrency.max(1));
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

/// The log files under `prefix` delivered between `from` and `to` (minutes, inclusive), sorted.
pub async fn list_log_keys(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    from: Minute,
    to: Minute,
) -> Result<Vec<String>, ObjectError> {
    let root = format!("{}AWSLogs/", with_slash(prefix));
    let mut accounts = Vec::new();
    for dir in list_dirs(s3, bucket, &root).await? {
        if last_segment(&dir).starts_with("o-") {
            accounts.extend(list_dirs(s3, bucket, &dir).await?);
        } else {
            accounts.push(dir);
        }
    }
    let region_lists: Vec<Vec<String>> = stream::iter(accounts)
        .map(|account| list_dirs(s3, bucket, format!("{account}CloudTrail/")))
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
        .map(|dir| list_keys(s3, bucket, dir))
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

fn with_slash(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

fn last_segment(dir: &str) -> &str {
    dir.trim_end_matches('/').rsplit('/').next().unwrap_or(dir)
}

/// The "folders" directly under `prefix` (common prefixes, each ending in `/`).
async fn list_dirs(
    s3: &Client,
    bucket: &str,
    prefix: impl Into<String>,
) -> Result<Vec<String>, ObjectError> {
    let prefix = prefix.into();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    let mut dirs = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| list_error(bucket, &prefix, &e))?;
        dirs.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
    }
    Ok(dirs)
}

/// Every key under `prefix`.
async fn list_keys(
    s3: &Client,
    bucket: &str,
    prefix: impl Into<String>,
) -> Result<Vec<String>, ObjectError> {
    let prefix = prefix.into();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| list_error(bucket, &prefix, &e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    Ok(keys)
}

fn list_error<E>(
    bucket: &str,
    prefix: &str,
    error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> ObjectError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let reason = format!("listing failed: {}", describe(error));
    let (bucket, key) = (bucket.to_owned(), prefix.to_owned());
    if is_transient(error) {
        ObjectError::Transient {
            bucket,
            key,
            reason,
        }
    } else {
        ObjectError::Other {
            bucket,
            key,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backfill's future can run on any tokio worker (the CLI spawns it).
    #[test]
    fn the_backfill_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .build();
        let s3 = Client::from_conf(config);
        let store = crate::memory::MemoryStore::new();
        let limits = ReadLimits::default();
        let future = backfill(
            &s3,
            "bucket",
            "",
            1,
            0,
            &store,
            &limits,
            BackfillOptions::default(),
            &|_, _| {},
        );
        assert_send(&future);
    }

    #[test]
    fn prefixes_and_segments() {
        assert_eq!(with_slash(""), "");
        assert_eq!(with_slash("trail"), "trail/");
        assert_eq!(with_slash("trail/"), "trail/");
        assert_eq!(last_segment("p/AWSLogs/o-abc123/"), "o-abc123");
        assert_eq!(last_segment("AWSLogs/111/"), "111");
    }
}
