//! The storage traits ([`FileMarks`], [`DeltaWrite`], [`DeltaRead`], [`StateStore`]) on one
//! DynamoDB table, with the same rules as [`crate::memory::MemoryStore`].
//!
//! The table (defined once, in `infra/table.json`): partition key `pk` (S), sort key `sk` (S),
//! TTL attribute `expires_at` (N, epoch seconds), on-demand billing. Items:
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | delta part | `D#<YYYY-MM-DDTHH>` (UTC hour of its minutes) | `<file id>#<part>` | `d` (B: gzip JSON of a [`Delta`]), `expires_at` = hour + 35 days |
//! | key marker | `F#<file id>` | `F` | `status` (`done`/`failed`), `records` (N), `reason` (S, failed only), `seq` (N), `versions`, `etags` (L of S), `pending` (S), `pending_at` (N), `expires_at` = after its parts |
//! | state head | `S` | `HEAD` | `version` (N), `chunks` (N), `token` (S), `s3key` (S, when the body is in S3) |
//! | state chunk | `S` | `C#<version, 20 digits>#<token>#<i, 5 digits>` | `d` (B: a slice of the gzip JSON of the [`DetectorState`]) |
//!
//! Every item written also carries `fv` (N), the version of the stored formats
//! ([`crate::stored`]): 2 today; an item without it is version 1 (the same attributes, and
//! documents without their version tag). An item of a newer version is refused as
//! [`StoreError::Corrupt`] with the reason, never misread.
//!
//! - **Delta parts** are [`delta_parts`] (the memory store's split: by hour, then 500 cells), a
//!   part whose gzip exceeds 350 KB halved again (`<part>.0`, `<part>.1`, ...; the split depends
//!   only on the file's content, so every attempt makes the same parts). Each is written with
//!   `PutItem` conditional on `attribute_not_exists(pk)`: a part already there (a duplicate
//!   delivery, a concurrent one, a retry after a crash) fails the condition, which counts as
//!   [`WriteReport::parts_existing`], never as an error. Parts are written 16 at a time.
//! - **Reads never scan.** The detector reads a key's recent minutes with one consistent `Query`
//!   per hour (`pk = D#<hour>`, paginated) and its baseline from the state document (one consistent
//!   `GetItem` of the head, one consistent `Query` of its chunks).
//! - **Versions** of a key (an object overwritten) are claimed, written as their difference to
//!   the key's parts and committed on the key's marker with conditional `UpdateItem`s
//!   ([`crate::ingest`] has the protocol, `docs/TABLE.md` the expressions).
//! - **Write units per file**: one conditional put per (file, hour, part), two marker updates
//!   (claim, commit), two marker gets and one consistent `Query` per hour touched. A part holds at least one (series, minute) cell of its hour, so a file costs no
//!   more part writes than the (series, hour) cells it touches, however many records it holds.
//!   The marker get is eventually consistent (half a read unit): a stale miss costs a download
//!   and conditional puts that find their parts, never a double count.
//! - **Detector state** is a versioned document. A save writes the chunks of version
//!   `expected + 1` under a fresh random token, then moves the head with `UpdateItem` conditional
//!   on `version = expected` (`attribute_not_exists(pk)` for the first save). A failed condition is
//!   [`StoreError::Conflict`] and the loser deletes its own chunks; the winner deletes the previous
//!   version's chunks (known from the head's old values). The token keeps two concurrent savers of
//!   the same version from overwriting each other's chunks. A save that dies between its chunks
//!   and its head leaves its chunks behind (unreachable, never read).
//! - **With a state bucket** ([`DynamoStore::with_state_body`]), the body is one S3 object per
//!   version instead of chunk items ([`S3StateBody`]): written before the head update, named by
//!   the head's `s3key`, deleted the same way (the loser's own, the winner's predecessor). The
//!   head and its conditional update are the same in both modes, and a head written in one mode
//!   is read correctly in the other (its `s3key` says which), as long as the bucket is configured.
//!
//! Errors: throttling, 5xx and network faults (after the SDK's own retries, see
//! [`crate::aws::retry`]) are [`StoreError::Transient`]; anything else is [`StoreError::Other`].

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, ReturnValue, ScalarAttributeType, SseSpecification,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use flate2::Compression;
use futures::{StreamExt, stream};
use serde::Deserialize;

use crate::aws::retry::{describe, is_transient};
use crate::aws::state_body::S3StateBody;
use crate::detector::DetectorState;
use crate::fold::{Delta, DeltaBuilder};
use crate::minute::{MINUTES_PER_DAY, Minute, to_datetime};
use crate::store::delta_parts;
use crate::store::{
    ArrivalCursor, Arrivals, DeltaRead, DeltaWrite, FileId, FileMark, FileMarks, HourPart, KeyMark,
    StateStore, StoreError, VersionCommit, VersionedState, WriteReport,
};
use crate::stored::{self, FORMAT_VERSION, check_item_version};
use crate::topk::TopK;

/// The table definition shared with the deployment template.
pub const TABLE_DEFINITION: &str = include_str!("../../../infra/table.json");

