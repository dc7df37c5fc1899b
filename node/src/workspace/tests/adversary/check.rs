//! The properties checked after every step, and the fresh replica at the end (see the parent
//! module's comment).

use std::collections::{BTreeSet, HashSet};

use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::*;
use crate::trust::DeviceId;

impl Run {
    pub(super) fn check(&mut self) {
        let states: Vec<(BTreeSet<Vec<u8>>, BTreeSet<EnvelopeId>, WorkspaceState)> = self
            .hon
            .iter_mut()
            .map(|d| {
                let org: BTreeSet<Vec<u8>> = org_bytes(&d.org).into_iter().collect();
                let ws = d.ws.envelopes().iter().map(|e| e.id()).collect();
                (org, ws, d.st())
            })
            .collect();
        // 1. Same entries and envelopes, same state.
        for i in 0..states.len() {
            for j in i + 1..states.len() {
                if states[i].0 == states[j].0 && states[i].1 == states[j].1 {
                    assert_eq!(states[i].2, states[j].2, "replicas {i} and {j} disagree");
                }
            }
        }
        // 2. No unearned effect.
        let powerful: Vec<bool> = self
            .advs
            .iter()
            .map(|a| {
                states
                    .iter()
                    .any(|s| s.2.members.get(&a.dev.user) >= Some(&Role::Manager))
            })
            .collect();
        for (k, a) in self.advs.iter().enumerate() {
            let raised = powerful.iter().enumerate().any(|(j, p)| j != k && *p)
                || self
                    .advs
                    .iter()
                    .enumerate()
                    .any(|(j, b)| j != k && b.max_role >= Some(Role::Manager));
            if raised {
                continue;
            }
            let me = a.dev.keys.id();
            for (r, d) in self.hon.iter().enumerate() {
                let dropped: HashSet<&EnvelopeId> = states[r].2.dropped.iter().collect();
                for e in d.ws.envelopes() {
                    if e.header().author != me || dropped.contains(&e.id()) {
                        continue;
                    }
                    let needed = needed(e, &a.dev.user);
                    assert!(
                        a.max_role >= Some(needed),
                        "replica {r} keeps a {:?} by adversary {k} that needed {needed:?}; \
                         it was given at most {:?}",
                        e.header().kind,
                        a.max_role
                    );
                }
            }
        }
        // 3. Removal sticks.
        let any_powerful = powerful.iter().any(|p| *p);
        let devices: Vec<(DeviceId, Option<Role>)> = self
            .advs
            .iter()
            .map(|a| (a.dev.keys.id(), a.max_role))
            .collect();
        // Honest devices build only on what counts in their view: if one built on it, the
        // removal did not count there when it did (removal wins voided it: its author was
        // removed concurrently), whatever the other replicas knew then.
        let honest: Vec<(DeviceId, Option<Role>)> = self
            .hon
            .iter()
            .map(|h| (h.keys.id(), Some(Role::Owner)))
            .collect();
        for (k, a) in self.advs.iter_mut().enumerate() {
            let others: Vec<(DeviceId, Option<Role>)> = devices
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .map(|(_, d)| *d)
                .chain(honest.iter().copied())
                .collect();
            if a.banned && !any_powerful {
                let me = a.dev.keys.id();
                let out = self.hon.iter().zip(&states).all(|(d, s)| {
                    !s.2.members.contains_key(&a.dev.user) || !d.org.state().is_active(&me)
                });
                if out && a.out_from.is_none() {
                    a.out_from = Some(a.forged.len());
                    self.frozen = true;
                } else if !out {
                    // The removal no longer counts everywhere (removal wins voided it: its
                    // author was removed concurrently): the adversary is back, legitimately.
                    a.out_from = None;
                }
            }
            if let Some(from) = a.out_from {
                for b in &a.forged[from..] {
                    let i = id(b);
                    for (r, d) in self.hon.iter().enumerate() {
                        let kept = d.ws.contains(&i) && !states[r].2.dropped.contains(&i);
                        // The accomplice bound: another adversary still counted builds on it,
                        // with a role covering what it needed (it could have written it itself),
                        // or an honest device did.
                        let vouched = || {
                            let Some(e) = d.ws.get(&i) else {
                                return false;
                            };
                            let need = needed(e, &a.dev.user);
                            others.iter().any(|(dev, role)| {
                                *role >= Some(need)
                                    && d.org.state().is_active(dev)
                                    && built_on(&d.ws, dev, &states[r].2.dropped, &i)
                            })
                        };
                        assert!(
                            !kept || vouched(),
                            "replica {r} keeps an envelope its author signed once counted out: {:?} by \
                             adversary {k}",
                            d.ws.get(&i).map(|e| e.header().kind)
                        );
                    }
                }
            }
        }
        // 4. An honest active member can always draft a merge.
        let now = self.w.now;
        for (i, d) in self.hon.iter_mut().enumerate() {
            let st = &states[i].2;
            if !d.org.state().is_active(&d.keys.id()) || !st.members.contains_key(&d.user) {
                continue;
            }
            let mut clock = d.clock.clone();
            let r =
                d.ws.draft(&d.org, &d.keys, &mut clock, now, Kind::Merge, None, |_| {
                    Vec::new()
                });
            assert!(r.is_ok(), "honest device {i} cannot draft a merge: {r:?}");
        }
    }

