//! Fuzz target: the network message codec: the one-way message framing (`net::read_message`, what
//! `/cloison/msg/1` reads from a peer's stream) and the sync messages inside
//! (`sync::Msg::decode`; relay messages, told apart by `relay::wire::is_relay_msg`, have their
//! own target).
//!
//! The input is a peer's stream. Framing: a typed error, or the announced bytes, and then the
//! stream was exactly `len || bytes`. A sync message that decodes encodes to a message that
//! decodes to the same value, no longer than the input (postcard reads over-long integers
//! but writes the shortest form).
#![no_main]

use cloison_node::net::{DEFAULT_MAX_MESSAGE, read_message};
use cloison_node::relay::wire::is_relay_msg;
use cloison_node::sync::Msg;
use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;

fn check_msg(bytes: &[u8]) {
    if let Ok(m) = Msg::decode(bytes) {
        let again = m.encode();
        assert!(
            again.len() <= bytes.len(),
            "re-encoding never grows a message"
        );
        assert_eq!(
            Msg::decode(&again).expect("a decoded message re-decodes"),
            m
        );
    }
}

fuzz_target!(|data: &[u8]| {
    match block_on(read_message(&mut Cursor::new(data), DEFAULT_MAX_MESSAGE)) {
        Ok(body) => {
            assert_eq!(data.len(), 4 + body.len(), "the whole stream was one frame");
            assert_eq!(&data[4..], body.as_slice());
            if !is_relay_msg(&body) {
                check_msg(&body);
            }
        }
        Err(_) => {
            // Also the message alone, without framing: most inputs fail the framing.
            if !is_relay_msg(data) {
                check_msg(data);
            }
        }
    }
});
