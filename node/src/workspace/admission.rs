//! Admission of envelopes: may this author write this, in the causal past of the envelope (its
//! workspace ancestors, and the organization as of the organization heads it names)?
//!
//! Rules (DESIGN §3):
//! - the author is a device certified in the organization at the envelope's organization heads
//!   (revoked there or not: a revocation in that past may be voided, so whether the author still
//!   counts is the organization's current state, read by [`super::state`]; a writer checks it
//!   before signing, in [`super::WorkspaceLog::draft`]);
//! - creation: the first and only parentless envelope, by a non-OUTSIDER; its author's user is the
//!   first OWNER;
//! - grants: an OWNER grants any role; a MANAGER grants READER or CONTRIBUTOR to someone who is
//!   not OWNER or MANAGER; the grantee is an active user; OUTSIDER users cap at CONTRIBUTOR;
//! - removals: an OWNER removes anyone; a MANAGER removes READER or CONTRIBUTOR; anyone may leave;
//! - keys: by an OWNER or MANAGER, sealed only to members at their current user-key generation
//!   (a member whose user key awaits rotation is left out and receives the keys later, so the
//!   state lists members without the current key rather than admission requiring them all);
//! - keys: a share (not opening an epoch) names only epochs opened in its causal past;
//! - content: by a CONTRIBUTOR or above, under the current epoch of its causal past;
//! - merges: by any member.
//!
//! Roles and the current epoch of a causal past follow [`super::authority`] (removal wins; the
//! least privileged of concurrent access entries; no timestamp decides). What admission learns
//! (the role each envelope needed, its author's role, whether it lowers a role) is recorded in
//! the [`Index`] for those rules.

use std::collections::{BTreeMap, HashMap};

use super::authority::{Authority, Voids, role_cap};
use super::envelope::{AccessChange, Envelope, Header, Kind};
use super::ids::Role;
use super::rejection::Refusal;
use crate::dag::Dag;
use crate::trust::admission::{CausalView, DeviceAt, UserAt};
use crate::trust::{OrgLog, Profile, UserId};

/// An access entry about a user.
#[derive(Debug, Clone, Copy)]
pub struct RoleEntry {
    /// Its position.
    pub at: u32,
    /// The role it sets (None: removed).
    pub role: Option<Role>,
    /// Whether it lowers the user's role in its own causal past (a removal, leave or demotion).
    pub lowering: bool,
}

/// Positions of the envelopes admission needs, and what admission learned about each envelope.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// Per user: access entries that set or remove their role.
    pub roles: HashMap<UserId, Vec<RoleEntry>>,
    /// `Keys` envelopes that open an epoch.
    pub epochs: Vec<u32>,
    /// The author's user of each envelope, by position (from the organization view at
    /// admission).
    pub author_user: Vec<UserId>,
    /// The least role each envelope needed (None: the creation), by position.
    pub need: Vec<Option<Role>>,
    /// The author's role in each envelope's causal past, by position.
    pub author_role: Vec<Option<Role>>,
    /// Whether each envelope is a lowering access entry, by position.
    pub lowering: Vec<bool>,
    /// Whether admission set aside, for each envelope, lowerings of its causal past (see
    /// [`set_aside`]), by position: the state re-checks those envelopes.
    pub set_aside: Vec<bool>,
}

impl Index {
    /// Records an admitted envelope.
    pub fn add(&mut self, at: u32, e: &Envelope, a: &Admitted) {
        self.author_user.push(a.author_user);
        self.need.push(a.need);
        self.author_role.push(a.author_role);
        self.lowering.push(a.lowering);
        self.set_aside.push(a.set_aside);
        let mut set = |user: UserId, role: Option<Role>| {
            self.roles.entry(user).or_default().push(RoleEntry {
                at,
                role,
                lowering: a.lowering,
            });
        };
        match e.header().kind {
            Kind::Access => match e.access() {
                Some(AccessChange::Create) => set(a.author_user, Some(Role::Owner)),
                Some(AccessChange::Grant { user, role }) => set(user, Some(role)),
                Some(AccessChange::Remove { user }) => set(user, None),
                None => {}
            },
            Kind::Keys => {
                if e.keys().is_some_and(|k| k.new_epoch()) {
                    self.epochs.push(at);
                }
            }
            Kind::Content | Kind::Merge => {}
        }
    }
}

