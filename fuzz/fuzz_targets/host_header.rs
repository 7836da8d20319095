//! Arbitrary request targets and Host headers: the agent's and IMDS's host check never panics,
//! and a host it accepts carries no port, brackets, path or user information.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (&str, Vec<&[u8]>)| {
    let (target, values) = data;
    let Ok(uri) = target.parse::<http::Uri>() else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    for value in values.into_iter().take(4) {
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            headers.append(http::header::HOST, value);
        }
    }
    if let Ok(host) = podiam_http::addressed_host(&uri, &headers) {
        assert!(!host.contains(['[', ']', '/', '@', ' ']));
    }
});
