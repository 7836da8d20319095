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

use std::fmt;
use std::marker::PhantomData;

use podiam_types::{AccountId, Arn, KNOWN_PARTITIONS};
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::GatewayError;
use crate::items::{ITEM_OPERATIONS, KeySchemas, item_authorizations};

/// The largest body accepted: DynamoDB's 16 MiB request limit.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The most authorizations one request can need (a 100-item transaction, or a `BatchGetItem`
/// over 100 tables).
pub const MAX_AUTHORIZATIONS: usize = 100;

/// `X-Amz-Target` prefix of the DynamoDB API.
pub const DYNAMODB_TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// `X-Amz-Target` prefix of the DynamoDB Streams API.
pub const STREAMS_TARGET_PREFIX: &str = "DynamoDBStreams_20120810.";

/// The DynamoDB operations [`authorizations`] maps.
pub const DYNAMODB_OPERATIONS: &[&str] = &[
    "BatchExecuteStatement",
    "BatchGetItem",
    "BatchWriteItem",
    "CreateBackup",
    "CreateGlobalTable",
    "CreateTable",
    "DeleteBackup",
    "DeleteItem",
    "DeleteResourcePolicy",
    "DeleteTable",
    "DescribeBackup",
    "DescribeContinuousBackups",
    "DescribeContributorInsights",
    "DescribeEndpoints",
    "DescribeExport",
    "DescribeGlobalTable",
    "DescribeGlobalTableSettings",
    "DescribeImport",
    "DescribeKinesisStreamingDestination",
    "DescribeLimits",
    "DescribeTable",
    "DescribeTableReplicaAutoScaling",
    "DescribeTimeToLive",
    "DisableKinesisStreamingDestination",
    "EnableKinesisStreamingDestination",
    "ExecuteStatement",
    "ExecuteTransaction",
    "ExportTableToPointInTime",
    "GetItem",
    "GetResourcePolicy",
    "ImportTable",
    "ListBackups",
    "ListContributorInsights",
    "ListExports",
    "ListGlobalTables",
    "ListImports",
    "ListTables",
    "ListTagsOfResource",
    "PutItem",
    "PutResourcePolicy",
    "Query",
    "RestoreTableFromBackup",
    "RestoreTableToPointInTime",
    "Scan",
    "TagResource",
    "TransactGetItems",
    "TransactWriteItems",
    "UntagResource",
    "UpdateContinuousBackups",
    "UpdateContributorInsights",
    "UpdateGlobalTable",
    "UpdateGlobalTableSettings",
    "UpdateItem",
    "UpdateKinesisStreamingDestination",
    "UpdateTable",
    "UpdateTableReplicaAutoScaling",
    "UpdateTimeToLive",
];

/// The DynamoDB Streams operations [`authorizations`] maps.
pub const STREAMS_OPERATIONS: &[&str] = &[
    "DescribeStream",
    "GetRecords",
    "GetShardIterator",
    "ListStreams",
];

/// Longest `TableName`/`TableArn` DynamoDB accepts (an ARN; a bare name is at most 255).
const MAX_ARN_LEN: usize = 1024;

/// Longest PartiQL statement DynamoDB accepts.
const MAX_STATEMENT_LEN: usize = 8192;

/// Longest `ShardIterator` DynamoDB Streams accepts.
const MAX_SHARD_ITERATOR_LEN: usize = 2048;

/// How much of a hostile value is echoed back in an error message.
const ECHO_LEN: usize = 256;

/// The regular expression DynamoDB states for table and index names.
const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

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

