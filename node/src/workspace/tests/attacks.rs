//! Attacks by a hostile member (issue 14): each test is one attack that the rules must defeat.
//!
//! A hostile member signs whatever it likes, with any parents it has seen and any timestamp; these
//! tests forge such envelopes with [`forge`] and check that the state of an honest replica does
//! not give them the effect the attacker wanted.

use super::*;
use crate::trust::ids::MAX_CLOCK_SKEW_MS;

/// An envelope signed by `by` with exactly these parents and time (what a hostile device can do).
pub(super) fn forge(
    by: &Dev,
    parents: &[EnvelopeId],
    time: Hlc,
    kind: Kind,
    epoch: Option<EnvelopeId>,
    payload: &[u8],
) -> Vec<u8> {
    let mut parents = parents.to_vec();
    parents.sort_unstable();
    let mut org_heads = by.org.heads();
    org_heads.truncate(envelope::MAX_ORG_HEADS);
    let header = Header {
        org: by.org.org(),
        workspace: by.ws.id(),
        author: by.keys.id(),
        parents,
        org_heads,
        time,
        epoch,
        kind,
    };
    envelope::sign(&by.keys, &header, payload)
}

pub(super) fn id(b: &[u8]) -> EnvelopeId {
    EnvelopeId(*blake3::hash(b).as_bytes())
}

pub(super) fn ms(t: u64) -> Hlc {
    Hlc(t << 16)
}

/// Attack 5w: a READER writes 65 sibling merges on the same heads; the owner still writes.
#[test]
fn attack_5w_sibling_merges_do_not_freeze_the_workspace() {
    let (mut w, mut d) = shared(51);
    let heads = d[2].ws.heads();
    let siblings: Vec<Vec<u8>> = (0..envelope::MAX_PARENTS as u64 + 1)
        .map(|i| forge(&d[2], &heads, ms(w.now + 1 + i), Kind::Merge, None, &[]))
        .collect();
    assert!(d[0].ingest_ws(siblings).is_clean());
    assert_eq!(d[0].st().heads.len(), envelope::MAX_PARENTS + 1);
    let (_, r) = w.content(&mut d[0]);
    assert!(r.is_clean() && r.admitted.len() == 1, "{:?}", r.refused);
    // Merging in steps: the next draft joins what the first one left out.
    assert!(d[0].st().heads.len() <= 2);
    let (_, r) = w.content(&mut d[0]);
    assert!(r.is_clean() && r.admitted.len() == 1, "{:?}", r.refused);
    assert_eq!(d[0].st().heads.len(), 1);
}

/// Attack 5w (time): an envelope dated beyond the clock skew waits for the wall clock.
#[test]
fn attack_5w_far_future_envelopes_are_held_until_the_wall_clock_reaches_them() {
    let (w, mut d) = shared(52);
    let wall = w.now + 10;
    d[0].org.set_wall(wall);
    let heads = d[2].ws.heads();
    let far = forge(
        &d[2],
        &heads,
        ms(wall + MAX_CLOCK_SKEW_MS + 1_000),
        Kind::Merge,
        None,
        &[],
    );
    let r = d[0].ingest_ws(vec![far.clone()]);
    assert!(r.admitted.is_empty() && r.refused.is_empty(), "{r:?}");
    assert!(d[0].ws.is_held(&id(&far)));
    // Still early: still held. Then the wall clock passes it: admitted on the next call.
    d[0].org.set_wall(wall + 500);
    let o = &mut d[0];
    assert!(o.ws.org_changed(&o.org).admitted.is_empty());
    d[0].org.set_wall(wall + 1_000);
    let o = &mut d[0];
    let r = o.ws.org_changed(&o.org);
    assert_eq!(r.admitted, vec![id(&far)]);
    assert!(!d[0].ws.is_held(&id(&far)));
}

