//! Arbitrary issuer URLs: parsing never panics, and the canonical form is a fixed point with
//! the same key, so no spelling of one issuer can name another.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_types::IssuerUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = text.parse::<IssuerUrl>() else {
        return;
    };
    let again: IssuerUrl = match url.to_string().parse() {
        Ok(again) => again,
        Err(e) => panic!("the canonical form {url} does not parse: {e}"),
    };
    assert_eq!(again, url);
    assert_eq!(again.key(), url.key());
    let _ = (url.host(), url.origin());
});
