//! Rotations of the organization key: admission, the current key and when a rotation is needed,
//! concurrent rotations, a revoked admin's rotation, the blob format and the frozen vector.

use super::*;
use crate::trust::entry::{
    MAX_ENTRY_BYTES, MAX_ORG_KEY_SHARES, ORG_KEY_SHARE_BYTES, OrgKeyRotated,
};
use crate::trust::keys::{BlobKey, KeyError, OrgKeys};
use crate::trust::org_keys::{self, OrgKeyRing};
use std::collections::BTreeSet;

/// A rotation by `by` from the genesis key to a fresh key, shared to `to`.
fn rotation_to(org: &mut Org, to: &[&Dev]) -> (OrgKey, Certificate) {
    let next = OrgKey::generate_rotated(&mut org.rng);
    let recipients: Vec<(UserId, u32, [u8; 32])> = to
        .iter()
        .map(|d| (d.user, d.secret.generation, d.secret.public()))
        .collect();
    let prev = org.key.clone();
    let mut certs = org_keys::rotation(&mut org.rng, &org.org, &prev, &next, &recipients).unwrap();
    assert_eq!(certs.len(), 1);
    (next, certs.remove(0))
}

#[test]
fn a_rotation_needs_an_admin_and_shares_to_known_users_only() {
    let (mut org, mut ada) = new_org(401);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    sync(&mut ada, &mut bob);
    // A standard user may not rotate.
    let (_, c) = rotation_to(&mut org, &[&ada, &bob]);
    assert_eq!(
        bob.log.may_write(&bob.keys.id(), &c),
        Err(Rejection::NotAdmin {
            device: bob.keys.id()
        })
    );
    let (_, r) = org.try_write(&mut bob, c);
    assert!(matches!(only_rejection(&r), Rejection::NotAdmin { .. }));
    // A share to a user unknown in the cited past is refused.
    let (_, mut c) = rotation_to(&mut org, &[&ada, &bob]);
    let stranger = UserId([0xee; 16]);
    if let Certificate::OrgKeyRotated(r) = &mut c {
        r.shares.push((stranger, 0, vec![1; ORG_KEY_SHARE_BYTES]));
    }
    let (_, r) = org.try_write(&mut ada, c);
    assert_eq!(
        only_rejection(&r),
        Rejection::UnknownUser { user: stranger }
    );
    // Two shares to one user are refused (one share per user).
    let (_, mut c) = rotation_to(&mut org, &[&ada, &bob]);
    if let Certificate::OrgKeyRotated(r) = &mut c {
        let first = r.shares[0].clone();
        r.shares.insert(0, first);
    }
    let (_, r) = org.try_write(&mut ada, c);
    assert!(matches!(only_rejection(&r), Rejection::BadShape { .. }));
    // The admin's rotation is admitted and counts.
    let (_, c) = rotation_to(&mut org, &[&ada, &bob]);
    org.write(&mut ada, c);
    assert!(ada.log.state().org_keys.current.is_some());
}

#[test]
fn the_largest_rotation_fits_in_an_entry() {
    let keys = DeviceKeys::from_secrets(&[7; 32], &[8; 32]);
    let shares = (0..MAX_ORG_KEY_SHARES)
        .map(|i| {
            let mut u = [0xff; 16];
            u[..8].copy_from_slice(&(i as u64).to_be_bytes());
            (UserId(u), u32::MAX, vec![9; ORG_KEY_SHARE_BYTES])
        })
        .collect();
    let body = EntryBody {
        org: OrgId([1; 32]),
        parents: (0..entry::MAX_PARENTS)
            .map(|i| EntryId([i as u8; 32]))
            .collect(),
        author: keys.id(),
        time: Hlc::MAX,
        cert: Certificate::OrgKeyRotated(OrgKeyRotated {
            key_id: [1; 8],
            previous_id: [2; 8],
            previous: vec![3; 1 + 24 + 32 + 16],
            shares,
        }),
    };
    let bytes = entry::sign(&keys, &body);
    assert!(
        bytes.len() < MAX_ENTRY_BYTES,
        "{} bytes > {MAX_ENTRY_BYTES}",
        bytes.len()
    );
    assert!(body.check_shape(&body.org).is_ok());
}