/// Attack 5w (time): one envelope at the largest timestamp does not block later writes.
#[test]
fn attack_5w_an_envelope_at_the_largest_timestamp_does_not_block_later_writes() {
    // With a wall clock: the largest admissible time is wall + skew; the owner writes after it,
    // and its clock does not jump further than that.
    let (mut w, mut d) = shared(53);
    let wall = w.now + 10;
    d[0].org.set_wall(wall);
    let heads = d[2].ws.heads();
    let edge = forge(
        &d[2],
        &heads,
        ms(wall + MAX_CLOCK_SKEW_MS),
        Kind::Merge,
        None,
        &[],
    );
    assert_eq!(d[0].ingest_ws(vec![edge]).admitted.len(), 1);
    let (b, r) = w.content(&mut d[0]);
    assert!(r.is_clean() && r.admitted.len() == 1, "{:?}", r.refused);
    let t = d[0].ws.get(&id(&b)).unwrap().header().time;
    assert!(t.millis() <= wall + MAX_CLOCK_SKEW_MS + 1, "{t:?}");
    // Without a wall clock (nothing held): an envelope at Hlc::MAX cannot have children, and
    // the owner's next write must not cite it.
    let (mut w, mut d) = shared(54);
    let heads = d[2].ws.heads();
    let max = forge(&d[2], &heads, Hlc::MAX, Kind::Merge, None, &[]);
    assert_eq!(d[0].ingest_ws(vec![max]).admitted.len(), 1);
    let (_, r) = w.content(&mut d[0]);
    assert!(r.is_clean() && r.admitted.len() == 1, "{:?}", r.refused);
}

/// Attack 6a: a removed CONTRIBUTOR keeps writing on its pre-removal heads under the old epoch;
/// an accomplice builds on it. Removal wins: the content is voided, the accomplice's merge is not.
#[test]
fn attack_6a_content_concurrent_with_the_authors_removal_is_voided() {
    let (mut w, mut d) = shared(61);
    let u1 = d[1].user;
    // Device 1 has not heard of its removal: it writes on what it has.
    let (late, r) = w.content(&mut d[1]);
    assert!(r.is_clean());
    w.access(&mut d[0], AccessChange::Remove { user: u1 });
    w.rotate(&mut d[0]);
    // The reader (an accomplice, or just an honest device) receives it first and merges on it.
    assert!(d[2].ingest_ws(vec![late.clone()]).is_clean());
    let (merge, r) = w.try_write(&mut d[2], Kind::Merge, None, vec![]);
    assert!(r.is_clean());
    let r = d[0].ingest_ws(vec![late.clone(), merge.clone()]);
    assert!(r.is_clean(), "{:?}", r.refused);
    let st = d[0].st();
    assert!(!st.content.contains(&id(&late)), "voided content applied");
    assert!(st.dropped.contains(&id(&late)));
    assert!(!st.dropped.contains(&id(&merge)), "a merge citing it stays");
    // Every replica agrees.
    let (a, rest) = d.split_at_mut(1);
    pull(&a[0], &mut rest[1]);
    assert_eq!(d[2].st(), d[0].st());
}

/// Attack 6b: a removed OWNER re-grants itself (and an accomplice) on a stale copy.
#[test]
fn attack_6b_a_removed_owner_cannot_regrant_itself_on_a_stale_copy() {
    let (mut w, mut d) = shared(62);
    let (u1, u2) = (d[1].user, d[2].user);
    raise_second(&mut w, &mut d, Role::Owner);
    // The first owner removes the second; the second, on its stale copy, writes later.
    w.access(&mut d[0], AccessChange::Remove { user: u1 });
    let g1 = w.access(
        &mut d[1],
        AccessChange::Grant {
            user: u1,
            role: Role::Owner,
        },
    );
    let g2 = w.access(
        &mut d[1],
        AccessChange::Grant {
            user: u2,
            role: Role::Manager,
        },
    );
    assert!(d[0].ingest_ws(vec![g1, g2]).is_clean());
    let st = d[0].st();
    assert_eq!(st.members.get(&u1), None, "the removed owner is back");
    assert_eq!(
        st.members.get(&u2),
        Some(&Role::Reader),
        "its accomplice was promoted"
    );
}

/// A removed OWNER, on a stale copy, removes the owner who removed it and every other member:
/// once the removal is known, nothing it writes afterwards counts, removals included.
#[test]
fn attack_6e_a_removed_owner_cannot_remove_the_others_from_a_stale_copy() {
    let (mut w, mut d) = shared(66);
    let (u0, u1, u2) = (d[0].user, d[1].user, d[2].user);
    raise_second(&mut w, &mut d, Role::Owner);
    w.access(&mut d[0], AccessChange::Remove { user: u1 });
    let r0 = w.access(&mut d[1], AccessChange::Remove { user: u0 });
    let r2 = w.access(&mut d[1], AccessChange::Remove { user: u2 });
    assert!(d[0].ingest_ws(vec![r0, r2]).is_clean());
    let st = d[0].st();
    assert_eq!(st.members.get(&u1), None, "the removed owner stays removed");
    assert_eq!(
        st.members.get(&u0),
        Some(&Role::Owner),
        "the owner who removed it stays"
    );
    assert_eq!(st.members.get(&u2), Some(&Role::Reader), "the others stay");
}

