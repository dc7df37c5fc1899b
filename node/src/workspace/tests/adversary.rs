//! Stateful property test with an adversary, for a workspace (issue 14): honest devices run
//! random valid operations through the normal draft path and sync in random pairs; one or two
//! adversary members (random organization profile and workspace role; honest devices may raise,
//! lower or remove them, or revoke them in the organization) sign any envelope (grants,
//! removals, a second creation, content, epoch openings and key shares, merges, floods of
//! merges) on any subset of what they have seen, with any time (small, after the parents,
//! within the clock skew, past it, the end of time), delivered in random orders and batches.
//!
//! Honest devices: 0 created the workspace (OWNER, organization admin) and is never removed or
//! lowered by an honest entry; 1 (MANAGER), 2 (CONTRIBUTOR), 3 (READER, an OUTSIDER) start so.
//! After every step, on every honest replica R (kept = admitted and not in `state().dropped`):
//!
//! 1. Convergence: replicas holding the same organization entries and envelopes have equal
//!    states; honest syncs refuse nothing; at the end a fresh replica fed R's envelopes in a
//!    random order and batches computes R's state.
//! 2. No unearned effect: an adversary X whose highest role ever given by an honest device is
//!    `m` (unless another adversary held MANAGER or more somewhere, which may legitimately raise
//!    X) has no kept envelope that needs more than `m`: no kept content unless `m` is at least
//!    CONTRIBUTOR, no kept access change (but leaving) or keys unless at least MANAGER, no kept
//!    merge unless a member.
//! 3. Removal sticks: once every honest replica counts X out (removed from the workspace or
//!    revoked in the organization by an honest device, and no adversary holds MANAGER anywhere),
//!    every envelope X signs afterwards is dropped wherever it is admitted, unless something
//!    built on it that could: another adversary still counted whose role covers what it needed
//!    (the accomplice bound: it could have written it itself), or an honest device (which builds
//!    only on what counts in its view: the removal was voided there since, its author removed
//!    concurrently). X counts as out again only while the removal counts everywhere.
//! 4. An honest device that its own state counts as an active member can always draft a merge
//!    (no flood of heads or far-future time blocks it).

use std::collections::HashSet;

use proptest::prelude::*;
use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::attacks::id;
use super::*;
pub(super) use crate::testkit::shuffle;

mod check;
mod forge;

/// Devices 0 to 3 are honest.
const HONEST: usize = 4;

#[derive(Debug, Clone, Copy)]
enum Act {
    Content,
    Grant(Role),
    Remove,
    Rotate,
    Merge,
    /// Removes an adversary from the workspace.
    Expel,
    RevokeInOrg,
}

#[derive(Debug, Clone, Copy)]
enum Forgery {
    Grant(Role),
    Remove,
    Create,
    Content,
    OpenEpoch,
    ShareKeys,
    Merge,
    Flood(u8),
}

#[derive(Debug, Clone, Copy)]
enum Past {
    Empty,
    Heads,
    Snapshot(u8),
    Subset(u8),
    Own(u8),
}

#[derive(Debug, Clone, Copy)]
enum When {
    Small,
    AfterParents,
    WithinSkew,
    BeyondSkew,
    FarFuture,
}

#[derive(Debug, Clone)]
enum Op {
    Honest {
        by: usize,
        act: Act,
        target: usize,
    },
    Sync {
        a: usize,
        b: usize,
    },
    SyncAll,
    Observe {
        adv: usize,
        from: usize,
    },
    Forge {
        adv: usize,
        what: Forgery,
        target: usize,
        past: Past,
        when: When,
        pick: u64,
    },
    Deliver {
        adv: usize,
        to: usize,
        pick: u64,
        batch: usize,
    },
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Reader),
        Just(Role::Contributor),
        Just(Role::Manager),
        Just(Role::Owner)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let act = prop_oneof![
        3 => Just(Act::Content),
        2 => role().prop_map(Act::Grant),
        2 => Just(Act::Remove),
        1 => Just(Act::Rotate),
        1 => Just(Act::Merge),
        2 => Just(Act::Expel),
        1 => Just(Act::RevokeInOrg),
    ];
    let what = prop_oneof![
        3 => role().prop_map(Forgery::Grant),
        2 => Just(Forgery::Remove),
        1 => Just(Forgery::Create),
        3 => Just(Forgery::Content),
        2 => Just(Forgery::OpenEpoch),
        1 => Just(Forgery::ShareKeys),
        1 => Just(Forgery::Merge),
        1 => (65u8..68).prop_map(Forgery::Flood),
    ];
    let past = prop_oneof![
        1 => Just(Past::Empty),
        4 => Just(Past::Heads),
        4 => (0u8..4).prop_map(Past::Snapshot),
        3 => (0u8..5).prop_map(Past::Subset),
        2 => (0u8..3).prop_map(Past::Own),
    ];
    let when = prop_oneof![
        1 => Just(When::Small),
        4 => Just(When::AfterParents),
        2 => Just(When::WithinSkew),
        1 => Just(When::BeyondSkew),
        1 => Just(When::FarFuture),
    ];
    prop_oneof![
        5 => (0..HONEST, act, any::<usize>()).prop_map(|(by, act, target)| Op::Honest { by, act, target }),
        3 => (0..HONEST, 0..HONEST).prop_map(|(a, b)| Op::Sync { a, b }),
        1 => Just(Op::SyncAll),
        2 => (0..2usize, 0..HONEST).prop_map(|(adv, from)| Op::Observe { adv, from }),
        5 => (0..2usize, what, any::<usize>(), past, when, any::<u64>()).prop_map(
            |(adv, what, target, past, when, pick)| Op::Forge { adv, what, target, past, when, pick }
        ),
        3 => (0..2usize, 0..HONEST, any::<u64>(), 1usize..6)
            .prop_map(|(adv, to, pick, batch)| Op::Deliver { adv, to, pick, batch }),
    ]
}

