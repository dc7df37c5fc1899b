//! Fuzz target: relay wire messages (`relay::wire::RelayMsg::decode`).
//!
//! A message that decodes re-encodes to a message that decodes to the same value and is no
//! longer than the input (postcard reads over-long integers, writes the shortest); bytes outside
//! the relay family are refused as such.
#![no_main]

use cloison_node::relay::wire::{RelayMsg, RelayWireError, is_relay_msg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match RelayMsg::decode(data) {
        Ok(m) => {
            assert!(is_relay_msg(data));
            let again = m.encode();
            assert!(
                again.len() <= data.len(),
                "re-encoding never grows a message"
            );
            assert_eq!(RelayMsg::decode(&again).expect("re-decodes"), m);
        }
        Err(RelayWireError::NotRelay) => assert!(!is_relay_msg(data)),
        Err(_) => {}
    }
});
