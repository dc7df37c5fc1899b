//! Relay revocation (`RelayRevoked`): admins only, final (no authorization before, after or
//! concurrently brings a revoked relay back), voided like any admin-only entry when its author
//! loses the admin profile or its device concurrently, the same state in every delivery order;
//! its frozen vector.

use super::*;

/// A relay key, as `cloison-bootstrap` makes one.
fn relay_key(n: u8) -> DeviceId {
    DeviceKeys::from_secrets(&[n; 32], &[n; 32]).id()
}

fn authorize(relay: DeviceId) -> Certificate {
    author::relay_authorized(relay, vec!["/ip4/127.0.0.1/tcp/4001".into()])
}

fn authorized(log: &OrgLog, relay: &DeviceId) -> bool {
    let st = log.state();
    let ok = st.relays.contains_key(relay);
    assert!(!(ok && st.revoked_relays.contains_key(relay)));
    ok
}

#[test]
fn only_an_admin_can_revoke_a_relay_and_only_one_authorized_in_its_past() {
    let (mut org, mut ada) = new_org(301);
    let relay = relay_key(1);
    // Revoking a relay never authorized is refused, with its reason, and nothing is stored.
    let before = ada.log.len();
    let (_, r) = org.try_write(&mut ada, author::relay_revoked(relay));
    assert_eq!(only_rejection(&r), Rejection::UnknownRelay { relay });
    assert_eq!(ada.log.len(), before);

    org.write(&mut ada, authorize(relay));
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    assert!(authorized(&bob.log, &relay));
    // A standard user may not (the writer's check) ...
    assert_eq!(
        bob.log
            .may_write(&bob.keys.id(), &author::relay_revoked(relay))
            .unwrap_err(),
        Rejection::NotAdmin {
            device: bob.keys.id()
        }
    );
    // ... and a forged one is refused by admission everywhere (never admin in its past).
    let tip = all_bytes(&bob.log);
    let forged = forge(
        &org,
        &bob.keys,
        &[tip.last().unwrap().clone()],
        Hlc((org.now * 2) << 16),
        author::relay_revoked(relay),
    );
    assert_eq!(
        only_rejection(&ada.log.ingest(vec![forged])),
        Rejection::NotAdmin {
            device: bob.keys.id()
        }
    );
    assert!(authorized(&ada.log, &relay));

    // The admin revokes it: no longer authorized, listed as revoked with its addresses.
    let rev = org.write(&mut ada, author::relay_revoked(relay));
    let st = ada.log.state();
    assert!(!st.relays.contains_key(&relay));
    let rr = &st.revoked_relays[&relay];
    assert_eq!(rr.revoked_by, id_of(&rev));
    assert_eq!(rr.addrs, vec!["/ip4/127.0.0.1/tcp/4001".to_owned()]);
    sync(&mut ada, &mut bob);
    assert!(!authorized(&bob.log, &relay));
}

#[test]
fn a_revoked_or_demoted_admins_concurrent_relay_revocation_does_not_count() {
    for demote in [false, true] {
        let (mut org, mut ada) = new_org(302 + u64::from(demote));
        let relay = relay_key(2);
        org.write(&mut ada, authorize(relay));
        let (mut mallory, _) = org.add_user(&mut ada, Profile::Admin, "mallory");
        // Mallory revokes the relay on her copy; concurrently Ada removes her.
        let forged = org.write(&mut mallory, author::relay_revoked(relay));
        assert!(!authorized(&mallory.log, &relay), "counts on her copy");
        let removal = if demote {
            Certificate::ProfileChanged {
                user: mallory.user,
                profile: Profile::Standard,
            }
        } else {
            Certificate::DeviceRevoked {
                device: mallory.keys.id(),
            }
        };
        org.write(&mut ada, removal);
        sync(&mut ada, &mut mallory);
        for log in [&ada.log, &mallory.log] {
            assert!(authorized(log, &relay), "demote={demote}");
            assert!(log.state().dropped.contains(&id_of(&forged)));
        }
    }
}