#[test]
fn a_user_revocation_needs_a_rotation_that_leaves_the_revoked_user_out() {
    let (mut org, mut ada) = new_org(402);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let (carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    let st = ada.log.state();
    assert_eq!(st.org_keys.current, None);
    assert!(!st.org_keys.needs_rotation);
    org.write(&mut ada, Certificate::UserRevoked { user: carol.user });
    assert!(
        ada.log.state().org_keys.needs_rotation,
        "Carol holds the genesis key"
    );
    let (next, c) = rotation_to(&mut org, &[&ada, &bob]);
    org.write(&mut ada, c);
    let st = ada.log.state();
    assert_eq!(st.org_keys.current, Some(next.id()));
    assert!(!st.org_keys.needs_rotation);
    // Bob's ring holds the new key and, through the chain, the genesis key; Carol's does not.
    sync(&mut ada, &mut bob);
    let bob_ring = OrgKeyRing::build(&bob.log, &org.key, &bob.user, |g| {
        (g == 0).then(|| bob.secret.clone())
    });
    assert_eq!(bob_ring.current().map(OrgKey::id), Some(next.id()));
    let carol_ring = OrgKeyRing::build(&bob.log, &org.key, &carol.user, |g| {
        (g == 0).then(|| carol.secret.clone())
    });
    assert_eq!(carol_ring.len(), 1, "Carol keeps only the genesis key");
    assert!(carol_ring.current().is_some_and(OrgKey::is_genesis));
    // A member given only the new key (a later enrolment) reaches the genesis key.
    let later = OrgKeyRing::build(&bob.log, &next, &UserId([0; 16]), |_| None);
    assert_eq!(later.len(), 2);
    let old = org.key.seal(&mut org.rng, &org.org, "user", b"s", b"old");
    let new = next.seal(&mut org.rng, &org.org, "user", b"s", b"new");
    for ring in [&bob_ring, &later] {
        assert_eq!(
            ring.open(&org.org, "user", b"s", &old).unwrap().as_slice(),
            b"old"
        );
        assert_eq!(
            ring.open(&org.org, "user", b"s", &new).unwrap().as_slice(),
            b"new"
        );
    }
    assert_eq!(
        carol_ring.open(&org.org, "user", b"s", &new),
        Err(KeyError::UnknownKey)
    );
    // A user added after the rotation may have got its key at enrolment: revoking them needs a
    // new rotation.
    let (dan, _) = org.add_user(&mut ada, Profile::Standard, "dan");
    assert!(!ada.log.state().org_keys.needs_rotation);
    org.write(&mut ada, Certificate::UserRevoked { user: dan.user });
    assert!(ada.log.state().org_keys.needs_rotation);
}

#[test]
fn concurrent_rotations_both_count_and_the_smallest_id_is_current() {
    let (mut org, mut ada) = new_org(403);
    let (mut bea, _) = org.add_user(&mut ada, Profile::Admin, "bea");
    let (carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    org.write(&mut ada, Certificate::UserRevoked { user: carol.user });
    sync(&mut ada, &mut bea);
    let (k1, c1) = rotation_to(&mut org, &[&ada, &bea]);
    let e1 = org.write(&mut ada, c1);
    let (k2, c2) = rotation_to(&mut org, &[&ada, &bea]);
    let e2 = org.write(&mut bea, c2);
    sync(&mut ada, &mut bea);
    let st = ada.log.state();
    assert_eq!(st.org_keys.rotations.len(), 2, "both count");
    assert!(st.dropped.is_empty());
    let current = if id_of(&e1) < id_of(&e2) {
        k1.id()
    } else {
        k2.id()
    };
    assert_eq!(st.org_keys.current, Some(current));
    assert_eq!(
        bea.log.state().org_keys,
        st.org_keys,
        "same on every device"
    );
    assert!(!st.org_keys.needs_rotation);
    // A rotation that descends from both is current, whatever its id.
    let (k3, c3) = rotation_to(&mut org, &[&ada, &bea]);
    org.write(&mut bea, c3);
    assert_eq!(bea.log.state().org_keys.current, Some(k3.id()));
}

#[test]
fn a_revoked_admins_concurrent_rotation_is_voided() {
    let (mut org, mut ada) = new_org(404);
    let (mut x, _) = org.add_user(&mut ada, Profile::Admin, "x");
    let (carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    sync(&mut ada, &mut x);
    // X rotates on its copy, giving the new key to itself and Ada; Ada revokes X concurrently.
    let (xk, c) = rotation_to(&mut org, &[&x, &ada]);
    let rot = org.write(&mut x, c);
    org.write(&mut ada, Certificate::UserRevoked { user: x.user });
    org.write(&mut ada, Certificate::UserRevoked { user: carol.user });
    sync(&mut ada, &mut x);
    let st = ada.log.state();
    assert!(st.dropped.contains(&id_of(&rot)), "X's rotation is voided");
    assert!(st.org_keys.rotations.is_empty());
    assert_eq!(st.org_keys.current, None);
    assert!(st.org_keys.needs_rotation);
    // Ada holds X's key (old blobs under it stay readable) but never seals with it.
    let ring = OrgKeyRing::build(&ada.log, &org.key, &ada.user, |g| {
        (g == 0).then(|| ada.secret.clone())
    });
    assert_eq!(ring.len(), 2);
    let sealed = xk.seal(&mut org.rng, &org.org, "user", b"s", b"x");
    assert!(ring.open(&org.org, "user", b"s", &sealed).is_ok());
    assert!(ring.current().is_some_and(OrgKey::is_genesis));
}

#[test]
fn blobs_name_their_key() {
    let mut rng = rand::rng();
    let org = OrgId([1; 32]);
    let g = OrgKey::generate(&mut rng);
    let r = OrgKey::generate_rotated(&mut rng);
    let v1 = g.seal(&mut rng, &org, "user", b"u", b"Ada");
    let v2 = r.seal(&mut rng, &org, "user", b"u", b"Ada");
    assert_eq!(v1[0], 1);
    assert_eq!(keys::blob_key(&v1), Ok(BlobKey::Genesis));
    assert_eq!(v2[0], 2);
    assert_eq!(&v2[1..9], &r.id());
    assert_eq!(keys::blob_key(&v2), Ok(BlobKey::Rotated(r.id())));
    assert_eq!(r.open(&org, "user", b"u", &v2).unwrap().as_slice(), b"Ada");
    assert_eq!(g.open(&org, "user", b"u", &v2), Err(KeyError::UnknownKey));
    assert_eq!(r.open(&org, "user", b"u", &v1), Err(KeyError::UnknownKey));
    // The id is bound: a blob relabelled with another key's id does not open.
    let other = OrgKey::rotated_from_bytes(r.as_bytes());
    let mut moved = v2.clone();
    moved[1] ^= 1;
    assert!(other.open(&org, "user", b"u", &moved).is_err());
    assert!(r.open(&org, "user", b"v", &v2).is_err());
}

#[test]
fn frozen_org_key_rotated_vector() {
    let keys = DeviceKeys::from_secrets(&[7; 32], &[8; 32]);
    let body = EntryBody {
        org: OrgId([1; 32]),
        parents: vec![EntryId([2; 32])],
        author: keys.id(),
        time: Hlc(0x0000_0190_0000_0005),
        cert: Certificate::OrgKeyRotated(OrgKeyRotated {
            key_id: [3; 8],
            previous_id: [4; 8],
            previous: vec![5; 8],
            shares: vec![(UserId([6; 16]), 2, vec![7; ORG_KEY_SHARE_BYTES])],
        }),
    };
    let bytes = entry::sign(&keys, &body);
    let hex_bytes = hex::encode(&bytes);
    assert_eq!(hex_bytes, frozen!("org_key_rotated_v2.hex", &hex_bytes));
    let e = entry::verify_batch(vec![entry::decode(bytes).unwrap()])
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(e.body(), &body);
}

/// Splits a rotation's shares: the rotation keeps those of `keep`, the rest go to a
/// continuation.
fn split(c: Certificate, keep: &[UserId]) -> (Certificate, Certificate) {
    let Certificate::OrgKeyRotated(mut r) = c else {
        panic!("not a rotation")
    };
    let (kept, rest): (Vec<_>, Vec<_>) = r.shares.drain(..).partition(|s| keep.contains(&s.0));
    r.shares = kept;
    let more = Certificate::OrgKeyShared {
        key_id: r.key_id,
        shares: rest,
    };
    (Certificate::OrgKeyRotated(r), more)
}

#[test]
fn more_shares_follow_the_rotation_by_its_author_only() {
    let (mut org, mut ada) = new_org(405);
    let (mut bea, _) = org.add_user(&mut ada, Profile::Admin, "bea");
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let (carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    org.write(&mut ada, Certificate::UserRevoked { user: carol.user });
    for d in [&mut bea, &mut bob] {
        sync(&mut ada, d);
    }
    let (next, c) = rotation_to(&mut org, &[&ada, &bea, &bob]);
    let (rot, more) = split(c, &[ada.user, bea.user]);
    // Shares of a key whose rotation is not in the cited past are refused.
    let (_, r) = org.try_write(&mut ada, more.clone());
    assert_eq!(
        only_rejection(&r),
        Rejection::UnknownOrgKey { key_id: next.id() }
    );
    let rot = org.write(&mut ada, rot);
    // Only its author continues it: another admin is refused.
    assert!(bea.log.ingest(vec![rot]).is_clean());
    let (_, r) = org.try_write(&mut bea, more.clone());
    assert!(matches!(
        only_rejection(&r),
        Rejection::UnknownOrgKey { .. }
    ));
    // A second share to a user is refused.
    let Certificate::OrgKeyShared { shares, .. } = &more else {
        unreachable!()
    };
    let mut twice = shares.clone();
    let ada_share = match &ada.log.entries().last().unwrap().body().cert {
        Certificate::OrgKeyRotated(r) => r.shares[0].clone(),
        _ => unreachable!(),
    };
    twice.push(ada_share);
    twice.sort_by_key(|s| s.0);
    let (_, r) = org.try_write(
        &mut ada,
        Certificate::OrgKeyShared {
            key_id: next.id(),
            shares: twice,
        },
    );
    assert!(matches!(
        only_rejection(&r),
        Rejection::DuplicateShare { .. }
    ));
    // Before the continuation, Bob has no share; after it, his ring opens the new key.
    let (genesis_key, bob_user, bob_secret) = (org.key.clone(), bob.user, bob.secret.clone());
    let bob_ring = |log: &OrgLog| {
        OrgKeyRing::build(log, &genesis_key, &bob_user, |g| {
            (g == 0).then(|| bob_secret.clone())
        })
    };
    sync(&mut ada, &mut bob);
    assert!(bob_ring(&bob.log).current().is_some_and(OrgKey::is_genesis));
    assert!(
        !ada.log.state().org_keys.rotations[&next.id()]
            .recipients
            .contains(&bob.user)
    );
    org.write(&mut ada, more);
    sync(&mut ada, &mut bob);
    assert_eq!(
        bob_ring(&bob.log).current().map(OrgKey::id),
        Some(next.id())
    );
    let st = ada.log.state();
    assert!(
        st.org_keys.rotations[&next.id()]
            .recipients
            .contains(&bob.user)
    );
    assert!(!st.org_keys.needs_rotation);
}

#[test]
fn a_rotation_for_more_users_than_one_entry_holds_continues_in_more_entries() {
    let (mut org, mut ada) = new_org(406);
    let mut members = Vec::new();
    for i in 0..MAX_ORG_KEY_SHARES {
        let w = Writer {
            keys: &ada.keys,
            org_key: &org.key,
            clock: &mut Clock::default(),
        };
        let name = format!("m{i}");
        let (m, c) = crate::testkit::newcomer(
            &mut org.rng,
            &w,
            &org.org,
            Profile::Standard,
            &name,
            "m@example.org",
        );
        org.write(&mut ada, c);
        members.push(m);
    }
    let last = members.last().map(|m| (m.user, m.secret.clone())).unwrap();
    let mut recipients = vec![(ada.user, 0, ada.secret.public())];
    recipients.extend(members.iter().map(|m| (m.user, 0, m.secret.public())));
    let next = OrgKey::generate_rotated(&mut org.rng);
    let prev = org.key.clone();
    let certs = org_keys::rotation(&mut org.rng, &org.org, &prev, &next, &recipients).unwrap();
    assert_eq!(certs.len(), 2, "512 shares, then one more");
    for c in certs {
        org.write(&mut ada, c);
    }
    let st = ada.log.state();
    assert_eq!(
        st.org_keys.rotations[&next.id()].recipients.len(),
        MAX_ORG_KEY_SHARES + 1
    );
    assert_eq!(st.org_keys.current, Some(next.id()));
    // Every user opens the new key, in whichever entry their share is.
    let ring = OrgKeyRing::build(&ada.log, &org.key, &last.0, |g| {
        (g == 0).then(|| last.1.clone())
    });
    assert_eq!(ring.current().map(OrgKey::id), Some(next.id()));
}

#[test]
fn frozen_org_key_shared_vector() {
    let keys = DeviceKeys::from_secrets(&[7; 32], &[8; 32]);
    let body = EntryBody {
        org: OrgId([1; 32]),
        parents: vec![EntryId([2; 32])],
        author: keys.id(),
        time: Hlc(0x0000_0190_0000_0006),
        cert: Certificate::OrgKeyShared {
            key_id: [3; 8],
            shares: vec![(UserId([6; 16]), 2, vec![7; ORG_KEY_SHARE_BYTES])],
        },
    };
    let bytes = entry::sign(&keys, &body);
    let hex_bytes = hex::encode(&bytes);
    assert_eq!(hex_bytes, frozen!("org_key_shared_v2.hex", &hex_bytes));
    let e = entry::verify_batch(vec![entry::decode(bytes).unwrap()])
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(e.body(), &body);
    // No shares is not a continuation.
    let mut empty = body.clone();
    empty.cert = Certificate::OrgKeyShared {
        key_id: [3; 8],
        shares: vec![],
    };
    assert!(empty.check_shape(&empty.org).is_err());
}

/// A revoked device of a user still active could open the current organization key (every device
/// held the genesis key; a share sealed to a user key the device knew opens for it): a rotation
/// is needed, and it leaves the device out only once the user's key has rotated.
#[test]
fn a_device_revocation_needs_a_rotation_sealed_after_the_users_key_rotation() {
    let (mut org, mut ada) = new_org(409);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let phone = org.add_own_device(&mut bob);
    sync(&mut ada, &mut bob);
    assert!(!ada.log.state().org_keys.needs_rotation);
    org.write(
        &mut bob,
        Certificate::DeviceRevoked {
            device: phone.keys.id(),
        },
    );
    sync(&mut ada, &mut bob);
    let ok = &ada.log.state().org_keys;
    assert!(ok.needs_rotation && !ok.revoked_user_holds, "{ok:?}");
    assert_eq!(ok.exposed_by_devices_of, BTreeSet::from([bob.user]));
    // A rotation sealed to Bob's key as the phone knew it does not help.
    let (_, c) = rotation_to(&mut org, &[&ada, &bob]);
    org.write(&mut ada, c);
    assert!(
        ada.log.state().org_keys.needs_rotation,
        "still open to the phone"
    );
    // Bob's laptop rotates his user key; a rotation sealed to the new generation does.
    bob.secret = org.rotate_user_key(&mut bob, 1).0;
    sync(&mut ada, &mut bob);
    let (_, c) = rotation_to(&mut org, &[&ada, &bob]);
    org.write(&mut ada, c);
    let ok = &ada.log.state().org_keys;
    assert!(!ok.needs_rotation, "{ok:?}");
    assert!(ok.exposed_by_devices_of.is_empty());
}
