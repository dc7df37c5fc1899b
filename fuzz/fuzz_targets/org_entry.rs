//! Fuzz target: organization-log entries (`trust::entry::decode` + `verify_batch`).
//!
//! The first byte picks the mode. Mode 0: the rest is an entry as received (from a peer, a
//! bundle, the store); decoding must return a typed rejection or an entry whose id is the BLAKE3
//! of its bytes. Mode 1: the rest is an entry without its signature; the target signs it with the
//! fixture device, so mutated bodies by that author get past the signature and the shape checks
//! run; an entry that verifies must re-sign (`entry::sign`) to bytes that decode to the same body.
//! Mode 2: a batch (parts cut by `cloison_fuzz::split`) goes through one `verify_batch`: every
//! verdict must equal that entry's verdict alone (batching never changes a verdict).
#![no_main]

use cloison_fuzz::{decode_and_verify, greeter, split};
use cloison_node::trust::entry::{self, ENTRY_DOMAIN, KeyCache};
use libfuzzer_sys::fuzz_target;

fn check_one(bytes: Vec<u8>) -> Option<cloison_node::trust::Entry> {
    decode_and_verify(
        bytes,
        entry::decode,
        entry::verify_batch,
        |u| u.id(),
        |e| e.id(),
        |i: &cloison_node::trust::EntryId| i.0,
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            check_one(rest.to_vec());
        }
        1 => {
            let mut bytes = rest.to_vec();
            bytes.extend_from_slice(&greeter().sign(ENTRY_DOMAIN, rest));
            if let Some(e) = check_one(bytes) {
                let again = entry::sign(&greeter(), e.body());
                let e2 = check_one(again).expect("a re-signed valid entry verifies");
                assert_eq!(
                    e2.body(),
                    e.body(),
                    "decode -> encode -> decode is the identity"
                );
            }
        }
        _ => {
            let parts: Vec<Vec<u8>> = split(rest, 16).into_iter().map(<[u8]>::to_vec).collect();
            let mut keys = KeyCache::default();
            let mut decoded = Vec::new();
            let mut alone = Vec::new();
            for p in &parts {
                if let Ok(u) = entry::decode_with(p.clone(), &mut keys) {
                    decoded.push(u);
                    alone.push(check_one(p.clone()).map(|e| e.id()));
                }
            }
            let batch: Vec<_> = entry::verify_batch(decoded)
                .into_iter()
                .map(|r| r.ok().map(|e| e.id()))
                .collect();
            assert_eq!(batch, alone, "a batch's verdicts are each entry's own");
        }
    }
});
