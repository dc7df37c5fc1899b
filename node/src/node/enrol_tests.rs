//! Tests of enrolment on nodes, without the network: invitation records (sealed, bounded,
//! admin-only for users), and whole enrolments through the core's state machines between two
//! real nodes (a user, then a device of that user who receives the user key).

use std::path::Path;

use super::*;
use crate::enroll::{Claimer, GreetMsg, Greeter, NewUser};
use crate::keystore::KdfParams;
use crate::node::{InitParams, KEY_FILE, STORE_FILE};
use crate::trust::keys::{DeviceKeys, UserSecret};

pub(crate) const PASS: &[u8] = b"pass";

pub(crate) fn admin(dir: &Path) -> Node {
    Node::init(
        &dir.join("a"),
        PASS,
        KdfParams::TEST_ONLY,
        &InitParams {
            org_name: "Org-Canary",
            user_name: "Ann",
            email: "ann@x.example",
            device_label: "a",
        },
    )
    .unwrap()
}

pub(crate) fn user_invite(email: &str) -> Invitee {
    Invitee::User {
        email: email.into(),
        profile: "standard".into(),
    }
}

/// Runs the online exchange in memory; returns the claimer's new node.
pub(crate) fn enrol(
    greeter: &mut Node,
    rec: &InvitationRecord,
    home: &Path,
    name: Option<&str>,
) -> Result<Node, NodeError> {
    let token = Token {
        org: greeter.org_id(),
        greeter: greeter.device_id(),
        secret: rec.secret(),
        addrs: vec![],
    };
    let device = DeviceKeys::generate(&mut rand::rng());
    let secret = name.map(|_| UserSecret::generate(0, &mut rand::rng()));
    let claim = Claim::new(
        &device,
        &token.org,
        &token.greeter,
        "new".into(),
        name.map(|n| NewUser {
            name: n.into(),
            user_key: secret.as_ref().unwrap().public(),
        }),
    );
    let (c, hello) = Claimer::start(&token, &device, [1; 32]).unwrap();
    let gkeys = greeter.device_keys();
    let (g, reply) = Greeter::respond(
        &greeter.org_id(),
        &rec.secret(),
        &gkeys,
        device.id(),
        [2; 32],
        &hello,
    )
    .unwrap();
    let (mut cs, last) = c.finish(&reply, &claim).unwrap();
    let (mut gs, got) = g.finish(&last).unwrap();
    assert_eq!(cs.codes(), gs.codes());
    let (welcome, certs) = greeter.enrolment_welcome(rec, &got)?;
    let packet = gs.seal(&GreetMsg::Welcome(Box::new(welcome))).unwrap();
    let GreetMsg::Welcome(w) = cs.open(&packet).unwrap() else {
        panic!("not a welcome")
    };
    let node = Node::join(
        home,
        PASS,
        KdfParams::TEST_ONLY,
        &token,
        &device,
        secret,
        &w,
    )?;
    greeter.admit_enrolment(certs)?;
    Ok(node)
}

#[test]
fn invitation_records_are_sealed_bounded_and_found_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = admin(dir.path());
    let info = a
        .create_invitation(&user_invite("canary-invitee@x.example"), None, vec![])
        .unwrap();
    assert_eq!(info.state, "live");
    assert!(info.token.is_some());
    assert_eq!(info.expires_ms - info.created_ms, DEFAULT_TTL_S * 1000);
    assert!(
        a.create_invitation(&Invitee::Device, Some(0), vec![])
            .is_err()
    );
    assert!(
        a.create_invitation(&Invitee::Device, Some(MAX_TTL_S + 1), vec![])
            .is_err()
    );
    assert!(a.find_invitation(&info.id[..3]).is_err());
    let rec = a.find_invitation(&info.id[..8]).unwrap();
    a.cancel_invitation(&info.id).unwrap();
    assert!(a.cancel_invitation(&info.id).is_err());
    assert_eq!(a.invitations().unwrap()[0].state, "cancelled");
    let secret = rec.secret;
    drop(a);
    let db = std::fs::read(dir.path().join("a").join(STORE_FILE)).unwrap();
    let has = |n: &[u8]| db.windows(n.len()).any(|w| w == n);
    assert!(
        !has(b"canary-invitee@x.example"),
        "the e-mail is in the store in clear"
    );
    assert!(!has(&secret), "the secret is in the store in clear");
}

#[test]
fn only_an_admin_invites_users_and_anyone_invites_their_own_devices() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = admin(dir.path());
    let mut b = a
        .provision_user(
            &dir.path().join("b"),
            PASS,
            KdfParams::TEST_ONLY,
            "Ben",
            "ben@x.example",
            "b",
            Profile::Standard,
        )
        .unwrap();
    assert!(matches!(
        b.create_invitation(&user_invite("x@x.example"), None, vec![]),
        Err(NodeError::Forbidden(_))
    ));
    b.create_invitation(&Invitee::Device, None, vec![]).unwrap();
}

