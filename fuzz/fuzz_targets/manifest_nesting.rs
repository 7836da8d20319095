//! Arbitrary manifests: the nesting check never panics, and what it lets through has at most
//! the allowed bracket depth.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_webhook::{MAX_NESTING, check_nesting};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if check_nesting(text, MAX_NESTING).is_ok() {
        // Brackets alone (no quotes or comments to hide them) never pass deeper than allowed.
        if !text.contains(['"', '\'', '#']) {
            let mut depth = 0usize;
            for b in text.bytes() {
                match b {
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                assert!(depth <= MAX_NESTING);
            }
        }
    }
});
