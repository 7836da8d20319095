//! The item-level authorizations of DynamoDB's data-plane operations, with the condition keys
//! DynamoDB documents for fine-grained access control ("Using IAM policy conditions for
//! fine-grained access control", DynamoDB Developer Guide):
//!
//! - `dynamodb:LeadingKeys`: the partition-key value of every item the request touches, from
//!   `Key`, `Item`, the key condition of a `Query`, and each batch or transaction entry. It is
//!   left out only for `Scan`, which names no key (AWS's own example leaves `Scan` out of
//!   per-user policies for that reason).
//! - `dynamodb:Attributes`: the top-level attribute names the request reads, writes or
//!   evaluates: the key, `Item`, projections, update and condition expressions, filters and the
//!   legacy parameters.
//! - `dynamodb:Select` (reads: given, else `SPECIFIC_ATTRIBUTES` with a projection,
//!   `ALL_PROJECTED_ATTRIBUTES` on an index, `ALL_ATTRIBUTES`), `dynamodb:ReturnValues`
//!   (writes, `NONE` unless given), `dynamodb:ReturnConsumedCapacity` (`NONE` unless given) and
//!   `dynamodb:EnclosingOperation` (the entries of `TransactGetItems`/`TransactWriteItems`).
//!
//! A key whose value cannot be determined with certainty is never guessed and never silently
//! left out: it is listed in [`Authorization::unknown`], and the authorizer refuses the request
//! if any of the caller's policies reads that key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::GatewayError;
use crate::dynamodb::{
    Authorization, ConditionValue, Scope, index_arn, not_null, table, validation,
};
use crate::expression;

/// The data-plane operations this module maps; every other operation is mapped by
/// [`crate::dynamodb`] alone.
pub const ITEM_OPERATIONS: &[&str] = &[
    "BatchGetItem",
    "BatchWriteItem",
    "DeleteItem",
    "GetItem",
    "PutItem",
    "Query",
    "Scan",
    "TransactGetItems",
    "TransactWriteItems",
    "UpdateItem",
];

/// The largest partition-key value DynamoDB stores (2,048 bytes); longer scalar values are not
/// kept, so an item's large attributes cost no memory here.
const MAX_KEY_VALUE_BYTES: usize = 2048;

/// A table's key attributes, as `DescribeTable` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    /// The table's partition (`HASH`) key attribute.
    pub partition_key: String,
    /// The partition key of each secondary index, by index name.
    pub index_partition_keys: BTreeMap<String, String>,
}

