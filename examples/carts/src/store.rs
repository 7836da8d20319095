//! The carts in DynamoDB: one item per cart line, keyed by `customerId` (hash) and `itemId`
//! (range), with `quantity` and `unitPrice` as numbers — the workshop's table layout.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::ApiError;
use crate::model::{Cart, Item};

/// The hash key.
pub const CUSTOMER_ID: &str = "customerId";
/// The range key.
pub const ITEM_ID: &str = "itemId";
const QUANTITY: &str = "quantity";
const UNIT_PRICE: &str = "unitPrice";

/// The carts table, through an SDK client. Cheap to clone: the client is shared.
#[derive(Debug, Clone)]
pub struct CartStore {
    client: Client,
    table: Arc<str>,
}

impl CartStore {
    /// The store for `table`, reached with `client`.
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The customer's cart (`Query` on the hash key, every page, consistent so that a line just
    /// added is in it). A customer with no lines has an empty cart.
    pub async fn cart(&self, customer_id: &str) -> Result<Cart, ApiError> {
        let mut pages = self
            .client
            .query()
            .table_name(self.table.as_ref())
            .key_condition_expression("#c = :c")
            .expression_attribute_names("#c", CUSTOMER_ID)
            .expression_attribute_values(":c", AttributeValue::S(customer_id.to_owned()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut items = Vec::new();
        while let Some(stored) = pages.next().await {
            let stored = stored.map_err(|e| ApiError::from_sdk(&e))?;
            items.push(item_from_attributes(&stored).map_err(ApiError::InvalidStoredItem)?);
        }
        Ok(Cart {
            customer_id: customer_id.to_owned(),
            items,
        })
    }

    /// Adds a line to the customer's cart, replacing any line for the same item (`PutItem`).
    pub async fn put(&self, customer_id: &str, item: &Item) -> Result<(), ApiError> {
        self.client
            .put_item()
            .table_name(self.table.as_ref())
            .set_item(Some(item_to_attributes(customer_id, item)))
            .send()
            .await
            .map_err(|e| ApiError::from_sdk(&e))?;
        Ok(())
    }

    /// Removes a line from the customer's cart (`DeleteItem`); removing an absent line is not
    /// an error.
    pub async fn delete(&self, customer_id: &str, item_id: &str) -> Result<(), ApiError> {
        self.client
            .delete_item()
            .table_name(self.table.as_ref())
            .key(CUSTOMER_ID, AttributeValue::S(customer_id.to_owned()))
            .key(ITEM_ID, AttributeValue::S(item_id.to_owned()))
            .send()
            .await
            .map_err(|e| ApiError::from_sdk(&e))?;
        Ok(())
    }
}

/// The stored form of a cart line.
fn item_to_attributes(customer_id: &str, item: &Item) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            CUSTOMER_ID.to_owned(),
            AttributeValue::S(customer_id.to_owned()),
        ),
        (ITEM_ID.to_owned(), AttributeValue::S(item.item_id.clone())),
        (
            QUANTITY.to_owned(),
            AttributeValue::N(item.quantity.to_string()),
        ),
        (
            UNIT_PRICE.to_owned(),
            AttributeValue::N(item.unit_price.to_string()),
        ),
    ])
}

/// A cart line from its stored form; the error names the attribute that does not fit.
fn item_from_attributes(stored: &HashMap<String, AttributeValue>) -> Result<Item, String> {
    let string = |name: &str| match stored.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(format!("{name} is not a string")),
    };
    let number = |name: &str| match stored.get(name) {
        Some(AttributeValue::N(n)) => Ok(n.as_str()),
        _ => Err(format!("{name} is not a number")),
    };
    let item_id = string(ITEM_ID)?;
    let quantity = number(QUANTITY)?
        .parse()
        .map_err(|_| format!("{QUANTITY} of {item_id} is not a count"))?;
    let unit_price = number(UNIT_PRICE)?
        .parse()
        .map_err(|_| format!("{UNIT_PRICE} of {item_id} is not a whole price"))?;
    Ok(Item {
        item_id,
        quantity,
        unit_price,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let item = Item {
            item_id: "sock".to_owned(),
            quantity: 3,
            unit_price: 1250,
        };
        let stored = item_to_attributes("alice", &item);
        assert_eq!(
            stored.get(CUSTOMER_ID),
            Some(&AttributeValue::S("alice".to_owned()))
        );
        assert_eq!(item_from_attributes(&stored), Ok(item));
    }

    #[test]
    fn malformed_items_are_errors() {
        let mut stored = item_to_attributes(
            "alice",
            &Item {
                item_id: "sock".to_owned(),
                quantity: 3,
                unit_price: 1250,
            },
        );
        stored.insert(QUANTITY.to_owned(), AttributeValue::N("1.5".to_owned()));
        assert!(item_from_attributes(&stored).is_err());
        stored.insert(QUANTITY.to_owned(), AttributeValue::S("3".to_owned()));
        assert!(item_from_attributes(&stored).is_err());
        stored.remove(ITEM_ID);
        assert!(item_from_attributes(&stored).is_err());
    }
}
