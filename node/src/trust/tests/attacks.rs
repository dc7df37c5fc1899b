//! Insider attacks on the organization log (issue 14): each test is an attack by a member, or a
//! stolen device, that signs whatever it likes with any parents it has seen and any timestamp.
//! Each forged entry is delivered to every honest replica in several orders; the attack must
//! change nothing it had no right to change. Attacks 1 to 3 and 5 were admitted and took effect
//! before proofs of possession, removal wins and the parent/clock bounds.

use super::*;
use crate::trust::ids::MAX_CLOCK_SKEW_MS;

/// Delivers `extra` to a fresh replica of `base`'s log, forged entries first and last, and
/// checks that both orders give one state, which it returns.
fn deliver(org: &Org, base: &OrgLog, extra: &[Vec<u8>]) -> OrgState {
    let mut first = OrgLog::new(org.org);
    first.ingest(extra.to_vec());
    first.ingest(all_bytes(base));
    let mut last = OrgLog::new(org.org);
    last.ingest(all_bytes(base));
    for e in extra.iter().rev() {
        last.ingest(vec![e.clone()]);
    }
    assert_eq!(
        first.state(),
        last.state(),
        "arrival order changed the state"
    );
    last.state().clone()
}

#[test]
fn attack_1_a_member_cannot_claim_and_revoke_an_admins_device() {
    let (mut org, mut ada) = new_org(101);
    let (mut mallory, _) = org.add_user(&mut ada, Profile::Standard, "mallory");
    let before_bob = all_bytes(&ada.log);
    let (bob, bob_add) = org.add_user(&mut ada, Profile::Admin, "bob");
    sync(&mut ada, &mut mallory);
    // Mallory copies the certificate of Bob's device, proof of possession included, and claims
    // the key for herself on a past from before Bob existed, with a small time.
    let Certificate::UserAdded(u) = entry::decode(bob_add[0].clone())
        .unwrap()
        .body()
        .cert
        .clone()
    else {
        panic!("bob's user certificate")
    };
    let claim = forge(
        &org,
        &mallory.keys,
        &[before_bob.last().unwrap().clone()],
        Hlc(1),
        Certificate::DeviceAdded(entry::DeviceAdded {
            user: mallory.user,
            ..u.device.clone()
        }),
    );
    let revoke = forge(
        &org,
        &mallory.keys,
        std::slice::from_ref(&claim),
        Hlc(2),
        Certificate::DeviceRevoked {
            device: bob.keys.id(),
        },
    );
    let r = mallory.log.ingest(vec![claim.clone(), revoke.clone()]);
    assert_eq!(
        r.rejected,
        vec![(id_of(&claim), Rejection::BadProofOfPossession)]
    );
    assert!(
        r.admitted.is_empty(),
        "the revocation waits for a parent that never comes"
    );
    // Nor can she revoke it directly: it is not hers and she is no admin.
    let (_, r) = org.try_write(
        &mut mallory,
        Certificate::DeviceRevoked {
            device: bob.keys.id(),
        },
    );
    assert_eq!(
        only_rejection(&r),
        Rejection::NotOwner {
            device: mallory.keys.id(),
            user: bob.user
        }
    );
    let st = deliver(&org, &ada.log, &[claim, revoke]);
    assert!(st.is_active(&bob.keys.id()));
    assert_eq!(st.devices[&bob.keys.id()].user, bob.user);
}

