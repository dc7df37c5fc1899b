//! Admission of envelopes: may this author write this, in the causal past of the envelope (its
//! workspace ancestors, and the organization as of the organization heads it names)?
//!
//! Rules (DESIGN §3):
//! - the author is an active device of the organization at the envelope's organization heads;
//! - creation: the first and only parentless envelope, by a non-OUTSIDER; its author's user is the
//!   first OWNER;
//! - grants: an OWNER grants any role; a MANAGER grants READER or CONTRIBUTOR to someone who is
//!   not OWNER or MANAGER; the grantee is an active user; OUTSIDER users cap at CONTRIBUTOR;
//! - removals: an OWNER removes anyone; a MANAGER removes READER or CONTRIBUTOR; anyone may leave;
//! - keys: by an OWNER or MANAGER, sealed only to members at their current user-key generation
//!   (a member whose user key awaits rotation is left out and receives the keys later, so the
//!   state lists members without the current key rather than admission requiring them all);
//! - content: by a CONTRIBUTOR or above, under the latest epoch of its causal past;
//! - merges: by any member.
//!
//! Among several access entries for a user, the last by `(time, id)` wins; times increase along
//! every path, so that order agrees with causality.

use std::collections::{BTreeMap, HashMap};

use super::envelope::{AccessChange, Envelope, Header, Kind};
use super::ids::Role;
use super::rejection::Refusal;
use crate::dag::Dag;
use crate::trust::admission::{DeviceAt, UserAt};
use crate::trust::{OrgLog, Profile, UserId};

/// Positions of the envelopes admission needs.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// Per user: access entries that set (Some) or remove (None) their role.
    pub roles: HashMap<UserId, Vec<(u32, Option<Role>)>>,
    /// `Keys` envelopes that open an epoch.
    pub epochs: Vec<u32>,
    /// The author's user of each envelope, by position (from the organization view at
    /// admission).
    pub author_user: Vec<UserId>,
}

impl Index {
    /// Records an admitted envelope.
    pub fn add(&mut self, at: u32, e: &Envelope, author_user: UserId) {
        self.author_user.push(author_user);
        match e.header().kind {
            Kind::Access => match e.access() {
                Some(AccessChange::Create) => {
                    self.roles
                        .entry(author_user)
                        .or_default()
                        .push((at, Some(Role::Owner)));
                }
                Some(AccessChange::Grant { user, role }) => {
                    self.roles.entry(user).or_default().push((at, Some(role)));
                }
                Some(AccessChange::Remove { user }) => {
                    self.roles.entry(user).or_default().push((at, None));
                }
                None => {}
            },
            Kind::Keys => {
                if e.keys().is_some_and(|k| k.new_epoch) {
                    self.epochs.push(at);
                }
            }
            Kind::Content | Kind::Merge => {}
        }
    }
}

/// Causal queries at one position of the workspace DAG.
pub struct At<'a> {
    /// The DAG.
    pub dag: &'a Dag,
    /// Envelopes by position.
    pub envelopes: &'a [Envelope],
    /// The index.
    pub index: &'a Index,
    /// The causal past: these positions (the envelope's parents) and their ancestors.
    pub past: &'a [u32],
}

impl At<'_> {
    fn key(&self, p: u32) -> (crate::trust::Hlc, super::ids::EnvelopeId) {
        let e = &self.envelopes[p as usize];
        (e.header().time, e.id())
    }

    /// A user's role in the causal past.
    pub fn role(&mut self, user: &UserId) -> Option<Role> {
        let idx = self.index;
        let mut best: Option<(u32, Option<Role>)> = None;
        for (p, r) in idx.roles.get(user).into_iter().flatten() {
            if self.dag.in_past(*p, self.past)
                && best.is_none_or(|(b, _)| self.key(*p) > self.key(b))
            {
                best = Some((*p, *r));
            }
        }
        best.and_then(|(_, r)| r)
    }

    /// Every member and role in the causal past.
    pub fn members(&mut self) -> BTreeMap<UserId, Role> {
        let users: Vec<UserId> = self.index.roles.keys().copied().collect();
        users
            .into_iter()
            .filter_map(|u| self.role(&u).map(|r| (u, r)))
            .collect()
    }

    /// The latest epoch opened in the causal past.
    pub fn latest_epoch(&mut self) -> Option<u32> {
        let idx = self.index;
        let mut best: Option<u32> = None;
        for p in &idx.epochs {
            if self.dag.in_past(*p, self.past) && best.is_none_or(|b| self.key(*p) > self.key(b)) {
                best = Some(*p);
            }
        }
        best
    }
}

/// What admission learned about an admitted envelope.
pub struct Admitted {
    /// The author's user.
    pub author_user: UserId,
}

/// Checks an envelope whose parents are `q.past` (not yet in `envelopes` or the index).
/// `Ok(None)` means the organization log lacks the named heads: hold the envelope.
pub fn check(q: &mut At<'_>, org: &OrgLog, e: &Envelope) -> Result<Option<Admitted>, Refusal> {
    let h: &Header = e.header();
    let author = h.author;
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
    let Some(view) = org.at_heads(&h.org_heads, |v| {
        let dev = v.device(&author);
        let target: Vec<(UserId, UserAt)> = asked.iter().map(|u| (*u, v.user(u))).collect();
        (dev, target)
    }) else {
        return Ok(None);
    };
    let (dev, targets) = view;
    let DeviceAt::Active {
        user: author_user,
        profile,
    } = dev
    else {
        return Err(Refusal::AuthorNotActive { device: author });
    };
    let active = |user: &UserId| -> Result<(Profile, u32), Refusal> {
        match targets.iter().find(|(u, _)| u == user).map(|(_, a)| *a) {
            Some(UserAt::Active {
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
        return Ok(Some(Admitted { author_user }));
    }
    let mine = q.role(&author_user);
    let need = |needed: Role| {
        if mine.is_some_and(|r| r >= needed) {
            Ok(())
        } else {
            Err(Refusal::RoleTooLow { needed, had: mine })
        }
    };
    match h.kind {
        Kind::Merge => need(Role::Reader)?,
        Kind::Content => {
            need(Role::Contributor)?;
            let latest = q.latest_epoch().map(|p| q.envelopes[p as usize].id());
            if latest.is_none() || h.epoch != latest {
                return Err(Refusal::WrongEpoch);
            }
        }
        Kind::Access => match e.access() {
            Some(AccessChange::Grant { user, role }) => {
                let (target_profile, _) = active(&user)?;
                if target_profile == Profile::Outsider && role > Role::Contributor {
                    return Err(Refusal::OutsiderCap { user, role });
                }
                if mine != Some(Role::Owner) {
                    need(Role::Manager)?;
                    let theirs = q.role(&user);
                    if role > Role::Contributor || theirs.is_some_and(|r| r > Role::Contributor) {
                        return Err(Refusal::RoleTooLow {
                            needed: Role::Owner,
                            had: mine,
                        });
                    }
                }
            }
            Some(AccessChange::Remove { user }) => {
                let Some(theirs) = q.role(&user) else {
                    return Err(Refusal::NotMember { user });
                };
                if user != author_user && mine != Some(Role::Owner) {
                    need(Role::Manager)?;
                    if theirs > Role::Contributor {
                        return Err(Refusal::RoleTooLow {
                            needed: Role::Owner,
                            had: mine,
                        });
                    }
                }
            }
            Some(AccessChange::Create) | None => return Err(Refusal::BadCreation),
        },
        Kind::Keys => {
            need(Role::Manager)?;
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
            }
        }
    }
    Ok(Some(Admitted { author_user }))
}
