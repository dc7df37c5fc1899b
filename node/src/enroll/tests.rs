//! Tests of the enrolment core: token round trips and refusals, the handshake on both sides,
//! a wrong PSK, codes, packet bounds, and frozen vectors (`enroll/vectors/`). The air-gapped
//! files are tested in `offline_tests.rs`.

use super::*;
use crate::trust::{DeviceId, DeviceKeys, OrgId, UserId};

pub(super) fn keys(seed: u8) -> DeviceKeys {
    DeviceKeys::from_secrets(&[seed; 32], &[seed.wrapping_add(100); 32])
}

pub(super) fn token(secret: [u8; 16]) -> Token {
    Token {
        org: OrgId([7; 32]),
        greeter: keys(1).id(),
        secret: InvitationSecret::from_bytes(secret),
        addrs: vec![
            "/ip4/127.0.0.1/tcp/4001".into(),
            "/ip4/10.0.0.2/tcp/4001".into(),
        ],
    }
}

pub(super) fn claim(d: &DeviceKeys) -> Claim {
    Claim {
        device: d.id(),
        exchange_key: d.exchange_public(),
        device_label: "bob-laptop".into(),
        user: Some(NewUser {
            name: "Bob".into(),
            user_key: [9; 32],
        }),
        pop: vec![7; 64],
    }
}

/// Runs the handshake; returns both sessions and the claim the greeter read.
fn handshake(
    t: &Token,
    greeter_secret: &InvitationSecret,
) -> Result<(Session, Session, Claim), EnrollError> {
    let g = keys(1);
    let c = keys(2);
    let (claimer, hello) = Claimer::start(t, &c, [3; 32])?;
    let (greeter, reply) = Greeter::respond(&t.org, greeter_secret, &g, c.id(), [4; 32], &hello)?;
    let (cs, last) = claimer.finish(&reply, &claim(&c))?;
    let (gs, got) = greeter.finish(&last)?;
    Ok((cs, gs, got))
}

#[test]
fn token_round_trips_and_ignores_whitespace() {
    let t = token([5; 16]);
    let s = t.encode().unwrap();
    assert_eq!(Token::decode(&s).unwrap(), t);
    let split = format!("{}\n  {}", &s[..20], &s[20..]);
    assert_eq!(Token::decode(&split).unwrap(), t);
}

#[test]
fn token_refuses_typos_truncation_and_junk() {
    let s = token([5; 16]).encode().unwrap();
    let mut typo: Vec<char> = s.chars().collect();
    typo[10] = if typo[10] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();
    assert!(matches!(Token::decode(&typo), Err(EnrollError::Token(_))));
    assert!(Token::decode(&s[..s.len() - 3]).is_err());
    assert!(Token::decode("").is_err());
    assert!(Token::decode("0OIl").is_err());
    assert!(Token::decode(&"z".repeat(5000)).is_err());
    let mut t = token([5; 16]);
    t.addrs = vec!["x".repeat(200)];
    assert!(t.encode().is_err());
}

#[test]
fn secrets_never_print() {
    let t = token([0xAB; 16]);
    let dbg = format!("{t:?}");
    assert!(
        !dbg.contains("171") && !dbg.to_lowercase().contains("abab"),
        "{dbg}"
    );
    assert_eq!(format!("{:?}", Secret32([1; 32])), "Secret32(..)");
}

#[test]
fn handshake_gives_both_sides_the_same_codes_and_the_claim() {
    let t = token([5; 16]);
    let (cs, gs, got) = handshake(&t, &t.secret).unwrap();
    assert_eq!(cs.codes(), gs.codes());
    assert_ne!(cs.codes().greeter, cs.codes().claimer);
    assert_eq!(got, claim(&keys(2)));
}

#[test]
fn transport_messages_cross_both_ways_even_large_ones() {
    let t = token([5; 16]);
    let (mut cs, mut gs, _) = handshake(&t, &t.secret).unwrap();
    let p = gs.seal(&GreetMsg::Ready).unwrap();
    assert_eq!(cs.open(&p).unwrap(), GreetMsg::Ready);
    let w = GreetMsg::Welcome(Box::new(Welcome {
        user: UserId([1; 16]),
        org_key: Secret32([2; 32]),
        user_keys: vec![(0, vec![3; 80])],
        entries: (0..400).map(|i| vec![i as u8; 1000]).collect(),
        peers: vec!["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW".into()],
    }));
    let p = gs.seal(&w).unwrap();
    assert_eq!(cs.open(&p).unwrap(), w);
    let p = cs.seal(&GreetMsg::Stored).unwrap();
    assert_eq!(gs.open(&p).unwrap(), GreetMsg::Stored);
    // Replaying a packet fails (nonces moved on).
    assert!(gs.open(&p).is_err());
}

