//! Fuzz target: the online greeting (`/cloison/greet/1`): `enroll::Packet`, `Claim` and
//! `GreetMsg` decoding, and both sides of the handshake fed hostile packets.
//!
//! The first byte picks the mode. 0: a packet; `Packet::encode` of a decoded packet gives the same
//! bytes (the framing is canonical). 1: a claim; re-encoded, it decodes to the same claim. 2: a
//! greeting message; same. 3: the greeter answers a hostile `Hello` (the fixtures' invitation). 4:
//! the claimer reads a hostile reply to its real `Hello`. 5: the greeter reads a hostile last
//! handshake message after a real `Hello`. 6: after a real handshake, the greeter's session opens
//! a hostile packet. A refused packet gives a typed error; the sides' state is consumed by value,
//! so a refusal leaves nothing half-done behind.
#![no_main]

use cloison_fuzz::{ORG, claim, claimer, greeter, token};
use cloison_node::enroll::{Claim, Claimer, GreetMsg, Greeter, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let t = token();
    match mode % 7 {
        0 => {
            if let Ok(p) = Packet::decode(rest) {
                assert_eq!(p.encode(), rest, "decode -> encode gives the same bytes");
            }
        }
        1 => {
            if let Ok(c) = Claim::decode(rest) {
                let again = c.encode().expect("a decoded claim encodes");
                assert_eq!(Claim::decode(&again).expect("and decodes"), c);
            }
        }
        2 => {
            if let Ok(m) = GreetMsg::decode(rest) {
                let again = m.encode().expect("a decoded message encodes");
                assert_eq!(GreetMsg::decode(&again).expect("and decodes"), m);
            }
        }
        3 => {
            let _ = Greeter::respond(&ORG, &t.secret, &greeter(), claimer().id(), [4; 32], rest);
        }
        4 => {
            let (c, _hello) = Claimer::start(&t, &claimer(), [3; 32]).expect("starts");
            let _ = c.finish(rest, &claim());
        }
        5 => {
            let (_, hello) = Claimer::start(&t, &claimer(), [3; 32]).expect("starts");
            let (g, _) =
                Greeter::respond(&ORG, &t.secret, &greeter(), claimer().id(), [4; 32], &hello)
                    .expect("the greeter answers a real hello");
            if let Ok((_, got)) = g.finish(rest) {
                assert_eq!(
                    got.device,
                    claimer().id(),
                    "only the handshake's claimer gets in"
                );
            }
        }
        _ => {
            let (c, hello) = Claimer::start(&t, &claimer(), [3; 32]).expect("starts");
            let (g, reply) =
                Greeter::respond(&ORG, &t.secret, &greeter(), claimer().id(), [4; 32], &hello)
                    .expect("answers");
            let (_, last) = c.finish(&reply, &claim()).expect("the claimer finishes");
            let (mut gs, _) = g.finish(&last).expect("the greeter finishes");
            let _ = gs.open(rest);
        }
    }
});
