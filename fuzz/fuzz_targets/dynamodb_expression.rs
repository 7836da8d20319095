//! Arbitrary DynamoDB expressions (projection, condition, update, key condition): the parser
//! never panics, refuses what it cannot read, and every attribute it returns is a name the
//! expression spelled out or a `#placeholder` resolved through the names map.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use podiam_gateway::expression::{
    condition_attributes, key_condition_partition_value, projection_attributes, update_attributes,
};

fuzz_target!(|data: &[u8]| {
    let Ok(expression) = std::str::from_utf8(data) else {
        return;
    };
    let names = BTreeMap::from([
        ("#a".to_owned(), "Alpha".to_owned()),
        ("#pk".to_owned(), "pk".to_owned()),
    ]);
    let results = [
        projection_attributes(expression, &names),
        condition_attributes(expression, &names),
        update_attributes(expression, &names),
    ];
    for attributes in results.into_iter().flatten() {
        for name in attributes {
            assert!(name == "Alpha" || name == "pk" || expression.contains(name.as_str()));
        }
    }
    if let Ok(placeholder) = key_condition_partition_value(expression, &names, "pk") {
        assert!(placeholder.starts_with(':'));
        assert!(expression.contains(placeholder.as_str()));
    }
});
