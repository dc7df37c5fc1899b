//! Removal wins: which admitted organization entries count (see `state` for the rules, in its
//! module doc, and docs/security.md).
//!
//! [`Verdicts::compute`] iterates, to a bounded fixpoint, between the devices that count (one
//! owner, whose certificate is kept) and the removals that count (grounded semantics over the
//! removals that threaten each other, the senior author winning a mutual pair). It reads only
//! the DAG and the certificates, never a timestamp or a position's value: the result is a
//! function of the set of admitted entries.

use std::collections::{HashMap, HashSet};

use super::admission::{Index, device_owner, needs_admin};
use super::entry::{Certificate, Entry};
use super::ids::{DeviceId, UserId};
use crate::dag::Dag;

/// Most fixpoint rounds between kept devices and effective removals. A pathological DAG (a
/// device whose only support is a device it removes) could oscillate; the cap keeps the result a
/// pure function of the DAG anyway.
const MAX_ROUNDS: usize = 64;

/// Kept entries and the effective removals among them.
pub(super) struct Verdicts {
    /// Membership of each position in the kept set.
    pub(super) kept: Vec<bool>,
    /// Device owners among kept certificates (`None`: certified to two users).
    pub(super) owners: HashMap<DeviceId, Option<UserId>>,
}

impl Verdicts {
    /// The kept set and the device owners for these admitted entries.
    pub(super) fn compute(entries: &[Entry], dag: &Dag, index: &Index) -> Verdicts {
        let n = entries.len();
        let mut kept = vec![true; n];
        let mut owners = device_owners(entries, index, &kept);
        let simple = index.removals.is_empty() && owners.values().all(Option::is_some);
        if simple {
            return Verdicts { kept, owners };
        }
        for _ in 0..MAX_ROUNDS {
            let legit =
                |d: &DeviceId, kept: &[bool], owners: &HashMap<DeviceId, Option<UserId>>| {
                    owners.get(d).copied().flatten().is_some_and(|u| {
                        index
                            .user_adds
                            .get(&u)
                            .is_some_and(|v| v.iter().any(|p| kept[*p as usize]))
                    })
                };
            let ctx = Ctx::new(entries, dag, index, &owners);
            let candidates: Vec<u32> = index
                .removals
                .iter()
                .copied()
                .filter(|r| {
                    kept[*r as usize] && legit(&entries[*r as usize].body().author, &kept, &owners)
                })
                .collect();
            let threats: HashMap<u32, Vec<u32>> = candidates
                .iter()
                .map(|r| (*r, ctx.threatened(*r)))
                .collect();
            // An effective removal is never voided itself (a removal is voided iff an effective
            // one attacks it): removals that threaten each other in a cycle or an unordered pair
            // all count, and still void what else their targets wrote concurrently.
            let effective: HashSet<u32> = ctx.resolve(&candidates, &threats).into_iter().collect();
            let mut voided = vec![false; n];
            for r in &effective {
                for p in &threats[r] {
                    voided[*p as usize] |= !effective.contains(p);
                }
            }
            let next: Vec<bool> = (0..n)
                .map(|p| {
                    let body = entries[p].body();
                    matches!(body.cert, Certificate::Genesis(_))
                        || (!voided[p] && legit(&body.author, &kept, &owners))
                })
                .collect();
            if next == kept {
                break;
            }
            kept = next;
            owners = device_owners(entries, index, &kept);
        }
        Verdicts { kept, owners }
    }
}

/// Owners of devices among kept certificates.
fn device_owners(
    entries: &[Entry],
    index: &Index,
    kept: &[bool],
) -> HashMap<DeviceId, Option<UserId>> {
    let mut out = HashMap::with_capacity(index.device_adds.len());
    for (device, adds) in &index.device_adds {
        let mut owner: Option<Option<UserId>> = None;
        for p in adds.iter().filter(|p| kept[**p as usize]) {
            let u = device_owner(entries[*p as usize].body(), device);
            owner = Some(match owner {
                None => u,
                Some(prev) if prev == u => prev,
                Some(_) => None,
            });
        }
        if let Some(o) = owner {
            out.insert(*device, o);
        }
    }
    out
}

/// What removal wins needs to look up.
struct Ctx<'a> {
    entries: &'a [Entry],
    dag: &'a Dag,
    index: &'a Index,
    owners: &'a HashMap<DeviceId, Option<UserId>>,
    /// The devices that count, by user.
    devices_of: HashMap<UserId, Vec<DeviceId>>,
}

impl<'a> Ctx<'a> {
    fn new(
        entries: &'a [Entry],
        dag: &'a Dag,
        index: &'a Index,
        owners: &'a HashMap<DeviceId, Option<UserId>>,
    ) -> Self {
        let mut devices_of: HashMap<UserId, Vec<DeviceId>> = HashMap::new();
        for (d, o) in owners {
            if let Some(u) = o {
                devices_of.entry(*u).or_default().push(*d);
            }
        }
        Ctx {
            entries,
            dag,
            index,
            owners,
            devices_of,
        }
    }

