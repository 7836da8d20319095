//! `--create-table`: makes the carts table when it is missing, so a test (or a fresh account)
//! needs no separate setup step.

use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use crate::store::{CUSTOMER_ID, ITEM_ID};

/// How long to wait for a new table to become active.
const ACTIVE_WITHIN: Duration = Duration::from_secs(120);

/// Creates `table` (hash key `customerId`, range key `itemId`, both strings, on-demand
/// billing) unless it exists, then waits until it is active. Returns whether it created it.
pub async fn ensure_table(client: &Client, table: &str) -> anyhow::Result<bool> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => return Ok(false),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => anyhow::bail!("DescribeTable {table}: {}", DisplayErrorContext(&e)),
    }
    let created = match client
        .create_table()
        .table_name(table)
        .attribute_definitions(string_attribute(CUSTOMER_ID)?)
        .attribute_definitions(string_attribute(ITEM_ID)?)
        .key_schema(key(CUSTOMER_ID, KeyType::Hash)?)
        .key_schema(key(ITEM_ID, KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
    {
        Ok(_) => true,
        // Someone else created it in the meantime.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            false
        }
        Err(e) => anyhow::bail!("CreateTable {table}: {}", DisplayErrorContext(&e)),
    };
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(ACTIVE_WITHIN)
        .await
        .map_err(|e| anyhow::anyhow!("waiting for {table}: {}", DisplayErrorContext(&e)))?;
    Ok(created)
}

fn string_attribute(name: &str) -> anyhow::Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .context("attribute definition")
}

fn key(name: &str, key_type: KeyType) -> anyhow::Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .context("key schema")
}
