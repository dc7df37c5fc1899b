//! Fuzz target: workspace envelopes, header and payloads (`workspace::envelope::decode` +
//! `verify_batch`, the clear `Access` and `Keys` payloads, the sealed content payload).
//!
//! The first byte picks the mode. Mode 0: the rest is an envelope as received; a refusal names
//! the id of the bytes. Mode 1: the rest is an envelope without its signature, signed here by the
//! fixture device, so that mutated headers and payloads by that author pass the signature; a
//! verified envelope's clear payload must decode, and `envelope::sign` of its header and payload
//! must give bytes that decode to the same header and payload. Mode 2: the rest is a sealed
//! content payload (`seal::open_payload` under the frozen vector's key, with the rest after a
//! `split` cut as associated data): a typed error or the plaintext, never a panic.
#![no_main]

use cloison_fuzz::{decode_and_verify, greeter, split};
use cloison_node::seal::{EpochKey, open_payload};
use cloison_node::trust::entry::KeyCache;
use cloison_node::workspace::Kind;
use cloison_node::workspace::envelope::{self, ENVELOPE_DOMAIN, Envelope};
use libfuzzer_sys::fuzz_target;

fn check_one(bytes: Vec<u8>) -> Option<Envelope> {
    decode_and_verify(
        bytes,
        |b| envelope::decode(b, &mut KeyCache::default()),
        envelope::verify_batch,
        |u| u.id(),
        |e| e.id(),
        |i: &cloison_node::workspace::EnvelopeId| i.0,
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
            bytes.extend_from_slice(&greeter().sign(ENVELOPE_DOMAIN, rest));
            if let Some(e) = check_one(bytes) {
                match e.header().kind {
                    Kind::Access => assert!(e.access().is_some(), "a verified access decodes"),
                    Kind::Keys => assert!(e.keys().is_some(), "verified keys decode"),
                    Kind::Content | Kind::Merge => {}
                }
                let again = envelope::sign(&greeter(), e.header(), e.payload());
                let e2 = check_one(again).expect("a re-signed valid envelope verifies");
                assert_eq!(
                    e2.header(),
                    e.header(),
                    "decode -> encode -> decode: same header"
                );
                assert_eq!(e2.payload(), e.payload(), "same payload");
                assert_eq!(
                    envelope::header_bytes(e2.header()),
                    e2.header_bytes(),
                    "header_bytes is what sign writes"
                );
            }
        }
        _ => {
            let parts = split(rest, 2);
            let (sealed, aad) = (
                parts[0],
                parts.get(1).copied().unwrap_or(b"envelope header"),
            );
            let _ = open_payload(&EpochKey::from_bytes(&[0x22; 32]), &[0x33; 16], aad, sealed);
        }
    }
});