#[test]
fn a_wrong_secret_fails_on_the_greeter() {
    let t = token([5; 16]);
    // Same id (the claimer names the invitation) but the greeter holds another secret: the
    // greeter refuses the hello as not for this invitation.
    let other = InvitationSecret::from_bytes([6; 16]);
    assert!(handshake(&t, &other).is_err());
    // A claimer that guessed the id but not the secret: the PSK check fails at message 3.
    let g = keys(1);
    let c = keys(2);
    let mut forged = token([6; 16]);
    forged.secret = InvitationSecret::from_bytes([6; 16]);
    let (claimer, hello) = Claimer::start(&forged, &c, [3; 32]).unwrap();
    let hello = match Packet::decode(&hello).unwrap() {
        Packet::Hello { noise, .. } => Packet::Hello {
            id: t.secret.id(),
            noise,
        }
        .encode(),
        _ => unreachable!(),
    };
    let (greeter, reply) =
        Greeter::respond(&t.org, &t.secret, &g, c.id(), [4; 32], &hello).unwrap();
    let (_, last) = claimer.finish(&reply, &claim(&c)).unwrap();
    assert_eq!(greeter.finish(&last).err(), Some(EnrollError::Noise));
}

#[test]
fn the_prologue_binds_the_claimer_device() {
    let t = token([5; 16]);
    let g = keys(1);
    let c = keys(2);
    let (claimer, hello) = Claimer::start(&t, &c, [3; 32]).unwrap();
    // The greeter sees another peer id on the transport than the claimer put in its prologue.
    // (psk3 keys message 1 already, so the greeter fails reading it.)
    match Greeter::respond(&t.org, &t.secret, &g, keys(3).id(), [4; 32], &hello) {
        Err(e) => assert_eq!(e, EnrollError::Noise),
        Ok((greeter, reply)) => match claimer.finish(&reply, &claim(&c)) {
            Err(_) => {}
            Ok((_, last)) => assert!(greeter.finish(&last).is_err()),
        },
    }
}

#[test]
fn a_claim_with_keys_other_than_the_handshake_is_refused() {
    let t = token([5; 16]);
    let g = keys(1);
    let c = keys(2);
    let (claimer, hello) = Claimer::start(&t, &c, [3; 32]).unwrap();
    let (greeter, reply) =
        Greeter::respond(&t.org, &t.secret, &g, c.id(), [4; 32], &hello).unwrap();
    let mut bad = claim(&c);
    bad.exchange_key = [1; 32];
    let (_, last) = claimer.finish(&reply, &bad).unwrap();
    assert!(matches!(
        greeter.finish(&last),
        Err(EnrollError::Malformed(_))
    ));
}

#[test]
fn codes_normalize_and_choices_hold_the_right_one() {
    assert!(code_matches(" 123-456\n", "123456"));
    assert!(!code_matches("123457", "123456"));
    let ch = code_choices("123456", [1; 32]);
    assert_eq!(ch.len(), 4);
    assert!(ch.contains(&"123456".to_owned()));
}

#[test]
fn packets_are_bounded_and_exact() {
    assert!(Packet::decode(&[]).is_err());
    assert!(Packet::decode(&[2, 2, 0, 1, 0]).is_err());
    assert!(Packet::decode(&[1, 2]).is_err());
    assert!(Packet::decode(&[1, 2, 0, 5, 1]).is_err());
    assert!(Packet::decode(&[1, 3, 9]).is_err());
    assert!(Packet::decode(&[1, 1, 0]).is_err());
    assert_eq!(
        Packet::decode(&[1, 3, 2]).unwrap(),
        Packet::Refused(RefuseStatus::Expired)
    );
    let mut huge = vec![1, 2];
    for _ in 0..(msg::MAX_FRAMES + 1) {
        huge.extend_from_slice(&[0, 0]);
    }
    assert!(Packet::decode(&huge).is_err());
    assert!(GreetMsg::decode(&[1, 0, 0]).is_err());
    assert!(Claim::decode(&[2]).is_err());
}

const VECTORS: &str = include_str!("vectors/greet_v2.txt");

/// The frozen vector `name` of a vector file's text (lines `name = value`).
pub(super) fn vector_in(file: &'static str, name: &str) -> &'static str {
    file.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no vector {name}"))
}

fn vector(name: &str) -> &'static str {
    vector_in(VECTORS, name)
}

