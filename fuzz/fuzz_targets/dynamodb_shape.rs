//! Arbitrary DynamoDB request bodies (the first line is the operation, e.g. `PutItem`, the rest
//! the body), checked against both APIs' request shapes: the check never panics, refuses only
//! with the errors it documents, and accepts nothing but a blank body or one JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_gateway::GatewayError;
use podiam_gateway::shape::{Api, check};

fuzz_target!(|data: &[u8]| {
    let line = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (operation, body) = data.split_at(line);
    let body = body.get(1..).unwrap_or_default();
    let Ok(operation) = std::str::from_utf8(operation) else {
        return;
    };
    for api in [Api::DynamoDb, Api::Streams] {
        match check(api, operation, body) {
            Ok(()) => {
                let text = body.trim_ascii();
                assert!(
                    text.is_empty() || (text.first() == Some(&b'{') && text.last() == Some(&b'}'))
                );
            }
            Err(
                GatewayError::UnknownOperation(_)
                | GatewayError::Serialization(_)
                | GatewayError::Validation(_),
            ) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
});
