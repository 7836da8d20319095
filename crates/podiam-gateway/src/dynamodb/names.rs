//! Table, index and global table names, and the ARNs a client supplies.
//!
//! A name is checked with DynamoDB's own rules before it is put into an ARN, and a
//! client-supplied ARN must parse as exactly the DynamoDB resource type expected: this is what
//! keeps a hostile name from widening the resource IAM evaluates.

use podiam_types::{Arn, KNOWN_PARTITIONS};

use super::Scope;
use super::validation::{constraint, required};
use crate::GatewayError;

/// Longest `TableName`/`TableArn` DynamoDB accepts (an ARN; a bare name is at most 255).
const MAX_ARN_LEN: usize = 1024;

/// Longest `ShardIterator` DynamoDB Streams accepts.
const MAX_SHARD_ITERATOR_LEN: usize = 2048;

/// The regular expression DynamoDB states for table and index names.
const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

/// DynamoDB's rule for table, index and global table names: 3-255 characters of
/// `[a-zA-Z0-9_.-]`.
pub(super) fn is_name(value: &str) -> bool {
    (3..=255).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub(super) fn check_name(member: &str, value: &str) -> Result<(), GatewayError> {
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
pub(super) enum Kind {
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
pub(super) fn is_resource_id(value: &str) -> bool {
    (1..=255).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'))
}

/// Checks that `value` is an ARN of one of `kinds` in the `dynamodb` service, with a known
/// partition, a region, a 12-digit account and a valid table name, and returns it as written.
pub(super) fn dynamodb_arn(
    member: &str,
    value: &str,
    kinds: &[Kind],
) -> Result<String, GatewayError> {
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
pub(super) fn stream_of_iterator(iterator: &str) -> Result<String, GatewayError> {
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

#[cfg(test)]
mod tests {
    use crate::GatewayError;
    use crate::dynamodb::fixtures::{auths, is_validation, pair, pairs};

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
}
