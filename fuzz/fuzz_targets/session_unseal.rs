//! Arbitrary session tokens: never a panic, never an opened session.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use podiam_crypto::{AeadKey, KeyId, Keyring, SystemRng};
use podiam_session::Session;

fn keyring() -> Option<&'static Keyring> {
    static RING: OnceLock<Option<Keyring>> = OnceLock::new();
    RING.get_or_init(|| AeadKey::generate(KeyId(1), &SystemRng).ok().map(Keyring::new)).as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let Some(ring) = keyring() else { return };
    assert!(Session::unseal(token, ring).is_err());
});
