//! Delta parts ([`DeltaWrite`], [`DeltaRead`]) and the arrival log of late files.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, stream};

use super::{
    DynamoStore, FORMAT_ATTR, MAX_ITEM_DATA, binary_attr, format_version, gzip_json, n,
    now_seconds, number_attr, s, store_error, string_attr,
};
use crate::fold::{Delta, DeltaBuilder};
use crate::minute::{MINUTES_PER_DAY, Minute, to_datetime};
use crate::store::delta_parts;
use crate::store::{
    ArrivalCursor, Arrivals, DeltaRead, DeltaWrite, FileId, HourPart, StoreError, WriteReport,
};
use crate::stored::{self, check_item_version};
use crate::topk::TopK;

/// Delta parts live this long after their hour (the detector's recent window, with margin).
pub const DELTA_TTL_DAYS: i64 = 35;
/// Conditional puts in flight per file.
pub const PUTS_IN_FLIGHT: usize = 16;
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

impl DynamoStore {
    async fn put_part(&self, part: &StoredPart, file: &FileId) -> Result<bool, StoreError> {
        let result = self
            .put_request(delta_pk(part.hour), format!("{file}#{}", part.label))
            .item("d", AttributeValue::B(Blob::new(part.data.clone())))
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
        cell.roles = shorten(&cell.roles);
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
            .update_request(arrival_pk(now.div_euclid(60) * 60), ARRIVAL_SK)
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
                .get_request(arrival_pk(arrival), ARRIVAL_SK)
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
                    delta: std::sync::Arc::new(decode_part(item)?),
                });
            }
        }
        Ok(deltas)
    }
}

/// A stored delta part's `Delta`.
pub(super) fn decode_part(item: &HashMap<String, AttributeValue>) -> Result<Delta, StoreError> {
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
    fn keys_name_the_hour() {
        let minute = parse_minute("2026-03-02T14:07:00Z").unwrap();
        assert_eq!(delta_pk(minute.div_euclid(60) * 60), "D#2026-03-02T14");
        assert_eq!(arrival_pk(minute.div_euclid(60) * 60), "A#2026-03-02T14");
        assert_eq!(
            parse_hour_pk("2026-03-02T14"),
            Some(minute.div_euclid(60) * 60)
        );
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