    fn concurrent(&self, a: u32, b: u32) -> bool {
        !self.dag.is_ancestor_or_self(a, b) && !self.dag.is_ancestor_or_self(b, a)
    }

    fn owner(&self, d: &DeviceId) -> Option<UserId> {
        self.owners.get(d).copied().flatten()
    }

    /// The devices a removal removes, and whether it removes only the admin profile.
    fn removes(&self, r: u32) -> (&[DeviceId], bool) {
        let devices_of = |u: &UserId| self.devices_of.get(u).map_or(&[][..], Vec::as_slice);
        match &self.entries[r as usize].body().cert {
            Certificate::DeviceRevoked { device } => (std::slice::from_ref(device), false),
            Certificate::UserRevoked { user } => (devices_of(user), false),
            Certificate::ProfileChanged { user, .. } => (devices_of(user), true),
            _ => (&[], false),
        }
    }

    /// Whether entry `p` needs the admin profile (see [`needs_admin`]).
    fn needs_admin(&self, p: u32) -> bool {
        let body = self.entries[p as usize].body();
        let Some(user) = self.owner(&body.author) else {
            return false;
        };
        let revoked_owner = match &body.cert {
            Certificate::DeviceRevoked { device } => self.owner(device),
            _ => None,
        };
        let recorded = match &body.cert {
            Certificate::InvitationClosed { id, .. } => self
                .index
                .invitation_records
                .get(id)
                .into_iter()
                .flatten()
                .filter(|r| self.dag.is_ancestor(**r, p))
                .all(|r| self.entries[*r as usize].body().author == body.author),
            _ => false,
        };
        needs_admin(body, &user, revoked_owner, recorded)
    }

    /// Whether the author of entry `a` is senior to the author of entry `b`: the certificate
    /// that added `a`'s author is a strict ancestor of the one that added `b`'s (it was in the
    /// organization, as its adder saw it, before `b`'s author joined). Fixed when a device
    /// joins: nothing its author writes later changes it.
    fn senior(&self, a: u32, b: u32) -> bool {
        let added = |p: u32| -> Option<u32> {
            let author = self.entries[p as usize].body().author;
            self.index
                .device_adds
                .get(&author)?
                .iter()
                .copied()
                .min_by_key(|p| self.entries[*p as usize].id())
        };
        match (added(a), added(b)) {
            (Some(x), Some(y)) => self.dag.is_ancestor(x, y),
            _ => false,
        }
    }

    /// The entries removal `r` voids if it is effective.
    fn threatened(&self, r: u32) -> Vec<u32> {
        let (devices, admin_only) = self.removes(r);
        let mut out = Vec::new();
        for d in devices {
            for p in self.index.by_author.get(d).into_iter().flatten() {
                if *p != r && self.concurrent(*p, r) && (!admin_only || self.needs_admin(*p)) {
                    out.push(*p);
                }
            }
        }
        out
    }

    /// The effective removals among `candidates`, given what each threatens.
    fn resolve(&self, candidates: &[u32], threatened: &HashMap<u32, Vec<u32>>) -> Vec<u32> {
        grounded(candidates, threatened, |a, t| self.senior(a, t))
    }
}

