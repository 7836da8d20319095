//! The cart's JSON shapes and the checks on what clients send.

use serde::{Deserialize, Serialize};

/// The longest customer or item id accepted, in characters.
pub const MAX_ID_CHARS: usize = 256;

/// The quantities accepted for one line of a cart.
pub const QUANTITY: std::ops::RangeInclusive<u32> = 1..=1000;

/// One line of a cart, as stored and as sent and returned over the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The catalog item.
    pub item_id: String,
    /// How many.
    pub quantity: u32,
    /// The price of one, in cents.
    pub unit_price: u64,
}

/// A customer's cart: every line stored under the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    /// The customer the cart belongs to.
    pub customer_id: String,
    /// Its lines, ordered by item id (the table's range key).
    pub items: Vec<Item>,
}

/// Checks a customer or item id: not empty, at most [`MAX_ID_CHARS`] characters.
/// `what` names the field in the message.
pub fn validate_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(format!("{what} must be at most {MAX_ID_CHARS} characters"));
    }
    Ok(())
}

impl Item {
    /// Checks an item a client sent.
    pub fn validate(&self) -> Result<(), String> {
        validate_id("itemId", &self.item_id)?;
        if !QUANTITY.contains(&self.quantity) {
            return Err(format!(
                "quantity must be between {} and {}",
                QUANTITY.start(),
                QUANTITY.end()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, quantity: u32) -> Item {
        Item {
            item_id: id.to_owned(),
            quantity,
            unit_price: 795,
        }
    }

    #[test]
    fn ids() {
        assert!(validate_id("customerId", "alice").is_ok());
        assert!(validate_id("customerId", &"é".repeat(MAX_ID_CHARS)).is_ok());
        assert_eq!(
            validate_id("customerId", ""),
            Err("customerId must not be empty".to_owned())
        );
        assert!(validate_id("customerId", &"x".repeat(MAX_ID_CHARS + 1)).is_err());
    }

    #[test]
    fn quantities() {
        assert!(item("sock", 1).validate().is_ok());
        assert!(item("sock", 1000).validate().is_ok());
        assert!(item("sock", 0).validate().is_err());
        assert!(item("sock", 1001).validate().is_err());
        assert!(item("", 1).validate().is_err());
    }

    #[test]
    fn json_is_camel_case() {
        let json = serde_json::to_value(item("sock", 2)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"itemId": "sock", "quantity": 2, "unitPrice": 795})
        );
    }
}
