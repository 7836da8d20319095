//! Arbitrary DynamoDB requests (the first line is the `X-Amz-Target`, the rest the body): the
//! mapping never panics, and every resource it returns is `*` or a DynamoDB ARN whose table,
//! index and global table names are valid, so no hostile name ever widens a resource.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

use podiam_gateway::dynamodb::{
    MAX_AUTHORIZATIONS, authorizations, operation_of, request_authorizations,
};
use podiam_gateway::items::{KeySchema, KeySchemas};
use podiam_types::{AccountId, Arn};

fn is_name(s: &str) -> bool {
    (3..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_id(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'))
}

fn sound(resource: &str) -> bool {
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
            is_name(name) && is_id(id)
        }
        _ => false,
    }
}

/// Every table has the partition key `pk` and an index `ix` keyed by `ik`.
struct AnyTable(KeySchema);

impl KeySchemas for AnyTable {
    fn key_schema(&self, _table: &str) -> Option<&KeySchema> {
        Some(&self.0)
    }
}

fuzz_target!(|data: &[u8]| {
    let line = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (target, body) = data.split_at(line);
    let body = body.get(1..).unwrap_or_default();
    let Ok(target) = std::str::from_utf8(target) else {
        return;
    };
    let account: AccountId = "111122223333".parse().unwrap();
    let known = operation_of(target).is_ok();
    if let Ok(found) = authorizations(target, body, &account, "eu-central-1") {
        assert!(known);
        assert!(!found.is_empty() && found.len() <= MAX_AUTHORIZATIONS);
        for a in &found {
            assert!(a.action.starts_with("dynamodb:"));
            assert!(sound(&a.resource), "{}", a.resource);
        }
    }
    // With condition keys: the same resources, never a panic.
    let schemas = AnyTable(KeySchema {
        partition_key: "pk".to_owned(),
        index_partition_keys: BTreeMap::from([("ix".to_owned(), "ik".to_owned())]),
    });
    if let Ok(found) = request_authorizations(target, body, &account, "eu-central-1", &schemas) {
        assert!(known);
        assert!(!found.is_empty() && found.len() <= MAX_AUTHORIZATIONS);
        for a in &found {
            assert!(sound(&a.resource), "{}", a.resource);
            assert!(a.context.iter().all(|(k, _)| k.starts_with("dynamodb:")));
        }
    }
});