/// Attack 6c: a removed MANAGER opens a far-future epoch of its own on a stale copy.
#[test]
fn attack_6c_a_removed_managers_epoch_does_not_become_current() {
    let (mut w, mut d) = shared(63);
    let u3 = d[2].user;
    w.access(
        &mut d[0],
        AccessChange::Grant {
            user: u3,
            role: Role::Manager,
        },
    );
    let (a, rest) = d.split_at_mut(1);
    pull(&a[0], &mut rest[1]);
    w.access(&mut d[0], AccessChange::Remove { user: u3 });
    let (_, honest) = w.rotate(&mut d[0]);
    // The removed manager: an epoch sealed to itself, dated a year ahead (no wall clock here).
    let sealed = opaque_seals(&d[2]);
    let heads = d[2].ws.heads();
    let far = forge(
        &d[2],
        &heads,
        ms(w.now + 365 * 24 * 3600 * 1000),
        Kind::Keys,
        None,
        &encode_keys(&EpochKeys {
            commitment: Some([0; 32]),
            sealed,
        }),
    );
    assert!(d[0].ingest_ws(vec![far.clone()]).is_clean());
    let st = d[0].st();
    assert_eq!(st.current_epoch().map(|e| e.id), Some(honest));
    assert!(st.dropped.contains(&id(&far)));
    assert!(!st.current_epoch().unwrap().recipients.contains_key(&u3));
}

/// Attack 6c (fold): a grant concurrent with a removal resolves to the removal, whatever the
/// timestamps say.
#[test]
fn attack_6c_a_grant_concurrent_with_a_removal_resolves_to_the_removal() {
    let (mut w, mut d) = shared(64);
    let u2 = d[2].user;
    raise_second(&mut w, &mut d, Role::Owner);
    // Owner 0 removes the reader; owner 1, concurrently and later by the clock, promotes them.
    w.access(&mut d[0], AccessChange::Remove { user: u2 });
    let g = w.access(
        &mut d[1],
        AccessChange::Grant {
            user: u2,
            role: Role::Contributor,
        },
    );
    assert!(d[0].ingest_ws(vec![g]).is_clean());
    assert_eq!(d[0].st().members.get(&u2), None);
}

/// Attack 6c (epochs): two concurrent epochs; the newer timestamp does not decide, and a new
/// rotation is due.
#[test]
fn attack_6c_concurrent_epochs_need_a_rotation() {
    let (mut w, mut d) = shared(65);
    raise_second(&mut w, &mut d, Role::Manager);
    let (e0, _) = w.rotate(&mut d[0]);
    let (e1, _) = w.rotate(&mut d[1]);
    assert!(d[0].ingest_ws(vec![e1]).is_clean());
    assert!(d[1].ingest_ws(vec![e0]).is_clean());
    let st = d[0].st();
    assert!(st.needs_rotation, "concurrent epochs");
    assert_eq!(st, d[1].st());
    // Whoever rotates next ends it.
    w.rotate(&mut d[0]);
    assert!(!d[0].st().needs_rotation);
}

