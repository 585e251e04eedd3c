//! Table setup: the one table, its keys, on-demand capacity and TTL. No secondary index: every
//! access pattern is served by the base table's key order (see the module docs).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use herald_core::ports::StoreError;

use super::codec::{EXPIRES_AT, PK, SK};
use super::DynamoConfig;
use crate::error::{service_code, store_backend};

fn attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(StoreError::backend)
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(StoreError::backend)
}

/// Creates the table (on-demand capacity), waits until it is active, and enables TTL on
/// `expires_at`. `AlreadyExists` if the table is there already.
pub async fn create_table(client: &Client, config: &DynamoConfig) -> Result<(), StoreError> {
    let request = client
        .create_table()
        .table_name(&config.table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .attribute_definitions(attribute(PK)?)
        .attribute_definitions(attribute(SK)?);
    match request.send().await {
        Ok(_) => {}
        Err(e) if service_code(&e) == Some("ResourceInUseException") => {
            return Err(StoreError::AlreadyExists)
        }
        Err(e) => return Err(store_backend("DynamoDB.CreateTable", e)),
    }
    // Real DynamoDB takes a few seconds; emulators are active at once.
    let mut waited = Duration::ZERO;
    loop {
        let out = client
            .describe_table()
            .table_name(&config.table)
            .send()
            .await
            .map_err(|e| store_backend("DynamoDB.DescribeTable", e))?;
        let status = out.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            break;
        }
        if waited >= Duration::from_secs(300) {
            return Err(StoreError::backend(format!(
                "table {} is not active after {waited:?} (status {status:?})",
                config.table
            )));
        }
        let step = Duration::from_secs(1);
        tokio::time::sleep(step).await;
        waited += step;
    }
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(EXPIRES_AT)
        .build()
        .map_err(StoreError::backend)?;
    client
        .update_time_to_live()
        .table_name(&config.table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| store_backend("DynamoDB.UpdateTimeToLive", e))?;
    Ok(())
}