    /// A fresh replica fed `r`'s envelopes in a random order and batches computes its state.
    pub(super) fn finish(&mut self, pick: u64) {
        let mut rng = StdRng::seed_from_u64(pick);
        let r = rng.random_range(0..HONEST);
        let d = &mut self.hon[r];
        let mut org = OrgLog::new(self.w.org);
        org.set_wall(self.w.now);
        assert!(org.ingest(org_bytes(&d.org)).is_clean());
        let mut items = ws_bytes(&d.ws);
        shuffle(&mut items, &mut rng);
        let mut ws = WorkspaceLog::new(self.w.org, self.w.ws);
        let batch = rng.random_range(1..8);
        for c in items.chunks(batch) {
            assert!(ws.ingest(c.to_vec(), &org).is_clean());
        }
        assert_eq!(ws.pending_len(), 0);
        assert_eq!(ws.state(&org), d.st(), "a fresh replica of {r} disagrees");
        if std::env::var("WS_ADV_STATS").is_ok() {
            let st = d.st();
            let mut forged = 0;
            let mut admitted = 0;
            let mut kept = 0;
            for a in &self.advs {
                for b in &a.forged {
                    forged += 1;
                    let i = id(b);
                    if d.ws.contains(&i) {
                        admitted += 1;
                        if !st.dropped.contains(&i) {
                            kept += 1;
                        }
                    }
                }
            }
            let outs = self.advs.iter().filter(|a| a.out_from.is_some()).count();
            eprintln!(
                "STATS forged {forged} admitted {admitted} kept {kept} out {outs} members {}",
                st.members.len()
            );
        }
    }
}

/// The least role an envelope by `user` needed.
fn needed(e: &Envelope, user: &UserId) -> Role {
    let leaving = e.access() == Some(AccessChange::Remove { user: *user });
    match e.header().kind {
        Kind::Merge => Role::Reader,
        Kind::Content => Role::Contributor,
        Kind::Access if leaving => Role::Reader,
        Kind::Access | Kind::Keys => Role::Manager,
    }
}

/// Whether a kept envelope by `dev` has `target` in its causal past.
fn built_on(
    ws: &WorkspaceLog,
    dev: &DeviceId,
    dropped: &[EnvelopeId],
    target: &EnvelopeId,
) -> bool {
    ws.envelopes()
        .iter()
        .filter(|e| e.header().author == *dev && !dropped.contains(&e.id()))
        .any(|e| {
            let mut stack: Vec<EnvelopeId> = e.header().parents.clone();
            let mut seen = HashSet::new();
            while let Some(p) = stack.pop() {
                if p == *target {
                    return true;
                }
                if seen.insert(p)
                    && let Some(x) = ws.get(&p)
                {
                    stack.extend(x.header().parents.iter().copied());
                }
            }
            false
        })
}
