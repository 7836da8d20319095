//! Which IAM authorizations a DynamoDB request needs.
//!
//! DynamoDB speaks the awsJson1_0 protocol: the `X-Amz-Target` header names the operation
//! (`DynamoDB_20120810.PutItem`, or `DynamoDBStreams_20120810.GetRecords` for DynamoDB Streams)
//! and the body is a JSON object of its members. [`authorizations`] reads both and returns every
//! `(action, resource)` pair IAM evaluates for the request, following AWS's "Actions, resources,
//! and condition keys for Amazon DynamoDB". The gateway forwards the request only if the caller
//! is allowed every pair.
//!
//! The input is hostile, so:
//! - names are checked with DynamoDB's own rules (3-255 characters of `[a-zA-Z0-9_.-]`) before
//!   they are put into an ARN: a `TableName` such as `x/*` or `a:b` is refused, never
//!   interpolated, so it cannot widen the resource;
//! - an ARN the client supplies (a `TableName` given as an ARN, `ResourceArn`, `StreamArn`,
//!   `BackupArn`, …) must parse as exactly the DynamoDB resource type expected;
//! - the body is at most 16 MiB and every list is cut off (without being read into memory) at
//!   DynamoDB's own limit, so one request yields at most [`MAX_AUTHORIZATIONS`] pairs;
//! - duplicate members are a serialization error, so the gateway and DynamoDB cannot read
//!   different values out of one body;
//! - what is not understood (an unknown operation, a PartiQL statement whose table cannot be
//!   determined with certainty) is an error, never a guess.
//!
//! The mapping is split by concern:
//! - `operations`: the operations table, which IAM actions and resources each operation needs;
//! - `request`: reading the body under DynamoDB's limits, without reading more than needed;
//! - `names`: names and client-supplied ARNs, checked before they become a resource;
//! - `partiql`: the table a PartiQL statement touches;
//! - `validation`: refusals worded as DynamoDB words them.

mod names;
mod operations;
mod partiql;
mod request;
mod validation;

#[cfg(test)]
mod fixtures;

use podiam_types::AccountId;

use crate::GatewayError;
use crate::items::{ITEM_OPERATIONS, KeySchemas, item_authorizations};
use operations::map_operation;

pub use operations::{DYNAMODB_OPERATIONS, STREAMS_OPERATIONS};
// The helpers `items` and `envelope` share with the mapping.
pub(crate) use names::{index_arn, table};
pub(crate) use validation::{clip, not_null, validation};

/// The largest body accepted: DynamoDB's 16 MiB request limit.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The most authorizations one request can need (a 100-item transaction, or a `BatchGetItem`
/// over 100 tables).
pub const MAX_AUTHORIZATIONS: usize = 100;

/// `X-Amz-Target` prefix of the DynamoDB API.
pub const DYNAMODB_TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// `X-Amz-Target` prefix of the DynamoDB Streams API.
pub const STREAMS_TARGET_PREFIX: &str = "DynamoDBStreams_20120810.";

/// One authorization a request needs: IAM must allow `action` on `resource`, with these
/// condition keys in the request context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Authorization {
    /// `dynamodb:<Action>`, e.g. `dynamodb:PutItem`.
    pub action: String,
    /// The ARN acted on, or `*` for actions without resource-level permissions.
    pub resource: String,
    /// DynamoDB's condition keys for this action (`dynamodb:LeadingKeys`, …), in a fixed order.
    pub context: Vec<(&'static str, ConditionValue)>,
    /// Condition keys that apply to this action but whose values the gateway cannot determine
    /// (the keys of a PartiQL statement). The authorizer refuses the request when a policy of
    /// the caller reads one of them, rather than evaluate it as absent.
    pub unknown: Vec<&'static str>,
}

impl Authorization {
    /// Sets the single-valued condition key `key`.
    pub(crate) fn set(&mut self, key: &'static str, value: &str) {
        self.context
            .push((key, ConditionValue::Single(value.to_owned())));
    }
}

/// A condition key's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(untagged)]
pub enum ConditionValue {
    /// A single-valued key (`dynamodb:Select`).
    Single(String),
    /// A multivalued key (`dynamodb:LeadingKeys`, `dynamodb:Attributes`); may be empty.
    Set(Vec<String>),
}

/// The operation an `X-Amz-Target` names, if it is one this module maps: `PutItem` for
/// `DynamoDB_20120810.PutItem`. Streams operations are only recognised under the Streams prefix,
/// as DynamoDB does.
///
/// # Errors
///
/// [`GatewayError::UnknownOperation`] for any other target.
pub fn operation_of(target: &str) -> Result<&str, GatewayError> {
    let known = if let Some(op) = target.strip_prefix(DYNAMODB_TARGET_PREFIX) {
        DYNAMODB_OPERATIONS.contains(&op).then_some(op)
    } else if let Some(op) = target.strip_prefix(STREAMS_TARGET_PREFIX) {
        STREAMS_OPERATIONS.contains(&op).then_some(op)
    } else {
        None
    };
    known.ok_or_else(|| GatewayError::UnknownOperation(clip(target)))
}