/// An adversary member: its device, its view (what it observed of honest replicas; never its
/// own forgeries), and what it signed.
struct Adv {
    dev: Dev,
    forged: Vec<Vec<u8>>,
    own: Vec<(EnvelopeId, Hlc)>,
    snapshots: Vec<Vec<EnvelopeId>>,
    /// An honest device removed or revoked it: honest devices never grant it again.
    banned: bool,
    /// Highest role an honest device gave it.
    max_role: Option<Role>,
    /// Index in `forged` from which every honest replica counted it out (property 3).
    out_from: Option<usize>,
}

struct Run {
    w: World,
    hon: Vec<Dev>,
    advs: Vec<Adv>,
    /// Once one adversary is out, honest devices grant no adversary anything again.
    frozen: bool,
}

impl Run {
    fn new(seed: u64, advs: &[(Profile, Role)]) -> Run {
        let mut profiles = vec![Profile::Standard, Profile::Standard, Profile::Outsider];
        profiles.extend(advs.iter().map(|a| a.0));
        let (mut w, mut d) = World::new(seed, &profiles);
        w.access(&mut d[0], AccessChange::Create);
        for (i, role) in [
            (1, Role::Manager),
            (2, Role::Contributor),
            (3, Role::Reader),
        ] {
            let user = d[i].user;
            w.access(&mut d[0], AccessChange::Grant { user, role });
        }
        let mut given = Vec::new();
        for (k, (_, role)) in advs.iter().enumerate() {
            let user = d[HONEST + k].user;
            let grant = |role| encode_payload(&AccessChange::Grant { user, role });
            let (b, _) = w.try_write(&mut d[0], Kind::Access, None, grant(*role));
            let role = if b.is_empty() {
                // An OUTSIDER cannot be made MANAGER or OWNER.
                w.access(
                    &mut d[0],
                    AccessChange::Grant {
                        user,
                        role: Role::Contributor,
                    },
                );
                Role::Contributor
            } else {
                *role
            };
            given.push(role);
        }
        w.rotate(&mut d[0]);
        let advs_devs = d.split_off(HONEST);
        let (first, rest) = d.split_at_mut(1);
        for x in rest {
            pull(&first[0], x);
        }
        let advs = advs_devs
            .into_iter()
            .zip(given)
            .map(|(mut dev, role)| {
                pull(&first[0], &mut dev);
                Adv {
                    snapshots: vec![dev.ws.heads()],
                    dev,
                    forged: Vec::new(),
                    own: Vec::new(),
                    banned: false,
                    max_role: Some(role),
                    out_from: None,
                }
            })
            .collect();
        Run {
            w,
            hon: d,
            advs,
            frozen: false,
        }
    }