/// An organization revocation that removal wins voided does not lock its target out of a
/// workspace. X (an admin) revokes device 1 on its copy; device 2 builds on that revocation (it
/// adds a phone); the founder revokes X concurrently, so X's revocation is voided and device 1
/// is active, but every organization head now descends from it. Device 1's envelopes cite those
/// heads: when workspace admission read the raw organization past, it refused them
/// (`AuthorNotActive`) forever.
#[test]
fn a_voided_org_revocation_in_the_cited_past_does_not_lock_a_writer_out() {
    let (mut w, mut d) = shared(31);
    let mut x = w.add_user(&mut d[0], Profile::Admin, "x");
    x.org.ingest(org_bytes(&d[0].org));
    let founder = org_bytes(&d[0].org);
    for dev in &mut d[1..] {
        dev.org.ingest(founder.clone());
    }
    let victim = d[1].keys.id();
    let revocation = w.org_write(&mut x, Certificate::DeviceRevoked { device: victim });
    assert!(d[2].org.ingest(vec![revocation]).is_clean());
    let phone = DeviceKeys::generate(&mut w.rng);
    let claimed = author::claim_device(&phone, &w.org, &d[2].keys.id());
    let add = Writer {
        keys: &d[2].keys,
        org_key: &w.key,
        clock: &mut Clock::default(),
    }
    .device_added(&mut w.rng, &w.org, d[2].user, &claimed, "phone")
    .unwrap();
    w.org_write(&mut d[2], add);
    w.org_write(
        &mut d[0],
        Certificate::DeviceRevoked {
            device: x.keys.id(),
        },
    );
    let mut all = org_bytes(&d[0].org);
    all.extend(org_bytes(&x.org));
    all.extend(org_bytes(&d[2].org));
    for dev in d.iter_mut() {
        dev.org.ingest(all.clone());
        dev.ws.org_changed(&dev.org);
    }
    let st = d[1].org.state().clone();
    assert!(st.is_active(&victim), "X's revocation is voided");
    assert_eq!(st.dropped.len(), 1);
    let (bytes, r) = w.content(&mut d[1]);
    assert!(r.is_clean() && r.admitted.len() == 1, "{:?}", r.refused);
    let id = EnvelopeId(*blake3::hash(&bytes).as_bytes());
    let r = d[0].ingest_ws(vec![bytes]);
    assert!(r.is_clean(), "{:?}", r.refused);
    assert!(d[0].st().content.contains(&id), "it counts");
}

/// A role granted by a grant that removal wins voids backs nothing. The owner removes the
/// manager (device 1); the manager, on its stale copy, raises the reader (device 2) to
/// contributor; the reader, having seen that grant, writes content on top of it. The grant is
/// voided, so the content needed a role its author never held among what counts.
#[test]
fn a_role_from_a_voided_grant_backs_nothing() {
    let (mut w, mut d) = shared(67);
    let (u1, u2) = (d[1].user, d[2].user);
    raise_second(&mut w, &mut d, Role::Manager);
    w.access(&mut d[0], AccessChange::Remove { user: u1 });
    let grant = w.access(
        &mut d[1],
        AccessChange::Grant {
            user: u2,
            role: Role::Contributor,
        },
    );
    let m1 = ws_bytes(&d[1].ws);
    assert!(d[2].ingest_ws(m1).is_clean());
    let (content, r) = w.content(&mut d[2]);
    assert!(r.is_clean(), "{:?}", r.refused);
    let id = EnvelopeId(*blake3::hash(&content).as_bytes());
    assert!(d[0].ingest_ws(vec![grant, content]).is_clean());
    let st = d[0].st();
    assert_eq!(
        st.members.get(&u2),
        Some(&Role::Reader),
        "the grant is voided"
    );
    assert!(
        !st.content.contains(&id),
        "so is what the grantee wrote with it"
    );
}

/// A removal by a member revoked since, which no one with the role it needed accepted, does not
/// lock its target out (found by the adversary property test). A MANAGER removes the
/// contributor; the READER merges on it (a merge vouches only for what a READER could write);
/// the founder revokes the manager's user in the organization. The state drops the removal, so
/// the contributor is a member; its merges and content were refused (`RoleTooLow`) for good
/// when admission counted the removal anyway.
#[test]
fn a_removal_by_a_member_revoked_since_does_not_lock_its_target_out() {
    let (mut w, mut d) = shared(68);
    let u1 = d[1].user;
    let mut m = joined(&mut w, &mut d, Profile::Standard, Some(Role::Manager), "m");
    let mu = m.user;
    let removal = w.access(&mut m, AccessChange::Remove { user: u1 });
    assert!(d[2].ingest_ws(vec![removal]).is_clean());
    w.write(&mut d[2], Kind::Merge, None, Vec::new());
    w.org_write(&mut d[0], Certificate::UserRevoked { user: mu });
    let org: Vec<Vec<u8>> = d.iter().flat_map(|x| org_bytes(&x.org)).collect();
    let ws: Vec<Vec<u8>> = d.iter().flat_map(|x| ws_bytes(&x.ws)).collect();
    for x in d.iter_mut() {
        x.org.ingest(org.clone());
        x.ws.org_changed(&x.org);
        assert!(x.ingest_ws(ws.clone()).is_clean());
    }
    let st = d[0].st();
    assert_eq!(st.members.get(&u1), Some(&Role::Contributor), "{st:?}");
    assert!(d[1].st() == st && d[2].st() == st, "replicas agree");
    let (merge, r) = w.try_write(&mut d[1], Kind::Merge, None, Vec::new());
    assert!(r.is_clean() && r.admitted.len() == 1, "{:?}", r.refused);
    let (content, r) = w.content(&mut d[1]);
    assert!(r.is_clean() && r.admitted.len() == 1, "{:?}", r.refused);
    assert!(d[0].ingest_ws(vec![merge, content.clone()]).is_clean());
    assert!(d[0].st().content.contains(&id(&content)), "it counts");
}