/// Every authorization the DynamoDB request `body` for `target` needs when sent by `account`
/// to `region`, without duplicates, in request order.
///
/// Names are resolved to `arn:aws:dynamodb:{region}:{account}:table/{name}` (an index adds
/// `/index/{name}`; a global table is `arn:aws:dynamodb::{account}:global-table/{name}`); a
/// member given as an ARN is used as written once it has parsed as the expected DynamoDB
/// resource type. Never panics, whatever the input.
///
/// # Errors
///
/// [`GatewayError::TooLarge`] over [`MAX_BODY_BYTES`], [`GatewayError::UnknownOperation`] for a
/// target [`operation_of`] does not know, [`GatewayError::Serialization`] for a body that is not
/// a JSON object or a member of the wrong type, [`GatewayError::Validation`] for a missing or
/// invalid member, and [`GatewayError::InvalidRegion`] when `region` is not a region name.
pub fn authorizations(
    target: &str,
    body: &[u8],
    account: &AccountId,
    region: &str,
) -> Result<Vec<Authorization>, GatewayError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(GatewayError::TooLarge);
    }
    let op = operation_of(target)?;
    if region.is_empty()
        || region.len() > 64
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(GatewayError::InvalidRegion(clip(region)));
    }
    let scope = Scope {
        account: account.as_str(),
        region,
    };
    let mut out = Collector::default();
    map_operation(&scope, op, body, &mut out)?;
    if out.0.len() > MAX_AUTHORIZATIONS {
        // Unreachable with DynamoDB's list limits enforced above; kept as the last line.
        return Err(validation(format!(
            "Too many resources in one request: the gateway authorizes at most \
             {MAX_AUTHORIZATIONS}"
        )));
    }
    Ok(out.0)
}

/// Every authorization the request needs, with DynamoDB's condition keys: the resources of
/// [`authorizations`], and for the item operations ([`crate::items::ITEM_OPERATIONS`]) one
/// authorization per table or transaction entry, carrying the keys and attribute names of the
/// items it touches. `schemas` must know every table
/// [`crate::items::tables_needing_key_schemas`] names.
///
/// # Errors
///
/// As [`authorizations`]; [`GatewayError::Validation`] for an expression or key that cannot
/// be read; [`GatewayError::ResourceNotFound`] for a table whose key schema is unknown.
pub fn request_authorizations(
    target: &str,
    body: &[u8],
    account: &AccountId,
    region: &str,
    schemas: &dyn KeySchemas,
) -> Result<Vec<Authorization>, GatewayError> {
    let mut resources = authorizations(target, body, account, region)?;
    let op = operation_of(target)?;
    if ITEM_OPERATIONS.contains(&op) {
        let scope = Scope {
            account: account.as_str(),
            region,
        };
        let found = item_authorizations(&scope, op, body, schemas)?;
        // Both mappings read the same members; a difference would be a bug, and is refused.
        let pairs = |list: &[Authorization]| {
            let mut pairs: Vec<(String, String)> = list
                .iter()
                .map(|a| (a.action.clone(), a.resource.clone()))
                .collect();
            pairs.sort();
            pairs.dedup();
            pairs
        };
        if pairs(&found) != pairs(&resources) || found.len() > MAX_AUTHORIZATIONS {
            return Err(validation(
                "The gateway could not attribute every item of the request to its table".to_owned(),
            ));
        }
        return Ok(found);
    }
    for authorization in &mut resources {
        if authorization.action.starts_with("dynamodb:PartiQL") {
            authorization.unknown = vec!["dynamodb:LeadingKeys", "dynamodb:Attributes"];
            if op == "ExecuteTransaction" {
                authorization.set("dynamodb:EnclosingOperation", "ExecuteTransaction");
            }
        }
    }
    Ok(resources)
}

/// The account and region that bare names are resolved in.
pub(crate) struct Scope<'a> {
    account: &'a str,
    region: &'a str,
}

impl Scope<'_> {
    fn table(&self, name: &str) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{name}",
            self.region, self.account
        )
    }

    fn global_table(&self, name: &str) -> String {
        format!("arn:aws:dynamodb::{}:global-table/{name}", self.account)
    }
}

/// The authorizations found so far, deduplicated in order.
#[derive(Default)]
struct Collector(Vec<Authorization>);