#[test]
fn attack_2_a_demoted_admin_cannot_promote_itself_on_a_stale_copy() {
    let (mut org, mut ada) = new_org(102);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    let stale = bob.log.clone();
    org.write(
        &mut ada,
        Certificate::ProfileChanged {
            user: bob.user,
            profile: Profile::Standard,
        },
    );
    sync(&mut ada, &mut bob);
    // On the copy from before its demotion, with a time far in the future.
    let promote = forge(
        &org,
        &bob.keys,
        &stale
            .state()
            .heads
            .iter()
            .map(|h| stale.get(h).unwrap().bytes().to_vec())
            .collect::<Vec<_>>(),
        Hlc(Hlc::MAX.0 - 1),
        Certificate::ProfileChanged {
            user: bob.user,
            profile: Profile::Admin,
        },
    );
    let st = deliver(&org, &ada.log, std::slice::from_ref(&promote));
    assert_eq!(st.users[&bob.user].profile, Profile::Standard);
    assert!(st.dropped.contains(&id_of(&promote)));
    // And what it does as an admin on that copy is voided too.
    let (carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    let revoke = forge(
        &org,
        &bob.keys,
        std::slice::from_ref(&promote),
        Hlc(Hlc::MAX.0),
        Certificate::UserRevoked { user: ada.user },
    );
    let st = deliver(&org, &ada.log, &[promote, revoke]);
    assert!(st.users[&ada.user].revoked_by.is_none());
    assert!(st.is_active(&carol.keys.id()));
}

#[test]
fn attack_3_a_revoked_admin_device_cannot_revoke_everyone_from_a_stale_copy() {
    let (mut org, mut ada) = new_org(103);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    let (carol, _) = org.add_user(&mut ada, Profile::Admin, "carol");
    let (dan, _) = org.add_user(&mut ada, Profile::Standard, "dan");
    sync(&mut ada, &mut bob);
    let stale = bob.log.clone();
    // Bob's laptop is stolen; Ada revokes it.
    org.write(
        &mut ada,
        Certificate::DeviceRevoked {
            device: bob.keys.id(),
        },
    );
    // The thief, on the copy from before the revocation, revokes every other user.
    let mut forged = Vec::new();
    let mut tip: Vec<Vec<u8>> = stale
        .state()
        .heads
        .iter()
        .map(|h| stale.get(h).unwrap().bytes().to_vec())
        .collect();
    for (i, user) in [carol.user, dan.user, ada.user].into_iter().enumerate() {
        let e = forge(
            &org,
            &bob.keys,
            &tip,
            Hlc(Hlc::MAX.0 - 10 + i as u64),
            Certificate::UserRevoked { user },
        );
        tip = vec![e.clone()];
        forged.push(e);
    }
    let st = deliver(&org, &ada.log, &forged);
    assert!(!st.is_active(&bob.keys.id()));
    assert!(st.is_active(&carol.keys.id()), "carol kept");
    assert!(st.is_active(&dan.keys.id()), "dan kept");
    // Ada's revocation of the laptop and the laptop's revocation of Ada remove each other's
    // right to write them: a mutual pair, won by the senior author (Ada, whose device was in
    // the organization before Bob's).
    assert!(st.is_active(&ada.keys.id()), "ada kept");
    assert_eq!(st.dropped.len(), 3, "every revocation the thief wrote");
    // Carol, still an admin, carries on.
    let mut carol = carol;
    carol.log = OrgLog::new(org.org);
    carol.log.ingest(all_bytes(&ada.log));
    carol.log.ingest(forged.clone());
    let (_, r) = org.try_write(&mut carol, Certificate::UserRevoked { user: bob.user });
    assert!(r.is_clean(), "{:?}", r.rejected);
}

#[test]
fn attack_4_an_admin_cannot_add_devices_to_another_user() {
    let (mut org, mut ada) = new_org(104);
    let (carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    let made = DeviceKeys::generate(&mut org.rng);
    // Ada makes a device key and signs a valid proof of possession for it (she holds the key).
    let claimed = author::claim_device(&made, &org.org, &ada.keys.id());
    let c = Writer {
        keys: &ada.keys,
        org_key: &org.key,
        clock: &mut Clock::default(),
    }
    .device_added(&mut org.rng, &org.org, carol.user, &claimed, "not carol's")
    .unwrap();
    let (_, r) = org.try_write(&mut ada, c);
    assert_eq!(
        only_rejection(&r),
        Rejection::NotOwner {
            device: ada.keys.id(),
            user: carol.user
        }
    );
    let st = ada.log.state();
    assert_eq!(st.active_devices_of(&carol.user), vec![carol.keys.id()]);
}

#[test]
fn attack_5a_sibling_heads_never_block_a_writer() {
    let (mut org, mut ada) = new_org(105);
    let (mut mallory, _) = org.add_user(&mut ada, Profile::Standard, "mallory");
    sync(&mut ada, &mut mallory);
    let tip = all_bytes(&mallory.log);
    let siblings: Vec<Vec<u8>> = (0..200u8)
        .map(|n| {
            forge(
                &org,
                &mallory.keys,
                &[tip.last().unwrap().clone()],
                Hlc(5_000 << 16),
                Certificate::InvitationRecorded(entry::InvitationRecorded {
                    id: [n; 16],
                    invited: entry::Invited::Device { user: mallory.user },
                    expires_ms: 5_000 + 1_000,
                    greeter: mallory.keys.id(),
                    private: Vec::new(),
                }),
            )
        })
        .collect();
    assert!(ada.log.ingest(siblings).is_clean());
    assert!(ada.log.state().heads.len() > entry::MAX_PARENTS);
    // The admin can still revoke the attacker, and then write on.
    let (revoke, r) = org.try_write(
        &mut ada,
        Certificate::DeviceRevoked {
            device: mallory.keys.id(),
        },
    );
    assert!(r.is_clean(), "{:?}", r.rejected);
    assert!(entry::decode(revoke).unwrap().body().parents.len() <= entry::MAX_PARENTS);
    for _ in 0..4 {
        let relay = DeviceKeys::generate(&mut org.rng).id();
        let (_, r) = org.try_write(
            &mut ada,
            Certificate::RelayAuthorized(entry::RelayAuthorized {
                relay,
                addrs: vec!["/ip4/127.0.0.1/tcp/1".into()],
            }),
        );
        assert!(r.is_clean(), "{:?}", r.rejected);
    }
    assert!(ada.log.state().heads.len() <= 2, "merged in steps");
    assert!(!ada.log.state().is_active(&mallory.keys.id()));
}

#[test]
fn attack_5b_an_entry_at_the_end_of_time_is_held_and_blocks_nobody() {
    let (mut org, mut ada) = new_org(106);
    let (mallory, _) = org.add_user(&mut ada, Profile::Standard, "mallory");
    let now = org.now;
    ada.log.set_wall(now);
    let tip = all_bytes(&ada.log);
    let doom = forge(
        &org,
        &mallory.keys,
        &[tip.last().unwrap().clone()],
        Hlc::MAX,
        Certificate::InvitationRecorded(entry::InvitationRecorded {
            id: [1; 16],
            invited: entry::Invited::Device { user: mallory.user },
            expires_ms: Hlc::MAX.millis(),
            greeter: mallory.keys.id(),
            private: Vec::new(),
        }),
    );
    let r = ada.log.ingest(vec![doom.clone()]);
    assert_eq!(r.future, vec![id_of(&doom)], "held, not admitted");
    assert!(!ada.log.contains(&id_of(&doom)));
    assert_eq!(ada.log.future_len(), 1);
    // Dated just inside the allowed skew: admitted.
    let soon = forge(
        &org,
        &mallory.keys,
        &[tip.last().unwrap().clone()],
        Hlc((now + MAX_CLOCK_SKEW_MS) << 16),
        Certificate::InvitationRecorded(entry::InvitationRecorded {
            id: [2; 16],
            invited: entry::Invited::Device { user: mallory.user },
            expires_ms: now + MAX_CLOCK_SKEW_MS,
            greeter: mallory.keys.id(),
            private: Vec::new(),
        }),
    );
    assert!(ada.log.ingest(vec![soon]).is_clean());
    // The admin writes, and revokes the attacker; her clock never passes wall + skew + a tick.
    let (b, r) = org.try_write(
        &mut ada,
        Certificate::DeviceRevoked {
            device: mallory.keys.id(),
        },
    );
    assert!(r.is_clean(), "{:?}", r.rejected);
    let t = entry::decode(b).unwrap().body().time;
    assert!(t.millis() <= now + MAX_CLOCK_SKEW_MS + 1);
    // It stays held however far the wall clock goes in a lifetime.
    ada.log.set_wall(now + 100 * 365 * 24 * 3600 * 1000);
    assert!(!ada.log.has_due());
    assert!(ada.log.release_due().admitted.is_empty());
}

#[test]
fn a_device_added_on_a_stale_past_gains_no_seniority() {
    let (mut org, mut ada) = new_org(107);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    let (mut xavier, x_add) = org.add_user(&mut ada, Profile::Admin, "xavier");
    sync(&mut ada, &mut bob);
    // Xavier adds a second device of his own on the smallest past admission allows (his own
    // certificate), hoping to rank beside or above Bob.
    let x2 = DeviceKeys::generate(&mut org.rng);
    let claimed = author::claim_device(&x2, &org.org, &xavier.keys.id());
    let cert = Writer {
        keys: &xavier.keys,
        org_key: &org.key,
        clock: &mut Clock::default(),
    }
    .device_added(&mut org.rng, &org.org, xavier.user, &claimed, "x2")
    .unwrap();
    let x2_add = forge(
        &org,
        &xavier.keys,
        &x_add,
        Hlc((org.now + 1_000_000) << 16),
        cert,
    );
    let r = xavier.log.ingest(vec![x2_add.clone()]);
    assert!(r.is_clean(), "{:?}", r.rejected);
    // Bob sees the new device (so it is certified before his revocation, not voided with it),
    // then revokes Xavier; the new device answers by revoking Bob, on its own stale past.
    assert!(bob.log.ingest(vec![x2_add.clone()]).is_clean());
    org.write(&mut bob, Certificate::UserRevoked { user: xavier.user });
    let counter = forge(
        &org,
        &x2,
        std::slice::from_ref(&x2_add),
        Hlc((org.now + 1_000_001) << 16),
        Certificate::UserRevoked { user: bob.user },
    );
    let st = deliver(&org, &bob.log, &[x2_add, counter]);
    assert!(st.is_active(&bob.keys.id()), "bob joined first: senior");
    assert!(!st.is_active(&x2.id()) && !st.is_active(&xavier.keys.id()));
}

/// Seniority cannot be bought with a shallow past. Ada adds the admins Bob, then X, then Carol;
/// X adds an accomplice Y citing only its own certificate (a past without Carol's). Y and Bob
/// revoke each other: Bob's certificate is in Y's past, so Bob is senior and stays. Y and Carol
/// revoke each other: neither certificate is in the other's past, so both go; the shallow past
/// made Y unordered with Carol, never senior to her.
#[test]
fn a_shallow_past_makes_an_accomplice_unordered_never_senior() {
    for (seed, against_bob) in [(431, true), (432, false)] {
        let (mut org, mut ada) = new_org(seed);
        let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
        let (mut x, x_cert) = org.add_user(&mut ada, Profile::Admin, "x");
        let (mut carol, _) = org.add_user(&mut ada, Profile::Admin, "carol");
        sync(&mut ada, &mut bob);
        sync(&mut ada, &mut carol);
        let w = Writer {
            keys: &x.keys,
            org_key: &org.key,
            clock: &mut Clock::default(),
        };
        let (m, c) =
            crate::testkit::newcomer(&mut org.rng, &w, &org.org, Profile::Admin, "y", "y@x");
        // Dated just after X's certificate: before Carol's, were time to decide.
        let t = x.log.get(&id_of(&x_cert[0])).unwrap().body().time.0 + 1;
        let y_cert = forge(&org, &x.keys, &x_cert, Hlc(t), c);
        assert!(x.log.ingest(vec![y_cert.clone()]).is_clean());
        let mut y = Dev {
            keys: m.keys,
            user: m.user,
            clock: Clock::default(),
            log: x.log.clone(),
            secret: m.secret,
        };
        let victim = if against_bob { &mut bob } else { &mut carol };
        // The victim learns Y (so it can name Y's device); neither has seen the other's revocation.
        assert!(victim.log.ingest(vec![y_cert]).is_clean());
        assert!(y.log.ingest(all_bytes(&victim.log)).is_clean());
        let (v, yd) = (victim.keys.id(), y.keys.id());
        let st = revoke_each_other(&mut org, victim, &mut y);
        if against_bob {
            assert!(st.is_active(&v) && !st.is_active(&yd), "Bob is senior to Y");
        } else {
            assert!(!st.is_active(&yd), "Y does not outlive Carol");
            assert!(
                !st.is_active(&v),
                "unordered: both go (Y is not senior to Carol either)"
            );
        }
    }
}
