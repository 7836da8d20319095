//! Arbitrary awsQuery bodies: parsing and every accessor never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_wire::{QueryRequest, Validation};

fuzz_target!(|data: &[u8]| {
    let Ok(q) = QueryRequest::parse(data) else {
        return;
    };
    let _ = q.list("ClientIDList");
    let _ = q.structs("PolicyArns");
    let _ = q.tags("Tags");
    let mut v = Validation::new();
    let name = v.required(&q, "RoleName");
    v.length("RoleName", name, 1, 64);
    let _ = v.integer(&q, "DurationSeconds", 900, 43_200);
    let _ = v.boolean(&q, "Force");
    let _ = v.finish();
});
