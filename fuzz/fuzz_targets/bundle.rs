//! Fuzz target: whole bundle files and receipts (`bundle::read_bundle`, `bundle::read_receipt`).
//!
//! The first byte picks the mode. Mode 0: the rest is a bundle file of the fixture organization
//! whose creator may be the fixture device. `read_bundle` must refuse it with a typed error, or
//! hand out items only if the trailer holds the BLAKE3 of everything before it and the creator's
//! signature of that hash (Ed25519 signatures are deterministic: the target recomputes it), so an
//! altered, truncated or unsigned file never yields an item. Mode 1: the rest is a receipt; one
//! that reads must be re-written by `write_receipt` to bytes that read to the same receipt.
#![no_main]

use std::io::Cursor;

use cloison_fuzz::{ORG, greeter};
use cloison_node::bundle::format::BUNDLE_DOMAIN;
use cloison_node::bundle::{read_bundle, read_receipt, write_receipt};
use libfuzzer_sys::fuzz_target;

const TRAILER: usize = 32 + 64;

fn signed_by_greeter(file: &[u8]) -> bool {
    if file.len() < TRAILER {
        return false;
    }
    let (body, trailer) = file.split_at(file.len() - TRAILER);
    let hash = blake3::hash(body);
    trailer[..32] == *hash.as_bytes()
        && trailer[32..] == greeter().sign(BUNDLE_DOMAIN, hash.as_bytes())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let creator = greeter().id();
    if mode % 2 == 0 {
        let mut items = 0usize;
        let r = read_bundle(
            Cursor::new(rest),
            rest.len() as u64,
            ORG,
            |d| *d == creator,
            |_| {
                items += 1;
                Ok(())
            },
        );
        if items > 0 || r.is_ok() {
            assert!(
                signed_by_greeter(rest),
                "items came out of a bundle that is not signed"
            );
        }
    } else if let Ok((receipt, hash)) = read_receipt(rest, ORG, |d| *d == creator) {
        assert_eq!(hash, *blake3::hash(rest).as_bytes());
        let mut again = Vec::new();
        write_receipt(&mut again, &greeter(), &receipt).expect("a read receipt re-writes");
        let (back, _) = read_receipt(&again, ORG, |d| *d == creator).expect("and reads again");
        assert_eq!(back, receipt, "read -> write -> read is the identity");
    }
});
