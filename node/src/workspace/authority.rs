//! Removal wins: which envelopes keep their authority in a set of envelopes, the role of a user
//! in that set, and the current epoch. The one home of these rules: admission applies them to an
//! envelope's causal past, [`super::state`] to everything admitted.
//!
//! Rules (issue 14; no rule reads a timestamp):
//! - **Removal wins.** A *lowering* is an access entry that gives its user a lower role than
//!   the user had in the entry's causal past (a removal, a leave, a demotion). An envelope by
//!   user X that needed role `r` (see [`super::admission`]) is *voided* if a lowering of X to a
//!   role below `r` that counts is concurrent with it (neither is an ancestor of the other).
//!   Lowerings themselves count or not as organization removals do
//!   (`trust::removal::grounded`): a lowering voided by one that counts does not count; in a
//!   mutual pair (each lowers the other's author) the *senior* author's wins, the one who was
//!   given a role first (each access entry that first gave the other a role has one of its own
//!   in its past); between two of no such order, both count. On a longer cycle, the lowerings
//!   whose author no other one on the cycle is senior to count first and the cycle unwinds from
//!   them, as in the organization. Lowerings by a revoked author that no one with the role they
//!   needed accepted count for nothing ([`Authority::unvouched_lowerings`]). So a removed owner answering its
//!   removal on a stale copy, by removing its remover and everyone else, removes nobody. That envelope's author wrote it on a copy that had
//!   not seen the lowering; nothing it did with the lost role counts. No exception for envelopes
//!   others built on (any member may be an accomplice); envelopes that cite a voided one are not
//!   voided for that.
//! - **Authority is re-checked.** An envelope whose author's role in its own causal past, without
//!   the voided envelopes, is below what it needed is voided too (a voided grant takes with it
//!   what the grantee did with it); iterated to the least fixpoint.
//! - **The role fold.** A user's role in a set: among the user's non-voided access entries in it,
//!   the maximal ones (not an ancestor of another); the *least* privileged of them (none below
//!   READER). A grant concurrent with a removal resolves to the removal.
//! - **The current epoch.** Among the non-voided epoch openings in a set, the maximal ones; if
//!   several (concurrent), the one sealed to the fewest users who are not members of the set,
//!   then the smallest id. Which of several concurrent epochs is current is no one's privilege:
//!   each was opened by an author with the authority to, and a rotation is due while several
//!   exist (`WorkspaceState::needs_rotation`).
//!
//! Invariant: every answer is a function of the set of envelopes and the ancestor relation only
//! (never of arrival order, positions or timestamps), so replicas agree.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::admission::Index;
use super::envelope::Envelope;
use super::ids::Role;
use crate::dag::Dag;
use crate::trust::removal::grounded;
use crate::trust::{DeviceId, UserId};

/// Positions voided by removal wins.
pub type Voids = BTreeSet<u32>;

/// The rules over one workspace DAG.
pub struct Authority<'a> {
    /// The DAG.
    pub dag: &'a Dag,
    /// Envelopes by position.
    pub envelopes: &'a [Envelope],
    /// The index.
    pub index: &'a Index,
}

