//! Fuzz target: the device key file (`keystore::Keystore::open_bytes`, what `Keystore::open` does
//! with the file's bytes).
//!
//! Hostile files give typed errors (`Corrupt`, `WrongPassphrase`), never a panic, and opening
//! never writes (the file is only read). Argon2 parameters inside the bounds the key file allows
//! (up to 1 GiB and 16 passes, bounded on purpose) cost up to seconds per input, so the target
//! skips inputs that name more than the test setting (8 MiB, 1 pass, 1 lane) yet fall inside
//! the bounds: the decoder's handling of every header is still reached, out-of-bound values
//! included; only the expensive derivation is left to the unit tests. The content behind the
//! AEAD is reached only with the right key: the seed is a real key file whose passphrase is
//! `fuzz`.
#![no_main]

use std::path::Path;

use cloison_node::keystore::{Keystore, KeystoreError};
use libfuzzer_sys::fuzz_target;

fn costly(data: &[u8]) -> bool {
    let Some(h) = data.get(1..13) else {
        return false;
    };
    let at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let (m, t, p) = (at(0), at(4), at(8));
    let in_bounds =
        (8 * 1024..=1024 * 1024).contains(&m) && (1..=16).contains(&t) && (1..=8).contains(&p);
    in_bounds && (m > 8 * 1024 || t > 1 || p > 1)
}

fuzz_target!(|data: &[u8]| {
    if costly(data) {
        return;
    }
    match Keystore::open_bytes(Path::new("fuzz.keys"), data, b"fuzz") {
        Ok(k) => {
            // Only the seed's authentic bytes open; its secrets read back.
            let _ = (k.org(), k.user(), k.device().id(), k.user_secret());
        }
        Err(KeystoreError::Corrupt(_) | KeystoreError::WrongPassphrase(_)) => {}
        Err(e) => panic!("a key file's bytes gave an unexpected error: {e}"),
    }
});
