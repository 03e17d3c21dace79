//! The versioned detector state ([`StateStore`]): a head item and its body (chunk items, or an
//! S3 object with a state bucket).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use flate2::Compression;
use futures::{StreamExt, stream};

use super::{
    DynamoStore, FORMAT_ATTR, MAX_ITEM_DATA, binary_attr, format_version, gzip_json_at, n,
    number_attr, s, store_error, string_attr,
};
use crate::detector::DetectorState;
use crate::store::{StateStore, StoreError, VersionedState};
use crate::stored::{self, check_item_version};

/// State chunk writes and deletes in flight.
const CHUNKS_IN_FLIGHT: usize = 8;
const STATE_PK: &str = "S";
const HEAD_SK: &str = "HEAD";

impl DynamoStore {
    async fn get_head(&self) -> Result<Option<Head>, StoreError> {
        let item = self
            .get_request(STATE_PK, HEAD_SK)
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
                self.delete_request(pk, sk)
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
        let token = write_token();
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
            .update_request(STATE_PK, HEAD_SK)
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
                    self.put_request(STATE_PK, sk)
                        .item("d", AttributeValue::B(Blob::new(chunk)))
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

fn chunk_prefix(version: u64, token: &str) -> String {
    format!("C#{version:020}#{token}#")
}

fn chunk_sk(version: u64, token: &str, i: usize) -> String {
    format!("{}{i:05}", chunk_prefix(version, token))
}

/// A token that tells one writer's chunks or body apart from another's for the same version: 128
/// random bits from the standard library's OS-seeded hash keys (each `RandomState` is distinct),
/// over the time and the process id. Only concurrent writers need to differ; nothing secret.
fn write_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let draw = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        hasher.finish()
    };
    format!("{:016x}{:016x}", draw(), draw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_sort_in_order() {
        assert!(chunk_sk(9, "t", 2) < chunk_sk(9, "t", 10));
        assert!(chunk_sk(9, "t", 99) < chunk_sk(10, "t", 0));
        assert!(chunk_sk(9, "t", 0).starts_with(&chunk_prefix(9, "t")));
    }

    #[test]
    fn write_tokens_differ() {
        let tokens: std::collections::HashSet<String> = (0..1000).map(|_| write_token()).collect();
        assert_eq!(tokens.len(), 1000);
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }
}