impl Authority<'_> {
    fn concurrent(&self, a: u32, b: u32) -> bool {
        a != b && !self.dag.is_ancestor(a, b) && !self.dag.is_ancestor(b, a)
    }

    /// The envelopes voided among `candidates` (all in the set `scope`); lowerings in `scope`
    /// void, re-checks look in each candidate's own causal past.
    pub fn voids(&self, scope: &dyn Fn(u32) -> bool, candidates: &[u32]) -> Voids {
        let idx = self.index;
        // Every lowering in scope, with the user it lowers and the role it leaves them.
        let lowerings: Vec<(u32, UserId, Option<Role>)> = idx
            .roles
            .iter()
            .flat_map(|(u, es)| es.iter().map(move |e| (u, e)))
            .filter(|(_, e)| e.lowering && scope(e.at))
            .map(|(u, e)| (e.at, *u, e.role))
            .collect();
        let threatens = |l: &(u32, UserId, Option<Role>), a: u32| {
            let Some(need) = idx.need[a as usize] else {
                return false; // the creation
            };
            idx.author_user[a as usize] == l.1 && l.2 < Some(need) && self.concurrent(l.0, a)
        };
        let threatened: HashMap<u32, Vec<u32>> = lowerings
            .iter()
            .map(|l| {
                let hit = candidates.iter().copied().filter(|a| threatens(l, *a));
                (l.0, hit.collect())
            })
            .collect();
        // Lowerings void each other like organization removals: a mutual pair goes to the senior.
        let positions: Vec<u32> = lowerings.iter().map(|l| l.0).collect();
        let effective = grounded(&positions, &threatened, |a, b| self.senior(a, b));
        // What the lowerings that count threaten (a lowering that does not count is among it).
        let mut void: Voids = effective
            .iter()
            .flat_map(|l| threatened[l].iter().copied())
            .collect();
        // Re-check the authority of candidates whose author lost a voided grant, until stable.
        loop {
            let hit: BTreeSet<UserId> = idx
                .roles
                .iter()
                .filter(|(_, es)| es.iter().any(|e| void.contains(&e.at)))
                .map(|(u, _)| *u)
                .collect();
            if hit.is_empty() {
                break;
            }
            let more: Vec<u32> = candidates
                .iter()
                .copied()
                .filter(|a| !void.contains(a) && hit.contains(&idx.author_user[*a as usize]))
                .filter(|a| {
                    let (Some(need), false) = (idx.need[*a as usize], idx.lowering[*a as usize])
                    else {
                        return false;
                    };
                    let parents = self.dag.parents(*a).to_vec();
                    let past = |p: u32| scope(p) && self.dag.in_past(p, &parents);
                    self.role(&idx.author_user[*a as usize], &past, &void) < Some(need)
                })
                .collect();
            if more.is_empty() {
                break;
            }
            void.extend(more);
        }
        void
    }

    /// The lowerings whose author's `cap` (the most the organization lets that device hold:
    /// `None` if it is revoked, CONTRIBUTOR if its user is an OUTSIDER, see [`role_cap`]) is below
    /// what the lowering needed, and which no envelope whose author's role and cap were both at
    /// least that has in its past: they count for nothing, not even to void. `past`: only
    /// envelopes in the causal past of these positions (admission); `None`: all of them (the
    /// state). The organization layer of [`super::state`], applied before removal wins so that
    /// a revoked or demoted member's forged demotion voids nothing; admission applies it to the
    /// organization past an envelope cites (`admission::set_aside`).
    pub fn unvouched_lowerings(
        &self,
        past: Option<&[u32]>,
        cap: &mut dyn FnMut(&DeviceId) -> Option<Role>,
    ) -> Voids {
        let idx = self.index;
        let n = self.envelopes.len().min(self.dag.len());
        let mut cache: HashMap<DeviceId, Option<Role>> = HashMap::new();
        let mut cap_of = |p: u32| {
            let d = self.envelopes[p as usize].header().author;
            *cache.entry(d).or_insert_with(|| cap(&d))
        };
        let in_past = |p: u32| past.is_none_or(|h| self.dag.in_past(p, h));
        let suspects: Vec<u32> = idx
            .roles
            .values()
            .flatten()
            .filter(|e| e.lowering && in_past(e.at))
            .map(|e| e.at)
            .collect::<BTreeSet<u32>>()
            .into_iter()
            .filter(|p| cap_of(*p) < idx.need[*p as usize])
            .collect();
        if suspects.is_empty() {
            return Voids::new();
        }
        let scope = match past {
            Some(h) => self.dag.closure(h.iter().copied()),
            None => vec![true; n],
        };
        // Per role needed: everything some envelope by an author whose role and cap cover it
        // has in its (strict) past.
        let mut vouched: BTreeMap<Option<Role>, Vec<bool>> = BTreeMap::new();
        let mut out = Voids::new();
        for l in suspects {
            let need = idx.need[l as usize];
            let v = vouched.entry(need).or_insert_with(|| {
                let roots: Vec<u32> = (0..n as u32)
                    .filter(|p| scope[*p as usize] && idx.author_role[*p as usize] >= need)
                    .filter(|p| cap_of(*p) >= need)
                    .flat_map(|p| self.dag.parents(p).iter().copied())
                    .collect();
                self.dag.closure(roots)
            });
            if !v[l as usize] {
                out.insert(l);
            }
        }
        out
    }

    /// Whether the author of envelope `a` is senior to the author of `b`: each access entry that
    /// first gave `b`'s author a role has one that first gave `a`'s author a role in its past
    /// (who shared with whom; fixed when a user joins, nothing written later changes it).
    fn senior(&self, a: u32, b: u32) -> bool {
        let idx = self.index;
        let joined = |p: u32| -> Vec<u32> {
            let user = idx.author_user[p as usize];
            let grants: Vec<(u32, ())> = idx
                .roles
                .get(&user)
                .into_iter()
                .flatten()
                .filter(|e| e.role.is_some() && !e.lowering)
                .map(|e| (e.at, ()))
                .collect();
            extremes(self.dag, &grants, false).map(|(p, _)| p).collect()
        };
        let (ja, jb) = (joined(a), joined(b));
        !jb.is_empty()
            && jb
                .iter()
                .all(|y| ja.iter().any(|x| self.dag.is_ancestor(*x, *y)))
    }

    /// `user`'s role in the set `scope` without the voided envelopes.
    pub fn role(&self, user: &UserId, scope: &dyn Fn(u32) -> bool, void: &Voids) -> Option<Role> {
        let entries: Vec<(u32, Option<Role>)> = self
            .index
            .roles
            .get(user)
            .into_iter()
            .flatten()
            .filter(|e| scope(e.at) && !void.contains(&e.at))
            .map(|e| (e.at, e.role))
            .collect();
        extremes(self.dag, &entries, true)
            .map(|(_, r)| r)
            .min()
            .flatten()
    }

    /// Every member of the set and their role.
    pub fn members(&self, scope: &dyn Fn(u32) -> bool, void: &Voids) -> BTreeMap<UserId, Role> {
        self.index
            .roles
            .keys()
            .filter_map(|u| self.role(u, scope, void).map(|r| (*u, r)))
            .collect()
    }

    /// The current epoch of the set and how many maximal (concurrent) epochs it has.
    pub fn current_epoch(&self, scope: &dyn Fn(u32) -> bool, void: &Voids) -> (Option<u32>, usize) {
        let open: Vec<(u32, ())> = self
            .index
            .epochs
            .iter()
            .copied()
            .filter(|p| scope(*p) && !void.contains(p))
            .map(|p| (p, ()))
            .collect();
        let tops: Vec<u32> = extremes(self.dag, &open, true).map(|(p, _)| p).collect();
        if tops.len() <= 1 {
            return (tops.first().copied(), tops.len());
        }
        let members = self.members(scope, void);
        let best = tops.iter().copied().min_by_key(|p| {
            let e = &self.envelopes[*p as usize];
            let outside = e.keys().map_or(usize::MAX, |k| {
                k.sealed
                    .iter()
                    .filter(|s| !members.contains_key(&s.user))
                    .count()
            });
            (outside, e.id())
        });
        (best, tops.len())
    }
}

/// The entries of the list with no other entry of the list above them (`latest`: not an
/// ancestor of another) or below them (not `latest`: no other is their ancestor).
fn extremes<'a, T: Copy>(
    dag: &'a Dag,
    entries: &'a [(u32, T)],
    latest: bool,
) -> impl Iterator<Item = (u32, T)> + 'a {
    entries.iter().copied().filter(move |(a, _)| {
        !entries.iter().any(|(b, _)| {
            let (lo, hi) = if latest { (*a, *b) } else { (*b, *a) };
            a != b && dag.is_ancestor(lo, hi)
        })
    })
}

/// The most a device may hold in a workspace, by its standing in the organization: nothing if it
/// is revoked (`active` false), CONTRIBUTOR if its user is an OUTSIDER, OWNER otherwise.
pub fn role_cap(active: bool, profile: Option<crate::trust::Profile>) -> Option<Role> {
    match (active, profile) {
        (false, _) | (_, None) => None,
        (true, Some(crate::trust::Profile::Outsider)) => Some(Role::Contributor),
        (true, Some(_)) => Some(Role::Owner),
    }
}