/// Largest binary payload per item (DynamoDB's item limit is 400 KB, keys and names included).
pub const MAX_ITEM_DATA: usize = 350 * 1024;
/// Delta parts live this long after their hour (the detector's recent window, with margin).
pub const DELTA_TTL_DAYS: i64 = 35;
/// File markers live at least this long (longer than parts: see [`crate::ingest`]).
pub use crate::ingest::MARKER_TTL_DAYS;
/// Conditional puts in flight per file.
pub const PUTS_IN_FLIGHT: usize = 16;
/// State chunk writes and deletes in flight.
const CHUNKS_IN_FLIGHT: usize = 8;
/// A stored part larger than this once decompressed is not ours.
const MAX_PART_JSON: u64 = 64 << 20;
/// Attribution values are cut to this length in the (pathological) case of one cell too large
/// for an item.
const MAX_VALUE_CHARS: usize = 1024;

/// A file whose first minute is older than this when its parts are written is noted in the
/// arrival log: the detector may have judged its minutes already (it judges a minute 20 minutes
/// after it at the earliest; this leaves 10 minutes for an ingest to run).
pub const LATE_NOTE_AFTER_MINUTES: i64 = 10;
/// Arrival-log items live this long.
pub const ARRIVAL_TTL_DAYS: i64 = 3;
const ARRIVAL_SK: &str = "A";

const STATE_PK: &str = "S";
const HEAD_SK: &str = "HEAD";

/// The storage traits on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Where new state bodies go: S3 when set, chunk items otherwise.
    state_body: Option<S3StateBody>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            state_body: None,
        }
    }

    /// Keeps the detector state's body in S3 (one object per version) instead of chunk items.
    pub fn with_state_body(mut self, body: S3StateBody) -> Self {
        self.state_body = Some(body);
        self
    }

    pub fn state_body(&self) -> Option<&S3StateBody> {
        self.state_body.as_ref()
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn put_part(&self, part: &StoredPart, file: &FileId) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(delta_pk(part.hour)))
            .item("sk", s(format!("{file}#{}", part.label)))
            .item("d", AttributeValue::B(Blob::new(part.data.clone())))
            .item(FORMAT_ATTR, format_version())
            .item(
                "expires_at",
                n((part.hour + DELTA_TTL_DAYS * MINUTES_PER_DAY) * 60),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(store_error("writing a delta part", &error)),
        }
    }

    async fn get_head(&self) -> Result<Option<Head>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(STATE_PK))
            .key("sk", s(HEAD_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("reading the detector state head", &e))?
            .item;
        item.map(|item| Head::from_item(&item)).transpose()
    }

    /// The chunks under `prefix`, in order.
    async fn read_chunks(&self, prefix: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(STATE_PK))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut chunks = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_error("reading the detector state", &e))?;
            for item in page.items() {
                let sk = string_attr(item, "sk")?;
                chunks.push((sk.to_owned(), binary_attr(item, "d")?.to_vec()));
            }
        }
        chunks.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(chunks.into_iter().map(|(_, data)| data).collect())
    }

    async fn delete_keys(&self, pk: &str, sks: Vec<String>) -> Result<(), StoreError> {
        let results: Vec<Result<(), StoreError>> = stream::iter(sks)
            .map(|sk| async move {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| store_error("deleting a detector state chunk", &e))
            })
            .buffer_unordered(CHUNKS_IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Deletes chunks nobody will read; a failure only leaves garbage behind.
    async fn delete_chunks_best_effort(&self, version: u64, token: &str, chunks: usize) {
        let sks = (0..chunks).map(|i| chunk_sk(version, token, i)).collect();
        if let Err(error) = self.delete_keys(STATE_PK, sks).await {
            tracing::warn!(version, %error, "Could not delete unused detector state chunks.");
        }
    }
}

/// One item's worth of a file's delta.
struct StoredPart {
    hour: Minute,
    label: String,
    data: Vec<u8>,
}

/// The items a delta is stored as: [`delta_parts`], each halved until its gzip fits an item.
fn stored_parts(delta: &Delta) -> Result<Vec<StoredPart>, StoreError> {
    let mut parts = Vec::new();
    for (hour, i, part) in delta_parts(delta) {
        push_sized(hour, i.to_string(), part, &mut parts)?;
    }
    Ok(parts)
}

fn push_sized(
    hour: Minute,
    label: String,
    part: Delta,
    out: &mut Vec<StoredPart>,
) -> Result<(), StoreError> {
    let data = gzip_json(&part)?;
    if data.len() <= MAX_ITEM_DATA {
        out.push(StoredPart { hour, label, data });
        return Ok(());
    }
    if part.cells.len() > 1 {
        let half = part.cells.len().div_ceil(2);
        for (j, sub) in part.split_by_cells(half).into_iter().enumerate() {
            push_sized(hour, format!("{label}.{j}"), sub, out)?;
        }
        return Ok(());
    }
    // One cell too large for an item: only absurdly long attribution values can do that.
    let data = gzip_json(&shorten_values(&part))?;
    if data.len() > MAX_ITEM_DATA {
        return Err(StoreError::Other(format!(
            "a delta cell does not fit in an item ({} bytes compressed)",
            data.len()
        )));
    }
    tracing::warn!(
        hour = crate::minute::format_minute(hour),
        "Attribution values cut to {MAX_VALUE_CHARS} characters to fit a delta cell in an item."
    );
    out.push(StoredPart { hour, label, data });
    Ok(())
}

