//! File and key markers ([`FileMarks`]): the exactly-once protocol's records.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::parts::decode_part;
use super::parts::delta_pk;
use super::{
    DynamoStore, FORMAT_ATTR, MARKER_TTL_DAYS, format_version, n, now_seconds, number_attr, s,
    store_error, string_attr, truncate,
};
use crate::fold::Delta;
use crate::minute::{MINUTES_PER_DAY, Minute};
use crate::store::{FileId, FileMark, FileMarks, KeyMark, StoreError, VersionCommit};
use crate::stored::check_item_version;

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
            .put_request(marker_pk(file), "F")
            .item("expires_at", n(expires));
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
            .update_request(marker_pk(key), "F")
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
            .update_request(marker_pk(key), "F")
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
            .get_request(marker_pk(file), "F")
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

fn marker_pk(file: &FileId) -> String {
    format!("F#{file}")
}
