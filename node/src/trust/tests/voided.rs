//! Found by the adversary property test (`adversary.rs`): what removal wins voids must stop
//! counting everywhere: a voided removal in the causal past no longer binds what its target
//! writes, rights granted by a voided entry do not count, and a cycle of removals does not save
//! what a revoked device wrote. Each failed before its fix.

use super::*;

/// X (an admin, later revoked by Ada) revokes Bob's device, or demotes Bob; Carol sees it and
/// builds on it; Ada revokes X concurrently. Once everyone has everything, removal wins voids
/// X's entry and the state says Bob is an active admin. Every head descends from Carol's entry,
/// whose causal past holds X's removal of Bob: admission, when it read the raw causal past,
/// refused everything Bob drafted (`AuthorRevoked` / `NotAdmin`); now it is admitted and counts.
fn a_voided_removal_in_the_past(demote: bool) -> (OrgState, IngestReport) {
    let (mut org, mut ada) = new_org(201);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    let (mut carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    let (mut x, _) = org.add_user(&mut ada, Profile::Admin, "x");
    for d in [&mut bob, &mut carol, &mut x] {
        sync(&mut ada, d);
    }
    let cert = if demote {
        Certificate::ProfileChanged {
            user: bob.user,
            profile: Profile::Standard,
        }
    } else {
        Certificate::DeviceRevoked {
            device: bob.keys.id(),
        }
    };
    let removal = org.write(&mut x, cert);
    assert!(carol.log.ingest(vec![removal]).is_clean());
    org.add_own_device(&mut carol);
    org.write(
        &mut ada,
        Certificate::DeviceRevoked {
            device: x.keys.id(),
        },
    );
    for d in [&mut bob, &mut carol, &mut x] {
        sync(&mut ada, d);
    }
    sync(&mut ada, &mut bob);
    let st = bob.log.state().clone();
    assert_eq!(st.dropped.len(), 1, "X's removal of Bob is voided");
    assert!(st.is_active(&bob.keys.id()));
    assert_eq!(st.users[&bob.user].profile, Profile::Admin);
    let (bytes, r) = org.try_write(&mut bob, Certificate::UserRevoked { user: x.user });
    let after = bob.log.state().clone();
    assert!(
        !after.dropped.contains(&id_of(&bytes)),
        "Bob's entry counts"
    );
    assert!(after.users[&x.user].revoked_by.is_some());
    (after, r)
}

#[test]
fn a_voided_demotion_in_the_past_does_not_stop_the_admin_from_writing() {
    let (st, r) = a_voided_removal_in_the_past(true);
    assert!(r.is_clean(), "{:?}", r.rejected);
    assert_eq!(st.dropped.len(), 1, "X's demotion only: {:?}", st.dropped);
}

#[test]
fn a_voided_revocation_in_the_past_does_not_lock_the_device_out() {
    let (st, r) = a_voided_removal_in_the_past(false);
    assert!(r.is_clean(), "{:?}", r.rejected);
    assert_eq!(st.dropped.len(), 1, "X's revocation only: {:?}", st.dropped);
}

/// X2 (an admin, demoted by Ada) promotes X1 on a copy from before its demotion; X1 then
/// revokes Carol on top of that promotion. The promotion is voided; what X1 did with the
/// admin right it gave is not.
#[test]
fn rights_granted_by_a_voided_entry_do_not_count() {
    let (mut org, mut ada) = new_org(202);
    let (mut carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    let (mut x1, _) = org.add_user(&mut ada, Profile::Standard, "x1");
    let (mut x2, _) = org.add_user(&mut ada, Profile::Admin, "x2");
    for d in [&mut carol, &mut x1, &mut x2] {
        sync(&mut ada, d);
    }
    let promote = org.write(
        &mut x2,
        Certificate::ProfileChanged {
            user: x1.user,
            profile: Profile::Admin,
        },
    );
    assert!(x1.log.ingest(vec![promote]).is_clean());
    org.write(&mut x1, Certificate::UserRevoked { user: carol.user });
    org.write(
        &mut ada,
        Certificate::ProfileChanged {
            user: x2.user,
            profile: Profile::Standard,
        },
    );
    for d in [&mut carol, &mut x1, &mut x2] {
        sync(&mut ada, d);
    }
    let st = ada.log.state();
    assert_eq!(
        st.users[&x1.user].profile,
        Profile::Standard,
        "the promotion is voided"
    );
    assert!(
        st.is_active(&carol.keys.id()),
        "so is what X1 did as an admin"
    );
}

/// Found by the property test (invariant 2a): three removals in a cycle, all concurrent. Bob
/// revokes X0; X0, on a stale copy, revokes X1 and Carol; X1, on a stale copy, revokes Bob.
/// Grounded semantics leaves the cycle undecided; the removal of its most senior author (Bob,
/// whose certificate is an ancestor of the two others) counts, so X0's removals are voided (Carol among them),
/// and X1's revocation of Bob, which no counting removal attacks any more, counts too. Before
/// the first fix the kept set alternated from round to round and X0, revoked, revoked Carol;
/// before the second, every removal on a cycle counted (so two colluding admins on a longer
/// cycle could take both founders down: the next test).
#[test]
fn a_cycle_of_removals_does_not_save_what_a_revoked_device_wrote() {
    let (mut org, mut ada) = new_org(203);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    let (mut carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    let (mut x0, _) = org.add_user(&mut ada, Profile::Admin, "x0");
    let (mut x1, _) = org.add_user(&mut ada, Profile::Admin, "x1");
    for d in [&mut bob, &mut carol, &mut x0, &mut x1] {
        sync(&mut ada, d);
    }
    let (b, x0d, x1d) = (bob.keys.id(), x0.keys.id(), x1.keys.id());
    let on_x1 = org.write(&mut x0, Certificate::DeviceRevoked { device: x1d });
    let on_carol = org.write(&mut x0, Certificate::UserRevoked { user: carol.user });
    org.write(&mut x1, Certificate::DeviceRevoked { device: b });
    org.write(&mut bob, Certificate::DeviceRevoked { device: x0d });
    for d in [&mut bob, &mut x0, &mut x1, &mut carol] {
        sync(&mut ada, d);
    }
    let st = ada.log.state();
    assert!(
        st.is_active(&carol.keys.id()),
        "voided by Bob's revocation of X0"
    );
    assert!(
        !st.is_active(&x0d),
        "Bob, the most senior on the cycle, wins"
    );
    assert!(st.is_active(&x1d), "X0's revocation of X1 is voided");
    assert!(!st.is_active(&b), "X1's revocation of Bob counts");
    let mut dropped = vec![id_of(&on_x1), id_of(&on_carol)];
    dropped.sort_unstable();
    assert_eq!(st.dropped, dropped);
    assert_eq!(carol.log.state(), st);
}

/// Found by the adversary property test: two colluding admins, X0 and X1, on stale copies.
/// Ada revokes X1; X1 demotes Bob and revokes his device; Bob demotes X0; X0 revokes Ada. All
/// concurrent: a cycle of four (Ada's removal voids X1's, which void Bob's, which voids X0's,
/// which voids Ada's). When every removal on a cycle counted, both founders went down; now the
/// most senior author's removal (Ada's, the genesis) counts and the cycle unwinds from it.
#[test]
fn two_colluding_admins_on_a_cycle_of_removals_do_not_take_the_founders_down() {
    let (mut org, mut ada) = new_org(205);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    let (mut x0, _) = org.add_user(&mut ada, Profile::Admin, "x0");
    let (mut x1, _) = org.add_user(&mut ada, Profile::Admin, "x1");
    for d in [&mut bob, &mut x0, &mut x1] {
        sync(&mut ada, d);
    }
    let demote = |user| Certificate::ProfileChanged {
        user,
        profile: Profile::Outsider,
    };
    org.write(&mut ada, Certificate::UserRevoked { user: x1.user });
    org.write(&mut x1, demote(bob.user));
    org.write(
        &mut x1,
        Certificate::DeviceRevoked {
            device: bob.keys.id(),
        },
    );
    org.write(&mut bob, demote(x0.user));
    org.write(&mut x0, Certificate::UserRevoked { user: ada.user });
    for d in [&mut bob, &mut x0, &mut x1] {
        sync(&mut ada, d);
    }
    sync(&mut ada, &mut bob);
    let st = ada.log.state();
    assert!(st.is_active(&ada.keys.id()) && st.is_active(&bob.keys.id()));
    assert_eq!(st.users[&ada.user].profile, Profile::Admin);
    assert_eq!(st.users[&bob.user].profile, Profile::Admin);
    assert!(!st.is_active(&x1.keys.id()));
    assert_eq!(st.users[&x0.user].profile, Profile::Outsider);
    assert_eq!(
        st.dropped.len(),
        3,
        "X1's two removals and X0's: {:?}",
        st.dropped
    );
    assert_eq!(bob.log.state(), st);
}

/// Found by the adversary property test: X (an admin) revokes Bob's device and, concurrently,
/// its own user; Ada builds on X's revocation of Bob; Bob, on what Ada sent him, revokes X. X's
/// self-revocation voids its revocation of Bob (concurrent, by a device it removes), so Bob is
/// active and his revocation of X counts. Before, Bob's revocation of X voided X's
/// self-revocation in turn, the three made an odd cycle, none counted, and X stayed active. A
/// removal of one's own user (a confession) is now never voided: it gives rights back to nobody
/// but its author.
#[test]
fn a_confession_is_never_voided_and_voids_what_its_author_wrote_concurrently() {
    let (mut org, mut ada) = new_org(204);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    let (mut x, _) = org.add_user(&mut ada, Profile::Admin, "x");
    for d in [&mut bob, &mut x] {
        sync(&mut ada, d);
    }
    let base = all_bytes(&x.log);
    let heads: Vec<Vec<u8>> = x
        .log
        .heads()
        .iter()
        .map(|h| x.log.get(h).unwrap().bytes().to_vec())
        .collect();
    let t = x.log.max_time(&x.log.heads());
    let on_bob = forge(
        &org,
        &x.keys,
        &heads,
        Hlc(t.0 + 1),
        Certificate::DeviceRevoked {
            device: bob.keys.id(),
        },
    );
    let confession = forge(
        &org,
        &x.keys,
        &heads,
        Hlc(t.0 + 2),
        Certificate::UserRevoked { user: x.user },
    );
    assert!(ada.log.ingest(vec![on_bob.clone()]).is_clean());
    let (mut carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    sync(&mut ada, &mut bob);
    let (by_bob, r) = org.try_write(
        &mut bob,
        Certificate::DeviceRevoked {
            device: x.keys.id(),
        },
    );
    assert!(r.is_clean(), "{:?}", r.rejected);
    let mut all = base;
    all.extend([on_bob.clone(), confession.clone(), by_bob.clone()]);
    for d in [&mut ada, &mut bob, &mut carol] {
        d.log.ingest(all.clone());
    }
    sync(&mut ada, &mut bob);
    sync(&mut ada, &mut carol);
    let st = ada.log.state();
    assert!(
        !st.dropped.contains(&id_of(&confession)),
        "the confession counts"
    );
    assert!(
        st.dropped.contains(&id_of(&on_bob)),
        "what X wrote concurrently does not"
    );
    assert!(
        !st.dropped.contains(&id_of(&by_bob)),
        "Bob's revocation of X counts"
    );
    assert!(st.is_active(&bob.keys.id()));
    assert!(!st.is_active(&x.keys.id()));
    assert_eq!(bob.log.state(), st);
    assert_eq!(carol.log.state(), st);
}