impl KeySchema {
    /// Reads a `DescribeTable` answer.
    ///
    /// # Errors
    ///
    /// [`GatewayError::Serialization`] when the answer has no `Table.KeySchema` with one `HASH`
    /// key.
    pub fn from_describe_table(answer: &[u8]) -> Result<Self, GatewayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer {
            table: Table,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Table {
            key_schema: Vec<KeyElement>,
            #[serde(default)]
            global_secondary_indexes: Vec<Index>,
            #[serde(default)]
            local_secondary_indexes: Vec<Index>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Index {
            index_name: String,
            key_schema: Vec<KeyElement>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct KeyElement {
            attribute_name: String,
            key_type: String,
        }
        fn hash_key(elements: &[KeyElement]) -> Result<String, GatewayError> {
            let mut hashes = elements.iter().filter(|e| e.key_type == "HASH");
            match (hashes.next(), hashes.next()) {
                (Some(e), None) => Ok(e.attribute_name.clone()),
                _ => Err(GatewayError::Serialization(
                    "DescribeTable answered a key schema without exactly one HASH key".to_owned(),
                )),
            }
        }
        let answer: Answer = serde_json::from_slice(answer)
            .map_err(|e| GatewayError::Serialization(format!("DescribeTable answer: {e}")))?;
        let mut index_partition_keys = BTreeMap::new();
        for index in answer
            .table
            .global_secondary_indexes
            .iter()
            .chain(&answer.table.local_secondary_indexes)
        {
            index_partition_keys.insert(index.index_name.clone(), hash_key(&index.key_schema)?);
        }
        Ok(Self {
            partition_key: hash_key(&answer.table.key_schema)?,
            index_partition_keys,
        })
    }
}

/// Where the key schemas of the tables a request touches come from (the gateway's cache of
/// `DescribeTable` answers).
pub trait KeySchemas {
    /// The schema of `table` (a name, or a table ARN as the request gave it).
    fn key_schema(&self, table: &str) -> Option<&KeySchema>;
}

impl KeySchemas for BTreeMap<String, KeySchema> {
    fn key_schema(&self, table: &str) -> Option<&KeySchema> {
        self.get(table)
    }
}

/// The tables (as the request names them) whose key schemas the item condition keys need
/// (`dynamodb:LeadingKeys` reads the partition key): every table of an item operation but
/// `Scan`.
///
/// # Errors
///
/// [`GatewayError`] (serialization or validation, in DynamoDB's words) for a body it cannot
/// read or an entry without a table name.
pub fn tables_needing_key_schemas(op: &str, body: &[u8]) -> Result<Vec<String>, GatewayError> {
    let mut tables = BTreeSet::new();
    match op {
        "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" | "Query" => {
            let request: Single = parse(body)?;
            tables.insert(required_table(request.table_name)?);
        }
        "BatchGetItem" => {
            let request: BatchGet = parse(body)?;
            tables.extend(request.request_items.unwrap_or_default().into_keys());
        }
        "BatchWriteItem" => {
            let request: BatchWrite = parse(body)?;
            tables.extend(request.request_items.unwrap_or_default().into_keys());
        }
        "TransactGetItems" => {
            let request: TransactGet = parse(body)?;
            for entry in request.transact_items.unwrap_or_default() {
                if let Some(get) = entry.get {
                    tables.insert(required_table(get.table_name)?);
                }
            }
        }
        "TransactWriteItems" => {
            let request: TransactWrite = parse(body)?;
            for entry in request.transact_items.unwrap_or_default() {
                for single in [entry.put, entry.update, entry.delete, entry.condition_check]
                    .into_iter()
                    .flatten()
                {
                    tables.insert(required_table(single.table_name)?);
                }
            }
        }
        _ => {}
    }
    Ok(tables.into_iter().collect())
}

/// The authorizations of the item operation `op`, with their condition keys. `schemas` must
/// know every table [`tables_needing_key_schemas`] named.
///
/// # Errors
///
/// [`GatewayError::Validation`] for a missing member, an invalid name, an expression that
/// cannot be read, or a key without its partition-key value;
/// [`GatewayError::ResourceNotFound`] for a table whose schema is unknown.
pub(crate) fn item_authorizations(
    scope: &Scope<'_>,
    op: &str,
    body: &[u8],
    schemas: &dyn KeySchemas,
) -> Result<Vec<Authorization>, GatewayError> {
    let mut out = Vec::new();
    match op {
        "GetItem" | "DeleteItem" | "UpdateItem" | "PutItem" | "Query" | "Scan" => {
            let request: Single = parse(body)?;
            out.push(single(scope, op, &request, schemas, None)?);
        }
        "BatchGetItem" => {
            let request: BatchGet = parse(body)?;
            let rcc = capacity(request.return_consumed_capacity.as_deref());
            for (name, entry) in request.request_items.unwrap_or_default() {
                let schema = schema_of(schemas, &name)?;
                let mut facts = Facts::default();
                for key in entry.keys.unwrap_or_default() {
                    facts.key(&schema.partition_key, &key);
                }
                let names = entry.expression_attribute_names.unwrap_or_default();
                let projected = facts.projection(
                    entry.projection_expression.as_deref(),
                    entry.attributes_to_get.as_deref(),
                    &names,
                )?;
                facts.set("dynamodb:Select", read_select(None, projected, false));
                facts.set("dynamodb:ReturnConsumedCapacity", rcc.clone());
                out.push(facts.into_authorization(op, table(scope, "requestItems", Some(&name))?));
            }
        }
        "BatchWriteItem" => {
            let request: BatchWrite = parse(body)?;
            let rcc = capacity(request.return_consumed_capacity.as_deref());
            for (name, writes) in request.request_items.unwrap_or_default() {
                let schema = schema_of(schemas, &name)?;
                let mut facts = Facts::default();
                for write in writes {
                    match (write.put_request, write.delete_request) {
                        (Some(put), None) => {
                            facts.key(&schema.partition_key, &put.item.unwrap_or_default());
                        }
                        (None, Some(delete)) => {
                            facts.key(&schema.partition_key, &delete.key.unwrap_or_default());
                        }
                        _ => {
                            return Err(validation(
                                "Supplied WriteRequest must contain exactly one of \
                                 PutRequest or DeleteRequest"
                                    .to_owned(),
                            ));
                        }
                    }
                }
                facts.set("dynamodb:ReturnConsumedCapacity", rcc.clone());
                out.push(facts.into_authorization(op, table(scope, "requestItems", Some(&name))?));
            }
        }
        "TransactGetItems" => {
            let request: TransactGet = parse(body)?;
            let rcc = capacity(request.return_consumed_capacity.as_deref());
            for entry in request.transact_items.unwrap_or_default() {
                let get = entry
                    .get
                    .ok_or_else(|| not_null("transactItems.member.get"))?;
                let mut auth = single(scope, "GetItem", &get, schemas, Some(&rcc))?;
                auth.set("dynamodb:EnclosingOperation", "TransactGetItems");
                out.push(auth);
            }
        }
        "TransactWriteItems" => {
            let request: TransactWrite = parse(body)?;
            let rcc = capacity(request.return_consumed_capacity.as_deref());
            for entry in request.transact_items.unwrap_or_default() {
                let mut present = [
                    ("PutItem", entry.put),
                    ("UpdateItem", entry.update),
                    ("DeleteItem", entry.delete),
                    ("ConditionCheckItem", entry.condition_check),
                ]
                .into_iter()
                .filter_map(|(action, m)| m.map(|m| (action, m)));
                let (Some((action, member)), None) = (present.next(), present.next()) else {
                    return Err(validation(
                        "TransactItems can only contain one of Check, Put, Update or Delete"
                            .to_owned(),
                    ));
                };
                let mut auth = single(scope, action, &member, schemas, Some(&rcc))?;
                auth.set("dynamodb:EnclosingOperation", "TransactWriteItems");
                out.push(auth);
            }
        }
        _ => return Err(GatewayError::UnknownOperation(op.to_owned())),
    }
    Ok(out)
}

/// One item (or one `Query`/`Scan`) on one table: the request, or one transaction entry. A
/// transaction entry takes the transaction's `ReturnConsumedCapacity` (`rcc`).
fn single(
    scope: &Scope<'_>,
    action: &str,
    request: &Single,
    schemas: &dyn KeySchemas,
    rcc: Option<&str>,
) -> Result<Authorization, GatewayError> {
    let name = request.table_name.as_deref();
    let table_arn = table(scope, "tableName", name)?;
    let names = request
        .expression_attribute_names
        .clone()
        .unwrap_or_default();
    let mut facts = Facts::default();
    for expression in [&request.condition_expression, &request.filter_expression]
        .into_iter()
        .flatten()
    {
        facts.attributes(expression::condition_attributes(expression, &names)?);
    }
    for legacy in [
        &request.expected,
        &request.query_filter,
        &request.scan_filter,
    ]
    .into_iter()
    .flatten()
    {
        facts.attributes(legacy.0.iter().cloned());
    }
    let reads = matches!(action, "GetItem" | "Query" | "Scan");
    let resource = match action {
        "Scan" => match request.index_name.as_deref() {
            Some(index) => index_arn(&table_arn, "indexName", index)?,
            None => table_arn,
        },
        "Query" => {
            let schema = schema_of(schemas, name.unwrap_or_default())?;
            let (resource, partition_key) = match request.index_name.as_deref() {
                Some(index) => (
                    index_arn(&table_arn, "indexName", index)?,
                    schema.index_partition_keys.get(index).ok_or_else(|| {
                        validation("The table does not have the specified index".to_owned())
                    })?,
                ),
                None => (table_arn, &schema.partition_key),
            };
            facts.query_key(request, &names, partition_key)?;
            resource
        }
        _ => {
            let schema = schema_of(schemas, name.unwrap_or_default())?;
            match (&request.key, &request.item, action) {
                (
                    Some(key),
                    None,
                    "GetItem" | "DeleteItem" | "UpdateItem" | "ConditionCheckItem",
                ) => {
                    facts.key(&schema.partition_key, key);
                }
                (None, Some(item), "PutItem") => {
                    facts.key(&schema.partition_key, item);
                }
                (None, None, "PutItem") => return Err(not_null("item")),
                (None, None, _) => return Err(not_null("key")),
                _ => {
                    return Err(validation(format!(
                        "{action} takes {}",
                        if action == "PutItem" {
                            "an Item"
                        } else {
                            "a Key"
                        }
                    )));
                }
            }
            table_arn
        }
    };
    if let Some(update) = &request.update_expression {
        facts.attributes(expression::update_attributes(update, &names)?);
    }
    if let Some(updates) = &request.attribute_updates {
        facts.attributes(updates.0.iter().cloned());
    }
    if reads {
        let projected = facts.projection(
            request.projection_expression.as_deref(),
            request.attributes_to_get.as_deref(),
            &names,
        )?;
        facts.set(
            "dynamodb:Select",
            read_select(
                request.select.as_deref(),
                projected,
                request.index_name.is_some(),
            ),
        );
    } else if action != "ConditionCheckItem" && rcc.is_none() {
        facts.set(
            "dynamodb:ReturnValues",
            request
                .return_values
                .clone()
                .unwrap_or_else(|| "NONE".to_owned()),
        );
    }
    facts.set(
        "dynamodb:ReturnConsumedCapacity",
        rcc.map_or_else(
            || capacity(request.return_consumed_capacity.as_deref()),
            str::to_owned,
        ),
    );
    Ok(facts.into_authorization(action, resource))
}

fn schema_of<'s>(schemas: &'s dyn KeySchemas, table: &str) -> Result<&'s KeySchema, GatewayError> {
    schemas
        .key_schema(table)
        .ok_or_else(|| GatewayError::ResourceNotFound(crate::dynamodb::clip(table)))
}

