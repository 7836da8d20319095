//! The operations table: which IAM actions, on which resources, each DynamoDB and DynamoDB
//! Streams operation needs.
//!
//! Kept apart from the reading of the body ([`super::request`]) and of names
//! ([`super::names`]) so that each arm reads as the authorization rule it is, following AWS's
//! "Actions, resources, and condition keys for Amazon DynamoDB".

use super::names::{Kind, check_name, dynamodb_arn, index_arn, stream_of_iterator, table};
use super::partiql::partiql;
use super::request::{
    BackupMember, BatchExecuteStatement, BatchRequest, ExecuteTransaction, ExportMember,
    GlobalTableMember, ImportMember, ImportTable, IndexedTable, NoMembers, Obj, ResourceMember,
    RestoreFromBackup, RestoreToPointInTime, ShardIteratorMember, Statement, StreamMember,
    TableArnMember, TableMember, TransactGet, TransactWrite, keys, list, parse,
};
use super::validation::{clip, not_null, required, validation};
use super::{Collector, Scope};
use crate::GatewayError;

/// The DynamoDB operations [`authorizations`](super::authorizations) maps.
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

/// The DynamoDB Streams operations [`authorizations`](super::authorizations) maps.
pub const STREAMS_OPERATIONS: &[&str] = &[
    "DescribeStream",
    "GetRecords",
    "GetShardIterator",
    "ListStreams",
];

pub(super) fn map_operation(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::authorizations;
    use crate::dynamodb::fixtures::{
        ACCOUNT, REGION, account, auths, is_validation, pair, pairs, table,
    };

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
}
