//! Reading a request body under DynamoDB's limits.
//!
//! The body is hostile: it is read into small structs holding only the members that name
//! resources (everything else is skipped unread), a structure must be a JSON object, duplicate
//! members are refused, and every list or map is cut off at DynamoDB's own limit without
//! reading the rest into memory, so one body cannot make the gateway allocate without bound.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::validation::{clip, length_constraint, not_null};
use crate::GatewayError;

// ---------------------------------------------------------------------------------------------
// Request shapes: only the members that name resources; everything else is skipped unread.

/// For operations whose members name no resource: the body must still be a JSON object.
#[derive(Deserialize)]
pub(super) struct NoMembers {}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TableMember {
    pub(super) table_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct IndexedTable {
    pub(super) table_name: Option<String>,
    pub(super) index_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ResourceMember {
    pub(super) resource_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct StreamMember {
    pub(super) stream_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ShardIteratorMember {
    pub(super) shard_iterator: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct BackupMember {
    pub(super) backup_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RestoreFromBackup {
    pub(super) backup_arn: Option<String>,
    pub(super) target_table_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RestoreToPointInTime {
    pub(super) source_table_arn: Option<String>,
    pub(super) source_table_name: Option<String>,
    pub(super) target_table_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TableArnMember {
    pub(super) table_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ExportMember {
    pub(super) export_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ImportMember {
    pub(super) import_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ImportTable {
    pub(super) table_creation_parameters: Option<Obj<TableMember>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GlobalTableMember {
    pub(super) global_table_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct BatchRequest<const N: usize> {
    pub(super) request_items: Option<BoundedKeys<N>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TransactWrite {
    pub(super) transact_items: Option<Bounded<Obj<TransactWriteItem>, 100>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TransactWriteItem {
    pub(super) put: Option<Obj<TableMember>>,
    pub(super) update: Option<Obj<TableMember>>,
    pub(super) delete: Option<Obj<TableMember>>,
    pub(super) condition_check: Option<Obj<TableMember>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TransactGet {
    pub(super) transact_items: Option<Bounded<Obj<TransactGetItem>, 100>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TransactGetItem {
    pub(super) get: Option<Obj<TableMember>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Statement {
    pub(super) statement: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct BatchExecuteStatement {
    pub(super) statements: Option<Bounded<Obj<Statement>, 25>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ExecuteTransaction {
    pub(super) transact_statements: Option<Bounded<Obj<Statement>, 100>>,
}

/// A structure: a JSON object deserialized into `T`. serde's derived structs also accept a
/// JSON array (members by position); DynamoDB does not, so neither does the gateway, and both
/// read the same members out of a body.
pub(super) struct Obj<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Members<T> {
            type Value = Obj<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a structure")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
            }
        }

        deserializer.deserialize_map(Members(PhantomData))
    }
}

/// A JSON array of which at most `N` elements are kept; the rest are skipped unread and
/// `overflow` is set, so a hostile body cannot make the gateway allocate millions of entries.
pub(super) struct Bounded<T, const N: usize> {
    items: Vec<T>,
    overflow: bool,
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Elements<T, const N: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Elements<T, N> {
            type Value = Bounded<T, N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while items.len() < N {
                    match seq.next_element()? {
                        Some(item) => items.push(item),
                        None => {
                            return Ok(Bounded {
                                items,
                                overflow: false,
                            });
                        }
                    }
                }
                let mut overflow = false;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    overflow = true;
                }
                Ok(Bounded { items, overflow })
            }
        }

        deserializer.deserialize_seq(Elements(PhantomData))
    }
}

/// The keys of a JSON object (the table names of `RequestItems`), at most `N` of them kept;
/// values and further entries are skipped unread.
pub(super) struct BoundedKeys<const N: usize> {
    keys: Vec<String>,
    overflow: bool,
}

impl<'de, const N: usize> Deserialize<'de> for BoundedKeys<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys<const N: usize>;

        impl<'de, const N: usize> Visitor<'de> for Keys<N> {
            type Value = BoundedKeys<N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut keys = Vec::new();
                while keys.len() < N {
                    match map.next_key::<String>()? {
                        Some(key) => {
                            map.next_value::<IgnoredAny>()?;
                            keys.push(key);
                        }
                        None => {
                            return Ok(BoundedKeys {
                                keys,
                                overflow: false,
                            });
                        }
                    }
                }
                let mut overflow = false;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    overflow = true;
                }
                Ok(BoundedKeys { keys, overflow })
            }
        }

        deserializer.deserialize_map(Keys::<N>)
    }
}

/// Parses the body, a JSON object, into `T`. An empty body counts as `{}`.
pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice::<Obj<T>>(body)
        .map(|Obj(request)| request)
        .map_err(|e| GatewayError::Serialization(clip(&e.to_string())))
}

/// The elements of a required list member, checked against DynamoDB's length bounds.
pub(super) fn list<T, const N: usize>(
    member: &str,
    value: Option<Bounded<Obj<T>, N>>,
) -> Result<Vec<T>, GatewayError> {
    let value = value.ok_or_else(|| not_null(member))?;
    if value.overflow {
        return Err(length_constraint(
            member,
            &format!("Member must have length less than or equal to {N}"),
        ));
    }
    if value.items.is_empty() {
        return Err(length_constraint(
            member,
            "Member must have length greater than or equal to 1",
        ));
    }
    Ok(value.items.into_iter().map(|Obj(item)| item).collect())
}

/// The keys of a required map member, checked against DynamoDB's length bounds.
pub(super) fn keys<const N: usize>(
    member: &str,
    value: Option<BoundedKeys<N>>,
) -> Result<Vec<String>, GatewayError> {
    let value = value.ok_or_else(|| not_null(member))?;
    if value.overflow {
        return Err(length_constraint(
            member,
            &format!("Member must have length less than or equal to {N}"),
        ));
    }
    if value.keys.is_empty() {
        return Err(length_constraint(
            member,
            "Member must have length greater than or equal to 1",
        ));
    }
    Ok(value.keys)
}

#[cfg(test)]
mod tests {
    use crate::GatewayError;
    use crate::dynamodb::fixtures::{auths, is_validation, pair, pairs};

    #[test]
    fn malformed_bodies_are_serialization_errors() {
        for body in [
            "[]",
            r#"["Music"]"#,
            "\"Music\"",
            "{",
            r#"{"TableName":5}"#,
            r#"{"TableName":["Music"]}"#,
            r#"{"TableName":"Music","TableName":"Other"}"#,
            r#"{"TableName":"Music"} trailing"#,
            r#"{"TableName":"\ud800"}"#,
        ] {
            assert!(
                matches!(auths("GetItem", body), Err(GatewayError::Serialization(_))),
                "{body}"
            );
        }
        // Skipped members may nest arbitrarily deep (serde_json skips them without recursion);
        // typed members hit serde_json's recursion limit.
        let deep = format!(r#"{{"X":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(is_validation(auths("GetItem", &deep)));
        let deep = format!(
            r#"{{"TransactItems":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(
            auths("TransactWriteItems", &deep),
            Err(GatewayError::Serialization(_))
        ));
        // A structure given as an array is refused, not read by position.
        for body in [
            r#"{"TransactItems":[[{"TableName":"Orders"}]]}"#,
            r#"{"TransactItems":[{"Put":["Orders"]}]}"#,
            r#"{"TransactItems":{"Put":{"TableName":"Orders"}}}"#,
        ] {
            assert!(
                matches!(
                    auths("TransactWriteItems", body),
                    Err(GatewayError::Serialization(_))
                ),
                "{body}"
            );
        }
        assert!(matches!(
            auths("BatchGetItem", r#"{"RequestItems":[["Orders"]]}"#),
            Err(GatewayError::Serialization(_))
        ));
    }

    #[test]
    fn empty_body_counts_as_no_members() {
        assert_eq!(pairs("ListTables", ""), [pair("dynamodb:ListTables", "*")]);
        assert!(is_validation(auths("GetItem", "  ")));
    }

    #[test]
    fn batch_limits() {
        let tables = |n: usize| {
            let items: Vec<String> = (0..n).map(|i| format!(r#""t{i:03}":{{}}"#)).collect();
            format!(r#"{{"RequestItems":{{{}}}}}"#, items.join(","))
        };
        assert_eq!(pairs("BatchGetItem", &tables(100)).len(), 100);
        assert!(is_validation(auths("BatchGetItem", &tables(101))));
        assert_eq!(pairs("BatchWriteItem", &tables(25)).len(), 25);
        assert!(is_validation(auths("BatchWriteItem", &tables(26))));
    }

    #[test]
    fn transact_write_items_are_checked() {
        for body in [
            r#"{"TransactItems":[{}]}"#,
            r#"{"TransactItems":[{"Put":{"TableName":"A1x"},"Delete":{"TableName":"B1x"}}]}"#,
            r#"{"TransactItems":[{"Put":{}}]}"#,
            r#"{"TransactItems":[]}"#,
            r#"{"TransactItems":[{"Put":{"TableName":"a:b"}}]}"#,
            "{}",
        ] {
            assert!(is_validation(auths("TransactWriteItems", body)), "{body}");
        }
        let items = |n: usize| {
            let one = r#"{"Put":{"TableName":"Orders"}}"#;
            format!(r#"{{"TransactItems":[{}]}}"#, vec![one; n].join(","))
        };
        assert_eq!(pairs("TransactWriteItems", &items(100)).len(), 1);
        assert!(is_validation(auths("TransactWriteItems", &items(101))));
        // Millions of elements are skipped, not collected.
        let many = format!(
            r#"{{"TransactItems":[{}]}}"#,
            vec!["{}"; 1_000_000].join(",")
        );
        assert!(is_validation(auths("TransactWriteItems", &many)));
    }
}