impl Collector {
    fn push(&mut self, action: &str, resource: String) {
        let authorization = Authorization {
            action: format!("dynamodb:{action}"),
            resource,
            context: Vec::new(),
            unknown: Vec::new(),
        };
        if !self.0.contains(&authorization) {
            self.0.push(authorization);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::fixtures::{
        REGION, account, auths, pair, pairs, resource_is_sound, table,
    };
    use proptest::prelude::*;

    #[test]
    fn operation_of_needs_the_right_prefix() {
        assert_eq!(
            operation_of("DynamoDB_20120810.PutItem").unwrap(),
            "PutItem"
        );
        assert_eq!(
            operation_of("DynamoDBStreams_20120810.GetRecords").unwrap(),
            "GetRecords"
        );
        for bad in [
            "",
            "PutItem",
            "DynamoDB_20120810.",
            "DynamoDB_20120810.putitem",
            "DynamoDB_20120810.GetRecords",
            "DynamoDBStreams_20120810.PutItem",
            "DynamoDB_20111205.PutItem",
            "dynamodb_20120810.PutItem",
            "DynamoDB_20120810.PutItem ",
        ] {
            assert!(
                matches!(operation_of(bad), Err(GatewayError::UnknownOperation(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            auths("Frobnicate", "{}"),
            Err(GatewayError::UnknownOperation(_))
        ));
    }

    #[test]
    fn oversized_body_is_refused_before_parsing() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            authorizations("DynamoDB_20120810.ListTables", &body, &account(), REGION),
            Err(GatewayError::TooLarge)
        );
    }

    #[test]
    fn region_must_be_a_region() {
        for bad in ["", "eu-central-1/x", "EU", "*"] {
            assert!(matches!(
                authorizations("DynamoDB_20120810.ListTables", b"{}", &account(), bad),
                Err(GatewayError::InvalidRegion(_))
            ));
        }
    }

    #[test]
    fn every_resource_of_the_examples_is_sound() {
        let stream =
            "arn:aws:dynamodb:eu-central-1:111122223333:table/Music/stream/2024-05-20T20:51:10.252";
        for (op, body) in [
            ("GetItem", r#"{"TableName":"Music"}"#.to_owned()),
            (
                "Query",
                r#"{"TableName":"Music","IndexName":"ByYear"}"#.to_owned(),
            ),
            (
                "CreateGlobalTable",
                r#"{"GlobalTableName":"Music"}"#.to_owned(),
            ),
            ("DescribeStream", format!(r#"{{"StreamArn":"{stream}"}}"#)),
            ("ListTables", "{}".to_owned()),
        ] {
            for a in auths(op, &body).unwrap() {
                assert!(resource_is_sound(&a.resource), "{}", a.resource);
            }
        }
    }

    #[test]
    fn fuzz_seeds_are_accepted() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/seeds/dynamodb_request"
        );
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let line = data.iter().position(|&b| b == b'\n').unwrap();
            let target = std::str::from_utf8(&data[..line]).unwrap();
            let found = authorizations(target, &data[line + 1..], &account(), REGION)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(found.iter().all(|a| resource_is_sound(&a.resource)));
            seen += 1;
        }
        assert!(seen >= 10);
    }

    fn any_target() -> impl Strategy<Value = String> {
        let known: Vec<String> = DYNAMODB_OPERATIONS
            .iter()
            .map(|op| format!("{DYNAMODB_TARGET_PREFIX}{op}"))
            .chain(
                STREAMS_OPERATIONS
                    .iter()
                    .map(|op| format!("{STREAMS_TARGET_PREFIX}{op}")),
            )
            .collect();
        prop_oneof![
            3 => proptest::sample::select(known),
            1 => "\\PC{0,40}",
        ]
    }

    /// Names drawn from an alphabet rich in the characters that could widen an ARN.
    fn hostile_name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9_.\\-/:*?\" ]{0,12}",
            "arn:aws:dynamodb:[a-z0-9\\-]{0,4}:[0-9*]{0,12}:table/[a-zA-Z0-9/*:.]{0,10}",
            "\\PC{0,10}",
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(target in any_target(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(found) = authorizations(&target, &body, &account(), REGION) {
                prop_assert!(found.len() <= MAX_AUTHORIZATIONS);
                for a in found {
                    prop_assert!(resource_is_sound(&a.resource), "{}", a.resource);
                }
            }
        }

        #[test]
        fn hostile_names_never_widen_a_resource(
            target in any_target(),
            table in hostile_name(),
            index in hostile_name(),
            arn in hostile_name(),
        ) {
            let bodies = [
                serde_json::json!({ "TableName": table, "IndexName": index }),
                serde_json::json!({ "GlobalTableName": table }),
                serde_json::json!({ "ResourceArn": arn, "StreamArn": arn, "BackupArn": arn,
                                    "TargetTableName": table, "ShardIterator": arn }),
                serde_json::json!({ "RequestItems": { table.clone(): {}, index.clone(): [] } }),
                serde_json::json!({ "TransactItems": [ { "Put": { "TableName": table } },
                                                       { "Get": { "TableName": index } } ] }),
                serde_json::json!({ "Statement": format!("SELECT * FROM \"{table}\".\"{index}\"") }),
                serde_json::json!({ "Statement": format!("UPDATE {table} SET a = 1") }),
            ];
            for body in bodies {
                let body = body.to_string();
                if let Ok(found) = authorizations(&target, body.as_bytes(), &account(), REGION) {
                    for a in found {
                        prop_assert!(resource_is_sound(&a.resource), "{} from {}", a.resource, body);
                    }
                }
            }
        }

        #[test]
        fn valid_names_map_to_their_table(name in "[a-zA-Z0-9_.\\-]{3,40}") {
            let body = serde_json::json!({ "TableName": name }).to_string();
            prop_assert_eq!(
                pairs("PutItem", &body),
                vec![pair("dynamodb:PutItem", &table(&name))]
            );
        }
    }
}