/// Causal queries at one position of the workspace DAG: the rules of [`super::authority`]
/// applied to the causal past.
pub struct At<'a> {
    /// The DAG.
    pub dag: &'a Dag,
    /// Envelopes by position.
    pub envelopes: &'a [Envelope],
    /// The index.
    pub index: &'a Index,
    /// The causal past: these positions (the envelope's parents) and their ancestors.
    pub past: &'a [u32],
    /// Voided envelopes of the causal past (access entries and epoch openings), once computed.
    pub voids: Option<Voids>,
    /// Lowerings of the causal past set aside (see [`set_aside`]): out of every query's scope.
    pub aside: Voids,
}

impl<'a> At<'a> {
    /// Queries at the causal past `past`.
    pub fn new(dag: &'a Dag, envelopes: &'a [Envelope], index: &'a Index, past: &'a [u32]) -> Self {
        At {
            dag,
            envelopes,
            index,
            past,
            voids: None,
            aside: Voids::new(),
        }
    }

    /// Whether `p` is in the scope of the queries: the causal past, without what is set aside.
    fn in_scope(&self, p: u32) -> bool {
        self.dag.in_past(p, self.past) && !self.aside.contains(&p)
    }

    fn authority(&self) -> Authority<'a> {
        Authority {
            dag: self.dag,
            envelopes: self.envelopes,
            index: self.index,
        }
    }

    fn voids(&mut self) -> Voids {
        if self.voids.is_none() {
            let scope = |p: u32| self.in_scope(p);
            let candidates: Vec<u32> = self
                .index
                .roles
                .values()
                .flatten()
                .map(|e| e.at)
                .chain(self.index.epochs.iter().copied())
                .filter(|p| scope(*p))
                .collect::<std::collections::BTreeSet<u32>>()
                .into_iter()
                .collect();
            self.voids = Some(self.authority().voids(&scope, &candidates));
        }
        self.voids.clone().unwrap_or_default()
    }

    /// A user's role in the causal past.
    pub fn role(&mut self, user: &UserId) -> Option<Role> {
        let void = self.voids();
        self.authority().role(user, &|p| self.in_scope(p), &void)
    }

    /// Every member and role in the causal past.
    pub fn members(&mut self) -> BTreeMap<UserId, Role> {
        let void = self.voids();
        self.authority().members(&|p| self.in_scope(p), &void)
    }

    /// Epoch openings in the causal past.
    pub fn epochs_in_past(&self) -> impl Iterator<Item = u32> + '_ {
        self.index
            .epochs
            .iter()
            .copied()
            .filter(|p| self.dag.in_past(*p, self.past))
    }

    /// The current epoch of the causal past.
    pub fn current_epoch(&mut self) -> Option<u32> {
        let void = self.voids();
        self.authority()
            .current_epoch(&|p| self.in_scope(p), &void)
            .0
    }
}

/// What admission learned about an admitted envelope.
pub struct Admitted {
    /// The author's user.
    pub author_user: UserId,
    /// The least role the envelope needed (None: the creation).
    pub need: Option<Role>,
    /// The author's role in the causal past.
    pub author_role: Option<Role>,
    /// Whether it is an access entry lowering its user's role.
    pub lowering: bool,
    /// Whether admission set aside lowerings of its causal past ([`set_aside`]).
    pub set_aside: bool,
}

/// The lowerings of `q`'s causal past that an envelope citing the organization past `v` does
/// not count: those whose author that past revokes (device or user), unless an envelope of the
/// causal past by an author it does not revoke, whose role there was at least what the lowering
/// needed, has the lowering in its own past (it accepted it).
///
/// This is the organization-revocation layer of [`super::state`] applied to the organization
/// past the envelope names instead of the current state, so that admission stays a function of
/// what the envelope cites: without it, a removal forged by a member on stale organization heads
/// (which the state drops once the member is revoked) would keep its target from writing
/// anything, even a merge, for good. A revocation in that past may yet be voided (the state then
/// counts the lowering): the state re-checks every envelope admitted with something set aside.
pub fn set_aside(q: &At<'_>, v: &mut CausalView<'_>) -> Voids {
    q.authority().unvouched_lowerings(Some(q.past), &mut |d| {
        let profile = match v.device(d) {
            DeviceAt::Certified { profile, .. } => Some(profile),
            DeviceAt::Unknown | DeviceAt::Doubled => None,
        };
        role_cap(!v.revoked(d), profile)
    })
}