#[test]
fn a_user_then_a_device_enrol_between_two_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = admin(dir.path());
    a.create_invitation(&user_invite("cy@x.example"), None, vec![])
        .unwrap();
    let rec = a.invitation_records().unwrap().remove(0);
    let before = a.log().len();
    let mut c = enrol(&mut a, &rec, &dir.path().join("c"), Some("Cy")).unwrap();
    // UserAdded (with the first device) and the invitation closed as used, in one chain.
    assert_eq!(a.log().len(), before + 2);
    let closed = a.state().invitations[&rec.id().0].closed.map(|c| c.0);
    assert_eq!(closed, Some(crate::trust::entry::CloseReason::Used));
    assert!(a.state().is_active(&c.device_id()));
    assert!(c.state().is_active(&c.device_id()));
    assert_eq!(c.log().len(), a.log().len());
    let users = c.users();
    assert!(users.iter().any(|u| u.email == "cy@x.example"));

    // Cy's device invites a second device of Cy; it receives Cy's user key.
    c.create_invitation(&Invitee::Device, None, vec![]).unwrap();
    let rec = c.invitation_records().unwrap().remove(0);
    let c2 = enrol(&mut c, &rec, &dir.path().join("c2"), None).unwrap();
    assert_eq!(c2.user_id(), c.user_id());
    assert_eq!(
        c2.keys.user_secret().map(|s| s.public()),
        c.keys.user_secret().map(|s| s.public())
    );
    // A device invitation cannot be claimed as a new user.
    c.create_invitation(&Invitee::Device, None, vec![]).unwrap();
    let rec = c
        .invitation_records()
        .unwrap()
        .into_iter()
        .find(|r| r.refusal(now_ms()).is_none())
        .unwrap();
    assert!(enrol(&mut c, &rec, &dir.path().join("c3"), Some("Mallory")).is_err());
    assert!(!dir.path().join("c3").join(KEY_FILE).exists());
}

fn sync_logs(from: &mut Node, to: &mut Node) {
    let all: Vec<Vec<u8>> = from.log().entries().map(|e| e.bytes().to_vec()).collect();
    to.ingest_log(all).unwrap();
}

#[test]
fn invitations_are_recorded_in_the_log_for_every_admin() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = admin(dir.path());
    let mut b = a
        .provision_user(
            &dir.path().join("b"),
            PASS,
            KdfParams::TEST_ONLY,
            "Bea",
            "bea@x.example",
            "b",
            Profile::Admin,
        )
        .unwrap();
    let before = a.log().len();
    let one = a
        .create_invitation(&user_invite("canary-one@x.example"), None, vec![])
        .unwrap();
    let two = a
        .create_invitation(&user_invite("two@x.example"), None, vec![])
        .unwrap();
    assert_eq!(a.log().len(), before + 2);
    assert!(one.recorded);
    assert_eq!(one.recorded_by_user.as_deref(), Some("Ann"));
    // The log holds neither the secret nor the e-mail in clear.
    let rec = a.find_invitation(&one.id).unwrap();
    for e in a.log().entries() {
        let has = |n: &[u8]| e.bytes().windows(n.len()).any(|w| w == n);
        assert!(!has(&rec.secret) && !has(b"canary-one@x.example"));
    }
    sync_logs(&mut a, &mut b);
    let seen = b.invitations().unwrap();
    let got = seen.iter().find(|i| i.id == one.id).unwrap();
    assert_eq!(got.email.as_deref(), Some("canary-one@x.example"));
    assert_eq!(got.state, "live");
    assert_eq!(got.token, None);
    assert_eq!(got.recorded_by_user.as_deref(), Some("Ann"));
    assert_eq!(got.recorded_by_device, Some(a.device_id().to_string()));
    // A cancels one; B cancels the other, which A's greeter then refuses too.
    a.cancel_invitation(&one.id).unwrap();
    b.cancel_invitation(&two.id[..8]).unwrap();
    assert!(b.cancel_invitation(&two.id).is_err());
    sync_logs(&mut a, &mut b);
    sync_logs(&mut b, &mut a);
    for n in [&a, &b] {
        let is = n.invitations().unwrap();
        assert_eq!(is.len(), 2);
        assert!(is.iter().all(|i| i.state == "cancelled"), "{is:?}");
    }
    let two_rec = a.find_invitation(&two.id).unwrap();
    assert_eq!(
        two_rec.refusal(now_ms()),
        Some(crate::enroll::RefuseStatus::Cancelled)
    );
    // Even a greeting already under way certifies nothing once the log says cancelled.
    let before = a.log().len();
    assert!(matches!(
        enrol(&mut a, &two_rec, &dir.path().join("x"), Some("X")),
        Err(NodeError::Refused(_))
    ));
    assert_eq!(a.log().len(), before);
    assert!(!dir.path().join("x").join(KEY_FILE).exists());
    // A standard user records only device invitations, and cannot close an admin's.
    let mut c = a
        .provision_user(
            &dir.path().join("c"),
            PASS,
            KdfParams::TEST_ONLY,
            "Cy",
            "cy@x.example",
            "c",
            Profile::Standard,
        )
        .unwrap();
    let three = a
        .create_invitation(&user_invite("three@x.example"), None, vec![])
        .unwrap();
    sync_logs(&mut a, &mut c);
    assert!(c.cancel_invitation(&three.id).is_err());
    let own = c.create_invitation(&Invitee::Device, None, vec![]).unwrap();
    sync_logs(&mut c, &mut b);
    let got = b.invitations().unwrap();
    let got = got.iter().find(|i| i.id == own.id).unwrap();
    assert_eq!(
        (got.kind.as_str(), got.recorded_by_user.as_deref()),
        ("device", Some("Cy"))
    );
}
