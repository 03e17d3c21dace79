//! Where the detector state's body (its gzip JSON) is kept: as chunk items in the table, or as
//! one S3 object per version.
//!
//! The head item (`pk = S`, `sk = HEAD`) and its conditional update stay in DynamoDB whatever the
//! body: that update is what makes a detect run exactly-once. Only the body moves. In DynamoDB a
//! save costs one write unit per KB of gzip (chunks of 350 KB); in S3 it costs one `PutObject`
//! whatever its size, and a load one `GetObject` (see docs/COST.md).
//!
//! An S3 body is written under a key unique to its version and the saver's token,
//! `<prefix>/state/v<version>-<token>.json.gz`, **before** the head update that makes it current,
//! so a loser of the conditional update never overwrites the winner's object. After the update:
//! the winner deletes the previous version's object (named in the head's old values), the loser
//! its own. Both deletes are best effort: a failure leaves an unreachable object behind, never a
//! wrong state. The one other way to leave an orphan is a crash between the `PutObject` and the
//! head update: one object of one state's size, never read.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use crate::aws::retry::{describe, is_transient};
use crate::aws::s3::S3Objects;
use crate::objects::{ObjectError, read_object};
use crate::s3location::S3Location;
use crate::store::StoreError;

/// A state object larger than this is not ours (200,000 series take about 30 MB).
pub const MAX_STATE_OBJECT: u64 = 1 << 30;

/// The detector state's body as one S3 object per version.
#[derive(Debug, Clone)]
pub struct S3StateBody {
    client: Client,
    location: S3Location,
}

impl S3StateBody {
    pub fn new(client: Client, location: S3Location) -> Self {
        Self { client, location }
    }

    pub fn bucket(&self) -> &str {
        self.location.bucket()
    }

    /// `<prefix>/state/v<version>-<token>.json.gz` (`state/...` without a prefix).
    pub fn key(&self, version: u64, token: &str) -> String {
        self.location
            .key(&format!("state/v{version}-{token}.json.gz"))
    }

    /// Writes a version's body (unconditionally: its key is unique to this saver).
    pub async fn put(&self, key: &str, data: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_type("application/json")
            .content_encoding("gzip")
            .body(ByteStream::from(data))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| {
                let message = format!(
                    "writing the detector state to s3://{}/{key}: {}",
                    self.bucket(),
                    describe(&error)
                );
                if is_transient(&error) {
                    StoreError::Transient(message)
                } else {
                    StoreError::Other(message)
                }
            })
    }

    /// Reads a version's body; `None` when the object is gone (a newer save replaced it and
    /// deleted it after the head was read).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let objects = S3Objects::new(self.client.clone());
        match read_object(&objects, self.bucket(), key, MAX_STATE_OBJECT).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(ObjectError::Gone { .. }) => Ok(None),
            Err(error @ ObjectError::Transient { .. }) => Err(StoreError::Transient(format!(
                "reading the detector state: {error}"
            ))),
            Err(error @ ObjectError::TooLarge { .. }) => Err(StoreError::Corrupt(format!(
                "reading the detector state: {error}"
            ))),
            Err(error @ ObjectError::Other { .. }) => Err(StoreError::Other(format!(
                "reading the detector state: {error}"
            ))),
        }
    }

    /// Deletes a body nobody will read; a failure only leaves an orphan behind.
    pub async fn delete_best_effort(&self, key: &str) {
        if let Err(error) = self
            .client
            .delete_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
        {
            tracing::warn!(
                bucket = self.bucket(),
                key,
                error = describe(&error),
                "Could not delete an unused detector state object."
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_version_and_token_under_the_prefix() {
        let client = Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .build(),
        );
        let body = S3StateBody::new(client.clone(), S3Location::new("state-b", "/a/b/").unwrap());
        assert_eq!(body.key(12, "t"), "a/b/state/v12-t.json.gz");
        assert_eq!(body.bucket(), "state-b");
        let root = S3StateBody::new(client, S3Location::new("state-b", "").unwrap());
        assert_eq!(root.key(7, "ab"), "state/v7-ab.json.gz");
    }
}
