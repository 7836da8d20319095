//! Helpers shared by the tests of the mapping's modules.

use podiam_types::{AccountId, Arn};

use super::names::{is_name, is_resource_id};
use super::{
    Authorization, DYNAMODB_TARGET_PREFIX, STREAMS_OPERATIONS, STREAMS_TARGET_PREFIX,
    authorizations,
};
use crate::GatewayError;

pub(super) const ACCOUNT: &str = "111122223333";
pub(super) const REGION: &str = "eu-central-1";

pub(super) fn account() -> AccountId {
    ACCOUNT.parse().unwrap()
}

pub(super) fn auths(op: &str, body: &str) -> Result<Vec<Authorization>, GatewayError> {
    let target = if STREAMS_OPERATIONS.contains(&op) {
        format!("{STREAMS_TARGET_PREFIX}{op}")
    } else {
        format!("{DYNAMODB_TARGET_PREFIX}{op}")
    };
    authorizations(&target, body.as_bytes(), &account(), REGION)
}

pub(super) fn pairs(op: &str, body: &str) -> Vec<(String, String)> {
    auths(op, body)
        .unwrap()
        .into_iter()
        .map(|a| (a.action, a.resource))
        .collect()
}

pub(super) fn pair(action: &str, resource: &str) -> (String, String) {
    (action.to_owned(), resource.to_owned())
}

pub(super) fn table(name: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
}

pub(super) fn is_validation(r: Result<Vec<Authorization>, GatewayError>) -> bool {
    matches!(r, Err(GatewayError::Validation(_)))
}

/// A resource is `*`, or a DynamoDB ARN whose table (or global table) name is valid and
/// that holds no wildcard.
pub(super) fn resource_is_sound(resource: &str) -> bool {
    if resource == "*" {
        return true;
    }
    if resource.contains(['*', '?']) {
        return false;
    }
    let Ok(arn) = resource.parse::<Arn>() else {
        return false;
    };
    if arn.service() != "dynamodb" || arn.account_id().is_none() {
        return false;
    }
    let parts: Vec<&str> = arn.resource().split('/').collect();
    match parts.as_slice() {
        ["global-table", name] => arn.region().is_empty() && is_name(name),
        ["table", name] => is_name(name),
        ["table", name, "index", index] => is_name(name) && is_name(index),
        ["table", name, "stream" | "backup" | "export" | "import", id] => {
            is_name(name) && is_resource_id(id)
        }
        _ => false,
    }
}
