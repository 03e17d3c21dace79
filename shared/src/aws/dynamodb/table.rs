//! The table: its definition (`infra/table.json`, shared with the template) and its creation.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    ScalarAttributeType, SseSpecification, TimeToLiveSpecification, TimeToLiveStatus,
};
use serde::Deserialize;

use super::store_error;
use crate::store::StoreError;

/// The table definition shared with the deployment template.
pub const TABLE_DEFINITION: &str = include_str!("../../../../infra/table.json");

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
