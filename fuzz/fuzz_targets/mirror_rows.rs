//! Fuzz target: mirror registry rows (`store::decode_mirror_record` for the `mirrors` table,
//! `store::decode_base_entry` for `mirror_base`), read back from a store that is trusted no
//! more than the network.
//!
//! The first byte picks the table. A row that decodes re-encodes (postcard, as the store writes
//! it) to a row that decodes to the same value, no longer than the input.
#![no_main]

use cloison_node::store::{decode_base_entry, decode_mirror_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&table, row)) = data.split_first() else {
        return;
    };
    if table % 2 == 0 {
        if let Ok(r) = decode_mirror_record(row) {
            let again = postcard::to_stdvec(&r).expect("encodes");
            assert!(again.len() <= row.len());
            assert_eq!(decode_mirror_record(&again).expect("re-decodes"), r);
        }
    } else if let Ok(b) = decode_base_entry(row) {
        let again = postcard::to_stdvec(&b).expect("encodes");
        assert!(again.len() <= row.len());
        assert_eq!(decode_base_entry(&again).expect("re-decodes"), b);
    }
});