fn required_table(name: Option<String>) -> Result<String, GatewayError> {
    name.ok_or_else(|| not_null("tableName"))
}

fn capacity(value: Option<&str>) -> String {
    value.unwrap_or("NONE").to_owned()
}

/// `dynamodb:Select` of a read: the request's `Select`, else what DynamoDB does without one.
fn read_select(given: Option<&str>, projected: bool, on_index: bool) -> String {
    match given {
        Some(select) => select.to_owned(),
        None if projected => "SPECIFIC_ATTRIBUTES".to_owned(),
        None if on_index => "ALL_PROJECTED_ATTRIBUTES".to_owned(),
        None => "ALL_ATTRIBUTES".to_owned(),
    }
}

/// The condition keys gathered for one authorization.
#[derive(Default)]
struct Facts {
    leading_keys: BTreeSet<String>,
    leading_keys_unknown: bool,
    attributes: BTreeSet<String>,
    single: Vec<(&'static str, String)>,
}

impl Facts {
    fn set(&mut self, key: &'static str, value: String) {
        self.single.push((key, value));
    }

    fn attributes(&mut self, names: impl IntoIterator<Item = String>) {
        self.attributes.extend(names);
    }

    /// An item or key: its attribute names, and its partition-key value. A key without a
    /// usable partition-key value (missing, not a scalar, too long) is one DynamoDB refuses
    /// once IAM has allowed the request; its `dynamodb:LeadingKeys` is unknown, so a policy
    /// that reads that key refuses it first, and no other policy depends on it.
    fn key(&mut self, partition_key: &str, item: &BTreeMap<String, Scalar>) {
        self.attributes.extend(item.keys().cloned());
        match item.get(partition_key).and_then(|v| v.0.clone()) {
            Some(value) => {
                self.leading_keys.insert(value);
            }
            None => self.leading_keys_unknown = true,
        }
    }

