//! The effective state of a workspace: members, epochs, content, after removal wins and the
//! organization's revocations.
//!
//! Kept set, in three layers:
//! 1. **Removal wins** ([`super::authority`]), over every admitted envelope: an envelope by user
//!    X that needed a role X lost concurrently (a removal or demotion neither before nor after
//!    it) is voided, whoever built on it. A lowering that layer 2 drops for want of a voucher
//!    (`Authority::unvouched_lowerings`: its vouchers are judged before removal wins) voids
//!    nothing: a revoked member's forged demotion of an owner does not void the owner's removals.
//! 2. **The organization's standing.** The workspace DAG and the organization log are not
//!    causally linked, so an envelope cannot be dated against its author's revocation or
//!    demotion: a device may sign on stale organization heads forever. Each device has a *cap*
//!    (`authority::role_cap`): nothing if revoked now, CONTRIBUTOR if its user is an OUTSIDER now,
//!    OWNER otherwise. An envelope that needed more than its author's cap is kept only if a
//!    non-voided envelope whose author's role and cap were both at least what it needed has it
//!    in its causal past (honest devices write `Merge` envelopes on what they accepted). An
//!    accomplice can keep that way only what it could have written itself; everything else is
//!    dropped. An epoch opened by a device revoked now needs a rotation (the device knows its
//!    key). An OUTSIDER member's role is shown as CONTRIBUTOR at most.
//! 3. **What admission set aside.** An envelope admitted without counting a lowering whose
//!    author its organization heads revoke or cap (`admission::set_aside`) is kept only if its author's
//!    role in its own causal past, over the kept envelopes of layers 1 and 2, is what it needed:
//!    a revocation its author cited may have been voided since (the lowering then counts).
//!    Envelopes dropped here do not change layer 2's vouching (it roots at layer 1 only).
//!
//! Kept envelopes are then folded: roles by the role fold of [`super::authority`] (least
//! privileged of the maximal entries), the current epoch by its rule (never by timestamp);
//! timestamps order only the content and the epoch history for display.
//!
//! Invariant: a function of the set of admitted envelopes and the organization state only.

use std::collections::{BTreeMap, BTreeSet};

use super::admission::Index;
use super::authority::{Authority, role_cap};
use super::envelope::{Envelope, Kind};
use super::ids::{EnvelopeId, Role, WorkspaceId};
use crate::dag::Dag;
use crate::trust::{DeviceId, OrgLog, Profile, UserId};

/// One epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochInfo {
    /// The `Keys` envelope that opened it.
    pub id: EnvelopeId,
    /// Recipients and the user-key generation each was sealed to.
    pub recipients: BTreeMap<UserId, u32>,
}

/// The effective state of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkspaceState {
    /// The workspace.
    pub id: WorkspaceId,
    /// Members (active in the organization) and their roles.
    pub members: BTreeMap<UserId, Role>,
    /// Kept epochs in `(time, id)` order (history; the current one is [`Self::current_epoch`]).
    pub epochs: Vec<EpochInfo>,
    /// The current epoch, by the rule of [`super::authority`].
    pub current: Option<EnvelopeId>,
    /// An OWNER or MANAGER must open a new epoch: there are concurrent epochs, or the current one
    /// was opened by a device inactive now, or someone holding its key is no longer a member, is
    /// revoked, or has (or must) rotate their user key.
    pub needs_rotation: bool,
    /// Members the current epoch was not sealed to, whose user key can receive it now: an OWNER or
    /// MANAGER shares the epoch keys with them.
    pub without_key: Vec<UserId>,
    /// Content envelopes, in `(time, id)` order.
    pub content: Vec<EnvelopeId>,
    /// `Keys` envelopes, in `(time, id)` order.
    pub keys: Vec<EnvelopeId>,
    /// Heads of the kept envelopes (parents of the next local one), sorted.
    pub heads: Vec<EnvelopeId>,
    /// Admitted envelopes dropped by removal wins or revocation, sorted.
    pub dropped: Vec<EnvelopeId>,
}

impl WorkspaceState {
    /// The current epoch.
    pub fn current_epoch(&self) -> Option<&EpochInfo> {
        let id = self.current?;
        self.epochs.iter().find(|e| e.id == id)
    }

