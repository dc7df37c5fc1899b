//! Fuzz target: the items of a bundle (`bundle::read_bundle`'s second pass).
//!
//! The input is the item stream of a bundle (kind, length, body, ..., `0`); the target frames it
//! with a real header and a valid trailer signed by the fixture device, so the hostile bytes
//! reach the item parser that only signed content reaches. A bundle that reads must be what
//! `BundleWriter` writes for the same header and items, byte for byte (the framing is
//! canonical); one that is refused gives a typed error and never an item past the refusal.
#![no_main]

use std::io::Cursor;

use cloison_fuzz::{ORG, bundle_header, greeter};
use cloison_node::bundle::format::BUNDLE_DOMAIN;
use cloison_node::bundle::{BundleWriter, read_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = greeter();
    // The header's bytes as the writer frames them: an empty bundle minus its end mark and trailer.
    let empty = BundleWriter::new(Vec::new(), &bundle_header())
        .and_then(|w| w.finish(&keys))
        .expect("an empty bundle writes");
    let mut file = empty[..empty.len() - 1 - 96].to_vec();
    file.extend_from_slice(data);
    let hash = blake3::hash(&file);
    file.extend_from_slice(hash.as_bytes());
    file.extend_from_slice(&keys.sign(BUNDLE_DOMAIN, hash.as_bytes()));

    let mut items = Vec::new();
    let r = read_bundle(
        Cursor::new(&file),
        file.len() as u64,
        ORG,
        |d| *d == keys.id(),
        |i| {
            items.push(i);
            Ok(())
        },
    );
    if let Ok((h, counts)) = r {
        assert_eq!(h, bundle_header());
        assert_eq!(counts.iter().sum::<u64>() as usize, items.len());
        let mut w = BundleWriter::new(Vec::new(), &bundle_header()).expect("header writes");
        for i in &items {
            w.item(i).expect("a read item writes");
        }
        let again = w.finish(&keys).expect("finishes");
        assert_eq!(again, file, "read -> write gives the same bytes");
    }
});
