//! Scenario, refusal, frozen-vector and property tests of workspace admission and state.

use rand::{SeedableRng, rngs::StdRng};

use super::envelope::{self, encode_keys, encode_payload};
use super::*;
use crate::trust::author::{self, Newcomer, Writer};
use crate::trust::{
    Certificate, Clock, DeviceKeys, EntryId, Hlc, OrgId, OrgKey, OrgLog, Profile, UserId,
};

/// A device with its own copy of the organization log and of the workspace log.
struct Dev {
    keys: DeviceKeys,
    user: UserId,
    clock: Clock,
    org: OrgLog,
    ws: WorkspaceLog,
}

impl Dev {
    fn st(&mut self) -> WorkspaceState {
        self.ws.state(&self.org)
    }
    fn ingest_ws(&mut self, b: Vec<Vec<u8>>) -> Report {
        self.ws.ingest(b, &self.org)
    }
}

struct World {
    org: OrgId,
    key: OrgKey,
    rng: StdRng,
    now: u64,
    ws: WorkspaceId,
}

impl World {
    fn tick(&mut self) -> u64 {
        self.now += 10;
        self.now
    }

    /// An organization whose admin is device 0; then one user per profile in `profiles`.
    fn new(seed: u64, profiles: &[Profile]) -> (World, Vec<Dev>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut clock = Clock::default();
        let n = author::create_org(
            &mut rng,
            1_000,
            &mut clock,
            "Org",
            &Newcomer {
                name: "admin",
                email: "admin@x",
                device_label: "d0",
            },
        )
        .unwrap();
        let mut org = OrgLog::new(n.org);
        assert!(org.ingest(vec![n.genesis]).is_clean());
        let mut w = World {
            org: n.org,
            key: n.org_key,
            rng,
            now: 2_000,
            ws: WorkspaceId([7; 16]),
        };
        let mut admin = Dev {
            keys: n.device,
            user: n.user,
            clock,
            org,
            ws: WorkspaceLog::new(n.org, WorkspaceId([7; 16])),
        };
        let mut devs = Vec::new();
        for (i, p) in profiles.iter().enumerate() {
            let d = w.add_user(&mut admin, *p, &format!("u{i}"));
            devs.push(d);
        }
        devs.insert(0, admin);
        let all = org_bytes(&devs[0].org);
        for d in devs.iter_mut() {
            assert!(d.org.ingest(all.clone()).is_clean());
        }
        (w, devs)
    }

    fn org_write(&mut self, by: &mut Dev, cert: Certificate) -> Vec<u8> {
        let now = self.tick();
        let b = Writer {
            keys: &by.keys,
            org_key: &self.key,
            clock: &mut by.clock,
        }
        .draft(&by.org, now, cert);
        assert!(by.org.ingest(vec![b.clone()]).is_clean());
        b
    }

    fn add_user(&mut self, admin: &mut Dev, profile: Profile, name: &str) -> Dev {
        let w = Writer {
            keys: &admin.keys,
            org_key: &self.key,
            clock: &mut Clock::default(),
        };
        let (m, c) = crate::testkit::newcomer(&mut self.rng, &w, &self.org, profile, name, "x@x");
        let (keys, user) = (m.keys, m.user);
        self.org_write(admin, c);
        Dev {
            keys,
            user,
            clock: Clock::default(),
            org: OrgLog::new(self.org),
            ws: WorkspaceLog::new(self.org, self.ws),
        }
    }

    /// `by` writes an envelope; returns its bytes and what `by`'s own log said.
    fn try_write(
        &mut self,
        by: &mut Dev,
        kind: Kind,
        epoch: Option<EnvelopeId>,
        payload: Vec<u8>,
    ) -> (Vec<u8>, Report) {
        let now = self.tick();
        let drafted = by
            .ws
            .draft(&by.org, &by.keys, &mut by.clock, now, kind, epoch, |_| {
                payload
            });
        match drafted {
            Ok(b) => {
                let r = by.ws.ingest(vec![b.clone()], &by.org);
                (b, r)
            }
            // The draft's own check refused it: nothing to send (empty bytes), the refusal is
            // reported as the log would have.
            Err(why) => (
                Vec::new(),
                Report {
                    refused: vec![(EnvelopeId::default(), why)],
                    ..Report::default()
                },
            ),
        }
    }

    fn write(
        &mut self,
        by: &mut Dev,
        kind: Kind,
        epoch: Option<EnvelopeId>,
        payload: Vec<u8>,
    ) -> Vec<u8> {
        let (b, r) = self.try_write(by, kind, epoch, payload);
        assert!(
            r.is_clean() && r.admitted.len() == 1,
            "own envelope refused: {:?}",
            r.refused
        );
        b
    }