/// What admission sets aside on a revocation its author cited is counted again when removal wins
/// voids that revocation. A MANAGER removes the contributor; an admin revokes the manager's
/// device while the founder revokes that admin concurrently (so the manager's revocation is
/// voided). The READER merges on the removal and the contributor, citing organization heads
/// with the manager's revocation, writes content on that merge: admission sets the removal aside,
/// the state counts it (the manager is active) and drops the content, which followed it.
#[test]
fn a_removal_set_aside_on_a_voided_revocation_counts_again() {
    let (mut w, mut d) = shared(69);
    let u1 = d[1].user;
    let mut m = joined(&mut w, &mut d, Profile::Standard, Some(Role::Manager), "m");
    let mut x = joined(&mut w, &mut d, Profile::Admin, None, "x");
    pull(&d[0], &mut m);
    let removal = w.access(&mut m, AccessChange::Remove { user: u1 });
    // The READER accepts it (its merge vouches for no removal) and the contributor builds on that.
    assert!(d[2].ingest_ws(vec![removal.clone()]).is_clean());
    let merge = w.write(&mut d[2], Kind::Merge, None, Vec::new());
    assert!(
        d[1].ingest_ws(vec![removal.clone(), merge.clone()])
            .is_clean()
    );
    let manager = m.keys.id();
    let revocation = w.org_write(&mut x, Certificate::DeviceRevoked { device: manager });
    w.org_write(
        &mut d[0],
        Certificate::DeviceRevoked {
            device: x.keys.id(),
        },
    );
    assert!(d[1].org.ingest(vec![revocation.clone()]).is_clean());
    let y = &mut d[1];
    y.ws.org_changed(&y.org);
    assert!(
        !d[1].org.state().is_active(&manager),
        "d1 sees the manager revoked"
    );
    let (content, r) = w.content(&mut d[1]);
    assert!(r.is_clean() && r.admitted.len() == 1, "{:?}", r.refused);
    let mut org = org_bytes(&d[0].org);
    org.push(revocation);
    d[0].org.ingest(org);
    let y = &mut d[0];
    y.ws.org_changed(&y.org);
    assert!(
        d[0].org.state().is_active(&manager),
        "its revocation is voided"
    );
    assert!(
        d[0].ingest_ws(vec![removal, merge, content.clone()])
            .is_clean()
    );
    let st = d[0].st();
    assert_eq!(st.members.get(&u1), None, "the removal counts");
    assert!(
        !st.content.contains(&id(&content)),
        "what followed it does not"
    );
    assert!(st.dropped.contains(&id(&content)));
}

/// Two accomplices who are owners close a cycle of removals with the two senior owners, each on
/// a stale copy: the creator removes X1, X1 removes Bob, Bob removes X0, X0 removes the creator.
/// Counting every removal on the cycle (the rule before) left the workspace with no owner at
/// all; broken by seniority as in the organization, the creator's removal counts first and the
/// cycle unwinds from it: the accomplices go, the creator and Bob stay.
#[test]
fn two_accomplices_on_a_cycle_of_removals_do_not_take_the_senior_owners_down() {
    let (mut w, mut d) = shared(70);
    let (u0, u1) = (d[0].user, d[1].user);
    raise_second(&mut w, &mut d, Role::Owner);
    let mut x0 = joined(&mut w, &mut d, Profile::Standard, Some(Role::Owner), "x0");
    let mut x1 = joined(&mut w, &mut d, Profile::Standard, Some(Role::Owner), "x1");
    pull(&d[0], &mut x0);
    let (ux0, ux1) = (x0.user, x1.user);
    let cycle = vec![
        w.access(&mut d[0], AccessChange::Remove { user: ux1 }),
        w.access(&mut x1, AccessChange::Remove { user: u1 }),
        w.access(&mut d[1], AccessChange::Remove { user: ux0 }),
        w.access(&mut x0, AccessChange::Remove { user: u0 }),
    ];
    assert!(d[0].ingest_ws(cycle.clone()).is_clean());
    assert!(d[2].ingest_ws(cycle).is_clean());
    let st = d[0].st();
    assert_eq!(st.members.get(&u0), Some(&Role::Owner), "{st:?}");
    assert_eq!(st.members.get(&u1), Some(&Role::Owner));
    assert_eq!(st.members.get(&ux0), None);
    assert_eq!(st.members.get(&ux1), None);
    assert_eq!(d[2].st().members, st.members, "replicas agree");
}