fn shorten_values(part: &Delta) -> Delta {
    let shorten = |top: &TopK| {
        let mut short = TopK::default();
        for (value, count) in top.sorted() {
            let cut: String = value.chars().take(MAX_VALUE_CHARS).collect();
            short.add(&cut, count);
        }
        short
    };
    let mut builder = DeltaBuilder::default();
    for (key, minute, cell) in part.iter() {
        let mut cell = cell.clone();
        cell.arns = shorten(&cell.arns);
        cell.agents = shorten(&cell.agents);
        cell.errors = shorten(&cell.errors);
        if let Some(services) = &mut cell.service_values {
            services.iter_mut().for_each(|top| *top = shorten(top));
        }
        builder.add(key, minute, &cell);
    }
    builder.finish()
}

#[async_trait]
impl DeltaWrite for DynamoStore {
    async fn write_delta(&self, file: &FileId, delta: &Delta) -> Result<WriteReport, StoreError> {
        let parts = stored_parts(delta)?;
        let mut report = WriteReport {
            requests: parts.len(),
            ..WriteReport::default()
        };
        let results: Vec<Result<bool, StoreError>> = stream::iter(parts)
            .map(|part| async move { self.put_part(&part, file).await })
            .buffer_unordered(PUTS_IN_FLIGHT)
            .collect()
            .await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(true) => report.parts_written += 1,
                Ok(false) => report.parts_existing += 1,
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        // Every part was attempted: a retry only has the failed ones left to write.
        if let Some(error) = first_error {
            return Err(error);
        }
        // Parts the detector may have judged the minutes of already: noted in the arrival log
        // (after the parts, so a reader of the log finds them; before the file's marker, so a
        // retry after a crash notes them again).
        let now = now_seconds().div_euclid(60);
        if let Some(first) = delta.first_minute()
            && first < now - LATE_NOTE_AFTER_MINUTES
        {
            report.requests += 1;
            self.note_arrival(now, delta).await?;
        }
        Ok(report)
    }
}

impl DynamoStore {
    /// Adds one to the arrival hour's counter of every hour partition `delta` touches.
    async fn note_arrival(&self, now: Minute, delta: &Delta) -> Result<(), StoreError> {
        let hours: std::collections::BTreeSet<Minute> = delta
            .cells
            .keys()
            .map(|(_, minute)| minute.div_euclid(60) * 60)
            .collect();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(arrival_pk(now.div_euclid(60) * 60)))
            .key("sk", s(ARRIVAL_SK))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(
                ":expires",
                n((now + ARRIVAL_TTL_DAYS * MINUTES_PER_DAY) * 60),
            );
        let mut adds = Vec::new();
        for (i, hour) in hours.iter().enumerate() {
            adds.push(format!("#h{i} :one"));
            update = update.expression_attribute_names(format!("#h{i}"), delta_pk(*hour));
        }
        update
            .expression_attribute_values(":fv", format_version())
            .update_expression(format!(
                "ADD {} SET expires_at = :expires, fv = :fv",
                adds.join(", ")
            ))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("noting a late arrival", &e))
    }
}

#[async_trait]
impl DeltaRead for DynamoStore {
    /// Reads the arrival hours from the cursor's to the current one (consistent `GetItem`s): every
    /// counter not seen before names an hour partition to look at again. The cursor keeps the
    /// previous arrival hour open (an ingest still running at the hour's turn notes the hour it
    /// started in), and its `seen` holds the counters already taken from the open hours.
    async fn arrivals(&self, cursor: &ArrivalCursor, _now: Minute) -> Result<Arrivals, StoreError> {
        // Arrival hours are the ingest's clock, so this reads by the clock too, not by `now`
        // (the schedule's time, which may lag it).
        let now_hour = now_seconds().div_euclid(3600) * 60;
        let keep_from = now_hour - 60;
        let from = if cursor.position <= 0 || cursor.position > now_hour {
            keep_from
        } else {
            cursor
                .position
                .max(now_hour - ARRIVAL_TTL_DAYS * MINUTES_PER_DAY)
        };
        let mut hours = std::collections::BTreeSet::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut arrival = from;
        while arrival <= now_hour {
            let item = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(arrival_pk(arrival)))
                .key("sk", s(ARRIVAL_SK))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| store_error("reading the arrival log", &e))?;
            for (name, value) in item.item().into_iter().flatten() {
                let Some(hour) = name.strip_prefix("D#").and_then(parse_hour_pk) else {
                    continue;
                };
                let count = value.as_n().map(String::as_str).unwrap_or("0");
                let note = format!("{}|{name}={count}", arrival_pk(arrival));
                if !cursor.seen.contains(&note) {
                    hours.insert(hour);
                }
                if arrival >= keep_from {
                    seen.insert(note);
                }
            }
            arrival += 60;
        }
        Ok(Arrivals {
            hours,
            cursor: ArrivalCursor {
                position: keep_from,
                seen,
            },
        })
    }

    async fn read_hour_parts(&self, hour: Minute) -> Result<Vec<HourPart>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(delta_pk(hour)))
            // Consistent: a part written just before the read is in it. (An eventually
            // consistent read could miss it, and once the watermark has left its hour, only
            // the arrival log would bring it back, for files it notes.)
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut deltas = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_error("reading delta parts", &e))?;
            for item in page.items() {
                deltas.push(HourPart {
                    id: string_attr(item, "sk")?.to_owned(),
                    delta: decode_part(item)?,
                });
            }
        }
        Ok(deltas)
    }
}

