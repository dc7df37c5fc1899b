//! Admission: may this entry's author make this certificate, in the state of its causal past?
//!
//! A pure function of the entry and its ancestors, so every device reaches the same verdict
//! whatever the arrival order. "The state of the causal past" is never materialized: each rule
//! asks the [`Index`] for the few entries that matter (the author's device certificate, its
//! revocations, its user's profile changes...) and keeps those that are ancestors of the entry
//! ([`Dag::is_ancestor`]). Among several, the last by `(time, id)` wins; since an entry's time is
//! after its parents', that order agrees with causality.
//!
//! Rules (DESIGN §2):
//! - every author is a device added in the causal past, neither it nor its user revoked there;
//! - admins add users, change profiles, revoke users, authorize relays;
//! - a device is added by an admin or by another active device of the same user;
//! - a device is revoked by an admin or by another device of the same user;
//! - a user-key rotation is made by a device of that user, to the next generation, sealed only to
//!   active devices of that user;
//! - an invitation for a new user is recorded by an admin's device, one for a new device by a
//!   device of that user, each id once; it is closed (once) by an admin or by the recording
//!   device.

use std::collections::HashMap;

use super::entry::{Certificate, Entry, EntryBody, Invited};
use super::ids::{DeviceId, Profile, UserId};
use super::rejection::Rejection;
use crate::dag::Dag;

/// Positions of the entries that admission and state need, per device and per user.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// Entries adding a device (genesis included).
    pub device_adds: HashMap<DeviceId, Vec<u32>>,
    /// Entries revoking a device.
    pub device_revokes: HashMap<DeviceId, Vec<u32>>,
    /// Entries adding a user (genesis included).
    pub user_adds: HashMap<UserId, Vec<u32>>,
    /// Entries setting a user's profile (user added, profile changed).
    pub user_profiles: HashMap<UserId, Vec<u32>>,
    /// Entries revoking a user.
    pub user_revokes: HashMap<UserId, Vec<u32>>,
    /// Entries rotating a user's key.
    pub user_rotations: HashMap<UserId, Vec<u32>>,
    /// Every revocation entry (device or user), in admission order.
    pub revocations: Vec<u32>,
    /// Entries recording an invitation.
    pub invitation_records: HashMap<[u8; 16], Vec<u32>>,
    /// Entries closing an invitation.
    pub invitation_closes: HashMap<[u8; 16], Vec<u32>>,
}

impl Index {
    /// Records an admitted entry at position `at`.
    pub fn add(&mut self, at: u32, body: &EntryBody) {
        match &body.cert {
            Certificate::Genesis(g) => {
                self.user_adds.entry(g.admin.user).or_default().push(at);
                self.user_profiles.entry(g.admin.user).or_default().push(at);
                self.device_adds
                    .entry(g.device.device)
                    .or_default()
                    .push(at);
            }
            Certificate::UserAdded(u) => {
                self.user_adds.entry(u.user).or_default().push(at);
                self.user_profiles.entry(u.user).or_default().push(at);
            }
            Certificate::DeviceAdded(d) => {
                self.device_adds.entry(d.device).or_default().push(at);
            }
            Certificate::ProfileChanged { user, .. } => {
                self.user_profiles.entry(*user).or_default().push(at);
            }
            Certificate::UserKeyRotated(r) => {
                self.user_rotations.entry(r.user).or_default().push(at);
            }
            Certificate::DeviceRevoked { device } => {
                self.device_revokes.entry(*device).or_default().push(at);
                self.revocations.push(at);
            }
            Certificate::UserRevoked { user } => {
                self.user_revokes.entry(*user).or_default().push(at);
                self.revocations.push(at);
            }
            Certificate::RelayAuthorized(_) => {}
            Certificate::InvitationRecorded(i) => {
                self.invitation_records.entry(i.id).or_default().push(at);
            }
            Certificate::InvitationClosed { id, .. } => {
                self.invitation_closes.entry(*id).or_default().push(at);
            }
        }
    }
}

/// The user a device-adding entry gives the device to.
pub fn device_owner(body: &EntryBody, device: &DeviceId) -> Option<UserId> {
    match &body.cert {
        Certificate::Genesis(g) if &g.device.device == device => Some(g.device.user),
        Certificate::DeviceAdded(d) if &d.device == device => Some(d.user),
        _ => None,
    }
}

/// The profile a profile-setting entry gives `user`.
fn profile_set(body: &EntryBody, user: &UserId) -> Option<Profile> {
    match &body.cert {
        Certificate::Genesis(g) if &g.admin.user == user => Some(g.admin.profile),
        Certificate::UserAdded(u) if &u.user == user => Some(u.profile),
        Certificate::ProfileChanged { user: u, profile } if u == user => Some(*profile),
        _ => None,
    }
}

