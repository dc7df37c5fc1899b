//! Tests of the air-gapped files: the exchange both ways, commit before reveal against a token
//! holder who substitutes a request (issue 15 item 9), version 1 refused as such, and frozen
//! vectors (`enroll/vectors/offline_v2.txt`).

use super::*;
use crate::enroll::tests::{claim, keys, token};
use crate::enroll::{Secret32, Welcome};
use crate::trust::UserId;

/// A challenge drawn "after" the request, deterministically for the tests.
fn challenge(i: u64) -> Challenge {
    let d = blake3::hash(&i.to_le_bytes());
    let mut r = [0u8; 8];
    r.copy_from_slice(&d.as_bytes()[..8]);
    Challenge::from_random(r)
}

#[test]
fn offline_files_carry_the_same_exchange() {
    let t = token([5; 16]);
    let c = keys(2);
    let (oc, request) = OfflineClaimer::request(&t, &claim(&c), [5; 32]).unwrap();
    // The claimer rebuilds the same state from the same seed.
    let (again, request2) = OfflineClaimer::request(&t, &claim(&c), [5; 32]).unwrap();
    assert_eq!(request, request2);
    let nb = challenge(1);
    assert_eq!(oc.code(&nb), again.code(&nb));
    let (og, got) = OfflineGreeter::open(&t.org, &t.greeter, &t.secret, &request, [6; 32]).unwrap();
    assert_eq!(got, claim(&c));
    assert_eq!(og.claimer_code(&nb), oc.code(&nb));
    let w = GreetMsg::Welcome(Box::new(Welcome {
        user: UserId([1; 16]),
        org_key: Secret32([2; 32]),
        user_keys: vec![],
        entries: (0..200).map(|i| vec![i as u8; 1000]).collect(),
        peers: vec![],
    }));
    let (answer, gcode) = og.answer(&w).unwrap();
    let (ccode, msg) = again.read_answer(&answer).unwrap();
    assert_eq!(gcode, ccode);
    assert_eq!(msg, w);
    // A request opened with another secret fails; a truncated answer fails.
    let other = InvitationSecret::from_bytes([6; 16]);
    assert!(OfflineGreeter::open(&t.org, &t.greeter, &other, &request, [6; 32]).is_err());
    assert!(oc.read_answer(&answer[..answer.len() - 1]).is_err());
    assert!(request_header(b"CLOISONQ").is_err());
}

#[test]
fn challenges_parse_six_digits_only() {
    assert_eq!(Challenge::parse(" 012-345\n").unwrap().as_str(), "012345");
    assert!(Challenge::parse("12345").is_err());
    assert!(Challenge::parse("1234567").is_err());
    assert!(Challenge::parse("").is_err());
    assert_eq!(Challenge::from_random([0; 8]).as_str(), "000000");
    assert_eq!(challenge(3).as_str().len(), 6);
}

/// Issue 15 item 9. An attacker holds the token, intercepts the claimer's request and puts its
/// own (its own device, hence its own keys) in its place. In version 1 the claimer's code was
/// a function of the request alone, so the attacker, who can open the intercepted request with
/// the token, knew the code and could grind substitutes until one had it: shown here on half
/// the digits (a bounded number of tries; all six take about a million, minutes of CPU). Now the
/// code also depends on the challenge the greeter draws after reading the request it will sign
/// for: every substitute is fixed before its challenge exists, and matches the real claimer's
/// code at the rate of an independent 6-digit guess.
#[test]
fn a_substituted_request_cannot_be_ground_to_the_claimers_code() {
    const TRIES: u64 = 20_000;
    let t = token([5; 16]);
    let (real, request) = OfflineClaimer::request(&t, &claim(&keys(2)), [5; 32]).unwrap();
    // The attacker opens the intercepted request with the token: the old code is its hash's.
    let (seen, _) = OfflineGreeter::open(&t.org, &t.greeter, &t.secret, &request, [0; 32]).unwrap();
    assert_eq!(seen.h1, real.h1);
    let old_code = |h1: &[u8]| Codes::from_hash(h1).claimer;
    let target = old_code(&real.h1);
    let mine = claim(&keys(66));
    let mut subs = Vec::new();
    let mut first_old_match = None;
    for i in 0..TRIES {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&i.to_le_bytes());
        let (sub, _) = OfflineClaimer::request(&t, &mine, seed).unwrap();
        if first_old_match.is_none() && old_code(&sub.h1)[..3] == target[..3] {
            first_old_match = Some(i);
        }
        subs.push(sub.h1);
    }
    let found = first_old_match.expect("half the old code is ground in 20,000 tries");
    // That substitute is a request the greeter accepts, for the attacker's device.
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&found.to_le_bytes());
    let (_, forged) = OfflineClaimer::request(&t, &mine, seed).unwrap();
    let (_, got) = OfflineGreeter::open(&t.org, &t.greeter, &t.secret, &forged, [0; 32]).unwrap();
    assert_eq!(got.device, keys(66).id());

    // The new code is a function of the challenge: one request, a thousand challenges, nearly a
    // thousand codes.
    let codes: std::collections::BTreeSet<String> =
        (0..1000).map(|j| real.code(&challenge(j))).collect();
    assert!(codes.len() > 990, "{} distinct codes", codes.len());

    // Each substitute meets a challenge drawn after it: no match in 20,000 tries (one expected
    // in a million).
    let per_try = subs
        .iter()
        .enumerate()
        .filter(|(i, h1)| {
            let nb = challenge(1_000_000 + *i as u64);
            claimer_code(h1, &nb) == real.code(&nb)
        })
        .count();
    assert_eq!(per_try, 0);
    // And the rate over a million (substitute, challenge) pairs is about one in a million:
    // which substitute the attacker sends does not matter, since it cannot know the challenge.
    let nbs: Vec<Challenge> = (0..50).map(|j| challenge(2_000_000 + j)).collect();
    let real_codes: Vec<String> = nbs.iter().map(|nb| real.code(nb)).collect();
    let mut pairs = 0u64;
    let mut matches = 0u64;
    for h1 in &subs {
        for (nb, rc) in nbs.iter().zip(&real_codes) {
            pairs += 1;
            matches += u64::from(claimer_code(h1, nb) == *rc);
        }
    }
    assert_eq!(pairs, 1_000_000);
    assert!(matches <= 8, "{matches} matches in {pairs} pairs");
}

