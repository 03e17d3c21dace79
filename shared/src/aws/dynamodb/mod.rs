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
//!
//! One module per store: `parts.rs` (delta parts and the arrival log: [`DeltaWrite`],
//! [`DeltaRead`]), `marks.rs` (file and key markers: [`FileMarks`]), `state.rs` (the versioned
//! detector state: [`StateStore`]), `table.rs` (the table's definition and provisioning); this
//! module holds the store itself and what its requests share (attribute values, the format
//! version, error mapping).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use flate2::Compression;

use crate::aws::retry::{describe, is_transient};
use crate::aws::state_body::S3StateBody;
use crate::store::StoreError;
use crate::stored::{self, FORMAT_VERSION};
#[cfg(doc)]
use crate::{
    detector::DetectorState,
    fold::Delta,
    store::{DeltaRead, DeltaWrite, FileMarks, StateStore, WriteReport, delta_parts},
};

mod marks;
mod parts;
mod state;
mod table;

pub use parts::{
    ARRIVAL_TTL_DAYS, DELTA_TTL_DAYS, LATE_NOTE_AFTER_MINUTES, PUTS_IN_FLIGHT, arrival_pk, delta_pk,
};
pub use table::{TABLE_DEFINITION, create_table};

/// Largest binary payload per item (DynamoDB's item limit is 400 KB, keys and names included).
pub const MAX_ITEM_DATA: usize = 350 * 1024;
/// File markers live at least this long (longer than parts: see [`crate::ingest`]).
pub use crate::ingest::MARKER_TTL_DAYS;

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

    /// A `GetItem` of the item (`pk`, `sk`).
    fn get_request(&self, pk: impl Into<String>, sk: impl Into<String>) -> GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }

    /// An `UpdateItem` of the item (`pk`, `sk`).
    fn update_request(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
    ) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }

    /// A `PutItem` of an item keyed (`pk`, `sk`), stamped with the format version.
    fn put_request(&self, pk: impl Into<String>, sk: impl Into<String>) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item(FORMAT_ATTR, format_version())
    }

    /// A `DeleteItem` of the item (`pk`, `sk`).
    fn delete_request(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
    ) -> DeleteItemFluentBuilder {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }
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