/// A stored delta part's `Delta`.
fn decode_part(item: &HashMap<String, AttributeValue>) -> Result<Delta, StoreError> {
    check_item_version(number_attr(item, FORMAT_ATTR)).map_err(|e| corrupt_part(item, e))?;
    let data = binary_attr(item, "d")?;
    stored::decode(data, MAX_PART_JSON).map_err(|e| corrupt_part(item, e))
}

fn corrupt_part(
    item: &HashMap<String, AttributeValue>,
    error: impl std::fmt::Display,
) -> StoreError {
    let pk = string_attr(item, "pk").unwrap_or_default();
    let sk = string_attr(item, "sk").unwrap_or_default();
    StoreError::Corrupt(format!("delta part {pk} {sk}: {error}"))
}

#[async_trait]
impl FileMarks for DynamoStore {
    async fn file_mark(&self, file: &FileId) -> Result<Option<FileMark>, StoreError> {
        Ok(self
            .get_marker(file, false)
            .await?
            .and_then(|item| marker_status(&item, file).transpose())
            .transpose()?)
    }

    async fn set_file_mark(&self, file: &FileId, mark: &FileMark) -> Result<(), StoreError> {
        let expires = now_seconds() + MARKER_TTL_DAYS * MINUTES_PER_DAY * 60;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(marker_pk(file)))
            .item("sk", s("F"))
            .item("expires_at", n(expires))
            .item(FORMAT_ATTR, format_version());
        put = match mark {
            FileMark::Done { records } => {
                put.item("status", s("done")).item("records", n(*records))
            }
            FileMark::Failed { reason } => put
                .item("status", s("failed"))
                .item("records", n(0))
                .item("reason", s(truncate(reason, 2048))),
        };
        put.send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("writing a file marker", &e))
    }

    async fn key_mark(
        &self,
        key: &FileId,
        consistent: bool,
    ) -> Result<Option<KeyMark>, StoreError> {
        let Some(item) = self.get_marker(key, consistent).await? else {
            return Ok(None);
        };
        let list = |name: &str| match item.get(name) {
            Some(AttributeValue::L(values)) => values
                .iter()
                .filter_map(|v| v.as_s().ok().cloned())
                .collect(),
            _ => Vec::new(),
        };
        let seq = number_attr(&item, "seq");
        let status = marker_status(&item, key)?;
        let pending = match (item.get("pending"), number_attr(&item, "pending_at")) {
            (Some(AttributeValue::S(tag)), Some(at)) => Some((tag.clone(), at as i64)),
            _ => None,
        };
        Ok(Some(KeyMark {
            legacy: seq.is_none() && status.is_some(),
            status,
            seq: seq.unwrap_or(0),
            versions: list("versions"),
            etags: list("etags"),
            pending,
            expires_at: number_attr(&item, "expires_at").map(|e| e as i64),
        }))
    }

    async fn claim_version(
        &self,
        key: &FileId,
        tag: &str,
        base: u64,
        now: i64,
        stale_before: i64,
    ) -> Result<bool, StoreError> {
        // A marker written before versions (status, no seq) is never claimed.
        let committed = if base == 0 {
            "attribute_not_exists(seq) AND attribute_not_exists(#status)"
        } else {
            "seq = :base"
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(marker_pk(key)))
            .key("sk", s("F"))
            .update_expression(
                "SET pending = :tag, pending_at = :now, \
                 expires_at = if_not_exists(expires_at, :expires), fv = :fv",
            )
            .expression_attribute_values(":fv", format_version())
            .condition_expression(format!(
                "({committed}) AND (attribute_not_exists(pending) OR pending = :tag \
                 OR pending_at < :stale)"
            ))
            .expression_attribute_values(":tag", s(tag))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":stale", n(stale_before))
            .expression_attribute_values(
                ":expires",
                n(now + MARKER_TTL_DAYS * MINUTES_PER_DAY * 60),
            );
        update = if base == 0 {
            update.expression_attribute_names("#status", "status")
        } else {
            update.expression_attribute_values(":base", n(base))
        };
        conditional(update.send().await, "claiming a key's marker")
    }

    async fn commit_version(
        &self,
        key: &FileId,
        commit: &VersionCommit,
    ) -> Result<bool, StoreError> {
        let committed = if commit.base == 0 {
            "attribute_not_exists(seq)"
        } else {
            "seq = :base"
        };
        let strings =
            |values: &[String]| AttributeValue::L(values.iter().map(|v| s(v.clone())).collect());
        let (status, records, reason) = match &commit.status {
            FileMark::Done { records } => ("done", *records, None),
            FileMark::Failed { reason } => ("failed", 0, Some(truncate(reason, 2048))),
        };
        let mut set = "SET seq = :next, #status = :status, records = :records, \
                       versions = :versions, etags = :etags, expires_at = :expires, fv = :fv"
            .to_owned();
        set.push_str(if reason.is_some() {
            ", reason = :reason REMOVE pending, pending_at"
        } else {
            " REMOVE pending, pending_at, reason"
        });
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(marker_pk(key)))
            .key("sk", s("F"))
            .update_expression(set)
            .condition_expression(format!("({committed}) AND pending = :tag"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":tag", s(commit.tag.clone()))
            .expression_attribute_values(":next", n(commit.base + 1))
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":records", n(records))
            .expression_attribute_values(":versions", strings(&commit.versions))
            .expression_attribute_values(":etags", strings(&commit.etags))
            .expression_attribute_values(":expires", n(commit.expires_at))
            .expression_attribute_values(":fv", format_version());
        if commit.base > 0 {
            update = update.expression_attribute_values(":base", n(commit.base));
        }
        if let Some(reason) = reason {
            update = update.expression_attribute_values(":reason", s(reason));
        }
        conditional(update.send().await, "committing a key's marker")
    }

    async fn key_parts(
        &self,
        key: &FileId,
        hours: &[Minute],
        except: &FileId,
    ) -> Result<Vec<Delta>, StoreError> {
        let skip = format!("{except}#");
        let mut deltas = Vec::new();
        for hour in hours {
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :key)")
                .expression_attribute_values(":pk", s(delta_pk(*hour)))
                .expression_attribute_values(":key", s(key.to_string()))
                .consistent_read(true)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| store_error("reading a key's delta parts", &e))?;
                for item in page.items() {
                    if string_attr(item, "sk")?.starts_with(&skip) {
                        continue;
                    }
                    deltas.push(decode_part(item)?);
                }
            }
        }
        Ok(deltas)
    }
}