    /// A projection: its attribute names; whether there was one.
    fn projection(
        &mut self,
        expression: Option<&str>,
        legacy: Option<&[String]>,
        names: &BTreeMap<String, String>,
    ) -> Result<bool, GatewayError> {
        let mut projected = false;
        if let Some(expression) = expression {
            self.attributes(expression::projection_attributes(expression, names)?);
            projected = true;
        }
        if let Some(legacy) = legacy {
            self.attributes(legacy.iter().cloned());
            projected = true;
        }
        Ok(projected)
    }

    /// A `Query`'s partition-key value, from `KeyConditionExpression` or `KeyConditions`.
    fn query_key(
        &mut self,
        request: &Single,
        names: &BTreeMap<String, String>,
        partition_key: &str,
    ) -> Result<(), GatewayError> {
        let value = match (&request.key_condition_expression, &request.key_conditions) {
            (Some(expression), None) => {
                self.attributes(expression::condition_attributes(expression, names)?);
                let placeholder =
                    expression::key_condition_partition_value(expression, names, partition_key)?;
                request
                    .expression_attribute_values
                    .as_ref()
                    .and_then(|values| values.get(&placeholder))
                    .and_then(|v| v.0.clone())
                    .ok_or_else(|| {
                        validation(format!(
                            "Invalid KeyConditionExpression: An expression attribute value used \
                             in expression is not defined or not a key value: {}",
                            crate::dynamodb::clip(&placeholder)
                        ))
                    })?
            }
            (None, Some(conditions)) => {
                self.attributes(conditions.keys().cloned());
                let condition = conditions.get(partition_key).ok_or_else(|| {
                    validation("Query condition missed key schema element".to_owned())
                })?;
                match (
                    condition.comparison_operator.as_deref(),
                    condition.attribute_value_list.as_deref(),
                ) {
                    (Some("EQ"), Some([Scalar(Some(value))])) => value.clone(),
                    _ => {
                        return Err(validation(
                            "Query key condition not supported: the partition key needs one EQ \
                             value"
                                .to_owned(),
                        ));
                    }
                }
            }
            (Some(_), Some(_)) => {
                return Err(validation(
                    "Can not use both expression and non-expression parameters in the same \
                     request: Non-expression parameters: {KeyConditions} Expression \
                     parameters: {KeyConditionExpression}"
                        .to_owned(),
                ));
            }
            (None, None) => {
                return Err(validation(
                    "Either the KeyConditions or KeyConditionExpression parameter must be \
                     specified in the request."
                        .to_owned(),
                ));
            }
        };
        self.leading_keys.insert(value);
        Ok(())
    }