#[test]
fn version_1_files_are_refused_as_such() {
    let v1 = hex::decode(vector("v1_request")).unwrap();
    assert_eq!(v1[8], 1);
    assert_eq!(request_header(&v1), Err(EnrollError::OldOffline("request")));
    let t = token([5; 16]);
    let err = OfflineGreeter::open(&t.org, &t.greeter, &t.secret, &v1, [6; 32]).err();
    assert_eq!(err, Some(EnrollError::OldOffline("request")));
    assert!(
        err.unwrap().to_string().contains("older cloison"),
        "a clear message"
    );
    let (oc, request) = OfflineClaimer::request(&t, &claim(&keys(2)), [5; 32]).unwrap();
    let (og, _) = OfflineGreeter::open(&t.org, &t.greeter, &t.secret, &request, [6; 32]).unwrap();
    let (mut answer, _) = og.answer(&GreetMsg::Ready).unwrap();
    answer[8] = 1;
    assert_eq!(
        oc.read_answer(&answer).err(),
        Some(EnrollError::OldOffline("answer"))
    );
    let mut unknown = request.clone();
    unknown[8] = 9;
    assert!(matches!(
        request_header(&unknown),
        Err(EnrollError::Malformed(_))
    ));
}

const VECTORS: &str = include_str!("vectors/offline_v2.txt");

fn vector(name: &str) -> &'static str {
    crate::enroll::tests::vector_in(VECTORS, name)
}

fn actual_vectors() -> Vec<(&'static str, String)> {
    let t = token([5; 16]);
    let (oc, request) = OfflineClaimer::request(&t, &claim(&keys(2)), [5; 32]).unwrap();
    let (og, _) = OfflineGreeter::open(&t.org, &t.greeter, &t.secret, &request, [6; 32]).unwrap();
    let nb = Challenge::from_random([7; 8]);
    let gc = og.claimer_code(&nb);
    let (answer, greeter_code) = og
        .answer(&GreetMsg::Abort {
            reason: "vector".into(),
        })
        .unwrap();
    vec![
        ("request", hex::encode(&request)),
        ("challenge", nb.as_str().to_owned()),
        ("claimer_code", oc.code(&nb)),
        ("greeter_side_claimer_code", gc),
        ("answer", hex::encode(&answer)),
        ("greeter_code", greeter_code),
    ]
}

/// `CLOISON_WRITE_VECTORS=1` rewrites the vector file (only when a format changes on purpose);
/// `v1_request` (a version 1 request, refused) is kept as it was.
#[test]
fn frozen_offline_vectors() {
    if std::env::var_os("CLOISON_WRITE_VECTORS").is_some() {
        let mut out = String::from(
            "# Frozen vectors of the air-gapped files, version 2 (node/src/enroll/offline_tests.rs).\n",
        );
        for (k, v) in actual_vectors() {
            out += &format!("{k} = {v}\n");
        }
        out += &format!("v1_request = {}\n", vector("v1_request"));
        std::fs::write(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/enroll/vectors/offline_v2.txt"
            ),
            out,
        )
        .unwrap();
        return;
    }
    for (k, v) in actual_vectors() {
        assert_eq!(v, vector(k), "vector {k}");
    }
    assert_eq!(vector("claimer_code"), vector("greeter_side_claimer_code"));
}