fn actual_vectors() -> Vec<(&'static str, String)> {
    let t = token([5; 16]);
    let (claimer, hello) = Claimer::start(&t, &keys(2), [3; 32]).unwrap();
    let (_, reply) =
        Greeter::respond(&t.org, &t.secret, &keys(1), keys(2).id(), [4; 32], &hello).unwrap();
    let (mut cs, last) = claimer.finish(&reply, &claim(&keys(2))).unwrap();
    vec![
        ("token", t.encode().unwrap()),
        ("invitation_id", hex::encode(t.secret.id().0)),
        ("psk", hex::encode(*t.secret.psk())),
        ("hello", hex::encode(&hello)),
        ("reply", hex::encode(&reply)),
        ("claim", hex::encode(&last)),
        ("greeter_code", cs.codes().greeter.clone()),
        ("claimer_code", cs.codes().claimer.clone()),
        ("confirm", hex::encode(cs.seal(&GreetMsg::Confirm).unwrap())),
        (
            "abort",
            hex::encode(GreetMsg::Abort { reason: "x".into() }.encode().unwrap()),
        ),
    ]
}

/// `CLOISON_WRITE_VECTORS=1` rewrites the vector file (only when a format changes on purpose).
#[test]
fn frozen_vectors() {
    if std::env::var_os("CLOISON_WRITE_VECTORS").is_some() {
        let mut out =
            String::from("# Frozen vectors of the greeting formats (node/src/enroll/tests.rs).\n");
        for (k, v) in actual_vectors() {
            out += &format!("{k} = {v}\n");
        }
        std::fs::write(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/enroll/vectors/greet_v2.txt"
            ),
            out,
        )
        .unwrap();
        return;
    }
    for (k, v) in actual_vectors() {
        assert_eq!(v, vector(k), "vector {k}");
    }
    let t = token([5; 16]);
    assert_eq!(t.encode().unwrap(), vector("token"));
    assert_eq!(hex::encode(t.secret.id().0), vector("invitation_id"));
    assert_eq!(hex::encode(*t.secret.psk()), vector("psk"));
    let (claimer, hello) = Claimer::start(&t, &keys(2), [3; 32]).unwrap();
    assert_eq!(hex::encode(&hello), vector("hello"));
    let (greeter, reply) =
        Greeter::respond(&t.org, &t.secret, &keys(1), keys(2).id(), [4; 32], &hello).unwrap();
    assert_eq!(hex::encode(&reply), vector("reply"));
    let (mut cs, last) = claimer.finish(&reply, &claim(&keys(2))).unwrap();
    assert_eq!(hex::encode(&last), vector("claim"));
    let (_, got) = greeter.finish(&last).unwrap();
    assert_eq!(got, claim(&keys(2)));
    assert_eq!(cs.codes().greeter, vector("greeter_code"));
    assert_eq!(cs.codes().claimer, vector("claimer_code"));
    assert_eq!(
        hex::encode(cs.seal(&GreetMsg::Confirm).unwrap()),
        vector("confirm")
    );
    assert_eq!(
        hex::encode(GreetMsg::Abort { reason: "x".into() }.encode().unwrap()),
        vector("abort")
    );
    let _ = DeviceId([0; 32]);
}

#[test]
fn greeting_messages_are_version_2_and_bound_the_welcomes_peers() {
    use super::msg::{GREET_MSG_V2, MAX_PEER_ADDR, MAX_WELCOME_PEERS};
    let b = GreetMsg::Confirm.encode().unwrap();
    assert_eq!(b[0], GREET_MSG_V2);
    // A version-1 message (an older cloison) is refused by name.
    let mut v1 = b.clone();
    v1[0] = 0x01;
    let e = GreetMsg::decode(&v1).unwrap_err().to_string();
    assert!(e.contains("older cloison"), "{e}");
    let welcome = |peers: Vec<String>| {
        GreetMsg::Welcome(Box::new(Welcome {
            user: UserId([1; 16]),
            org_key: Secret32([2; 32]),
            user_keys: vec![],
            entries: vec![],
            peers,
        }))
    };
    let ok = welcome(vec!["a".repeat(MAX_PEER_ADDR); MAX_WELCOME_PEERS]);
    assert_eq!(GreetMsg::decode(&ok.encode().unwrap()).unwrap(), ok);
    for bad in [
        welcome(vec!["a".into(); MAX_WELCOME_PEERS + 1]),
        welcome(vec!["a".repeat(MAX_PEER_ADDR + 1)]),
    ] {
        assert!(GreetMsg::decode(&bad.encode().unwrap()).is_err());
    }
}