    fn into_authorization(self, action: &str, resource: String) -> Authorization {
        let mut context = Vec::new();
        let mut unknown = Vec::new();
        if self.leading_keys_unknown {
            unknown.push("dynamodb:LeadingKeys");
        } else if !self.leading_keys.is_empty() {
            context.push((
                "dynamodb:LeadingKeys",
                ConditionValue::Set(self.leading_keys.into_iter().collect()),
            ));
        }
        context.push((
            "dynamodb:Attributes",
            ConditionValue::Set(self.attributes.into_iter().collect()),
        ));
        for (key, value) in self.single {
            context.push((key, ConditionValue::Single(value)));
        }
        Authorization {
            action: format!("dynamodb:{action}"),
            resource,
            context,
            unknown,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The members read here. The body has already passed the strict shape check
// ([`crate::shape::check`]), so no member is unknown or duplicated and every type is right;
// these structures skip what they do not need unread.

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Single {
    table_name: Option<String>,
    index_name: Option<String>,
    key: Option<BTreeMap<String, Scalar>>,
    item: Option<BTreeMap<String, Scalar>>,
    projection_expression: Option<String>,
    attributes_to_get: Option<Vec<String>>,
    condition_expression: Option<String>,
    filter_expression: Option<String>,
    key_condition_expression: Option<String>,
    update_expression: Option<String>,
    expression_attribute_names: Option<BTreeMap<String, String>>,
    expression_attribute_values: Option<BTreeMap<String, Scalar>>,
    key_conditions: Option<BTreeMap<String, KeyCondition>>,
    expected: Option<Names>,
    attribute_updates: Option<Names>,
    query_filter: Option<Names>,
    scan_filter: Option<Names>,
    select: Option<String>,
    return_values: Option<String>,
    return_consumed_capacity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyCondition {
    comparison_operator: Option<String>,
    attribute_value_list: Option<Vec<Scalar>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchGet {
    request_items: Option<BTreeMap<String, KeysAndAttributes>>,
    return_consumed_capacity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeysAndAttributes {
    keys: Option<Vec<BTreeMap<String, Scalar>>>,
    projection_expression: Option<String>,
    attributes_to_get: Option<Vec<String>>,
    expression_attribute_names: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchWrite {
    request_items: Option<BTreeMap<String, Vec<WriteRequest>>>,
    return_consumed_capacity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WriteRequest {
    put_request: Option<Single>,
    delete_request: Option<Single>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactGet {
    transact_items: Option<Vec<TransactGetItem>>,
    return_consumed_capacity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactGetItem {
    get: Option<Single>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactWrite {
    transact_items: Option<Vec<TransactWriteItem>>,
    return_consumed_capacity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactWriteItem {
    put: Option<Single>,
    update: Option<Single>,
    delete: Option<Single>,
    condition_check: Option<Single>,
}

/// The keys of a map whose values are not needed (legacy `Expected`, `AttributeUpdates`,
/// `QueryFilter`, `ScanFilter`: their keys are attribute names).
struct Names(Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Names, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(Names(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// An attribute value, kept only when it can be a key: an `S`, `N` or `B` of at most
/// [`MAX_KEY_VALUE_BYTES`], as written (a `B` in its base64 text). Anything else is skipped
/// unread and kept as `None`.
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Value;
        impl<'de> Visitor<'de> for Value {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                let mut scalar = None;
                let mut members = 0_usize;
                while let Some(kind) = map.next_key::<String>()? {
                    members += 1;
                    if matches!(kind.as_str(), "S" | "N" | "B") {
                        let text = map.next_value::<String>()?;
                        if text.len() <= MAX_KEY_VALUE_BYTES {
                            scalar = Some(text);
                        }
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Scalar(if members == 1 { scalar } else { None }))
            }
        }
        deserializer.deserialize_map(Value)
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, GatewayError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::Serialization(crate::dynamodb::clip(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::request_authorizations;
    use podiam_types::AccountId;
    use serde_json::json;

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:111122223333:table/GameScores";

    fn schemas() -> BTreeMap<String, KeySchema> {
        let describe = json!({"Table": {
            "TableName": "GameScores",
            "KeySchema": [
                {"AttributeName": "UserId", "KeyType": "HASH"},
                {"AttributeName": "GameTitle", "KeyType": "RANGE"}
            ],
            "GlobalSecondaryIndexes": [{
                "IndexName": "ByTitle",
                "KeySchema": [{"AttributeName": "GameTitle", "KeyType": "HASH"}]
            }]
        }});
        let schema = KeySchema::from_describe_table(describe.to_string().as_bytes()).unwrap();
        assert_eq!(schema.partition_key, "UserId");
        assert_eq!(schema.index_partition_keys["ByTitle"], "GameTitle");
        let other = KeySchema {
            partition_key: "id".to_owned(),
            index_partition_keys: BTreeMap::new(),
        };
        BTreeMap::from([
            ("GameScores".to_owned(), schema),
            ("Other".to_owned(), other),
        ])
    }

    fn run(op: &str, body: &serde_json::Value) -> Result<Vec<Authorization>, GatewayError> {
        request_authorizations(
            &format!("DynamoDB_20120810.{op}"),
            body.to_string().as_bytes(),
            &"111122223333".parse::<AccountId>().unwrap(),
            "us-east-1",
            &schemas(),
        )
    }

    /// The authorizations as `(action, resource, context)` with context values as JSON.
    fn keys(op: &str, body: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
        run(op, body)
            .unwrap()
            .into_iter()
            .map(|a| {
                assert!(a.unknown.is_empty());
                let context: serde_json::Map<String, serde_json::Value> = a
                    .context
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::to_value(v).unwrap()))
                    .collect();
                (a.action, a.resource, serde_json::Value::Object(context))
            })
            .collect()
    }

    #[test]
    fn get_item_reads_its_key_and_projection() {
        let found = keys(
            "GetItem",
            &json!({"TableName": "GameScores",
                    "Key": {"UserId": {"S": "alice"}, "GameTitle": {"S": "Chess"}},
                    "ProjectionExpression": "#t, Wins.Total",
                    "ExpressionAttributeNames": {"#t": "TopScore"}}),
        );
        assert_eq!(
            found,
            [(
                "dynamodb:GetItem".to_owned(),
                TABLE.to_owned(),
                json!({"dynamodb:LeadingKeys": ["alice"],
                       "dynamodb:Attributes": ["GameTitle", "TopScore", "UserId", "Wins"],
                       "dynamodb:Select": "SPECIFIC_ATTRIBUTES",
                       "dynamodb:ReturnConsumedCapacity": "NONE"})
            )]
        );
        let all = keys(
            "GetItem",
            &json!({"TableName": "GameScores", "ReturnConsumedCapacity": "TOTAL",
                    "Key": {"UserId": {"N": "7"}, "GameTitle": {"S": "Chess"}}}),
        );
        assert_eq!(all[0].2["dynamodb:Select"], "ALL_ATTRIBUTES");
        assert_eq!(all[0].2["dynamodb:LeadingKeys"], json!(["7"]));
        assert_eq!(all[0].2["dynamodb:ReturnConsumedCapacity"], "TOTAL");
    }

    #[test]
    fn writes_carry_their_attributes_and_return_values() {
        let put = keys(
            "PutItem",
            &json!({"TableName": "GameScores",
                    "Item": {"UserId": {"S": "bob"}, "GameTitle": {"S": "Go"},
                             "Wins": {"M": {"x": {"N": "1"}}}},
                    "ConditionExpression": "attribute_not_exists(Losses)"}),
        );
        assert_eq!(put[0].2["dynamodb:LeadingKeys"], json!(["bob"]));
        assert_eq!(
            put[0].2["dynamodb:Attributes"],
            json!(["GameTitle", "Losses", "UserId", "Wins"])
        );
        assert_eq!(put[0].2["dynamodb:ReturnValues"], "NONE");
        assert!(put[0].2.get("dynamodb:Select").is_none());
        let update = keys(
            "UpdateItem",
            &json!({"TableName": "GameScores",
                    "Key": {"UserId": {"S": "bob"}, "GameTitle": {"S": "Go"}},
                    "UpdateExpression": "SET TopScore = :s REMOVE #w",
                    "ExpressionAttributeNames": {"#w": "Wins"},
                    "ExpressionAttributeValues": {":s": {"N": "5"}},
                    "ReturnValues": "ALL_NEW"}),
        );
        assert_eq!(
            update[0].2["dynamodb:Attributes"],
            json!(["GameTitle", "TopScore", "UserId", "Wins"])
        );
        assert_eq!(update[0].2["dynamodb:ReturnValues"], "ALL_NEW");
        let legacy = keys(
            "UpdateItem",
            &json!({"TableName": "GameScores",
                    "Key": {"UserId": {"S": "bob"}, "GameTitle": {"S": "Go"}},
                    "AttributeUpdates": {"Secret": {"Action": "DELETE"}},
                    "Expected": {"Other": {"Exists": false}}}),
        );
        assert_eq!(
            legacy[0].2["dynamodb:Attributes"],
            json!(["GameTitle", "Other", "Secret", "UserId"])
        );
    }

    #[test]
    fn queries_take_the_partition_key_of_their_table_or_index() {
        let query = keys(
            "Query",
            &json!({"TableName": "GameScores",
                    "KeyConditionExpression": "UserId = :u AND begins_with(GameTitle, :g)",
                    "ExpressionAttributeValues": {":u": {"S": "carol"}, ":g": {"S": "C"}},
                    "FilterExpression": "Wins > :g"}),
        );
        assert_eq!(query[0].2["dynamodb:LeadingKeys"], json!(["carol"]));
        assert_eq!(
            query[0].2["dynamodb:Attributes"],
            json!(["GameTitle", "UserId", "Wins"])
        );
        assert_eq!(query[0].2["dynamodb:Select"], "ALL_ATTRIBUTES");
        let index = keys(
            "Query",
            &json!({"TableName": "GameScores", "IndexName": "ByTitle",
                    "KeyConditionExpression": "GameTitle = :g",
                    "ExpressionAttributeValues": {":g": {"S": "Chess"}}}),
        );
        assert_eq!(index[0].1, format!("{TABLE}/index/ByTitle"));
        assert_eq!(index[0].2["dynamodb:LeadingKeys"], json!(["Chess"]));
        assert_eq!(index[0].2["dynamodb:Select"], "ALL_PROJECTED_ATTRIBUTES");
        let legacy = keys(
            "Query",
            &json!({"TableName": "GameScores", "Select": "COUNT",
                    "KeyConditions": {"UserId": {"ComparisonOperator": "EQ",
                                                 "AttributeValueList": [{"S": "dave"}]}}}),
        );
        assert_eq!(legacy[0].2["dynamodb:LeadingKeys"], json!(["dave"]));
        assert_eq!(legacy[0].2["dynamodb:Select"], "COUNT");
        for bad in [
            json!({"TableName": "GameScores", "KeyConditionExpression": "GameTitle = :g",
                   "ExpressionAttributeValues": {":g": {"S": "x"}}}),
            json!({"TableName": "GameScores", "KeyConditionExpression": "UserId = :u OR UserId = :v",
                   "ExpressionAttributeValues": {":u": {"S": "x"}, ":v": {"S": "y"}}}),
            json!({"TableName": "GameScores", "KeyConditionExpression": "UserId = :missing"}),
            json!({"TableName": "GameScores", "KeyConditionExpression": "UserId = :u",
                   "ExpressionAttributeValues": {":u": {"L": [{"S": "x"}]}}}),
            json!({"TableName": "GameScores", "IndexName": "Nope",
                   "KeyConditionExpression": "UserId = :u",
                   "ExpressionAttributeValues": {":u": {"S": "x"}}}),
            json!({"TableName": "GameScores",
                   "KeyConditions": {"UserId": {"ComparisonOperator": "BEGINS_WITH",
                                                "AttributeValueList": [{"S": "a"}]}}}),
            json!({"TableName": "GameScores"}),
        ] {
            assert!(
                matches!(run("Query", &bad), Err(GatewayError::Validation(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn scans_have_no_leading_keys() {
        let scan = keys(
            "Scan",
            &json!({"TableName": "GameScores", "ProjectionExpression": "UserId"}),
        );
        assert!(scan[0].2.get("dynamodb:LeadingKeys").is_none());
        assert_eq!(scan[0].2["dynamodb:Attributes"], json!(["UserId"]));
        assert_eq!(scan[0].2["dynamodb:Select"], "SPECIFIC_ATTRIBUTES");
    }

    #[test]
    fn batches_authorize_each_table_with_all_of_its_keys() {
        let get = keys(
            "BatchGetItem",
            &json!({"RequestItems": {
                "GameScores": {"Keys": [
                    {"UserId": {"S": "a"}, "GameTitle": {"S": "x"}},
                    {"UserId": {"S": "b"}, "GameTitle": {"S": "x"}}]},
                "Other": {"Keys": [{"id": {"S": "z"}}], "ProjectionExpression": "id"}}}),
        );
        assert_eq!(get.len(), 2);
        assert_eq!(get[0].1, TABLE);
        assert_eq!(get[0].2["dynamodb:LeadingKeys"], json!(["a", "b"]));
        assert_eq!(get[0].2["dynamodb:Select"], "ALL_ATTRIBUTES");
        assert_eq!(get[1].2["dynamodb:LeadingKeys"], json!(["z"]));
        assert_eq!(get[1].2["dynamodb:Select"], "SPECIFIC_ATTRIBUTES");
        let write = keys(
            "BatchWriteItem",
            &json!({"RequestItems": {"GameScores": [
                {"PutRequest": {"Item": {"UserId": {"S": "a"}, "GameTitle": {"S": "x"}, "W": {"N": "1"}}}},
                {"DeleteRequest": {"Key": {"UserId": {"S": "c"}, "GameTitle": {"S": "y"}}}}]}}),
        );
        assert_eq!(write[0].2["dynamodb:LeadingKeys"], json!(["a", "c"]));
        assert_eq!(
            write[0].2["dynamodb:Attributes"],
            json!(["GameTitle", "UserId", "W"])
        );
        let partial = run(
            "BatchWriteItem",
            &json!({"RequestItems": {"GameScores": [
                {"PutRequest": {"Item": {"UserId": {"S": "a"}}}},
                {"PutRequest": {"Item": {"GameTitle": {"S": "x"}}}}]}}),
        )
        .unwrap();
        assert_eq!(partial[0].unknown, ["dynamodb:LeadingKeys"]);
    }

    #[test]
    fn transaction_entries_are_authorized_one_by_one() {
        let write = keys(
            "TransactWriteItems",
            &json!({"TransactItems": [
                {"Put": {"TableName": "GameScores",
                         "Item": {"UserId": {"S": "a"}, "GameTitle": {"S": "x"}}}},
                {"ConditionCheck": {"TableName": "Other", "Key": {"id": {"S": "k"}},
                                    "ConditionExpression": "attribute_exists(id)"}},
                {"Delete": {"TableName": "GameScores",
                            "Key": {"UserId": {"S": "b"}, "GameTitle": {"S": "x"}}}}]}),
        );
        let actions: Vec<&str> = write.iter().map(|(a, _, _)| a.as_str()).collect();
        assert_eq!(
            actions,
            [
                "dynamodb:PutItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem"
            ]
        );
        for (_, _, context) in &write {
            assert_eq!(context["dynamodb:EnclosingOperation"], "TransactWriteItems");
        }
        assert_eq!(write[2].2["dynamodb:LeadingKeys"], json!(["b"]));
        let get = keys(
            "TransactGetItems",
            &json!({"TransactItems": [{"Get": {"TableName": "Other", "Key": {"id": {"S": "q"}}}}]}),
        );
        assert_eq!(get[0].0, "dynamodb:GetItem");
        assert_eq!(get[0].2["dynamodb:EnclosingOperation"], "TransactGetItems");
        assert_eq!(get[0].2["dynamodb:LeadingKeys"], json!(["q"]));
    }

    #[test]
    fn what_cannot_be_attributed_is_refused_or_marked_unknown() {
        // A key without its partition key, or one too long to be a key: DynamoDB refuses it
        // once IAM allows; its leading keys are unknown, never absent.
        for key in [
            json!({"GameTitle": {"S": "x"}}),
            json!({"UserId": {"S": "x".repeat(MAX_KEY_VALUE_BYTES + 1)}}),
            json!({"UserId": {"SS": ["a"]}}),
        ] {
            let found = run("GetItem", &json!({"TableName": "GameScores", "Key": key})).unwrap();
            assert_eq!(found[0].unknown, ["dynamodb:LeadingKeys"]);
            assert!(
                found[0]
                    .context
                    .iter()
                    .all(|(k, _)| *k != "dynamodb:LeadingKeys")
            );
        }
        assert!(matches!(
            run(
                "GetItem",
                &json!({"TableName": "Unknown", "Key": {"id": {"S": "x"}}})
            ),
            Err(GatewayError::ResourceNotFound(_))
        ));
        assert!(matches!(
            run(
                "GetItem",
                &json!({"TableName": "GameScores", "Key": {"UserId": {"S": "x"}},
                        "ProjectionExpression": "#nope"})
            ),
            Err(GatewayError::Validation(_))
        ));
        let partiql = run(
            "ExecuteTransaction",
            &json!({"TransactStatements": [{"Statement": "SELECT * FROM \"GameScores\""}]}),
        )
        .unwrap();
        assert_eq!(
            partiql[0].unknown,
            ["dynamodb:LeadingKeys", "dynamodb:Attributes"]
        );
        assert_eq!(
            partiql[0].context,
            [(
                "dynamodb:EnclosingOperation",
                ConditionValue::Single("ExecuteTransaction".to_owned())
            )]
        );
    }

    #[test]
    fn tables_needing_schemas_are_those_of_item_operations() {
        let body = json!({"RequestItems": {"B": {"Keys": []}, "A": {"Keys": []}}}).to_string();
        assert_eq!(
            tables_needing_key_schemas("BatchGetItem", body.as_bytes()).unwrap(),
            ["A", "B"]
        );
        assert!(
            tables_needing_key_schemas("Scan", br#"{"TableName":"A"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(
            tables_needing_key_schemas("ListTables", b"{}")
                .unwrap()
                .is_empty()
        );
    }
}
