//! Refusals worded as DynamoDB words them, so a client sees the same error from the gateway as
//! from DynamoDB, with hostile values clipped before they are echoed.

use crate::GatewayError;

/// How much of a hostile value is echoed back in an error message.
const ECHO_LEN: usize = 256;

pub(crate) fn validation(message: String) -> GatewayError {
    GatewayError::Validation(message)
}

pub(crate) fn not_null(member: &str) -> GatewayError {
    validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: \
         Member must not be null"
    ))
}

pub(super) fn constraint(member: &str, value: &str, rule: &str) -> GatewayError {
    validation(format!(
        "1 validation error detected: Value '{}' at '{member}' failed to satisfy constraint: \
         {rule}",
        clip(value)
    ))
}

pub(super) fn length_constraint(member: &str, rule: &str) -> GatewayError {
    validation(format!(
        "1 validation error detected: Value at '{member}' failed to satisfy constraint: {rule}"
    ))
}

pub(super) fn required<'a>(member: &str, value: Option<&'a str>) -> Result<&'a str, GatewayError> {
    value.ok_or_else(|| not_null(member))
}

/// The first [`ECHO_LEN`] characters of a hostile value, for an error message.
pub(crate) fn clip(value: &str) -> String {
    match value.char_indices().nth(ECHO_LEN) {
        Some((end, _)) => format!("{}...", value.get(..end).unwrap_or_default()),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use crate::GatewayError;
    use crate::dynamodb::fixtures::auths;

    #[test]
    fn messages_follow_dynamodb() {
        assert_eq!(
            auths("GetItem", "{}").unwrap_err(),
            GatewayError::Validation(
                "1 validation error detected: Value null at 'tableName' failed to satisfy \
                 constraint: Member must not be null"
                    .to_owned()
            )
        );
        assert_eq!(
            auths("GetItem", r#"{"TableName":null}"#).unwrap_err(),
            auths("GetItem", "{}").unwrap_err()
        );
        assert_eq!(
            auths("GetItem", r#"{"TableName":"x/*"}"#).unwrap_err(),
            GatewayError::Validation(
                "1 validation error detected: Value 'x/*' at 'tableName' failed to satisfy \
                 constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
                    .to_owned()
            )
        );
        let long = "%".repeat(100_000);
        let Err(GatewayError::Validation(m)) =
            auths("GetItem", &format!(r#"{{"TableName":"{long}"}}"#))
        else {
            panic!("expected a validation error");
        };
        assert!(m.len() < 1000, "hostile values are clipped in messages");
    }
}
