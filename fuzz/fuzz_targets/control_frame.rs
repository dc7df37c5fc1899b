//! Fuzz target: control-socket frames (`control::wire`): a request as the daemon reads it from a
//! local client (`read_body` + `decode_body::<RequestFrame>`, here the blocking `read_frame`,
//! which shares the length check and the decoder) and an answer as the client reads it
//! (`read_frame::<Frame>`).
//!
//! The first byte picks the side. A frame that reads is written back by `write_frame` to a frame
//! that reads to the same value. A length over `MAX_FRAME` is refused before allocation.
#![no_main]

use std::io::Cursor;

use cloison_node::control::wire::{WireError, read_frame, write_frame};
use cloison_node::control::{Frame, MAX_FRAME, RequestFrame};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    match read_frame::<T>(&mut Cursor::new(data)) {
        Ok(v) => {
            let mut out = Vec::new();
            write_frame(&mut out, &v).expect("a read frame writes");
            let back: T = read_frame(&mut Cursor::new(&out)).expect("and reads again");
            assert_eq!(back, v, "read -> write -> read is the identity");
        }
        Err(WireError::TooLarge(n)) => assert!(n > MAX_FRAME),
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&side, rest)) = data.split_first() else {
        return;
    };
    if side % 2 == 0 {
        check::<RequestFrame>(rest);
    } else {
        check::<Frame>(rest);
    }
});
