//! Fuzz target: invitation tokens (`enroll::Token::decode` of the typed string,
//! `Token::from_bytes` of its bytes).
//!
//! The first byte picks the mode. Mode 0: the rest, as text, is what a person pasted; a token that
//! decodes must encode to a string that decodes to the same token. Mode 1: the rest is a token's
//! bytes; the format is canonical, so bytes that parse are exactly `to_bytes` of the token, and
//! its string form decodes back to it.
#![no_main]

use cloison_node::enroll::Token;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(s) = std::str::from_utf8(rest) else {
            return;
        };
        if let Ok(t) = Token::decode(s) {
            let again = t.encode().expect("a decoded token encodes");
            assert_eq!(Token::decode(&again).expect("and decodes"), t);
        }
    } else if let Ok(t) = Token::from_bytes(rest) {
        assert_eq!(
            t.to_bytes().expect("a parsed token encodes"),
            rest,
            "canonical bytes"
        );
        let s = t.encode().expect("encodes");
        assert_eq!(Token::decode(&s).expect("its string decodes"), t);
    }
});