/// A revoked owner's forged demotion voids nothing (found by the adversary property test). The
/// creator removes a MANAGER and revokes owner X in the organization; X, on its stale copy,
/// demotes the creator to MANAGER. No one with OWNER accepted the demotion, so it is dropped;
/// before, removal wins still let it void the creator's concurrent removal of the manager (and
/// the honest manager's next merge was then refused by admission, which set the demotion aside).
#[test]
fn a_revoked_owners_forged_demotion_voids_nothing() {
    let (mut w, mut d) = shared(71);
    let (u0, u1) = (d[0].user, d[1].user);
    raise_second(&mut w, &mut d, Role::Manager);
    let mut x = joined(&mut w, &mut d, Profile::Standard, Some(Role::Owner), "x");
    w.access(&mut d[0], AccessChange::Remove { user: u1 });
    w.org_write(
        &mut d[0],
        Certificate::DeviceRevoked {
            device: x.keys.id(),
        },
    );
    let y = &mut d[0];
    y.ws.org_changed(&y.org);
    let demotion = w.access(
        &mut x,
        AccessChange::Grant {
            user: u0,
            role: Role::Manager,
        },
    );
    assert!(d[0].ingest_ws(vec![demotion.clone()]).is_clean());
    let st = d[0].st();
    assert_eq!(st.members.get(&u0), Some(&Role::Owner), "{st:?}");
    assert_eq!(
        st.members.get(&u1),
        None,
        "the removal of the manager counts"
    );
    assert!(st.dropped.contains(&id(&demotion)));
}

/// A new user of `profile` given `role` in the workspace by the creator (device 0); every device
/// and the newcomer then pull the creator's logs.
fn joined(w: &mut World, d: &mut [Dev], profile: Profile, role: Option<Role>, name: &str) -> Dev {
    let mut x = w.add_user(&mut d[0], profile, name);
    if let Some(role) = role {
        let user = x.user;
        w.access(&mut d[0], AccessChange::Grant { user, role });
    }
    let (a, rest) = d.split_at_mut(1);
    for y in rest.iter_mut().chain([&mut x]) {
        pull(&a[0], y);
    }
    x
}

/// A MANAGER whose user an admin made an OUTSIDER (who may hold CONTRIBUTOR at most) removes a
/// contributor on stale organization heads, where it was still STANDARD. No one with MANAGER
/// accepted it, so it is dropped; the demoted user shows as CONTRIBUTOR; the contributor, who has
/// seen the removal, still writes. Before, the raw organization past the envelope cited decided.
#[test]
fn a_manager_demoted_to_outsider_keeps_no_manager_power_on_a_stale_past() {
    let (mut w, mut d) = shared(72);
    let u1 = d[1].user;
    let mut m = joined(&mut w, &mut d, Profile::Standard, Some(Role::Manager), "m");
    let mu = m.user;
    let demotion = w.org_write(
        &mut d[0],
        Certificate::ProfileChanged {
            user: mu,
            profile: Profile::Outsider,
        },
    );
    let removal = w.access(&mut m, AccessChange::Remove { user: u1 });
    let y = &mut d[1];
    assert!(y.org.ingest(vec![demotion]).is_clean());
    y.ws.org_changed(&y.org);
    assert!(d[1].ingest_ws(vec![removal.clone()]).is_clean());
    let (content, r) = w.content(&mut d[1]);
    assert!(r.is_clean() && r.admitted.len() == 1, "{:?}", r.refused);
    let y = &mut d[0];
    y.ws.org_changed(&y.org);
    assert!(
        d[0].ingest_ws(vec![removal.clone(), content.clone()])
            .is_clean()
    );
    let st = d[0].st();
    assert!(st.dropped.contains(&id(&removal)), "{st:?}");
    assert_eq!(st.members.get(&u1), Some(&Role::Contributor));
    assert_eq!(st.members.get(&mu), Some(&Role::Contributor), "capped");
    assert!(st.content.contains(&id(&content)));
    assert_eq!(d[1].st(), st, "replicas agree");
}