impl DynamoStore {
    async fn get_marker(
        &self,
        file: &FileId,
        consistent: bool,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(marker_pk(file)))
            .key("sk", s("F"))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| store_error("reading a file marker", &e))?
            .item)
    }
}

/// A marker's outcome; `None` while it only holds a claim.
fn marker_status(
    item: &HashMap<String, AttributeValue>,
    file: &FileId,
) -> Result<Option<FileMark>, StoreError> {
    check_item_version(number_attr(item, FORMAT_ATTR))
        .map_err(|e| StoreError::Corrupt(format!("file marker {file}: {e}")))?;
    match item.get("status") {
        None => Ok(None),
        Some(AttributeValue::S(status)) if status == "done" => Ok(Some(FileMark::Done {
            records: number_attr(item, "records").unwrap_or(0),
        })),
        Some(AttributeValue::S(status)) if status == "failed" => Ok(Some(FileMark::Failed {
            reason: string_attr(item, "reason").unwrap_or_default().to_owned(),
        })),
        Some(other) => Err(StoreError::Corrupt(format!(
            "file marker {file} has status {other:?}"
        ))),
    }
}

/// A conditional write's result: `Ok(false)` when its condition failed.
fn conditional<T, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    what: &str,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(error) => Err(store_error(what, &error)),
    }
}

/// The state head: which version is current, in how many chunks, under which token, and the
/// S3 key of its body when the body is an object (then `chunks` is 0).
#[derive(Debug, Clone, PartialEq)]
struct Head {
    version: u64,
    chunks: usize,
    token: String,
    s3key: Option<String>,
}

/// Where a saved version's body is.
enum Body {
    Chunks(usize),
    Object(String),
}

impl Head {
    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Head, StoreError> {
        check_item_version(number_attr(item, FORMAT_ATTR))
            .map_err(|e| StoreError::Corrupt(format!("the detector state head: {e}")))?;
        let field = |name| {
            number_attr(item, name).ok_or_else(|| {
                StoreError::Corrupt(format!("the detector state head has no number {name}"))
            })
        };
        Ok(Head {
            version: field("version")?,
            chunks: field("chunks")? as usize,
            token: string_attr(item, "token")?.to_owned(),
            s3key: string_attr(item, "s3key").ok().map(str::to_owned),
        })
    }
}

impl DynamoStore {
    /// The body `head` names: `None` when it is gone or incomplete (a newer save replaced it
    /// after the head was read).
    async fn read_body(&self, head: &Head) -> Result<Option<Vec<u8>>, StoreError> {
        match &head.s3key {
            Some(key) => {
                let Some(body) = &self.state_body else {
                    return Err(StoreError::Other(format!(
                        "the detector state's body is in S3 ({key}) but no state bucket is \
                         configured: set TRAILSIGHT_STATE_BUCKET (or --state-bucket)"
                    )));
                };
                body.get(key).await
            }
            None => {
                let chunks = self
                    .read_chunks(&chunk_prefix(head.version, &head.token))
                    .await?;
                Ok((chunks.len() == head.chunks).then(|| chunks.concat()))
            }
        }
    }