/// Causal queries at one position.
struct At<'a> {
    dag: &'a Dag,
    entries: &'a [Entry],
    index: &'a Index,
    /// The causal past: these positions and their ancestors.
    past: &'a [u32],
}

impl At<'_> {
    fn sort_key(&self, p: u32) -> (super::ids::Hlc, super::ids::EntryId) {
        let e = &self.entries[p as usize];
        (e.body().time, e.id())
    }

    /// Positions in `list` that are ancestors of `at`.
    fn ancestors_in(&mut self, list: Option<&Vec<u32>>) -> Vec<u32> {
        let mut out = Vec::new();
        for p in list.into_iter().flatten() {
            if self.dag.in_past(*p, self.past) {
                out.push(*p);
            }
        }
        out
    }

    /// The first (by time, id) ancestor entry in `list`.
    fn first_in(&mut self, list: Option<&Vec<u32>>) -> Option<u32> {
        let v = self.ancestors_in(list);
        v.into_iter().min_by_key(|p| self.sort_key(*p))
    }

    fn any_in(&mut self, list: Option<&Vec<u32>>) -> bool {
        for p in list.into_iter().flatten() {
            if self.dag.in_past(*p, self.past) {
                return true;
            }
        }
        false
    }

    fn user_exists(&mut self, user: &UserId) -> Result<(), Rejection> {
        if self.first_in(self.index.user_adds.get(user)).is_none() {
            return Err(Rejection::UnknownUser { user: *user });
        }
        if self.any_in(self.index.user_revokes.get(user)) {
            return Err(Rejection::UserRevoked { user: *user });
        }
        Ok(())
    }

    fn profile(&mut self, user: &UserId) -> Option<Profile> {
        let v = self.ancestors_in(self.index.user_profiles.get(user));
        let last = v.into_iter().max_by_key(|p| self.sort_key(*p))?;
        profile_set(self.entries[last as usize].body(), user)
    }

    /// The owner of `device` if it is added and not revoked (nor its user) in the causal past.
    fn device_owner(&mut self, device: &DeviceId) -> Result<UserId, DeviceStatus> {
        let Some(add) = self.first_in(self.index.device_adds.get(device)) else {
            return Err(DeviceStatus::Unknown);
        };
        let user =
            device_owner(self.entries[add as usize].body(), device).ok_or(DeviceStatus::Unknown)?;
        if self.any_in(self.index.device_revokes.get(device))
            || self.any_in(self.index.user_revokes.get(&user))
        {
            return Err(DeviceStatus::Revoked(user));
        }
        Ok(user)
    }

    fn generation(&mut self, user: &UserId) -> u32 {
        let v = self.ancestors_in(self.index.user_rotations.get(user));
        v.into_iter()
            .filter_map(|p| match &self.entries[p as usize].body().cert {
                Certificate::UserKeyRotated(r) => Some(r.generation),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// The organization as it was in the causal past of a set of heads (see
/// [`OrgLog::at_heads`](super::OrgLog::at_heads)): what another DAG (a workspace) asks about the
/// author of one of its entries, given the organization heads that author had seen.
pub struct CausalView<'a>(At<'a>);

/// A device in a [`CausalView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAt {
    /// Not added.
    Unknown,
    /// Revoked (itself or its user).
    Revoked,
    /// Active, owned by this user with this profile.
    Active {
        /// Owner.
        user: UserId,
        /// Owner's profile.
        profile: Profile,
    },
}

/// A user in a [`CausalView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAt {
    /// Not added.
    Unknown,
    /// Revoked.
    Revoked,
    /// Active.
    Active {
        /// Profile.
        profile: Profile,
        /// Current user-key generation.
        key_generation: u32,
    },
}

impl<'a> CausalView<'a> {
    pub(super) fn new(
        dag: &'a Dag,
        entries: &'a [Entry],
        index: &'a Index,
        past: &'a [u32],
    ) -> Self {
        CausalView(At {
            dag,
            entries,
            index,
            past,
        })
    }

    /// A device's status.
    pub fn device(&mut self, device: &DeviceId) -> DeviceAt {
        match self.0.device_owner(device) {
            Ok(user) => DeviceAt::Active {
                user,
                profile: self.0.profile(&user).unwrap_or(Profile::Outsider),
            },
            Err(DeviceStatus::Unknown) => DeviceAt::Unknown,
            Err(DeviceStatus::Revoked(_)) => DeviceAt::Revoked,
        }
    }

    /// A user's status.
    pub fn user(&mut self, user: &UserId) -> UserAt {
        match self.0.user_exists(user) {
            Ok(()) => UserAt::Active {
                profile: self.0.profile(user).unwrap_or(Profile::Outsider),
                key_generation: self.0.generation(user),
            },
            Err(Rejection::UserRevoked { .. }) => UserAt::Revoked,
            Err(_) => UserAt::Unknown,
        }
    }
}