/// Checks an envelope whose parents are `q.past` (not yet in `envelopes` or the index).
/// `Ok(None)` means the organization log lacks the named heads: hold the envelope.
pub fn check(q: &mut At<'_>, org: &OrgLog, e: &Envelope) -> Result<Option<Admitted>, Refusal> {
    let h: &Header = e.header();
    let author = h.author;
    let Some(aside) = org.at_heads(&h.org_heads, |v| set_aside(q, v)) else {
        return Ok(None);
    };
    let set_aside = !aside.is_empty();
    if set_aside {
        q.aside = aside;
        q.voids = None;
    }
    // Users whose organization status matters: a grantee, or the members and recipients of keys.
    let members = if h.kind == Kind::Keys {
        q.members()
    } else {
        BTreeMap::new()
    };
    let mut asked: Vec<UserId> = members.keys().copied().collect();
    match (e.access(), e.keys()) {
        (Some(AccessChange::Grant { user, .. }), _) => asked.push(user),
        (_, Some(k)) => asked.extend(k.sealed.iter().map(|s| s.user)),
        _ => {}
    }
    let Some((dev, targets)) = org.at_heads(&h.org_heads, |v| {
        let dev = v.device(&author);
        let target: Vec<(UserId, UserAt)> = asked.iter().map(|u| (*u, v.user(u))).collect();
        (dev, target)
    }) else {
        return Ok(None);
    };
    let DeviceAt::Certified {
        user: author_user,
        profile,
    } = dev
    else {
        return Err(Refusal::AuthorNotActive { device: author });
    };
    let active = |user: &UserId| -> Result<(Profile, u32), Refusal> {
        match targets.iter().find(|(u, _)| u == user).map(|(_, a)| *a) {
            Some(UserAt::Known {
                profile,
                key_generation,
            }) => Ok((profile, key_generation)),
            _ => Err(Refusal::UserNotActive { user: *user }),
        }
    };
    let creation = matches!(e.access(), Some(AccessChange::Create));
    if creation != h.parents.is_empty() || (creation && !q.envelopes.is_empty()) {
        return Err(Refusal::BadCreation);
    }
    if creation {
        if profile == Profile::Outsider {
            return Err(Refusal::OutsiderCannotCreate);
        }
        return Ok(Some(Admitted {
            author_user,
            need: None,
            author_role: None,
            lowering: false,
            set_aside,
        }));
    }
    let mine = q.role(&author_user);
    let need = |needed: Role| {
        if mine.is_some_and(|r| r >= needed) {
            Ok(needed)
        } else {
            Err(Refusal::RoleTooLow { needed, had: mine })
        }
    };
    let mut lowering = false;
    let needed = match h.kind {
        Kind::Merge => need(Role::Reader)?,
        Kind::Content => {
            let n = need(Role::Contributor)?;
            let current = q.current_epoch().map(|p| q.envelopes[p as usize].id());
            if current.is_none() || h.epoch != current {
                return Err(Refusal::WrongEpoch);
            }
            n
        }
        Kind::Access => match e.access() {
            Some(AccessChange::Grant { user, role }) => {
                let (target_profile, _) = active(&user)?;
                if target_profile == Profile::Outsider && role > Role::Contributor {
                    return Err(Refusal::OutsiderCap { user, role });
                }
                let theirs = q.role(&user);
                lowering = Some(role) < theirs;
                if role > Role::Contributor || theirs.is_some_and(|r| r > Role::Contributor) {
                    need(Role::Owner)?
                } else {
                    need(Role::Manager)?
                }
            }
            Some(AccessChange::Remove { user }) => {
                let Some(theirs) = q.role(&user) else {
                    return Err(Refusal::NotMember { user });
                };
                lowering = true;
                if user == author_user {
                    need(Role::Reader)?
                } else if theirs > Role::Contributor {
                    need(Role::Owner)?
                } else {
                    need(Role::Manager)?
                }
            }
            Some(AccessChange::Create) | None => return Err(Refusal::BadCreation),
        },
        Kind::Keys => {
            let n = need(Role::Manager)?;
            let keys = e.keys().ok_or(Refusal::BadShape { kind: Kind::Keys })?;
            for s in &keys.sealed {
                if !members.contains_key(&s.user) {
                    return Err(Refusal::BadRecipients {
                        why: "sealed to a non-member",
                    });
                }
                let (_, generation) = active(&s.user)?;
                if s.generation != generation {
                    return Err(Refusal::BadRecipients {
                        why: "sealed to an old user-key generation",
                    });
                }
                // A share names only epochs opened in its causal past.
                for id in &s.epochs {
                    let opened = q
                        .epochs_in_past()
                        .any(|p| q.envelopes[p as usize].id() == *id);
                    if !opened {
                        return Err(Refusal::UnknownEpoch { epoch: *id });
                    }
                }
            }
            n
        }
    };
    Ok(Some(Admitted {
        author_user,
        need: Some(needed),
        author_role: mine,
        lowering,
        set_aside,
    }))
}