    /// Deletes the body of a version nobody will read; a failure only leaves garbage behind.
    async fn discard_body(&self, version: u64, token: &str, body: &Body) {
        match body {
            Body::Chunks(0) => {}
            Body::Chunks(count) => self.delete_chunks_best_effort(version, token, *count).await,
            Body::Object(key) => match &self.state_body {
                Some(state_body) => state_body.delete_best_effort(key).await,
                None => tracing::warn!(
                    key,
                    "No state bucket configured: the previous detector state object stays."
                ),
            },
        }
    }
}

impl Head {
    fn body(&self) -> Body {
        match &self.s3key {
            Some(key) => Body::Object(key.clone()),
            None => Body::Chunks(self.chunks),
        }
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    async fn load_state(&self) -> Result<VersionedState, StoreError> {
        // A save that lands between reading the head and its body deletes that body: read the
        // new head and try again.
        let mut last = None;
        for _ in 0..4 {
            let Some(head) = self.get_head().await? else {
                return Ok(VersionedState {
                    state: DetectorState::default(),
                    version: 0,
                });
            };
            if let Some(data) = self.read_body(&head).await? {
                // Our own document, written by this function: no bound on its size.
                let state = stored::decode(&data, u64::MAX)
                    .map_err(|e| StoreError::Corrupt(format!("detector state: {e}")))?;
                return Ok(VersionedState {
                    state,
                    version: head.version,
                });
            }
            if last.as_ref() == Some(&head) {
                let missing = match &head.s3key {
                    Some(key) => format!("its object {key} is missing"),
                    None => format!("some of its {} chunks are missing", head.chunks),
                };
                return Err(StoreError::Corrupt(format!(
                    "detector state version {}: {missing}",
                    head.version
                )));
            }
            last = Some(head);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(StoreError::Transient(
            "the detector state kept changing while it was read".into(),
        ))
    }

    async fn save_state(&self, state: &DetectorState, expected: u64) -> Result<u64, StoreError> {
        // An S3 body costs one PUT whatever its size, so it takes the fastest level (saving is
        // most of a run at 100,000 series, BENCHMARKS.md); chunk items cost a write unit per KB.
        let level = match self.state_body {
            Some(_) => Compression::fast(),
            None => Compression::default(),
        };
        let data = gzip_json_at(state, level)?;
        let version = expected + 1;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let body = match &self.state_body {
            Some(state_body) => {
                let key = state_body.key(version, &token);
                // A failed put may still have stored the object: try to remove it.
                if let Err(error) = state_body.put(&key, data).await {
                    state_body.delete_best_effort(&key).await;
                    return Err(error);
                }
                Body::Object(key)
            }
            None => Body::Chunks(self.write_chunks(version, &token, data).await?),
        };

        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(STATE_PK))
            .key("sk", s(HEAD_SK))
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#chunks", "chunks")
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#s3key", "s3key")
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":token", s(&token))
            .expression_attribute_values(":fv", format_version())
            // The whole old head (small): UPDATED_OLD may leave out attributes whose value did not
            // change (moto does), and the old head must name every part of its body.
            .return_values(ReturnValue::AllOld);
        let update = match &body {
            Body::Object(key) => update
                .update_expression(
                    "SET #version = :version, #chunks = :chunks, #token = :token, #s3key = :s3key, \
                     fv = :fv",
                )
                .expression_attribute_values(":chunks", n(0))
                .expression_attribute_values(":s3key", s(key)),
            Body::Chunks(count) => update
                .update_expression(
                    "SET #version = :version, #chunks = :chunks, #token = :token, fv = :fv \
                     REMOVE #s3key",
                )
                .expression_attribute_values(":chunks", n(count)),
        };
        let update = if expected == 0 {
            update.condition_expression("attribute_not_exists(pk)")
        } else {
            update
                .condition_expression("#version = :expected")
                .expression_attribute_values(":expected", n(expected))
        };
        match update.send().await {
            Ok(output) => {
                let old = output.attributes.as_ref().map(Head::from_item);
                if let Some(Ok(old)) = old {
                    self.discard_body(old.version, &old.token, &old.body())
                        .await;
                }
                Ok(version)
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // The SDK may have retried an update that had in fact succeeded: the head then
                // carries our token.
                if self
                    .get_head()
                    .await?
                    .is_some_and(|head| head.token == token)
                {
                    return Ok(version);
                }
                self.discard_body(version, &token, &body).await;
                Err(StoreError::Conflict)
            }
            // The update may or may not have happened: the body stays, in case it did.
            Err(error) => Err(store_error("updating the detector state head", &error)),
        }
    }
}

