//! The effective state of a workspace: members, epochs, content, after revocation wins.
//!
//! Kept set: the ancestor closure of the envelopes whose author is an active device in the
//! organization's *current* state. What a revoked device wrote is dropped everywhere unless an
//! honest device built on it before learning of the revocation (devices write `Merge` envelopes
//! on their heads, so what they had accepted while the author was active gets built on). Kept
//! envelopes are then folded in `(time, id)` order.
//!
//! Invariant: a function of the set of admitted envelopes and the organization state only.

use std::collections::{BTreeMap, BTreeSet};

use super::admission::Index;
use super::envelope::{AccessChange, Envelope, Kind};
use super::ids::{EnvelopeId, Role, WorkspaceId};
use crate::dag::Dag;
use crate::trust::{OrgLog, UserId};

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
    /// Epochs, oldest first.
    pub epochs: Vec<EpochInfo>,
    /// A member left, was revoked, or rotated their user key since the current epoch opened: an
    /// OWNER or MANAGER must open a new one.
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
    /// Admitted envelopes dropped by revocation wins, sorted.
    pub dropped: Vec<EnvelopeId>,
}

impl WorkspaceState {
    /// The current epoch.
    pub fn current_epoch(&self) -> Option<&EpochInfo> {
        self.epochs.last()
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
        let roots = (0..envelopes.len())
            .filter(|p| orgst.is_active(&envelopes[*p].header().author))
            .map(|p| p as u32);
        let kept = dag.closure(roots);
        let mut order: Vec<usize> = (0..envelopes.len()).filter(|p| kept[*p]).collect();
        order.sort_by_key(|p| (envelopes[*p].header().time, envelopes[*p].id()));
        let mut st = WorkspaceState {
            id,
            ..WorkspaceState::default()
        };
        let mut members: BTreeMap<UserId, Role> = BTreeMap::new();
        let mut removed_since_epoch = false;
        // Who holds the current epoch key, at which user-key generation: its recipients, plus
        // those who received it later with the history of a share.
        let mut keyed: BTreeMap<UserId, u32> = BTreeMap::new();
        for p in order {
            let e = &envelopes[p];
            match e.header().kind {
                Kind::Access => match e.access() {
                    Some(AccessChange::Create) => {
                        members.insert(index.author_user[p], Role::Owner);
                    }
                    Some(AccessChange::Grant { user, role }) => {
                        members.insert(user, role);
                    }
                    Some(AccessChange::Remove { user }) => {
                        members.remove(&user);
                        removed_since_epoch = true;
                    }
                    None => {}
                },
                Kind::Keys => {
                    st.keys.push(e.id());
                    match e.keys() {
                        Some(k) if k.new_epoch => {
                            let recipients: BTreeMap<UserId, u32> =
                                k.sealed.iter().map(|s| (s.user, s.generation)).collect();
                            keyed = recipients.clone();
                            st.epochs.push(EpochInfo {
                                id: e.id(),
                                recipients,
                            });
                            removed_since_epoch = false;
                        }
                        Some(k) if !st.epochs.is_empty() => {
                            keyed.extend(k.sealed.iter().map(|s| (s.user, s.generation)));
                        }
                        _ => {}
                    }
                }
                Kind::Content => st.content.push(e.id()),
                Kind::Merge => {}
            }
        }
        // Members revoked from the organization are members no more.
        members.retain(|u, _| orgst.users.get(u).is_some_and(|s| s.revoked_by.is_none()));
        st.needs_rotation = match st.epochs.last() {
            None => !members.is_empty(),
            Some(_) => {
                removed_since_epoch
                    || keyed.iter().any(|(u, generation)| {
                        orgst.users.get(u).is_none_or(|s| {
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
                !st.epochs.is_empty()
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
        st.dropped = (0..envelopes.len())
            .filter(|p| !kept[*p])
            .map(|p| envelopes[p].id())
            .collect();
        st.dropped.sort_unstable();
        st
    }
}