fn map_operation(
    scope: &Scope<'_>,
    op: &str,
    body: &[u8],
    out: &mut Collector,
) -> Result<(), GatewayError> {
    match op {
        // Actions without resource-level permissions.
        "DescribeEndpoints"
        | "DescribeLimits"
        | "ListBackups"
        | "ListContributorInsights"
        | "ListExports"
        | "ListGlobalTables"
        | "ListImports"
        | "ListTables"
        | "ListStreams" => {
            parse::<NoMembers>(body)?;
            out.push(op, "*".to_owned());
        }
        // One table, named by `TableName`.
        "CreateBackup"
        | "CreateTable"
        | "DeleteItem"
        | "DeleteTable"
        | "DescribeContinuousBackups"
        | "DescribeKinesisStreamingDestination"
        | "DescribeTable"
        | "DescribeTableReplicaAutoScaling"
        | "DescribeTimeToLive"
        | "DisableKinesisStreamingDestination"
        | "EnableKinesisStreamingDestination"
        | "GetItem"
        | "PutItem"
        | "UpdateContinuousBackups"
        | "UpdateItem"
        | "UpdateKinesisStreamingDestination"
        | "UpdateTable"
        | "UpdateTableReplicaAutoScaling"
        | "UpdateTimeToLive" => {
            let request: TableMember = parse(body)?;
            out.push(
                op,
                table(scope, "tableName", request.table_name.as_deref())?,
            );
        }
        // Reading through an index is authorized on the index alone, as in IAM.
        "Query" | "Scan" => {
            let request: IndexedTable = parse(body)?;
            let table = table(scope, "tableName", request.table_name.as_deref())?;
            match request.index_name.as_deref() {
                Some(index) => out.push(op, index_arn(&table, "indexName", index)?),
                None => out.push(op, table),
            }
        }
        // The table is required; the index is an optional second resource.
        "DescribeContributorInsights" | "UpdateContributorInsights" => {
            let request: IndexedTable = parse(body)?;
            let table = table(scope, "tableName", request.table_name.as_deref())?;
            let index = match request.index_name.as_deref() {
                Some(index) => Some(index_arn(&table, "indexName", index)?),
                None => None,
            };
            out.push(op, table);
            if let Some(index) = index {
                out.push(op, index);
            }
        }
        "ListTagsOfResource"
        | "TagResource"
        | "UntagResource"
        | "GetResourcePolicy"
        | "PutResourcePolicy"
        | "DeleteResourcePolicy" => {
            let request: ResourceMember = parse(body)?;
            let arn = required("resourceArn", request.resource_arn.as_deref())?;
            out.push(
                op,
                dynamodb_arn("resourceArn", arn, &[Kind::Table, Kind::Stream])?,
            );
        }
        "DescribeStream" | "GetShardIterator" => {
            let request: StreamMember = parse(body)?;
            let arn = required("streamArn", request.stream_arn.as_deref())?;
            out.push(op, dynamodb_arn("streamArn", arn, &[Kind::Stream])?);
        }
        "GetRecords" => {
            let request: ShardIteratorMember = parse(body)?;
            let iterator = required("shardIterator", request.shard_iterator.as_deref())?;
            out.push(op, stream_of_iterator(iterator)?);
        }
        "DescribeBackup" | "DeleteBackup" => {
            let request: BackupMember = parse(body)?;
            let arn = required("backupArn", request.backup_arn.as_deref())?;
            out.push(op, dynamodb_arn("backupArn", arn, &[Kind::Backup])?);
        }
        // Both the source backup and the table it creates (`backup*` and `table*`).
        "RestoreTableFromBackup" => {
            let request: RestoreFromBackup = parse(body)?;
            let backup = required("backupArn", request.backup_arn.as_deref())?;
            let backup = dynamodb_arn("backupArn", backup, &[Kind::Backup])?;
            let target = table(
                scope,
                "targetTableName",
                request.target_table_name.as_deref(),
            )?;
            out.push(op, backup);
            out.push(op, target);
        }
        // Both the source table and the table it creates.
        "RestoreTableToPointInTime" => {
            let request: RestoreToPointInTime = parse(body)?;
            let mut sources = Vec::new();
            if let Some(arn) = request.source_table_arn.as_deref() {
                sources.push(dynamodb_arn("sourceTableArn", arn, &[Kind::Table])?);
            }
            if let Some(name) = request.source_table_name.as_deref() {
                sources.push(table(scope, "sourceTableName", Some(name))?);
            }
            if sources.is_empty() {
                return Err(validation(
                    "1 validation error detected: Either SourceTableArn or SourceTableName \
                     must be specified"
                        .to_owned(),
                ));
            }
            let target = table(
                scope,
                "targetTableName",
                request.target_table_name.as_deref(),
            )?;
            for source in sources {
                out.push(op, source);
            }
            out.push(op, target);
        }
        "ExportTableToPointInTime" => {
            let request: TableArnMember = parse(body)?;
            let arn = required("tableArn", request.table_arn.as_deref())?;
            out.push(op, dynamodb_arn("tableArn", arn, &[Kind::Table])?);
        }
        "DescribeExport" => {
            let request: ExportMember = parse(body)?;
            let arn = required("exportArn", request.export_arn.as_deref())?;
            out.push(op, dynamodb_arn("exportArn", arn, &[Kind::Export])?);
        }
        "DescribeImport" => {
            let request: ImportMember = parse(body)?;
            let arn = required("importArn", request.import_arn.as_deref())?;
            out.push(op, dynamodb_arn("importArn", arn, &[Kind::Import])?);
        }
        "ImportTable" => {
            let request: ImportTable = parse(body)?;
            let Obj(parameters) = request
                .table_creation_parameters
                .ok_or_else(|| not_null("tableCreationParameters"))?;
            out.push(
                op,
                table(
                    scope,
                    "tableCreationParameters.tableName",
                    parameters.table_name.as_deref(),
                )?,
            );
        }
        // `global-table*` and `table*`: the global table and its replica in this region.
        "CreateGlobalTable" | "UpdateGlobalTable" | "UpdateGlobalTableSettings" => {
            let request: GlobalTableMember = parse(body)?;
            let name = required("globalTableName", request.global_table_name.as_deref())?;
            check_name("globalTableName", name)?;
            out.push(op, scope.global_table(name));
            out.push(op, scope.table(name));
        }
        "DescribeGlobalTable" | "DescribeGlobalTableSettings" => {
            let request: GlobalTableMember = parse(body)?;
            let name = required("globalTableName", request.global_table_name.as_deref())?;
            check_name("globalTableName", name)?;
            out.push(op, scope.global_table(name));
        }
        "BatchGetItem" => {
            let request: BatchRequest<100> = parse(body)?;
            for name in keys("requestItems", request.request_items)? {
                out.push(op, table(scope, "requestItems", Some(&name))?);
            }
        }
        "BatchWriteItem" => {
            let request: BatchRequest<25> = parse(body)?;
            for name in keys("requestItems", request.request_items)? {
                out.push(op, table(scope, "requestItems", Some(&name))?);
            }
        }
        "TransactWriteItems" => transact_write(scope, body, out)?,
        "TransactGetItems" => {
            let request: TransactGet = parse(body)?;
            for (i, item) in list("transactItems", request.transact_items)?
                .into_iter()
                .enumerate()
            {
                let member = format!("transactItems.{}.member.get", i + 1);
                let Obj(get) = item.get.ok_or_else(|| not_null(&member))?;
                let resource = table(
                    scope,
                    &format!("{member}.tableName"),
                    get.table_name.as_deref(),
                )?;
                out.push("GetItem", resource);
            }
        }
        "ExecuteStatement" => {
            let request: Statement = parse(body)?;
            let statement = required("statement", request.statement.as_deref())?;
            let (action, resource) = partiql(scope, statement, false)?;
            out.push(action, resource);
        }
        "BatchExecuteStatement" => {
            let request: BatchExecuteStatement = parse(body)?;
            for (i, item) in list("statements", request.statements)?
                .into_iter()
                .enumerate()
            {
                let statement = required(
                    &format!("statements.{}.member.statement", i + 1),
                    item.statement.as_deref(),
                )?;
                let (action, resource) = partiql(scope, statement, false)?;
                out.push(action, resource);
            }
        }
        "ExecuteTransaction" => {
            let request: ExecuteTransaction = parse(body)?;
            for (i, item) in list("transactStatements", request.transact_statements)?
                .into_iter()
                .enumerate()
            {
                let statement = required(
                    &format!("transactStatements.{}.member.statement", i + 1),
                    item.statement.as_deref(),
                )?;
                let (action, resource) = partiql(scope, statement, true)?;
                out.push(action, resource);
            }
        }
        _ => return Err(GatewayError::UnknownOperation(clip(op))),
    }
    Ok(())
}