    /// Computes the state.
    pub fn compute(
        id: WorkspaceId,
        envelopes: &[Envelope],
        dag: &Dag,
        index: &Index,
        org: &OrgLog,
    ) -> WorkspaceState {
        let orgst = org.state();
        let n = envelopes.len();
        let auth = Authority {
            dag,
            envelopes,
            index,
        };
        // Lowerings by devices inactive now that no one with the role they needed accepted
        // count for nothing, not even to void (layer 2 drops them below as well).
        let cap = |d: &DeviceId| {
            let profile = orgst
                .devices
                .get(d)
                .and_then(|x| orgst.users.get(&x.user))
                .map(|u| u.profile);
            role_cap(orgst.is_active(d), profile)
        };
        let gone = auth.unvouched_lowerings(None, &mut |d| cap(d));
        let all: Vec<u32> = (0..n as u32).filter(|p| !gone.contains(p)).collect();
        let void = auth.voids(&|p| !gone.contains(&p), &all);
        let caps: Vec<Option<Role>> = envelopes.iter().map(|e| cap(&e.header().author)).collect();
        // Layer 2: one closure per role level, rooted at non-voided envelopes by active devices
        // whose author had at least that role.
        let levels = [Role::Reader, Role::Contributor, Role::Manager, Role::Owner];
        let vouched: Vec<Vec<bool>> = levels
            .iter()
            .map(|lvl| {
                dag.closure((0..n as u32).filter(|p| {
                    caps[*p as usize] >= Some(*lvl)
                        && !void.contains(p)
                        && index.author_role[*p as usize].is_some_and(|r| r >= *lvl)
                }))
            })
            .collect();
        let kept: Vec<bool> = (0..n)
            .map(|p| {
                if void.contains(&(p as u32)) {
                    return false;
                }
                let need = index.need[p].unwrap_or(Role::Reader);
                if caps[p] >= Some(need) {
                    return true;
                }
                let lvl = levels.iter().position(|l| *l == need).unwrap_or(0);
                vouched[lvl][p]
            })
            .collect();
        let kept = recheck_set_aside(&auth, &void, kept);
        let in_kept = |p: u32| kept[p as usize];
        let mut st = WorkspaceState {
            id,
            ..WorkspaceState::default()
        };
        let mut members = auth.members(&in_kept, &void);
        // Members revoked from the organization are members no more; an OUTSIDER is at most a
        // CONTRIBUTOR, whatever it was given when its profile was another.
        members.retain(|u, _| orgst.users.get(u).is_some_and(|s| s.revoked_by.is_none()));
        for (u, r) in members.iter_mut() {
            if orgst
                .users
                .get(u)
                .is_some_and(|s| s.profile == Profile::Outsider)
            {
                *r = (*r).min(Role::Contributor);
            }
        }
        let mut order: Vec<usize> = (0..n).filter(|p| kept[*p]).collect();
        order.sort_by_key(|p| (envelopes[*p].header().time, envelopes[*p].id()));
        for p in &order {
            let e = &envelopes[*p];
            match e.header().kind {
                Kind::Keys => {
                    st.keys.push(e.id());
                    if let Some(k) = e.keys().filter(|k| k.new_epoch()) {
                        st.epochs.push(EpochInfo {
                            id: e.id(),
                            recipients: k.sealed.iter().map(|s| (s.user, s.generation)).collect(),
                        });
                    }
                }
                Kind::Content => st.content.push(e.id()),
                Kind::Access | Kind::Merge => {}
            }
        }
        let (current, maximal) = auth.current_epoch(&in_kept, &void);
        st.current = current.map(|p| envelopes[p as usize].id());
        // Who holds the current epoch key, at which user-key generation: its recipients, plus
        // those who received it in a kept share written with the epoch in its causal past.
        let mut keyed: BTreeMap<UserId, u32> = BTreeMap::new();
        if let Some(c) = current {
            for p in order.iter().map(|p| *p as u32) {
                let e = &envelopes[p as usize];
                let Some(k) = (e.header().kind == Kind::Keys).then(|| e.keys()).flatten() else {
                    continue;
                };
                let cid = envelopes[c as usize].id();
                let holds = if p == c {
                    true
                } else {
                    !k.new_epoch() && dag.is_ancestor(c, p)
                };
                for s in k
                    .sealed
                    .iter()
                    .filter(|s| holds && (p == c || s.epochs.contains(&cid)))
                {
                    keyed.insert(s.user, s.generation);
                }
            }
        }
        st.needs_rotation = match current {
            None => !members.is_empty(),
            Some(c) => {
                maximal > 1
                    || caps[c as usize].is_none()
                    || keyed.iter().any(|(u, generation)| {
                        !members.contains_key(u)
                            || orgst.users.get(u).is_none_or(|s| {
                                s.revoked_by.is_some()
                                    || s.key.needs_rotation
                                    || s.key.generation != *generation
                            })
                    })
            }
        };
        st.without_key = members
            .keys()
            .filter(|u| {
                current.is_some()
                    && !keyed.contains_key(u)
                    && orgst.users.get(u).is_some_and(|s| !s.key.needs_rotation)
            })
            .copied()
            .collect();
        st.members = members;
        let heads: BTreeSet<EnvelopeId> = dag
            .heads_of(&kept)
            .into_iter()
            .map(|p| envelopes[p as usize].id())
            .collect();
        st.heads = heads.into_iter().collect();
        st.dropped = (0..n)
            .filter(|p| !kept[*p])
            .map(|p| envelopes[p].id())
            .collect();
        st.dropped.sort_unstable();
        st
    }
}

/// Layer 3: drops the kept envelopes admitted with lowerings set aside whose author's role in
/// their own causal past, over the kept envelopes, is below what they needed; until stable.
fn recheck_set_aside(
    auth: &Authority<'_>,
    void: &super::authority::Voids,
    mut kept: Vec<bool>,
) -> Vec<bool> {
    let idx = auth.index;
    loop {
        let more: Vec<usize> = (0..kept.len())
            .filter(|p| kept[*p] && idx.set_aside[*p] && !idx.lowering[*p])
            .filter(|p| {
                let Some(need) = idx.need[*p] else {
                    return false;
                };
                let parents = auth.dag.parents(*p as u32);
                let scope = |x: u32| kept[x as usize] && auth.dag.in_past(x, parents);
                auth.role(&idx.author_user[*p], &scope, void) < Some(need)
            })
            .collect();
        if more.is_empty() {
            return kept;
        }
        for p in more {
            kept[p] = false;
        }
    }
}