    fn access(&mut self, by: &mut Dev, change: AccessChange) -> Vec<u8> {
        self.write(by, Kind::Access, None, encode_payload(&change))
    }

    /// A new epoch sealed (opaque blobs) to every active member, by `by`.
    fn rotate(&mut self, by: &mut Dev) -> (Vec<u8>, EnvelopeId) {
        let sealed = opaque_seals(by);
        let b = self.write(
            by,
            Kind::Keys,
            None,
            encode_keys(&EpochKeys {
                commitment: Some([0; 32]),
                sealed,
            }),
        );
        (b.clone(), EnvelopeId(*blake3::hash(&b).as_bytes()))
    }

    fn content(&mut self, by: &mut Dev) -> (Vec<u8>, Report) {
        let epoch = by.ws.state(&by.org).current_epoch().map(|e| e.id);
        self.try_write(by, Kind::Content, epoch, b"sealed bytes".to_vec())
    }
}

fn org_bytes(l: &OrgLog) -> Vec<Vec<u8>> {
    l.entries().map(|e| e.bytes().to_vec()).collect()
}

fn ws_bytes(l: &WorkspaceLog) -> Vec<Vec<u8>> {
    l.envelopes().iter().map(|e| e.bytes().to_vec()).collect()
}

/// Brings `b` up to date with `a` (organization first, then the workspace).
fn pull(a: &Dev, b: &mut Dev) {
    b.org.ingest(org_bytes(&a.org));
    b.ws.org_changed(&b.org);
    let r = b.ws.ingest(ws_bytes(&a.ws), &b.org);
    assert!(r.is_clean(), "{:?}", r.refused);
}

/// Opaque epoch-key blobs for every member of `by`'s view, at their current user-key generation.
fn opaque_seals(by: &Dev) -> Vec<SealedKeys> {
    let st = by.ws.state(&by.org);
    let orgst = by.org.state();
    st.members
        .keys()
        .map(|u| SealedKeys {
            user: *u,
            generation: orgst.users[u].key.generation,
            epochs: Vec::new(),
            blob: vec![1, 2, 3],
        })
        .collect()
}

/// Device 0 gives device 1's user `role`, and device 1 pulls it.
fn raise_second(w: &mut World, d: &mut [Dev], role: Role) {
    let user = d[1].user;
    w.access(&mut d[0], AccessChange::Grant { user, role });
    let (a, rest) = d.split_at_mut(1);
    pull(&a[0], &mut rest[0]);
}

fn only(r: &Report) -> Refusal {
    assert!(r.admitted.is_empty(), "admitted {:?}", r.admitted);
    assert_eq!(r.refused.len(), 1, "{:?}", r.refused);
    r.refused[0].1.clone()
}

/// Owner 0 creates the workspace, makes the first epoch, shares with 1 (contributor) and 2
/// (reader), and everyone pulls.
fn shared(seed: u64) -> (World, Vec<Dev>) {
    let (mut w, mut d) = World::new(
        seed,
        &[Profile::Standard, Profile::Standard, Profile::Outsider],
    );
    let (u1, u2) = (d[1].user, d[2].user);
    w.access(&mut d[0], AccessChange::Create);
    w.access(
        &mut d[0],
        AccessChange::Grant {
            user: u1,
            role: Role::Contributor,
        },
    );
    w.access(
        &mut d[0],
        AccessChange::Grant {
            user: u2,
            role: Role::Reader,
        },
    );
    w.rotate(&mut d[0]);
    let (a, rest) = d.split_at_mut(1);
    for x in rest {
        pull(&a[0], x);
    }
    (w, d)
}

#[test]
fn roles_decide_who_writes_and_everyone_sees_the_same_state() {
    let (mut w, mut d) = shared(1);
    let (_, r) = w.content(&mut d[1]);
    assert!(r.is_clean());
    let (_, r) = w.content(&mut d[2]);
    assert_eq!(
        only(&r),
        Refusal::RoleTooLow {
            needed: Role::Contributor,
            had: Some(Role::Reader)
        }
    );
    // A contributor cannot grant; the outsider cannot become manager even by the owner.
    let u3 = d[3].user;
    let (_, r) = w.try_write(
        &mut d[1],
        Kind::Access,
        None,
        encode_payload(&AccessChange::Grant {
            user: u3,
            role: Role::Reader,
        }),
    );
    assert!(matches!(only(&r), Refusal::RoleTooLow { .. }));
    let (_, r) = w.try_write(
        &mut d[0],
        Kind::Access,
        None,
        encode_payload(&AccessChange::Grant {
            user: u3,
            role: Role::Manager,
        }),
    );
    assert_eq!(
        only(&r),
        Refusal::OutsiderCap {
            user: u3,
            role: Role::Manager
        }
    );
    let (a, rest) = d.split_at_mut(1);
    pull(&rest[0], &mut a[0]);
    let s0 = d[0].st();
    let (a, rest) = d.split_at_mut(1);
    pull(&a[0], &mut rest[1]);
    assert_eq!(d[2].st(), s0);
    assert_eq!(s0.members.len(), 3);
    assert_eq!(s0.content.len(), 1);
    assert!(!s0.needs_rotation);
}