    fn users(&self) -> Vec<UserId> {
        self.hon
            .iter()
            .map(|d| d.user)
            .chain(self.advs.iter().map(|a| a.dev.user))
            .collect()
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Honest { by, act, target } => self.honest(by, act, target),
            Op::Sync { a, b } => self.sync(a, b),
            Op::SyncAll => {
                for _ in 0..2 {
                    for a in 0..HONEST {
                        for b in a + 1..HONEST {
                            self.sync(a, b);
                        }
                    }
                }
            }
            Op::Observe { adv, from } => {
                let Some(a) = self.advs.get_mut(adv) else {
                    return;
                };
                let h = &self.hon[from];
                a.dev.org.ingest(org_bytes(&h.org));
                a.dev.ws.org_changed(&a.dev.org);
                a.dev.ws.ingest(ws_bytes(&h.ws), &a.dev.org);
                a.snapshots.push(a.dev.ws.heads());
            }
            Op::Forge {
                adv,
                what,
                target,
                past,
                when,
                pick,
            } => self.forge(adv, what, target, past, when, pick),
            Op::Deliver {
                adv,
                to,
                pick,
                batch,
            } => {
                let Some(a) = self.advs.get(adv) else {
                    return;
                };
                let mut rng = StdRng::seed_from_u64(pick);
                let mut items: Vec<Vec<u8>> = a
                    .forged
                    .iter()
                    .filter(|_| rng.random_range(0..3) > 0)
                    .cloned()
                    .collect();
                shuffle(&mut items, &mut rng);
                let h = &mut self.hon[to];
                for c in items.chunks(batch) {
                    h.ws.ingest(c.to_vec(), &h.org);
                }
            }
        }
        let now = self.w.now;
        for h in &mut self.hon {
            h.org.set_wall(now);
            h.ws.org_changed(&h.org);
        }
        self.check();
    }

    fn honest(&mut self, by: usize, act: Act, target: usize) {
        let users = self.users();
        let t = match act {
            Act::Expel | Act::RevokeInOrg => HONEST + target % self.advs.len(),
            _ => target % users.len(),
        };
        let user = users[t];
        let adv = t.checked_sub(HONEST);
        let w = &mut self.w;
        let d = &mut self.hon[by];
        match act {
            Act::Content => {
                w.content(d);
            }
            Act::Merge => {
                w.try_write(d, Kind::Merge, None, Vec::new());
            }
            Act::Rotate => {
                let sealed: Vec<SealedKeys> = opaque_seals(d)
                    .into_iter()
                    .filter(|s| d.org.state().users[&s.user].revoked_by.is_none())
                    .collect();
                if !sealed.is_empty() {
                    let keys = EpochKeys {
                        commitment: Some([t as u8; 32]),
                        sealed,
                    };
                    w.try_write(d, Kind::Keys, None, encode_keys(&keys));
                }
            }
            Act::Grant(role) => {
                let banned =
                    adv.is_some_and(|k| self.advs[k].banned) || self.frozen && adv.is_some();
                if t == 0 || banned {
                    return;
                }
                let change = AccessChange::Grant { user, role };
                let (b, _) = w.try_write(d, Kind::Access, None, encode_payload(&change));
                if let Some(k) = adv
                    && !b.is_empty()
                {
                    let a = &mut self.advs[k];
                    a.max_role = a.max_role.max(Some(role));
                }
            }
            Act::Remove | Act::Expel => {
                if t == 0 {
                    return;
                }
                let change = AccessChange::Remove { user };
                let (b, _) = w.try_write(d, Kind::Access, None, encode_payload(&change));
                if let Some(k) = adv
                    && !b.is_empty()
                {
                    self.advs[k].banned = true;
                }
            }
            Act::RevokeInOrg => {
                let Some(k) = adv else { return };
                let device = self.advs[k].dev.keys.id();
                let d0 = &mut self.hon[0];
                if d0.org.state().is_active(&device) {
                    self.w
                        .org_write(d0, crate::trust::Certificate::DeviceRevoked { device });
                    d0.ws.org_changed(&d0.org);
                    self.advs[k].banned = true;
                }
            }
        }
    }

    /// Brings `a` and `b` up to date with each other; honest syncs refuse nothing.
    fn sync(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        let (ao, aw) = (org_bytes(&self.hon[a].org), ws_bytes(&self.hon[a].ws));
        let (bo, bw) = (org_bytes(&self.hon[b].org), ws_bytes(&self.hon[b].ws));
        // Forgeries held for their parents may be judged (and refused) on the way.
        let forged: HashSet<EnvelopeId> = self
            .advs
            .iter()
            .flat_map(|a| a.own.iter().map(|(i, _)| *i))
            .collect();
        for (x, o, ws) in [(b, ao, aw), (a, bo, bw)] {
            let d = &mut self.hon[x];
            let r = d.org.ingest(o);
            assert!(r.is_clean(), "honest org sync refused {:?}", r.rejected);
            let r = d.ws.org_changed(&d.org);
            let mut refused = r.refused;
            refused.extend(d.ws.ingest(ws, &d.org).refused);
            refused.retain(|(i, _)| !forged.contains(i));
            assert!(refused.is_empty(), "honest sync refused {refused:?}");
        }
    }
}

fn adversary() -> impl Strategy<Value = (Profile, Role)> {
    (
        prop_oneof![Just(Profile::Standard), Just(Profile::Outsider)],
        role(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn a_workspace_adversary_gains_nothing_it_was_not_given_and_blocks_no_member(
        seed in 0u64..1_000,
        advs in proptest::collection::vec(adversary(), 1..=2),
        ops in proptest::collection::vec(op(), 1..60),
        pick in any::<u64>(),
    ) {
        let mut run = Run::new(seed, &advs);
        run.check();
        for op in &ops {
            run.step(op);
        }
        run.finish(pick);
    }
}