impl DynamoStore {
    /// Writes a version's body as chunk items; returns how many. On failure, the chunks written
    /// are deleted (best effort).
    async fn write_chunks(
        &self,
        version: u64,
        token: &str,
        data: Vec<u8>,
    ) -> Result<usize, StoreError> {
        let chunks: Vec<Vec<u8>> = data.chunks(MAX_ITEM_DATA).map(<[u8]>::to_vec).collect();
        let count = chunks.len();
        let written: Vec<Result<(), StoreError>> = stream::iter(chunks.into_iter().enumerate())
            .map(|(i, chunk)| {
                let sk = chunk_sk(version, token, i);
                async move {
                    self.client
                        .put_item()
                        .table_name(&self.table)
                        .item("pk", s(STATE_PK))
                        .item("sk", s(sk))
                        .item("d", AttributeValue::B(Blob::new(chunk)))
                        .item(FORMAT_ATTR, format_version())
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| store_error("writing the detector state", &e))
                }
            })
            .buffer_unordered(CHUNKS_IN_FLIGHT)
            .collect()
            .await;
        if let Some(error) = written.into_iter().find_map(Result::err) {
            self.delete_chunks_best_effort(version, token, count).await;
            return Err(error);
        }
        Ok(count)
    }
}

/// Creates the table as `infra/table.json` defines it (under `name`), waits until it is active,
/// then enables its TTL (and point-in-time recovery, when the definition asks). Does nothing that
/// is already done: safe to run against an existing table.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let definition: TableDefinition = serde_json::from_str(TABLE_DEFINITION)
        .map_err(|e| StoreError::Other(format!("infra/table.json: {e}")))?;
    let mut create = client.create_table().table_name(name);
    for attribute in &definition.attribute_definitions {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&attribute.attribute_name)
                .attribute_type(ScalarAttributeType::from(attribute.attribute_type.as_str()))
                .build()
                .map_err(|e| StoreError::Other(format!("infra/table.json: {e}")))?,
        );
    }
    for key in &definition.key_schema {
        create = create.key_schema(
            KeySchemaElement::builder()
                .attribute_name(&key.attribute_name)
                .key_type(KeyType::from(key.key_type.as_str()))
                .build()
                .map_err(|e| StoreError::Other(format!("infra/table.json: {e}")))?,
        );
    }
    create = create.billing_mode(BillingMode::from(
        definition
            .billing_mode
            .as_deref()
            .unwrap_or("PAY_PER_REQUEST"),
    ));
    if let Some(sse) = &definition.sse_specification {
        create = create.sse_specification(SseSpecification::builder().enabled(sse.enabled).build());
    }
    match create.send().await {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(store_error("creating the table", &error)),
    }
    wait_until_active(client, name).await?;

    if let Some(attribute) = definition.ttl_attribute() {
        let ttl = client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .map_err(|e| store_error("reading the table's TTL", &e))?;
        let status = ttl
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        if !matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(attribute)
                .enabled(true)
                .build()
                .map_err(|e| StoreError::Other(format!("infra/table.json: {e}")))?;
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| store_error("enabling the table's TTL", &e))?;
        }
    }
    if definition
        .point_in_time_recovery_specification
        .is_some_and(|p| p.point_in_time_recovery_enabled)
    {
        let spec = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(true)
            .build()
            .map_err(|e| StoreError::Other(format!("infra/table.json: {e}")))?;
        client
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(spec)
            .send()
            .await
            .map_err(|e| store_error("enabling point-in-time recovery", &e))?;
    }
    Ok(())
}

async fn wait_until_active(client: &Client, name: &str) -> Result<(), StoreError> {
    for _ in 0..240 {
        let table = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| store_error("describing the table", &e))?;
        let status = table.table().and_then(|t| t.table_status());
        if status.is_some_and(|s| s.as_str() == "ACTIVE") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(StoreError::Transient(format!(
        "table {name} did not become active within a minute"
    )))
}

/// `infra/table.json`: CreateTable's input as CloudFormation and the CLI write it, plus the TTL.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableDefinition {
    attribute_definitions: Vec<AttributeDef>,
    key_schema: Vec<KeyDef>,
    billing_mode: Option<String>,
    #[serde(rename = "SSESpecification")]
    sse_specification: Option<SseDef>,
    time_to_live_specification: Option<TtlDef>,
    /// A flatter spelling of the TTL attribute, accepted too.
    time_to_live_attribute: Option<String>,
    point_in_time_recovery_specification: Option<PitrDef>,
}