#[test]
fn no_authorization_after_or_concurrent_with_a_revocation_brings_the_relay_back() {
    let (mut org, mut ada) = new_org(304);
    let relay = relay_key(3);
    org.write(&mut ada, authorize(relay));
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    // Concurrently: Ada revokes it, Bob authorizes it again (another address).
    org.write(&mut ada, author::relay_revoked(relay));
    let again = author::relay_authorized(relay, vec!["/ip4/127.0.0.1/tcp/9".into()]);
    org.write(&mut bob, again.clone());
    assert!(authorized(&bob.log, &relay));
    sync(&mut ada, &mut bob);
    assert!(!authorized(&ada.log, &relay));
    assert!(!authorized(&bob.log, &relay));
    // Afterwards, on top of the revocation: still revoked (no timestamp decides).
    org.write(&mut ada, again);
    assert!(!authorized(&ada.log, &relay));
    assert!(ada.log.state().revoked_relays.contains_key(&relay));
    assert!(
        ada.log.state().dropped.is_empty(),
        "all count; none authorizes"
    );
}

#[test]
fn relay_revocations_give_the_same_state_in_every_delivery_order() {
    let (mut org, mut ada) = new_org(305);
    let (r1, r2) = (relay_key(4), relay_key(5));
    org.write(&mut ada, authorize(r1));
    org.write(&mut ada, authorize(r2));
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    let (mut mallory, _) = org.add_user(&mut ada, Profile::Admin, "mallory");
    sync(&mut bob, &mut mallory);
    // Concurrent: Mallory revokes r2 and re-authorizes r1; Bob revokes r1; Ada revokes Mallory.
    org.write(&mut mallory, author::relay_revoked(r2));
    org.write(&mut mallory, authorize(r1));
    org.write(&mut bob, author::relay_revoked(r1));
    org.write(
        &mut ada,
        Certificate::DeviceRevoked {
            device: mallory.keys.id(),
        },
    );
    let mut all = all_bytes(&ada.log);
    for d in [&bob, &mallory] {
        for b in all_bytes(&d.log) {
            if !all.contains(&b) {
                all.push(b);
            }
        }
    }
    let mut reference = OrgLog::new(org.org);
    assert!(reference.ingest(all.clone()).is_clean());
    let want = reference.state().clone();
    assert!(!want.relays.contains_key(&r1) && want.revoked_relays.contains_key(&r1));
    assert!(
        want.relays.contains_key(&r2),
        "Mallory's revocation was voided"
    );
    let mut rng = StdRng::seed_from_u64(9);
    for round in 0..24 {
        let mut order = all.clone();
        for i in (1..order.len()).rev() {
            let j = (rand::Rng::next_u64(&mut rng) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut log = OrgLog::new(org.org);
        for chunk in order.chunks(1 + round % 4) {
            log.ingest(chunk.to_vec());
            let _ = log.state();
        }
        assert_eq!(log.pending_len(), 0);
        assert_eq!(log.state(), &want, "round {round}");
    }
}

/// Frozen vector of the relay revocation (index 10 of `Certificate`: the earlier variants'
/// encodings did not change; `frozen_entry_vector` and the others still pass).
#[test]
fn frozen_relay_revoked_vector() {
    let body = super::vectors::vector_body(Certificate::RelayRevoked {
        relay: DeviceId([3; 32]),
    });
    let bytes = entry::sign(&super::vectors::vector_keys(), &body);
    let current = hex::encode(&bytes);
    assert_eq!(
        current,
        frozen!("relay_revoked_v2.hex", ()),
        "entry wire format changed"
    );
    let e = entry::verify_batch(vec![entry::decode(bytes).unwrap()])
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(e.body(), &body);
    assert!(e.body().check_shape(&OrgId([1; 32])).is_ok());
}
