//! Fuzz target: blocks (`seal::check_block`, `seal::open_block`, the padding `seal::pad::unpad`).
//!
//! The first byte picks the mode. Mode 0: the rest is a block received under its own id; the
//! checks without a key and the opening with the frozen vector's chunk key give typed errors,
//! never a panic, and a block refused without the key is refused with it; under any other id it
//! is refused. Mode 1: the rest is
//! a padded plaintext as the AEAD would hand it to `unpad`, which must name a length within it.
//! Mode 2: the rest is a chunk; sealing it (the encoder) and opening the block (the decoder) gives
//! it back, and the block passes `check_block` under its id.
#![no_main]

use cloison_node::seal::block::MAX_CHUNK;
use cloison_node::seal::pad::unpad;
use cloison_node::seal::{BlockId, ChunkKey, ConvergenceSecret, check_block, open_block};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let id = BlockId::of(rest);
            let checked = check_block(rest, &id);
            let key = ChunkKey::from_bytes(&[0x11; 32]);
            let opened = open_block(rest, &id, &key);
            if let Err(e) = &checked {
                assert!(
                    opened.is_err(),
                    "open_block checks what check_block checks: {e}"
                );
            }
            let mut other = id;
            other.0[0] ^= 1;
            assert!(
                check_block(rest, &other).is_err(),
                "a block never passes under another id"
            );
            assert!(open_block(rest, &other, &key).is_err());
        }
        1 => {
            if let Ok(n) = unpad(rest) {
                assert!(n <= rest.len(), "unpad names a length inside the buffer");
            }
        }
        _ => {
            let chunk = &rest[..rest.len().min(MAX_CHUNK)];
            let secret = ConvergenceSecret::from_bytes(&[0x11; 32]);
            let sealed = secret
                .seal_chunk(chunk, 0)
                .expect("a chunk within bounds seals");
            check_block(&sealed.bytes, &sealed.id).expect("a sealed block passes its checks");
            let back = open_block(&sealed.bytes, &sealed.id, &sealed.key).expect("and opens");
            assert_eq!(back, chunk, "seal -> open is the identity");
        }
    }
});