impl TableDefinition {
    fn ttl_attribute(&self) -> Option<&str> {
        match &self.time_to_live_specification {
            Some(spec) if spec.enabled => Some(spec.attribute_name.as_str()),
            Some(_) => None,
            None => self.time_to_live_attribute.as_deref(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeDef {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyDef {
    attribute_name: String,
    key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SseDef {
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlDef {
    attribute_name: String,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PitrDef {
    point_in_time_recovery_enabled: bool,
}

/// Maps an SDK error to a [`StoreError`]: transient (worth retrying later) or not.
pub fn store_error<E>(what: &str, error: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = format!("{what}: {}", describe(error));
    if is_transient(error) {
        StoreError::Transient(message)
    } else {
        StoreError::Other(message)
    }
}

/// `D#2026-03-02T14`: the partition of the deltas of an hour.
pub fn delta_pk(hour: Minute) -> String {
    format!("D#{}", to_datetime(hour).format("%Y-%m-%dT%H"))
}

/// The arrival-log item of the arrival hour starting at `hour`.
pub fn arrival_pk(hour: Minute) -> String {
    format!("A#{}", to_datetime(hour).format("%Y-%m-%dT%H"))
}

/// The hour of `YYYY-MM-DDTHH` (a partition key without its `D#`).
fn parse_hour_pk(text: &str) -> Option<Minute> {
    crate::minute::parse_minute(&format!("{text}:00:00Z"))
}

fn marker_pk(file: &FileId) -> String {
    format!("F#{file}")
}

fn chunk_prefix(version: u64, token: &str) -> String {
    format!("C#{version:020}#{token}#")
}

fn chunk_sk(version: u64, token: &str, i: usize) -> String {
    format!("{}{i:05}", chunk_prefix(version, token))
}

/// The stored format of `value` ([`crate::stored`]: gzip JSON with its format version).
fn gzip_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    gzip_json_at(value, Compression::default())
}

fn gzip_json_at<T: serde::Serialize>(value: &T, level: Compression) -> Result<Vec<u8>, StoreError> {
    stored::encode_at(value, level).map_err(|e| StoreError::Other(format!("encoding: {e}")))
}

/// The attribute naming the format version of every item written ([`crate::stored`]); items
/// without it are version 1.
const FORMAT_ATTR: &str = "fv";

fn format_version() -> AttributeValue {
    n(FORMAT_VERSION)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn string_attr<'i>(
    item: &'i HashMap<String, AttributeValue>,
    name: &str,
) -> Result<&'i str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(StoreError::Corrupt(format!("item has no string {name}"))),
    }
}

fn binary_attr<'i>(
    item: &'i HashMap<String, AttributeValue>,
    name: &str,
) -> Result<&'i [u8], StoreError> {
    match item.get(name) {
        Some(AttributeValue::B(value)) => Ok(value.as_ref()),
        _ => Err(StoreError::Corrupt(format!("item has no binary {name}"))),
    }
}

fn number_attr(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::Cell;
    use crate::minute::parse_minute;
    use crate::series::SeriesKey;

    fn key(name: &str) -> SeriesKey {
        SeriesKey {
            account: "111".into(),
            region: "us-east-1".into(),
            event_source: "iam.amazonaws.com".into(),
            event_name: name.into(),
            error_code: None,
            principal: None,
        }
    }

    #[test]
    fn the_table_definition_parses() {
        let definition: TableDefinition = serde_json::from_str(TABLE_DEFINITION).unwrap();
        assert_eq!(definition.ttl_attribute(), Some("expires_at"));
        let keys: Vec<_> = definition
            .key_schema
            .iter()
            .map(|k| (k.attribute_name.as_str(), k.key_type.as_str()))
            .collect();
        assert_eq!(keys, vec![("pk", "HASH"), ("sk", "RANGE")]);
    }

    #[test]
    fn keys_name_the_hour_and_sort_chunks_in_order() {
        let minute = parse_minute("2026-03-02T14:07:00Z").unwrap();
        assert_eq!(delta_pk(minute.div_euclid(60) * 60), "D#2026-03-02T14");
        assert!(chunk_sk(9, "t", 2) < chunk_sk(9, "t", 10));
        assert!(chunk_sk(9, "t", 99) < chunk_sk(10, "t", 0));
        assert!(chunk_sk(9, "t", 0).starts_with(&chunk_prefix(9, "t")));
    }

    #[test]
    fn oversized_parts_are_halved_deterministically() {
        // Incompressible attribution values: ~90 KB of gzip per cell, so 500 cells need halving.
        let mut builder = DeltaBuilder::default();
        let hour = parse_minute("2026-03-02T14:00:00Z").unwrap();
        let mut seed = 1u64;
        for i in 0..8 {
            let mut cell = Cell {
                count: 1,
                ..Cell::default()
            };
            for _ in 0..5 {
                let value: String = (0..18_000)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        char::from(b'a' + (seed >> 59) as u8 % 26)
                    })
                    .collect();
                cell.agents.add(&value, 1);
            }
            builder.add(&key(&format!("Create{i}")), hour + i, &cell);
        }
        let delta = builder.finish();
        let parts = stored_parts(&delta).unwrap();
        assert!(parts.len() > 1, "{}", parts.len());
        assert!(parts.iter().all(|p| p.data.len() <= MAX_ITEM_DATA));
        assert!(parts.iter().all(|p| p.label.starts_with("0.")));
        let labels: Vec<_> = parts.iter().map(|p| p.label.clone()).collect();
        let again: Vec<_> = stored_parts(&delta)
            .unwrap()
            .into_iter()
            .map(|p| p.label)
            .collect();
        assert_eq!(labels, again);
    }

    #[test]
    fn a_single_huge_cell_is_shortened_to_fit() {
        let mut cell = Cell {
            count: 3,
            ..Cell::default()
        };
        let mut seed = 7u64;
        let value: String = (0..600_000)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                char::from(b'a' + (seed >> 59) as u8 % 26)
            })
            .collect();
        cell.arns.add(&value, 3);
        let mut builder = DeltaBuilder::default();
        builder.add(&key("CreateUser"), 0, &cell);
        let parts = stored_parts(&builder.finish()).unwrap();
        assert_eq!(parts.len(), 1);
        assert!(parts[0].data.len() <= MAX_ITEM_DATA);
    }
}
