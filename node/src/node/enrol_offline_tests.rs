//! Tests of air-gapped enrolment on nodes, without files or processes: the greeter's challenge,
//! a wrong code burning the invitation, and answers from anyone but the token's greeter
//! refused by `Node::join` (issue 15 item 9).

use std::path::Path;

use super::*;
use crate::enroll::{NewUser, OfflineClaimer, Welcome};
use crate::node::enrol::tests::{PASS, admin, user_invite};
use crate::node::{KEY_FILE, STORE_FILE};
use crate::trust::Profile;

/// A new user's claim on `token`, and the request file for it.
struct Newcomer {
    device: DeviceKeys,
    claim: Claim,
    secret: UserSecret,
    claimer: OfflineClaimer,
    request: Vec<u8>,
}

fn newcomer(token: &Token) -> Newcomer {
    let device = DeviceKeys::generate(&mut rand::rng());
    let secret = UserSecret::generate(0, &mut rand::rng());
    let claim = Claim::new(
        &device,
        &token.org,
        &token.greeter,
        "olga-pc".into(),
        Some(NewUser {
            name: "Olga".into(),
            user_key: secret.public(),
        }),
    );
    let (claimer, request) = OfflineClaimer::request(token, &claim, [1; 32]).unwrap();
    Newcomer {
        device,
        claim,
        secret,
        claimer,
        request,
    }
}

fn invite(a: &mut Node, email: &str) -> (String, Token) {
    let info = a
        .create_invitation(&user_invite(email), None, vec![])
        .unwrap();
    let token = Token::decode(info.token.as_deref().unwrap()).unwrap();
    (info.id, token)
}

fn state_of(a: &Node, id: &str) -> String {
    a.invitations()
        .unwrap()
        .into_iter()
        .find(|i| i.id == id)
        .unwrap()
        .state
}

fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                ((c as u8) + 1) as char
            }
        })
        .collect()
}

#[test]
fn a_wrong_claimer_code_burns_the_invitation_offline() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = admin(dir.path());
    let (id, token) = invite(&mut a, "olga@x.example");
    let n = newcomer(&token);
    let heads = a.log().heads();
    let opened = a.offline_open(&id, &n.request).unwrap();
    let right = n.claimer.code(&opened.challenge);
    assert!(opened.choices.contains(&right));
    let ch = opened.challenge.as_str();
    assert!(matches!(
        a.offline_answer(&id, &n.request, ch, &wrong(&right))
            .unwrap(),
        OfflineOutcome::WrongCode
    ));
    assert_eq!(state_of(&a, &id), "burned");
    assert_eq!(a.log().heads(), heads, "nothing signed");
    // Burned: the right code no longer gets an answer, nor does opening again.
    assert!(matches!(
        a.offline_answer(&id, &n.request, ch, &right),
        Err(NodeError::Refused(_))
    ));
    assert!(a.offline_open(&id, &n.request).is_err());
    assert_eq!(a.log().heads(), heads);
    // A challenge that is not six digits is refused without burning anything.
    let (id2, token2) = invite(&mut a, "olga2@x.example");
    let n2 = newcomer(&token2);
    assert!(matches!(
        a.offline_answer(&id2, &n2.request, "12", "000000"),
        Err(NodeError::Invalid(_))
    ));
    assert_eq!(state_of(&a, &id2), "live");
}

/// A token holder can always answer an intercepted request (the answer is authenticated by the
/// token alone), but its answer is worth nothing: an outsider cannot certify the new device,
/// and a member other than the token's greeter (here another admin who got hold of the token)
/// certifies it in vain, since `Node::join` wants the greeter the token names. Only the real
/// answer makes a home.
#[test]
fn a_substituted_answer_gains_an_attacker_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = admin(dir.path());
    let mut mallory = a
        .provision_user(
            &dir.path().join("m"),
            PASS,
            KdfParams::TEST_ONLY,
            "Mallory",
            "mallory@x.example",
            "m",
            Profile::Admin,
        )
        .unwrap();
    let (id, token) = invite(&mut a, "olga@x.example");
    let n = newcomer(&token);
    let opened = a.offline_open(&id, &n.request).unwrap();
    let claim = opened.claim.clone();
    assert_eq!(claim, n.claim);
    let forged = |welcome: Welcome| {
        let (g, _) = OfflineGreeter::open(
            &token.org,
            &token.greeter,
            &token.secret,
            &n.request,
            [9; 32],
        )
        .unwrap();
        let (answer, _) = g.answer(&GreetMsg::Welcome(Box::new(welcome))).unwrap();
        answer
    };
    let join = |home: &Path, answer: &[u8]| {
        // The claimer's side rebuilt from its seed, as `cloison join --answer` does.
        let (claimer, _) = OfflineClaimer::request(&token, &n.claim, [1; 32]).unwrap();
        let (_, msg) = claimer.read_answer(answer).unwrap();
        let GreetMsg::Welcome(w) = msg else {
            panic!("not a welcome")
        };
        let r = Node::join(
            home,
            PASS,
            KdfParams::TEST_ONLY,
            &token,
            &n.device,
            Some(n.secret.clone()),
            &w,
        );
        if r.is_err() {
            assert!(!home.join(KEY_FILE).exists() && !home.join(STORE_FILE).exists());
        }
        r
    };

    // An outsider with the token and the organization's log (relays carry it) cannot sign a
    // certificate for the new device.
    let outsider = forged(Welcome {
        user: crate::trust::UserId([1; 16]),
        org_key: crate::enroll::Secret32([2; 32]),
        user_keys: vec![],
        entries: a.log_entry_bytes(),
        peers: vec![],
    });
    assert!(join(&dir.path().join("o1"), &outsider).is_err());

    // Another admin of the organization, holding the token, certifies the new device itself.
    let (mid, _) = invite(&mut mallory, "olga-m@x.example");
    let mrec = mallory.find_invitation(&mid).unwrap();
    let (welcome, _) = mallory.enrolment_welcome(&mrec, &claim).unwrap();
    let insider = forged(welcome);
    match join(&dir.path().join("o2"), &insider) {
        Err(NodeError::Refused(m)) => assert!(m.contains("greeter the token names"), "{m}"),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("an answer certified by another admin was accepted"),
    }

    // The greeter's own answer goes through.
    let code = n.claimer.code(&opened.challenge);
    let OfflineOutcome::Answered { answer, .. } = a
        .offline_answer(&id, &n.request, opened.challenge.as_str(), &code)
        .unwrap()
    else {
        panic!("the right code was refused")
    };
    let node = join(&dir.path().join("o3"), &answer).unwrap();
    assert!(node.state().is_active(&n.device.id()));
    assert_eq!(state_of(&a, &id), "used");
}
