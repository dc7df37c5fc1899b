//! Fuzz target: the air-gapped greeting files (`enroll::offline`): request files as the greeter
//! reads them, answer files as the claimer reads them, and the typed challenge.
//!
//! The first byte picks the mode. 0: a request file opened by the fixtures' greeter
//! (`request_header` then `OfflineGreeter::open`); a request that opens names, in its header, the
//! device of its claim. 1: an answer file read by the claimer of the fixtures' real request.
//! 2: the challenge as typed (`Challenge::parse`): one that parses reads back as the same text.
//! Hostile files give typed errors.
#![no_main]

use cloison_fuzz::{claim, token};
use cloison_node::enroll::offline::request_header;
use cloison_node::enroll::{Challenge, OfflineClaimer, OfflineGreeter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let t = token();
    match mode % 3 {
        0 => {
            let header = request_header(rest);
            if let Ok((_, got)) = OfflineGreeter::open(&t.org, &t.greeter, &t.secret, rest, [6; 32])
            {
                let (_, dev) = header.expect("an opened request has a header");
                assert_eq!(got.device, dev, "the claim is the header's device's");
            }
        }
        1 => {
            let (c, _) =
                OfflineClaimer::request(&t, &claim(), [5; 32]).expect("the request writes");
            let _ = c.read_answer(rest);
        }
        _ => {
            if let Ok(s) = std::str::from_utf8(rest)
                && let Ok(ch) = Challenge::parse(s)
            {
                assert_eq!(
                    Challenge::parse(ch.as_str()).expect("reparses").as_str(),
                    ch.as_str()
                );
            }
        }
    }
});