#[test]
fn managers_grant_only_lower_roles() {
    let (mut w, mut d) = World::new(2, &[Profile::Standard, Profile::Standard]);
    let u2 = d[2].user;
    w.access(&mut d[0], AccessChange::Create);
    raise_second(&mut w, &mut d, Role::Manager);
    let (_, r) = w.try_write(
        &mut d[1],
        Kind::Access,
        None,
        encode_payload(&AccessChange::Grant {
            user: u2,
            role: Role::Owner,
        }),
    );
    assert!(matches!(
        only(&r),
        Refusal::RoleTooLow {
            needed: Role::Owner,
            ..
        }
    ));
    w.access(
        &mut d[1],
        AccessChange::Grant {
            user: u2,
            role: Role::Contributor,
        },
    );
    let owner = d[0].user;
    let (_, r) = w.try_write(
        &mut d[1],
        Kind::Access,
        None,
        encode_payload(&AccessChange::Remove { user: owner }),
    );
    assert!(matches!(only(&r), Refusal::RoleTooLow { .. }));
}

#[test]
fn unshare_requires_a_new_epoch_that_excludes_the_removed_member() {
    let (mut w, mut d) = shared(3);
    let u1 = d[1].user;
    let old_epoch = d[0].st().current_epoch().unwrap().id;
    w.access(&mut d[0], AccessChange::Remove { user: u1 });
    let st = d[0].st();
    assert!(st.needs_rotation);
    assert!(!st.members.contains_key(&u1));
    // Content under the old epoch is still admitted until the rotation exists (the writer's
    // causal past decides), but never after it.
    let (_, new_epoch) = w.rotate(&mut d[0]);
    let st = d[0].st();
    assert!(!st.needs_rotation);
    assert_eq!(st.current_epoch().unwrap().id, new_epoch);
    assert!(!st.current_epoch().unwrap().recipients.contains_key(&u1));
    let (_, r) = w.try_write(&mut d[0], Kind::Content, Some(old_epoch), b"x".to_vec());
    assert_eq!(only(&r), Refusal::WrongEpoch);
    // Keys sealed to the removed member are refused.
    let orgst = d[0].org.state().clone();
    let to_removed = EpochKeys {
        commitment: Some([0; 32]),
        sealed: vec![SealedKeys {
            user: u1,
            generation: orgst.users[&u1].key.generation,
            epochs: Vec::new(),
            blob: vec![9],
        }],
    };
    let (_, r) = w.try_write(&mut d[0], Kind::Keys, None, encode_keys(&to_removed));
    assert_eq!(
        only(&r),
        Refusal::BadRecipients {
            why: "sealed to a non-member"
        }
    );
}

#[test]
fn a_revoked_devices_later_envelopes_are_refused_or_dropped() {
    let (mut w, mut d) = shared(4);
    let dev1 = d[1].keys.id();
    // Device 1, offline, keeps writing on what it knew; the admin revokes it meanwhile.
    let (offline, r) = w.content(&mut d[1]);
    assert!(r.is_clean());
    w.org_write(&mut d[0], Certificate::DeviceRevoked { device: dev1 });
    let (a, rest) = d.split_at_mut(1);
    rest[0].org.ingest(org_bytes(&a[0].org));
    // Knowing its revocation, it can write nothing.
    let (_, r) = w.content(&mut d[1]);
    assert_eq!(only(&r), Refusal::AuthorNotActive { device: dev1 });
    // Its offline write reaches the others: admitted (valid in its causal past), then dropped.
    let r = d[2].ingest_ws(vec![offline.clone()]);
    assert!(r.is_clean());
    let (a, rest) = d.split_at_mut(1);
    pull(&a[0], &mut rest[1]);
    let st = d[2].st();
    assert_eq!(
        st.dropped,
        vec![EnvelopeId(*blake3::hash(&offline).as_bytes())]
    );
    assert!(st.content.is_empty());
    assert!(
        st.needs_rotation,
        "the member's user key must rotate, then the epoch"
    );
}