/// Each write in a transaction is authorized as the single-item action it performs, on its
/// table, as IAM does for `TransactWriteItems`.
fn transact_write(scope: &Scope<'_>, body: &[u8], out: &mut Collector) -> Result<(), GatewayError> {
    let request: TransactWrite = parse(body)?;
    for (i, item) in list("transactItems", request.transact_items)?
        .into_iter()
        .enumerate()
    {
        let member = format!("transactItems.{}.member", i + 1);
        let actions = [
            ("put", "PutItem", item.put),
            ("update", "UpdateItem", item.update),
            ("delete", "DeleteItem", item.delete),
            ("conditionCheck", "ConditionCheckItem", item.condition_check),
        ];
        let mut present = actions
            .into_iter()
            .filter_map(|(name, action, m)| m.map(|m| (name, action, m)));
        let (Some((name, action, m)), None) = (present.next(), present.next()) else {
            return Err(validation(
                "TransactItems can only contain one of Check, Put, Update or Delete".to_owned(),
            ));
        };
        let resource = table(
            scope,
            &format!("{member}.{name}.tableName"),
            m.0.table_name.as_deref(),
        )?;
        out.push(action, resource);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Request shapes: only the members that name resources; everything else is skipped unread.

/// For operations whose members name no resource: the body must still be a JSON object.
#[derive(Deserialize)]
struct NoMembers {}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableMember {
    table_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexedTable {
    table_name: Option<String>,
    index_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResourceMember {
    resource_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamMember {
    stream_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ShardIteratorMember {
    shard_iterator: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BackupMember {
    backup_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RestoreFromBackup {
    backup_arn: Option<String>,
    target_table_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RestoreToPointInTime {
    source_table_arn: Option<String>,
    source_table_name: Option<String>,
    target_table_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableArnMember {
    table_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExportMember {
    export_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportMember {
    import_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportTable {
    table_creation_parameters: Option<Obj<TableMember>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GlobalTableMember {
    global_table_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchRequest<const N: usize> {
    request_items: Option<BoundedKeys<N>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactWrite {
    transact_items: Option<Bounded<Obj<TransactWriteItem>, 100>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactWriteItem {
    put: Option<Obj<TableMember>>,
    update: Option<Obj<TableMember>>,
    delete: Option<Obj<TableMember>>,
    condition_check: Option<Obj<TableMember>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactGet {
    transact_items: Option<Bounded<Obj<TransactGetItem>, 100>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactGetItem {
    get: Option<Obj<TableMember>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Statement {
    statement: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchExecuteStatement {
    statements: Option<Bounded<Obj<Statement>, 25>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExecuteTransaction {
    transact_statements: Option<Bounded<Obj<Statement>, 100>>,
}

/// A structure: a JSON object deserialized into `T`. serde's derived structs also accept a
/// JSON array (members by position); DynamoDB does not, so neither does the gateway, and both
/// read the same members out of a body.
struct Obj<T>(T);

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
struct Bounded<T, const N: usize> {
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
struct BoundedKeys<const N: usize> {
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
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice::<Obj<T>>(body)
        .map(|Obj(request)| request)
        .map_err(|e| GatewayError::Serialization(clip(&e.to_string())))
}

// ---------------------------------------------------------------------------------------------
// Validation, with DynamoDB's wording.

pub(crate) fn validation(message: String) -> GatewayError {
    GatewayError::Validation(message)
}

pub(crate) fn not_null(member: &str) -> GatewayError {
    validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: \
         Member must not be null"
    ))
}

fn constraint(member: &str, value: &str, rule: &str) -> GatewayError {
    validation(format!(
        "1 validation error detected: Value '{}' at '{member}' failed to satisfy constraint: \
         {rule}",
        clip(value)
    ))
}

fn length_constraint(member: &str, rule: &str) -> GatewayError {
    validation(format!(
        "1 validation error detected: Value at '{member}' failed to satisfy constraint: {rule}"
    ))
}

fn required<'a>(member: &str, value: Option<&'a str>) -> Result<&'a str, GatewayError> {
    value.ok_or_else(|| not_null(member))
}

/// The first [`ECHO_LEN`] characters of a hostile value, for an error message.
pub(crate) fn clip(value: &str) -> String {
    match value.char_indices().nth(ECHO_LEN) {
        Some((end, _)) => format!("{}...", value.get(..end).unwrap_or_default()),
        None => value.to_owned(),
    }
}

/// DynamoDB's rule for table, index and global table names: 3-255 characters of
/// `[a-zA-Z0-9_.-]`.
fn is_name(value: &str) -> bool {
    (3..=255).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn check_name(member: &str, value: &str) -> Result<(), GatewayError> {
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(constraint(
            member,
            value,
            &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
        ));
    }
    if value.len() < 3 {
        return Err(constraint(
            member,
            value,
            "Member must have length greater than or equal to 3",
        ));
    }
    if value.len() > 255 {
        return Err(constraint(
            member,
            value,
            "Member must have length less than or equal to 255",
        ));
    }
    Ok(())
}

/// The ARN of the table a `TableName`-like member names: a validated name resolved in `scope`,
/// or a table ARN used as written once it has parsed as one.
pub(crate) fn table(
    scope: &Scope<'_>,
    member: &str,
    value: Option<&str>,
) -> Result<String, GatewayError> {
    let value = required(member, value)?;
    if value.starts_with("arn:") {
        dynamodb_arn(member, value, &[Kind::Table])
    } else {
        check_name(member, value)?;
        Ok(scope.table(value))
    }
}

pub(crate) fn index_arn(table: &str, member: &str, index: &str) -> Result<String, GatewayError> {
    check_name(member, index)?;
    Ok(format!("{table}/index/{index}"))
}

/// DynamoDB resource types a client-supplied ARN may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `table/{TableName}`
    Table,
    /// `table/{TableName}/stream/{StreamLabel}`
    Stream,
    /// `table/{TableName}/backup/{BackupName}`
    Backup,
    /// `table/{TableName}/export/{ExportName}`
    Export,
    /// `table/{TableName}/import/{ImportName}`
    Import,
}

impl Kind {
    fn describe(kinds: &[Self]) -> &'static str {
        match kinds {
            [Self::Table] => "a DynamoDB table ARN",
            [Self::Stream] => "a DynamoDB stream ARN",
            [Self::Backup] => "a DynamoDB backup ARN",
            [Self::Export] => "a DynamoDB export ARN",
            [Self::Import] => "a DynamoDB import ARN",
            _ => "a DynamoDB table or stream ARN",
        }
    }
}

/// The label or id that ends a stream, backup, export or import ARN: 1-255 characters of
/// letters, digits and `._:-` (a stream label is a timestamp such as
/// `2015-05-20T20:51:10.252`).
fn is_resource_id(value: &str) -> bool {
    (1..=255).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'))
}

/// Checks that `value` is an ARN of one of `kinds` in the `dynamodb` service, with a known
/// partition, a region, a 12-digit account and a valid table name, and returns it as written.
fn dynamodb_arn(member: &str, value: &str, kinds: &[Kind]) -> Result<String, GatewayError> {
    let invalid = || {
        constraint(
            member,
            value,
            &format!("Member must be {}", Kind::describe(kinds)),
        )
    };
    if value.len() > MAX_ARN_LEN {
        return Err(constraint(
            member,
            value,
            &format!("Member must have length less than or equal to {MAX_ARN_LEN}"),
        ));
    }
    let arn: Arn = value.parse().map_err(|_| invalid())?;
    if arn.service() != "dynamodb"
        || !KNOWN_PARTITIONS.contains(&arn.partition())
        || arn.region().is_empty()
        || arn.account_id().is_none()
    {
        return Err(invalid());
    }
    let mut parts = arn.resource().split('/');
    let (Some("table"), Some(name)) = (parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if !is_name(name) {
        return Err(invalid());
    }
    let kind = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => Kind::Table,
        (Some(sub), Some(id), None) if is_resource_id(id) => match sub {
            "stream" => Kind::Stream,
            "backup" => Kind::Backup,
            "export" => Kind::Export,
            "import" => Kind::Import,
            _ => return Err(invalid()),
        },
        _ => return Err(invalid()),
    };
    if !kinds.contains(&kind) {
        return Err(invalid());
    }
    Ok(value.to_owned())
}

/// The stream a `GetRecords` shard iterator reads. DynamoDB Streams iterators are opaque but
/// carry the stream ARN as one `|`-separated field (`{StreamArn}|1|AAAA…`); exactly one field
/// may look like an ARN and it must be a stream ARN, otherwise the request is refused. The
/// gateway cannot check that the opaque rest belongs to that stream: it relies on DynamoDB
/// Streams refusing an iterator whose ARN was altered.
fn stream_of_iterator(iterator: &str) -> Result<String, GatewayError> {
    if iterator.len() > MAX_SHARD_ITERATOR_LEN {
        return Err(constraint(
            "shardIterator",
            iterator,
            &format!("Member must have length less than or equal to {MAX_SHARD_ITERATOR_LEN}"),
        ));
    }
    let mut arns = iterator.split('|').filter(|f| f.starts_with("arn:"));
    match (arns.next(), arns.next()) {
        (Some(arn), None) => dynamodb_arn("shardIterator", arn, &[Kind::Stream]),
        _ => Err(constraint(
            "shardIterator",
            iterator,
            "Member must be a shard iterator naming its stream",
        )),
    }
}

/// The elements of a required list member, checked against DynamoDB's length bounds.
fn list<T, const N: usize>(
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
fn keys<const N: usize>(
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

// ---------------------------------------------------------------------------------------------
// PartiQL: just enough to find the one table (or index) a statement touches, refusing anything
// that could be read two ways.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    /// An unquoted word: keyword, bare identifier or number.
    Word(&'a str),
    /// A double-quoted identifier, unescaped.
    Quoted(String),
    /// A single-quoted string literal (its text is irrelevant here).
    Text,
    /// Any other ASCII character.
    Punct(char),
}

/// Splits a statement into tokens, or `None` if it holds anything this reader does not fully
/// understand: comments, backslashes, Ion literals (backticks), non-ASCII outside quotes, or an
/// unterminated quote.
fn tokenize(statement: &str) -> Option<Vec<Token<'_>>> {
    let mut tokens = Vec::new();
    let mut chars = statement.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '\'' | '"' => {
                let mut text = String::new();
                loop {
                    match chars.next()? {
                        (_, q) if q == c => {
                            if chars.peek().map(|&(_, n)| n) == Some(c) {
                                chars.next();
                                text.push(c);
                            } else {
                                break;
                            }
                        }
                        (_, other) => text.push(other),
                    }
                }
                tokens.push(if c == '"' {
                    Token::Quoted(text)
                } else {
                    Token::Text
                });
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut end = start + 1;
                while let Some(&(i, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' || n == '$' {
                        end = i + 1;
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(statement.get(start..end)?));
            }
            '\\' | '`' => return None,
            '-' if chars.peek().map(|&(_, n)| n) == Some('-') => return None,
            '/' if chars.peek().map(|&(_, n)| n) == Some('*') => return None,
            c if c.is_ascii() && !c.is_ascii_control() => tokens.push(Token::Punct(c)),
            _ => return None,
        }
    }
    Some(tokens)
}

/// Words that start a statement or name its table; each statement form allows exactly its own.
const STATEMENT_WORDS: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "FROM", "INTO", "EXISTS",
];

fn is_word(token: Option<&Token<'_>>, word: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

/// A table or index identifier: bare or double-quoted.
fn identifier<'t>(token: Option<&'t Token<'_>>) -> Option<&'t str> {
    match token? {
        Token::Word(w) => Some(w),
        Token::Quoted(q) => Some(q),
        Token::Text | Token::Punct(_) => None,
    }
}

/// The PartiQL action a statement needs and the table (or, for a `SELECT` from
/// `"Table"."Index"`, the index) it touches. `EXISTS(SELECT …)`, a condition check, is only
/// allowed in transactions.
fn partiql(
    scope: &Scope<'_>,
    statement: &str,
    in_transaction: bool,
) -> Result<(&'static str, String), GatewayError> {
    let malformed = |why: &str| {
        validation(format!(
            "Statement wasn't well formed, can't be processed: {why}"
        ))
    };
    if statement.is_empty() {
        return Err(length_constraint(
            "statement",
            "Member must have length greater than or equal to 1",
        ));
    }
    if statement.len() > MAX_STATEMENT_LEN {
        return Err(length_constraint(
            "statement",
            &format!("Member must have length less than or equal to {MAX_STATEMENT_LEN}"),
        ));
    }
    let tokens = tokenize(statement).ok_or_else(|| {
        malformed("comments, backslashes, Ion literals and unterminated quotes are not accepted")
    })?;
    let words: Vec<&str> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => STATEMENT_WORDS
                .iter()
                .find(|k| w.eq_ignore_ascii_case(k))
                .copied(),
            _ => None,
        })
        .collect();
    let at = |i: usize| tokens.get(i);
    let table_at = |i: usize| -> Result<String, GatewayError> {
        let name = identifier(at(i)).ok_or_else(|| malformed("expected a table name"))?;
        check_name("statement", name)?;
        Ok(scope.table(name))
    };
    match words.as_slice() {
        ["SELECT", "FROM"] if is_word(at(0), "SELECT") => {
            Ok(("PartiQLSelect", select_source(scope, &tokens)?))
        }
        ["EXISTS", "SELECT", "FROM"]
            if in_transaction
                && is_word(at(0), "EXISTS")
                && at(1) == Some(&Token::Punct('('))
                && is_word(at(2), "SELECT")
                && tokens.last() == Some(&Token::Punct(')')) =>
        {
            let inner = tokens
                .get(2..tokens.len().saturating_sub(1))
                .ok_or_else(|| malformed("expected EXISTS(SELECT ...)"))?;
            Ok(("PartiQLSelect", select_source(scope, inner)?))
        }
        ["INSERT", "INTO"]
            if is_word(at(0), "INSERT") && is_word(at(1), "INTO") && is_word(at(3), "VALUE") =>
        {
            Ok(("PartiQLInsert", table_at(2)?))
        }
        ["UPDATE"] if is_word(at(0), "UPDATE") && matches!(at(2), Some(Token::Word(_))) => {
            Ok(("PartiQLUpdate", table_at(1)?))
        }
        ["DELETE", "FROM"]
            if is_word(at(0), "DELETE")
                && is_word(at(1), "FROM")
                && matches!(at(3), None | Some(Token::Word(_))) =>
        {
            Ok(("PartiQLDelete", table_at(2)?))
        }
        _ => Err(malformed(
            "the gateway reads only SELECT ... FROM, INSERT INTO ... VALUE, UPDATE ... SET/REMOVE \
             and DELETE FROM statements on one table",
        )),
    }
}

/// The table or index after the single `FROM` of a `SELECT` (tokens start at `SELECT`).
fn select_source(scope: &Scope<'_>, tokens: &[Token<'_>]) -> Result<String, GatewayError> {
    let malformed = || {
        validation(
            "Statement wasn't well formed, can't be processed: expected FROM \"Table\" or \
             FROM \"Table\".\"Index\""
                .to_owned(),
        )
    };
    let from = tokens
        .iter()
        .position(|t| is_word(Some(t), "FROM"))
        .ok_or_else(malformed)?;
    let name = identifier(tokens.get(from + 1)).ok_or_else(malformed)?;
    check_name("statement", name)?;
    let table = scope.table(name);
    let (resource, next) = if tokens.get(from + 2) == Some(&Token::Punct('.')) {
        let index = identifier(tokens.get(from + 3)).ok_or_else(malformed)?;
        (index_arn(&table, "statement", index)?, from + 4)
    } else {
        (table, from + 2)
    };
    match tokens.get(next) {
        None | Some(Token::Word(_)) => Ok(resource),
        Some(_) => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ACCOUNT: &str = "111122223333";
    const REGION: &str = "eu-central-1";

    fn account() -> AccountId {
        ACCOUNT.parse().unwrap()
    }

    fn auths(op: &str, body: &str) -> Result<Vec<Authorization>, GatewayError> {
        let target = if STREAMS_OPERATIONS.contains(&op) {
            format!("{STREAMS_TARGET_PREFIX}{op}")
        } else {
            format!("{DYNAMODB_TARGET_PREFIX}{op}")
        };
        authorizations(&target, body.as_bytes(), &account(), REGION)
    }

    fn pairs(op: &str, body: &str) -> Vec<(String, String)> {
        auths(op, body)
            .unwrap()
            .into_iter()
            .map(|a| (a.action, a.resource))
            .collect()
    }

    fn pair(action: &str, resource: &str) -> (String, String) {
        (action.to_owned(), resource.to_owned())
    }

    fn table(name: &str) -> String {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
    }

    fn is_validation(r: Result<Vec<Authorization>, GatewayError>) -> bool {
        matches!(r, Err(GatewayError::Validation(_)))
    }

    /// A resource is `*`, or a DynamoDB ARN whose table (or global table) name is valid and
    /// that holds no wildcard.
    fn resource_is_sound(resource: &str) -> bool {
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
    fn every_listed_operation_is_mapped() {
        for op in DYNAMODB_OPERATIONS.iter().chain(STREAMS_OPERATIONS) {
            assert!(
                !matches!(auths(op, "{}"), Err(GatewayError::UnknownOperation(_))),
                "{op} is listed but not mapped"
            );
        }
    }

    #[test]
    fn item_operations_on_a_table() {
        for op in ["GetItem", "PutItem", "UpdateItem", "DeleteItem"] {
            let body =
                r#"{"TableName":"Music","Key":{"Artist":{"S":"Acme"}},"ReturnValues":"ALL_OLD"}"#;
            assert_eq!(
                pairs(op, body),
                [pair(&format!("dynamodb:{op}"), &table("Music"))]
            );
        }
    }

    #[test]
    fn table_operations() {
        for op in [
            "DescribeTable",
            "CreateTable",
            "DeleteTable",
            "UpdateTable",
            "DescribeTimeToLive",
            "UpdateTimeToLive",
            "DescribeContinuousBackups",
            "UpdateContinuousBackups",
            "CreateBackup",
            "DescribeKinesisStreamingDestination",
            "DescribeTableReplicaAutoScaling",
        ] {
            assert_eq!(
                pairs(op, r#"{"TableName":"my-table_1.0"}"#),
                [pair(&format!("dynamodb:{op}"), &table("my-table_1.0"))],
            );
        }
    }

    #[test]
    fn query_and_scan_use_the_index_when_named() {
        assert_eq!(
            pairs(
                "Query",
                r#"{"TableName":"Music","IndexName":"ByYear","KeyConditionExpression":"y = :y"}"#
            ),
            [pair(
                "dynamodb:Query",
                &format!("{}/index/ByYear", table("Music"))
            )]
        );
        assert_eq!(
            pairs("Scan", r#"{"TableName":"Music"}"#),
            [pair("dynamodb:Scan", &table("Music"))]
        );
        assert!(is_validation(auths(
            "Scan",
            r#"{"TableName":"Music","IndexName":"a/b"}"#
        )));
        assert!(is_validation(auths(
            "Query",
            r#"{"TableName":"Music","IndexName":"ab"}"#
        )));
    }

    #[test]
    fn contributor_insights_names_table_and_index() {
        assert_eq!(
            pairs(
                "UpdateContributorInsights",
                r#"{"TableName":"Music","IndexName":"ByYear","ContributorInsightsAction":"ENABLE"}"#
            ),
            [
                pair("dynamodb:UpdateContributorInsights", &table("Music")),
                pair(
                    "dynamodb:UpdateContributorInsights",
                    &format!("{}/index/ByYear", table("Music"))
                ),
            ]
        );
    }

    #[test]
    fn table_name_may_be_an_arn() {
        let arn = "arn:aws:dynamodb:us-east-1:444455556666:table/Shared";
        assert_eq!(
            pairs("GetItem", &format!(r#"{{"TableName":"{arn}"}}"#)),
            [pair("dynamodb:GetItem", arn)]
        );
        assert_eq!(
            pairs(
                "Query",
                &format!(r#"{{"TableName":"{arn}","IndexName":"Idx"}}"#)
            ),
            [pair("dynamodb:Query", &format!("{arn}/index/Idx"))]
        );
        for bad in [
            "arn:aws:dynamodb:us-east-1:444455556666:table/Shared/index/Idx",
            "arn:aws:dynamodb:us-east-1:444455556666:table/Sh*",
            "arn:aws:dynamodb:us-east-1:444455556666:table/*",
            "arn:aws:dynamodb:us-east-1:444455556666:table/",
            "arn:aws:dynamodb:us-east-1:444455556666:global-table/Shared",
            "arn:aws:dynamodb:us-east-1:*:table/Shared",
            "arn:aws:dynamodb:us-east-1::table/Shared",
            "arn:aws:dynamodb::444455556666:table/Shared",
            "arn:aws:s3:us-east-1:444455556666:table/Shared",
            "arn:nope:dynamodb:us-east-1:444455556666:table/Shared",
            "arn:aws:dynamodb:us-east-1:444455556666:table/Shared/stream/2024-01-01T00:00:00.000",
            "arn:aws:dynamodb:us-east-1:444455556666",
        ] {
            assert!(
                is_validation(auths("GetItem", &format!(r#"{{"TableName":"{bad}"}}"#))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "x/*",
            "a:b",
            "*",
            "ab",
            "Music/index/ByYear",
            "Music ",
            "Mu\u{0}sic",
            "Müsic",
            "..",
            "",
        ] {
            let body = serde_json::json!({ "TableName": bad }).to_string();
            assert!(is_validation(auths("PutItem", &body)), "{bad:?}");
        }
        let long = "a".repeat(256);
        let r = auths("PutItem", &format!(r#"{{"TableName":"{long}"}}"#));
        assert!(
            matches!(&r, Err(GatewayError::Validation(m)) if m.contains("less than or equal to 255"))
        );
        assert_eq!(
            pairs(
                "PutItem",
                &format!(r#"{{"TableName":"{}"}}"#, "a".repeat(255))
            )
            .len(),
            1
        );
    }

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
    fn account_wide_operations_use_star() {
        for op in [
            "ListTables",
            "DescribeLimits",
            "DescribeEndpoints",
            "ListBackups",
            "ListGlobalTables",
            "ListExports",
            "ListImports",
            "ListContributorInsights",
            "ListStreams",
        ] {
            assert_eq!(
                pairs(op, r#"{"Limit":10,"ExclusiveStartTableName":"x/*"}"#),
                [pair(&format!("dynamodb:{op}"), "*")]
            );
        }
    }

    #[test]
    fn batch_operations_name_every_table() {
        let body = r#"{"RequestItems":{
            "Music":{"Keys":[{"Artist":{"S":"A"}}]},
            "Books":{"Keys":[{"Title":{"S":"B"}}]}}}"#;
        assert_eq!(
            pairs("BatchGetItem", body),
            [
                pair("dynamodb:BatchGetItem", &table("Music")),
                pair("dynamodb:BatchGetItem", &table("Books")),
            ]
        );
        let body = r#"{"RequestItems":{"Music":[{"PutRequest":{"Item":{}}}],
            "arn:aws:dynamodb:us-east-1:444455556666:table/Shared":[{"DeleteRequest":{"Key":{}}}]}}"#;
        assert_eq!(
            pairs("BatchWriteItem", body),
            [
                pair("dynamodb:BatchWriteItem", &table("Music")),
                pair(
                    "dynamodb:BatchWriteItem",
                    "arn:aws:dynamodb:us-east-1:444455556666:table/Shared"
                ),
            ]
        );
        assert!(is_validation(auths(
            "BatchGetItem",
            r#"{"RequestItems":{"x/*":{}}}"#
        )));
        assert!(is_validation(auths(
            "BatchGetItem",
            r#"{"RequestItems":{}}"#
        )));
        assert!(is_validation(auths("BatchWriteItem", "{}")));
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
    fn transact_write_items_use_single_item_actions() {
        let body = r#"{"TransactItems":[
            {"Put":{"TableName":"Orders","Item":{}}},
            {"Update":{"TableName":"Stock","Key":{},"UpdateExpression":"SET n = n - :one"}},
            {"Delete":{"TableName":"Carts","Key":{}}},
            {"ConditionCheck":{"TableName":"Customers","Key":{},"ConditionExpression":"x"}},
            {"Put":{"TableName":"Orders","Item":{}}}
        ],"ClientRequestToken":"t"}"#;
        assert_eq!(
            pairs("TransactWriteItems", body),
            [
                pair("dynamodb:PutItem", &table("Orders")),
                pair("dynamodb:UpdateItem", &table("Stock")),
                pair("dynamodb:DeleteItem", &table("Carts")),
                pair("dynamodb:ConditionCheckItem", &table("Customers")),
            ]
        );
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

    #[test]
    fn transact_get_items_use_get_item() {
        let body = r#"{"TransactItems":[{"Get":{"TableName":"Orders","Key":{}}},
            {"Get":{"TableName":"Stock","Key":{}}}]}"#;
        assert_eq!(
            pairs("TransactGetItems", body),
            [
                pair("dynamodb:GetItem", &table("Orders")),
                pair("dynamodb:GetItem", &table("Stock")),
            ]
        );
        assert!(is_validation(auths(
            "TransactGetItems",
            r#"{"TransactItems":[{"Put":{"TableName":"Orders"}}]}"#
        )));
    }

    #[test]
    fn resource_arn_operations() {
        let stream =
            "arn:aws:dynamodb:eu-central-1:111122223333:table/Music/stream/2024-05-20T20:51:10.252";
        for op in ["TagResource", "UntagResource", "ListTagsOfResource"] {
            assert_eq!(
                pairs(
                    op,
                    &format!(r#"{{"ResourceArn":"{}","Tags":[]}}"#, table("Music"))
                ),
                [pair(&format!("dynamodb:{op}"), &table("Music"))]
            );
            assert_eq!(
                pairs(op, &format!(r#"{{"ResourceArn":"{stream}"}}"#)),
                [pair(&format!("dynamodb:{op}"), stream)]
            );
            assert!(is_validation(auths(op, r#"{"ResourceArn":"Music"}"#)));
            assert!(is_validation(auths(
                op,
                &format!(r#"{{"ResourceArn":"{}/index/I1x"}}"#, table("Music"))
            )));
            assert!(is_validation(auths(op, "{}")));
        }
    }

    #[test]
    fn stream_operations() {
        let stream =
            "arn:aws:dynamodb:eu-central-1:111122223333:table/Music/stream/2024-05-20T20:51:10.252";
        for op in ["DescribeStream", "GetShardIterator"] {
            assert_eq!(
                pairs(
                    op,
                    &format!(r#"{{"StreamArn":"{stream}","ShardId":"shardId-1"}}"#)
                ),
                [pair(&format!("dynamodb:{op}"), stream)]
            );
            assert!(is_validation(auths(
                op,
                &format!(r#"{{"StreamArn":"{}"}}"#, table("Music"))
            )));
        }
        assert_eq!(
            pairs(
                "GetRecords",
                &format!(r#"{{"ShardIterator":"{stream}|1|AAAAAAAAAAGQBYshYDEe","Limit":5}}"#)
            ),
            [pair("dynamodb:GetRecords", stream)]
        );
        for bad in [
            "AAAAAAAAAAGQBYshYDEe".to_owned(),
            format!("{stream}|{stream}|AAAA"),
            format!("{}|1|AAAA", table("Music")),
        ] {
            assert!(
                is_validation(auths(
                    "GetRecords",
                    &format!(r#"{{"ShardIterator":"{bad}"}}"#)
                )),
                "{bad}"
            );
        }
        // Streams operations live under their own target prefix only.
        assert!(matches!(
            authorizations(
                "DynamoDB_20120810.DescribeStream",
                format!(r#"{{"StreamArn":"{stream}"}}"#).as_bytes(),
                &account(),
                REGION
            ),
            Err(GatewayError::UnknownOperation(_))
        ));
    }

    #[test]
    fn backup_and_restore() {
        let backup = format!("{}/backup/01489602797149-73d8d5bc", table("Music"));
        assert_eq!(
            pairs(
                "RestoreTableFromBackup",
                &format!(r#"{{"BackupArn":"{backup}","TargetTableName":"Music2"}}"#)
            ),
            [
                pair("dynamodb:RestoreTableFromBackup", &backup),
                pair("dynamodb:RestoreTableFromBackup", &table("Music2")),
            ]
        );
        assert!(is_validation(auths(
            "RestoreTableFromBackup",
            &format!(r#"{{"BackupArn":"{backup}"}}"#)
        )));
        assert!(is_validation(auths(
            "RestoreTableFromBackup",
            &format!(
                r#"{{"BackupArn":"{}","TargetTableName":"Music2"}}"#,
                table("Music")
            )
        )));
        for op in ["DescribeBackup", "DeleteBackup"] {
            assert_eq!(
                pairs(op, &format!(r#"{{"BackupArn":"{backup}"}}"#)),
                [pair(&format!("dynamodb:{op}"), &backup)]
            );
        }
        assert_eq!(
            pairs(
                "RestoreTableToPointInTime",
                r#"{"SourceTableName":"Music","TargetTableName":"Music2"}"#
            ),
            [
                pair("dynamodb:RestoreTableToPointInTime", &table("Music")),
                pair("dynamodb:RestoreTableToPointInTime", &table("Music2")),
            ]
        );
        assert!(is_validation(auths(
            "RestoreTableToPointInTime",
            r#"{"TargetTableName":"Music2"}"#
        )));
    }

    #[test]
    fn export_and_import() {
        assert_eq!(
            pairs(
                "ExportTableToPointInTime",
                &format!(r#"{{"TableArn":"{}","S3Bucket":"b"}}"#, table("Music"))
            ),
            [pair("dynamodb:ExportTableToPointInTime", &table("Music"))]
        );
        assert!(is_validation(auths(
            "ExportTableToPointInTime",
            r#"{"TableArn":"Music"}"#
        )));
        let export = format!("{}/export/01234567890123-a1b2c3d4", table("Music"));
        assert_eq!(
            pairs("DescribeExport", &format!(r#"{{"ExportArn":"{export}"}}"#)),
            [pair("dynamodb:DescribeExport", &export)]
        );
        let import = format!("{}/import/01658528578619-c4d4e311", table("Music"));
        assert_eq!(
            pairs("DescribeImport", &format!(r#"{{"ImportArn":"{import}"}}"#)),
            [pair("dynamodb:DescribeImport", &import)]
        );
        assert_eq!(
            pairs(
                "ImportTable",
                r#"{"S3BucketSource":{"S3Bucket":"b"},"InputFormat":"CSV","TableCreationParameters":{"TableName":"Music"}}"#
            ),
            [pair("dynamodb:ImportTable", &table("Music"))]
        );
        assert!(is_validation(auths("ImportTable", "{}")));
    }

    #[test]
    fn global_tables() {
        let global = format!("arn:aws:dynamodb::{ACCOUNT}:global-table/Music");
        assert_eq!(
            pairs(
                "CreateGlobalTable",
                r#"{"GlobalTableName":"Music","ReplicationGroup":[{"RegionName":"us-east-1"}]}"#
            ),
            [
                pair("dynamodb:CreateGlobalTable", &global),
                pair("dynamodb:CreateGlobalTable", &table("Music")),
            ]
        );
        assert_eq!(
            pairs("DescribeGlobalTable", r#"{"GlobalTableName":"Music"}"#),
            [pair("dynamodb:DescribeGlobalTable", &global)]
        );
        assert!(is_validation(auths(
            "DescribeGlobalTable",
            r#"{"GlobalTableName":"a/b"}"#
        )));
    }

    fn statement(sql: &str) -> Result<Vec<Authorization>, GatewayError> {
        auths(
            "ExecuteStatement",
            &serde_json::json!({ "Statement": sql }).to_string(),
        )
    }

    fn statement_pairs(sql: &str) -> Vec<(String, String)> {
        statement(sql)
            .unwrap()
            .into_iter()
            .map(|a| (a.action, a.resource))
            .collect()
    }

    #[test]
    fn partiql_statements() {
        assert_eq!(
            statement_pairs(r#"SELECT * FROM "Music" WHERE Artist = 'Acme'"#),
            [pair("dynamodb:PartiQLSelect", &table("Music"))]
        );
        assert_eq!(
            statement_pairs(r#"select "from", 'FROM' from Music where a = ?"#),
            [pair("dynamodb:PartiQLSelect", &table("Music"))]
        );
        assert_eq!(
            statement_pairs(r#"SELECT * FROM "Music"."ByYear" WHERE y = 1999"#),
            [pair(
                "dynamodb:PartiQLSelect",
                &format!("{}/index/ByYear", table("Music"))
            )]
        );
        assert_eq!(
            statement_pairs(r#"INSERT INTO "my.table-1" VALUE {'pk': 'a', 'FROM': 'x'}"#),
            [pair("dynamodb:PartiQLInsert", &table("my.table-1"))]
        );
        assert_eq!(
            statement_pairs(r#"UPDATE "Music" SET AwardsWon = 1 WHERE Artist = 'it''s'"#),
            [pair("dynamodb:PartiQLUpdate", &table("Music"))]
        );
        assert_eq!(
            statement_pairs(r#"DELETE FROM Music WHERE Artist = 'Acme' RETURNING ALL OLD *"#),
            [pair("dynamodb:PartiQLDelete", &table("Music"))]
        );
    }

    #[test]
    fn partiql_refuses_what_it_cannot_read() {
        for sql in [
            "",
            "SELECT * FROM",
            r#"SELECT * FROM "Music", "Books""#,
            r#"SELECT * FROM "Music" WHERE a IN (SELECT * FROM "Books")"#,
            r#"SELECT * FROM "x/*""#,
            r#"SELECT * FROM "a:b""#,
            r#"SELECT * FROM "Mu""sic""#,
            r#"SELECT * FROM "Music"."ByYear"."More""#,
            r#"SELECT * FROM "Music -- comment"#,
            r#"SELECT * FROM "Music" -- FROM "Books""#,
            r#"SELECT * FROM /* c */ "Music""#,
            r#"SELECT * FROM "Music" WHERE a = 'it\'s'"#,
            r#"SELECT * FROM "Music" WHERE a = `{a: 1}`"#,
            "SELECT * FROM \u{a0}\"Music\"",
            r#"SELECT * FROM "arn:aws:dynamodb:eu-central-1:111122223333:table/Music""#,
            r#"EXISTS(SELECT * FROM "Music" WHERE a = 1)"#,
            r#"INSERT INTO "Music"."ByYear" VALUE {'a': 1}"#,
            r#"INSERT INTO "Music" SELECT * FROM "Books""#,
            r#"UPDATE "Music""#,
            r#"DELETE "Music""#,
            r#"DROP TABLE "Music""#,
            r#"'SELECT' * FROM "Music""#,
        ] {
            assert!(is_validation(statement(sql)), "{sql:?}");
        }
        let long = format!(r#"SELECT * FROM "Music" WHERE a = '{}'"#, "x".repeat(8192));
        assert!(is_validation(statement(&long)));
        assert!(is_validation(auths("ExecuteStatement", "{}")));
    }

    #[test]
    fn partiql_batches_and_transactions() {
        let body = serde_json::json!({ "Statements": [
            { "Statement": "SELECT * FROM \"Music\" WHERE a = ?", "Parameters": [{"S": "x"}] },
            { "Statement": "INSERT INTO \"Books\" VALUE {'a': ?}" },
            { "Statement": "SELECT * FROM \"Music\" WHERE a = ?" },
        ]})
        .to_string();
        assert_eq!(
            pairs("BatchExecuteStatement", &body),
            [
                pair("dynamodb:PartiQLSelect", &table("Music")),
                pair("dynamodb:PartiQLInsert", &table("Books")),
            ]
        );
        let body = serde_json::json!({ "TransactStatements": [
            { "Statement": "EXISTS(SELECT * FROM \"Music\" WHERE a = 1 AND b = 2)" },
            { "Statement": "UPDATE \"Books\" SET n = n + 1 WHERE a = 1" },
            { "Statement": "DELETE FROM \"Carts\" WHERE a = 1" },
        ]})
        .to_string();
        assert_eq!(
            pairs("ExecuteTransaction", &body),
            [
                pair("dynamodb:PartiQLSelect", &table("Music")),
                pair("dynamodb:PartiQLUpdate", &table("Books")),
                pair("dynamodb:PartiQLDelete", &table("Carts")),
            ]
        );
        let bad = serde_json::json!({ "TransactStatements": [
            { "Statement": "UPDATE \"Books\" SET n = 1 WHERE a = 1" },
            { "Statement": "SELECT * FROM \"x/*\"" },
        ]})
        .to_string();
        assert!(is_validation(auths("ExecuteTransaction", &bad)));
        let too_many = serde_json::json!({
            "Statements": vec![serde_json::json!({"Statement": "SELECT * FROM \"Music\""}); 26]
        })
        .to_string();
        assert!(is_validation(auths("BatchExecuteStatement", &too_many)));
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