/// The removals that count among `candidates`, given the entries each one would void
/// (`threatened`, which may name entries that are not candidates): grounded semantics, computed
/// to a fixpoint, so the result does not depend on any order. A removal is voided iff a removal
/// that counts attacks it. In a mutual pair (each threatens the other) only the `senior` one
/// attacks; between two of no seniority order, neither does, and both count. Removals left
/// undecided *on* a longer cycle count; those only downstream of one are then decided like the
/// rest (attacked by one that counts: voided). The one home of this rule, for the organization
/// log and the workspace logs.
pub(crate) fn grounded(
    candidates: &[u32],
    threatened: &HashMap<u32, Vec<u32>>,
    senior: impl Fn(u32, u32) -> bool,
) -> Vec<u32> {
    let set: HashSet<u32> = candidates.iter().copied().collect();
    let threats: HashMap<u32, HashSet<u32>> = candidates
        .iter()
        .map(|r| {
            let t = threatened.get(r).into_iter().flatten();
            (*r, t.copied().filter(|p| set.contains(p)).collect())
        })
        .collect();
    let mut attackers: HashMap<u32, Vec<u32>> = HashMap::new();
    for (a, targets) in &threats {
        for t in targets {
            let mutual = threats.get(t).is_some_and(|back| back.contains(a));
            if !mutual || senior(*a, *t) {
                attackers.entry(*t).or_default().push(*a);
            }
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Undecided,
        In,
        Out,
    }
    let mut st: HashMap<u32, St> = candidates.iter().map(|r| (*r, St::Undecided)).collect();
    let propagate = |st: &mut HashMap<u32, St>| {
        loop {
            let mut changed = false;
            for r in candidates {
                if st[r] != St::Undecided {
                    continue;
                }
                let att = attackers.get(r).map(Vec::as_slice).unwrap_or(&[]);
                let next = if att.iter().any(|a| st[a] == St::In) {
                    St::Out
                } else if att.iter().all(|a| st[a] == St::Out) {
                    St::In
                } else {
                    continue;
                };
                st.insert(*r, next);
                changed = true;
            }
            if !changed {
                break;
            }
        }
    };
    propagate(&mut st);
    // What is left undecided lies on a cycle of attacks or downstream of one. The removals on a
    // cycle count; the others are then decided as above (one that a counting removal attacks
    // is voided), so that a removed device cannot shelter its other removals behind a cycle.
    let undecided: HashSet<u32> = st
        .iter()
        .filter(|(_, s)| **s == St::Undecided)
        .map(|(r, _)| *r)
        .collect();
    if !undecided.is_empty() {
        let mut attacks: HashMap<u32, Vec<u32>> = HashMap::new();
        for (t, atts) in &attackers {
            for a in atts
                .iter()
                .filter(|a| undecided.contains(a) && undecided.contains(t))
            {
                attacks.entry(*a).or_default().push(*t);
            }
        }
        let nodes: Vec<u32> = undecided.iter().copied().collect();
        for r in on_cycles(&nodes, &attacks) {
            st.insert(r, St::In);
        }
        propagate(&mut st);
    }
    candidates
        .iter()
        .copied()
        .filter(|r| st[r] != St::Out)
        .collect()
}

/// The nodes of `graph` that lie on a cycle: in a strongly connected component of two or more,
/// or with an edge to themselves. Tarjan's algorithm, iterative, O(nodes + edges), so that
/// however many removals hostile members put on cycles, deciding them stays linear.
fn on_cycles(nodes: &[u32], graph: &HashMap<u32, Vec<u32>>) -> HashSet<u32> {
    #[derive(Default)]
    struct Tarjan {
        index: HashMap<u32, usize>,
        low: HashMap<u32, usize>,
        stack: Vec<u32>,
        on_stack: HashSet<u32>,
    }
    impl Tarjan {
        fn visit(&mut self, v: u32) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
        }
        fn lower(&mut self, v: u32, to: usize) {
            if let Some(l) = self.low.get_mut(&v) {
                *l = (*l).min(to);
            }
        }
    }
    let succ = |x: u32| graph.get(&x).map_or(&[][..], Vec::as_slice);
    let mut t = Tarjan::default();
    let mut out = HashSet::new();
    for &root in nodes {
        if t.index.contains_key(&root) {
            continue;
        }
        t.visit(root);
        // (node, next successor to look at)
        let mut work: Vec<(u32, usize)> = vec![(root, 0)];
        while let Some(top) = work.last_mut() {
            let v = top.0;
            let s = succ(v);
            if let Some(&w) = s.get(top.1) {
                top.1 += 1;
                if !t.index.contains_key(&w) {
                    t.visit(w);
                    work.push((w, 0));
                } else if t.on_stack.contains(&w) {
                    t.lower(v, t.index[&w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                t.lower(parent, t.low[&v]);
            }
            if t.low[&v] == t.index[&v] {
                let mut component = Vec::new();
                while let Some(w) = t.stack.pop() {
                    t.on_stack.remove(&w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 || s.contains(&v) {
                    out.extend(component);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `on_cycles` finds exactly the nodes from which a walk returns to themselves.
        #[test]
        fn on_cycles_is_the_nodes_that_reach_themselves(
            edges in proptest::collection::vec((0u32..8, 0u32..8), 0..24),
        ) {
            let mut graph: HashMap<u32, Vec<u32>> = HashMap::new();
            for (a, b) in &edges {
                graph.entry(*a).or_default().push(*b);
            }
            let nodes: Vec<u32> = (0..8).collect();
            let reaches_itself = |r: u32| {
                let (mut stack, mut seen) = (vec![r], HashSet::new());
                while let Some(x) = stack.pop() {
                    for t in graph.get(&x).into_iter().flatten() {
                        if *t == r {
                            return true;
                        }
                        if seen.insert(*t) {
                            stack.push(*t);
                        }
                    }
                }
                false
            };
            let expected: HashSet<u32> = nodes.iter().copied().filter(|r| reaches_itself(*r)).collect();
            prop_assert_eq!(on_cycles(&nodes, &graph), expected);
        }
    }
}
