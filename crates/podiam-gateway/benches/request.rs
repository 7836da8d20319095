//! What the gateway does per request before it asks for a decision, all of it pure: the strict
//! shape check and the authorizations with their condition keys. Numbers go to BENCHMARKS.md.
//! Targets: a small item operation ≤ 20 µs; a 25-item `BatchWriteItem` ≤ 200 µs; the shape
//! check of a 1 MiB body ≤ 15 ms (it runs before the caller is authenticated).

#![expect(clippy::expect_used, reason = "benchmark fixtures are constants")]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use podiam_gateway::dynamodb::request_authorizations;
use podiam_gateway::items::KeySchema;
use podiam_gateway::shape::{Api, check};
use podiam_types::AccountId;
use serde_json::json;

fn item(user: usize, attributes: usize) -> serde_json::Value {
    let mut item = serde_json::Map::new();
    item.insert("UserId".to_owned(), json!({"S": format!("user-{user}")}));
    item.insert("GameTitle".to_owned(), json!({"S": "Chess"}));
    for i in 0..attributes {
        item.insert(format!("attr{i}"), json!({"S": "x".repeat(40)}));
    }
    serde_json::Value::Object(item)
}

fn benches(c: &mut Criterion) {
    let account: AccountId = "111122223333".parse().expect("an account");
    let schemas = BTreeMap::from([(
        "GameScores".to_owned(),
        KeySchema {
            partition_key: "UserId".to_owned(),
            index_partition_keys: BTreeMap::new(),
        },
    )]);
    let cases = [
        (
            "GetItem",
            json!({"TableName": "GameScores",
                   "Key": {"UserId": {"S": "alice"}, "GameTitle": {"S": "Chess"}},
                   "ProjectionExpression": "TopScore, Wins"}),
        ),
        (
            "UpdateItem",
            json!({"TableName": "GameScores",
                   "Key": {"UserId": {"S": "alice"}, "GameTitle": {"S": "Chess"}},
                   "UpdateExpression": "SET TopScore = :s, #w = #w + :one",
                   "ConditionExpression": "attribute_exists(UserId)",
                   "ExpressionAttributeNames": {"#w": "Wins"},
                   "ExpressionAttributeValues": {":s": {"N": "10"}, ":one": {"N": "1"}}}),
        ),
        (
            "PutItem",
            json!({"TableName": "GameScores", "Item": item(0, 80)}),
        ),
        (
            "BatchWriteItem",
            json!({"RequestItems": {"GameScores": (0..25)
                .map(|i| json!({"PutRequest": {"Item": item(i, 8)}}))
                .collect::<Vec<_>>()}}),
        ),
    ];
    let mut group = c.benchmark_group("gateway");
    for (op, body) in cases {
        let body = body.to_string().into_bytes();
        let target = format!("DynamoDB_20120810.{op}");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(
            format!("{op} ({} B): shape + authorizations", body.len()),
            |b| {
                b.iter(|| {
                    check(Api::DynamoDb, op, black_box(&body)).expect("a valid body");
                    request_authorizations(
                        &target,
                        black_box(&body),
                        &account,
                        "us-east-1",
                        &schemas,
                    )
                    .expect("authorizations")
                });
            },
        );
    }
    let big = json!({"TableName": "GameScores", "Item": item(0, 16_000)})
        .to_string()
        .into_bytes();
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function(format!("PutItem ({} B): shape only", big.len()), |b| {
        b.iter(|| check(Api::DynamoDb, "PutItem", black_box(&big)).expect("a valid body"));
    });
    group.finish();
}

criterion_group!(request, benches);
criterion_main!(request);