enum DeviceStatus {
    Unknown,
    Revoked(#[allow(dead_code)] UserId),
}

/// Checks an entry whose parents are at `parents` (its causal past is them and their ancestors).
pub fn check(
    dag: &Dag,
    entries: &[Entry],
    index: &Index,
    parents: &[u32],
    body: &EntryBody,
) -> Result<(), Rejection> {
    let mut q = At {
        dag,
        entries,
        index,
        past: parents,
    };
    if let Certificate::Genesis(g) = &body.cert {
        // Shape checks (root author, no parents, admin profile) were done by `check_shape`.
        if g.admin.user_key == [0; 32] || g.device.exchange_key == [0; 32] {
            return Err(Rejection::BadShape { kind: "genesis" });
        }
        return Ok(());
    }
    let author = body.author;
    let author_user = match q.device_owner(&author) {
        Ok(u) => u,
        Err(DeviceStatus::Unknown) => return Err(Rejection::UnknownAuthor { device: author }),
        Err(DeviceStatus::Revoked(_)) => return Err(Rejection::AuthorRevoked { device: author }),
    };
    let is_admin = q.profile(&author_user) == Some(Profile::Admin);
    let need_admin = || {
        if is_admin {
            Ok(())
        } else {
            Err(Rejection::NotAdmin { device: author })
        }
    };
    match &body.cert {
        Certificate::Genesis(_) => Ok(()),
        Certificate::UserAdded(u) => {
            need_admin()?;
            if u.user_key == [0; 32] {
                return Err(Rejection::BadShape { kind: "user-added" });
            }
            if q.first_in(index.user_adds.get(&u.user)).is_some() {
                return Err(Rejection::UserExists { user: u.user });
            }
            Ok(())
        }
        Certificate::DeviceAdded(d) => {
            q.user_exists(&d.user)?;
            if !is_admin && d.user != author_user {
                return Err(Rejection::NotOwner {
                    device: author,
                    user: d.user,
                });
            }
            if d.exchange_key == [0; 32] || d.device.0 == body.org.0 {
                return Err(Rejection::BadShape {
                    kind: "device-added",
                });
            }
            // The device key is checked (a valid point of large order) where it is used, when
            // its first signature is verified (`entry::KeyCache`): decompressing it here would
            // cost a third of a signature check per certificate on a cold start.
            if q.first_in(index.device_adds.get(&d.device)).is_some() {
                return Err(Rejection::DeviceExists { device: d.device });
            }
            Ok(())
        }
        Certificate::ProfileChanged { user, .. } => {
            need_admin()?;
            q.user_exists(user)
        }
        Certificate::UserKeyRotated(r) => {
            if r.user != author_user {
                return Err(Rejection::NotOwner {
                    device: author,
                    user: r.user,
                });
            }
            let expected = q.generation(&r.user).saturating_add(1);
            if r.generation != expected {
                return Err(Rejection::BadGeneration {
                    expected,
                    got: r.generation,
                });
            }
            if r.key == [0; 32] {
                return Err(Rejection::BadShape {
                    kind: "user-key-rotated",
                });
            }
            for (device, _) in &r.sealed {
                match q.device_owner(device) {
                    Ok(owner) if owner == r.user => {}
                    _ => return Err(Rejection::BadRecipient { device: *device }),
                }
            }
            Ok(())
        }
        Certificate::DeviceRevoked { device } => {
            let owner = match q.device_owner(device) {
                Ok(u) => u,
                Err(DeviceStatus::Unknown) => {
                    return Err(Rejection::UnknownDevice { device: *device });
                }
                Err(DeviceStatus::Revoked(_)) => {
                    return Err(Rejection::DeviceAlreadyRevoked { device: *device });
                }
            };
            if !is_admin && owner != author_user {
                return Err(Rejection::NotOwner {
                    device: author,
                    user: owner,
                });
            }
            Ok(())
        }
        Certificate::UserRevoked { user } => {
            need_admin()?;
            q.user_exists(user)
        }
        Certificate::RelayAuthorized(_) => need_admin(),
        Certificate::InvitationRecorded(i) => {
            match i.invited {
                Invited::User { .. } => need_admin()?,
                Invited::Device { user } => {
                    if user != author_user {
                        return Err(Rejection::NotOwner {
                            device: author,
                            user,
                        });
                    }
                }
            }
            if q.any_in(index.invitation_records.get(&i.id)) {
                return Err(Rejection::InvitationExists { id: i.id });
            }
            Ok(())
        }
        Certificate::InvitationClosed { id, .. } => {
            let Some(rec) = q.first_in(index.invitation_records.get(id)) else {
                return Err(Rejection::UnknownInvitation { id: *id });
            };
            if q.any_in(index.invitation_closes.get(id)) {
                return Err(Rejection::InvitationAlreadyClosed { id: *id });
            }
            if !is_admin && entries[rec as usize].body().author != author {
                return Err(Rejection::NotAdmin { device: author });
            }
            Ok(())
        }
    }
}