#[test]
fn tampered_forged_replayed_and_misaddressed_envelopes_are_refused() {
    let (mut w, mut d) = shared(5);
    let (good, _) = w.content(&mut d[1]);
    let mut fresh = WorkspaceLog::new(w.org, w.ws);
    let all = ws_bytes(&d[0].ws);
    assert!(fresh.ingest(all.clone(), &d[0].org).is_clean());
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n - 70] ^= 1;
    assert_eq!(
        only(&fresh.ingest(vec![flipped], &d[0].org)),
        Refusal::BadSignature
    );
    // Forged author: device 2's key signs an envelope that names device 1.
    let e = envelope::verify_batch(vec![
        envelope::decode(good.clone(), &mut Default::default())
            .map_err(|_| ())
            .unwrap(),
    ])
    .pop()
    .unwrap()
    .unwrap();
    let forged = envelope::sign(&d[2].keys, e.header(), e.payload());
    assert_eq!(
        only(&fresh.ingest(vec![forged], &d[0].org)),
        Refusal::BadSignature
    );
    // Replay: a duplicate, nothing new.
    let r = fresh.ingest(all.clone(), &d[0].org);
    assert_eq!(
        (r.admitted.len(), r.duplicates, r.refused.len()),
        (0, all.len(), 0)
    );
    // Another workspace's log refuses it.
    let mut other = WorkspaceLog::new(w.org, WorkspaceId([8; 16]));
    assert_eq!(
        only(&other.ingest(vec![all[0].clone()], &d[0].org)),
        Refusal::WrongWorkspace
    );
    // Truncated, oversized, unknown version.
    assert_eq!(
        only(&fresh.ingest(vec![good[..40].to_vec()], &d[0].org)),
        Refusal::Truncated
    );
    let mut v9 = good.clone();
    v9[0] = 9;
    assert_eq!(
        only(&fresh.ingest(vec![v9], &d[0].org)),
        Refusal::UnknownVersion(9)
    );
    let big = vec![1u8; envelope::MAX_ENVELOPE_BYTES + 1];
    assert!(matches!(
        only(&fresh.ingest(vec![big], &d[0].org)),
        Refusal::TooLarge { .. }
    ));
    // The untouched envelope still goes in afterwards.
    assert!(fresh.ingest(vec![good], &d[0].org).is_clean());
}

#[test]
fn envelopes_naming_unknown_org_heads_wait_for_the_org_log() {
    let (mut w, mut d) = shared(6);
    // The admin adds a user and immediately grants them, naming the new org heads.
    let newcomer = {
        let (a, _) = d.split_at_mut(1);
        w.add_user(&mut a[0], Profile::Standard, "late")
    };
    let g = w.access(
        &mut d[0],
        AccessChange::Grant {
            user: newcomer.user,
            role: Role::Reader,
        },
    );
    let before = d[2].ws.len();
    let r = d[2].ingest_ws(vec![g]);
    assert!(r.admitted.is_empty() && r.refused.is_empty());
    assert_eq!(d[2].ws.pending_len(), 1);
    let (a, rest) = d.split_at_mut(1);
    rest[1].org.ingest(org_bytes(&a[0].org));
    let r = rest[1].ws.org_changed(&rest[1].org);
    assert_eq!(r.admitted.len(), 1);
    assert_eq!(d[2].ws.len(), before + 1);
}

#[test]
fn frozen_envelope_vector() {
    let keys = DeviceKeys::from_secrets(&[7; 32], &[8; 32]);
    let header = Header {
        org: OrgId([1; 32]),
        workspace: WorkspaceId([2; 16]),
        author: keys.id(),
        parents: vec![EnvelopeId([3; 32])],
        org_heads: vec![EntryId([4; 32])],
        time: Hlc(0x0000_0190_0000_0002),
        epoch: None,
        kind: Kind::Merge,
    };
    let bytes = envelope::sign(&keys, &header, &[]);
    const FROZEN: &str = include_str!("../vectors/envelope_v1.hex");
    assert_eq!(
        hex::encode(&bytes),
        FROZEN.trim(),
        "envelope wire format changed"
    );
    let e = envelope::verify_batch(vec![
        envelope::decode(bytes, &mut Default::default())
            .map_err(|_| ())
            .unwrap(),
    ])
    .pop()
    .unwrap()
    .unwrap();
    assert_eq!(e.header(), &header);
    assert_eq!(e.header_bytes(), envelope::header_bytes(&header).as_slice());
}

mod adversary;
mod attacks;
mod keyring;
mod props;
