//! Found by the adversary property test (`adversary.rs`): what removal wins voids must stop
//! counting everywhere. The cycle of removals is fixed; the two others are not yet (ignored with
//! their reason): a voided removal in the causal past still binds admission, and rights granted
//! by a voided entry still count.

use super::*;

/// X (an admin, later revoked by Ada) revokes Bob's device, or demotes Bob; Carol sees it and
/// builds on it; Ada revokes X concurrently. Once everyone has everything, removal wins voids
/// X's entry and the state says Bob is an active admin, but every head descends from Carol's
/// entry, whose causal past holds X's removal of Bob: admission, which reads the whole causal
/// past, refuses everything Bob drafts.
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
    let (_, r) = org.try_write(&mut bob, Certificate::UserRevoked { user: x.user });
    (st, r)
}

#[test]
#[ignore = "known, not fixed: admission reads voided removals in the causal past (issue 14)"]
fn a_voided_demotion_in_the_past_does_not_stop_the_admin_from_writing() {
    let (_, r) = a_voided_removal_in_the_past(true);
    assert!(r.is_clean(), "{:?}", r.rejected);
}

#[test]
#[ignore = "known, not fixed: admission reads voided removals in the causal past (issue 14)"]
fn a_voided_revocation_in_the_past_does_not_lock_the_device_out() {
    let (_, r) = a_voided_removal_in_the_past(false);
    assert!(r.is_clean(), "{:?}", r.rejected);
}

/// X2 (an admin, demoted by Ada) promotes X1 on a copy from before its demotion; X1 then
/// revokes Carol on top of that promotion. The promotion is voided; what X1 did with the
/// admin right it gave is not.
#[test]
#[ignore = "known, not fixed: a voided grant still backs what its grantee wrote (issue 14)"]
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

/// Found by the property test (invariant 2a): three removals in a cycle, none senior to the
/// next, all concurrent. Bob revokes X0; X0, on a stale copy, revokes X1 and Carol; X1, on a
/// stale copy, revokes Bob. Grounded semantics leaves the cycle undecided, so all three count;
/// Bob's revocation of X0 then voids X0's revocation of Carol. Before the fix, the removals of
/// the cycle also voided each other, the kept set alternated from round to round, and the
/// even round cap stopped it where nothing was voided: X0, revoked, revoked Carol.
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
    org.write(&mut x0, Certificate::DeviceRevoked { device: x1d });
    org.write(&mut x0, Certificate::UserRevoked { user: carol.user });
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
        !st.is_active(&x0d) && !st.is_active(&x1d) && !st.is_active(&b),
        "the cycle counts"
    );
    assert_eq!(
        st.dropped.len(),
        1,
        "only X0's revocation of Carol: {:?}",
        st.dropped
    );
    assert_eq!(carol.log.state(), st);
}
