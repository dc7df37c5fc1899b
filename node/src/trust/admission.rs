//! Admission: could this entry's author make this certificate, in its causal past?
//!
//! A pure function of the entry and its ancestors, so every device reaches the same verdict
//! whatever the arrival order. "The causal past" is never materialized: each rule asks the
//! [`Index`] for the few entries that matter (the author's device certificate, its user's
//! profile settings...) and keeps those that are ancestors of the entry ([`Dag::is_ancestor`]).
//! No rule reads a timestamp.
//!
//! Admission refuses only what no later entry can make right: an author chooses its past, and
//! removal wins may void any removal in it (a revocation by a device revoked concurrently, a
//! demotion by an admin demoted concurrently). So it never refuses an entry because its author,
//! or the device or user it names, is revoked or demoted in its past, and it refuses an entry
//! that needs the admin profile only if no setting in its past ever made the author admin.
//! Whether an admitted entry counts, with its author's rights judged on the *kept* entries of its
//! past, is decided by [`super::state`] (`super::verdicts`); a writer checks its rights on the
//! current state before signing ([`rights_error`], through `OrgLog::may_write`).
//!
//! Rules (docs/security.md, "The organization log"):
//! - every author is a device certified in the causal past, to one user only;
//! - admins add users (each with a first device whose key signed its own certificate, the user
//!   id derived from that key), change profiles, revoke users, authorize relays and revoke them
//!   (a relay authorized in the causal past);
//! - a device is added only by another device of the same user: an admin enrols a user, never a
//!   device of someone else;
//! - a device is revoked by an admin or by another device of the same user;
//! - a user-key rotation is made by a device of that user, to the next generation, sealed only to
//!   devices of that user;
//! - an organization-key rotation is made by an admin, its shares (one per user, at most
//!   [`MAX_ORG_KEY_SHARES`](super::entry::MAX_ORG_KEY_SHARES) an entry) sealed to users of its
//!   past; more shares of that key follow in `OrgKeyShared` entries by the same author, each
//!   with that rotation in its past and no second share to a user there;
//! - an invitation for a new user is recorded by an admin's device, one for a new device by a
//!   device of that user, each id once; it is closed (once) by an admin or by the recording
//!   device;
//! - caps per user, counted in the cited past (so a refusal stays right whatever comes later:
//!   later entries can only add to that past): a device is added to a user only while the user
//!   has fewer than [`MAX_USER_DEVICES`] devices not revoked there and fewer than
//!   [`MAX_USER_DEVICE_CERTS`] device certificates in all; an invitation is recorded only while
//!   fewer than [`MAX_PENDING_INVITATIONS`] recorded by the author's user are open there
//!   (neither closed nor expired at the new entry's time), and one for a new device only while
//!   its user has room for a device. Concurrent entries each see only
//!   their own past, so a member who writes k branches on purpose gets k times the cap; the
//!   caps bound what honest software writes and how much one past can hold (docs/security.md).

use std::collections::HashMap;

use super::entry::{Certificate, Entry, EntryBody, Invited};
use super::ids::{DeviceId, Profile, UserId};
use super::rejection::Rejection;
use crate::dag::Dag;

mod caps;

use caps::caps;
pub use caps::{MAX_PENDING_INVITATIONS, MAX_USER_DEVICE_CERTS, MAX_USER_DEVICES, check_caps};

/// Positions of the entries that admission and state need, per device and per user.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// Entries adding a device (genesis and user additions included).
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
    /// Every removal: revocations (device or user) and profile changes to a non-admin profile.
    pub removals: Vec<u32>,
    /// Entries by each author device.
    pub by_author: HashMap<DeviceId, Vec<u32>>,
    /// Entries recording an invitation.
    pub invitation_records: HashMap<[u8; 16], Vec<u32>>,
    /// Entries closing an invitation.
    pub invitation_closes: HashMap<[u8; 16], Vec<u32>>,
    /// Entries certifying a device to each user (genesis and user additions included).
    pub user_devices: HashMap<UserId, Vec<u32>>,
    /// Entries recording an invitation, per author device.
    pub invitations_by: HashMap<DeviceId, Vec<u32>>,
    /// Entries authorizing a relay.
    pub relay_authorizations: HashMap<DeviceId, Vec<u32>>,
    /// Entries revoking a relay.
    pub relay_revocations: HashMap<DeviceId, Vec<u32>>,
    /// Entries rotating the organization key.
    pub org_rotations: Vec<u32>,
    /// Entries adding shares of a rotated organization key.
    pub org_shares: Vec<u32>,
}

impl Index {
    /// Records an admitted entry at position `at`.
    pub fn add(&mut self, at: u32, body: &EntryBody) {
        if let Some(u) = body.cert.user_added() {
            self.user_adds.entry(u.user).or_default().push(at);
            self.user_profiles.entry(u.user).or_default().push(at);
        }
        if let Some((d, _)) = body.cert.device_added() {
            self.device_adds.entry(d.device).or_default().push(at);
            self.user_devices.entry(d.user).or_default().push(at);
        }
        if !matches!(body.cert, Certificate::Genesis(_)) {
            self.by_author.entry(body.author).or_default().push(at);
        }
        match &body.cert {
            Certificate::Genesis(_) | Certificate::UserAdded(_) | Certificate::DeviceAdded(_) => {}
            Certificate::ProfileChanged { user, profile } => {
                self.user_profiles.entry(*user).or_default().push(at);
                if *profile != Profile::Admin {
                    self.removals.push(at);
                }
            }
            Certificate::UserKeyRotated(r) => {
                self.user_rotations.entry(r.user).or_default().push(at);
            }
            Certificate::DeviceRevoked { device } => {
                self.device_revokes.entry(*device).or_default().push(at);
                self.removals.push(at);
            }
            Certificate::UserRevoked { user } => {
                self.user_revokes.entry(*user).or_default().push(at);
                self.removals.push(at);
            }
            Certificate::RelayAuthorized(r) => {
                self.relay_authorizations
                    .entry(r.relay)
                    .or_default()
                    .push(at);
            }
            Certificate::RelayRevoked { relay } => {
                self.relay_revocations.entry(*relay).or_default().push(at);
            }
            Certificate::InvitationRecorded(i) => {
                self.invitation_records.entry(i.id).or_default().push(at);
                self.invitations_by.entry(body.author).or_default().push(at);
            }
            Certificate::InvitationClosed { id, .. } => {
                self.invitation_closes.entry(*id).or_default().push(at);
            }
            Certificate::OrgKeyRotated(_) => self.org_rotations.push(at),
            Certificate::OrgKeyShared { .. } => self.org_shares.push(at),
        }
    }
}

/// The user a device-adding entry gives the device to.
pub fn device_owner(body: &EntryBody, device: &DeviceId) -> Option<UserId> {
    match body.cert.device_added() {
        Some((d, _)) if &d.device == device => Some(d.user),
        _ => None,
    }
}

/// The profile a profile-setting entry gives `user`.
pub fn profile_set(body: &EntryBody, user: &UserId) -> Option<Profile> {
    match &body.cert {
        Certificate::ProfileChanged { user: u, profile } if u == user => Some(*profile),
        cert => cert
            .user_added()
            .filter(|u| &u.user == user)
            .map(|u| u.profile),
    }
}

/// The least privileged of several profiles (a concurrent demotion beats a promotion).
pub fn least_privileged(profiles: impl IntoIterator<Item = Profile>) -> Option<Profile> {
    // `Profile` orders Admin < Standard < Outsider.
    profiles.into_iter().max()
}

/// Why `author` may not make `cert` when its user is not admin (`revoked_owner`: the owner of a
/// device it revokes). The one home of that error, for admission and for a writer's own check.
pub fn rights_error(
    cert: &Certificate,
    author: DeviceId,
    revoked_owner: Option<UserId>,
) -> Rejection {
    match (cert, revoked_owner) {
        (Certificate::DeviceRevoked { .. }, Some(owner)) => Rejection::NotOwner {
            device: author,
            user: owner,
        },
        _ => Rejection::NotAdmin { device: author },
    }
}

/// Whether an entry whose author belongs to `author_user` needs the admin profile, given the
/// owner of a device it revokes and whether its author recorded the invitation it closes. The
/// one home of "which certificate needs which privilege", for admission and for removal wins.
pub fn needs_admin(
    cert: &Certificate,
    author_user: &UserId,
    revoked_owner: Option<UserId>,
    author_recorded: bool,
) -> bool {
    match cert {
        Certificate::Genesis(_) | Certificate::DeviceAdded(_) | Certificate::UserKeyRotated(_) => {
            false
        }
        Certificate::UserAdded(_)
        | Certificate::ProfileChanged { .. }
        | Certificate::UserRevoked { .. }
        | Certificate::RelayAuthorized(_)
        | Certificate::RelayRevoked { .. }
        | Certificate::OrgKeyRotated(_)
        | Certificate::OrgKeyShared { .. } => true,
        Certificate::DeviceRevoked { .. } => revoked_owner.as_ref() != Some(author_user),
        Certificate::InvitationRecorded(i) => matches!(i.invited, Invited::User { .. }),
        Certificate::InvitationClosed { .. } => !author_recorded,
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
    /// Positions in `list` that are in the causal past.
    fn ancestors_in(&self, list: Option<&Vec<u32>>) -> Vec<u32> {
        list.into_iter()
            .flatten()
            .copied()
            .filter(|p| self.dag.in_past(*p, self.past))
            .collect()
    }

    fn any_in(&self, list: Option<&Vec<u32>>) -> bool {
        list.into_iter()
            .flatten()
            .any(|p| self.dag.in_past(*p, self.past))
    }

    /// The least privileged profile among the latest (maximal) profile settings in the past.
    fn profile(&self, user: &UserId) -> Option<Profile> {
        let v = self.ancestors_in(self.index.user_profiles.get(user));
        let maximal = v
            .iter()
            .filter(|a| !v.iter().any(|b| self.dag.is_ancestor(**a, *b)));
        least_privileged(
            maximal.filter_map(|p| profile_set(self.entries[*p as usize].body(), user)),
        )
    }

    /// Whether some setting in the causal past made `user` admin (a necessary condition for
    /// being admin among the kept ones, whatever removal wins voids).
    fn ever_admin(&self, user: &UserId) -> bool {
        self.ancestors_in(self.index.user_profiles.get(user))
            .iter()
            .any(|p| profile_set(self.entries[*p as usize].body(), user) == Some(Profile::Admin))
    }

    /// The user `device` is certified to in the causal past (revoked or not).
    fn certified_owner(&self, device: &DeviceId) -> Result<UserId, DeviceStatus> {
        let adds = self.ancestors_in(self.index.device_adds.get(device));
        let mut owners = adds
            .iter()
            .filter_map(|p| device_owner(self.entries[*p as usize].body(), device));
        let Some(user) = owners.next() else {
            return Err(DeviceStatus::Unknown);
        };
        if owners.any(|u| u != user) {
            return Err(DeviceStatus::Doubled);
        }
        Ok(user)
    }

    fn user_known(&self, user: &UserId) -> Result<(), Rejection> {
        if !self.any_in(self.index.user_adds.get(user)) {
            return Err(Rejection::UnknownUser { user: *user });
        }
        Ok(())
    }

    fn generation(&self, user: &UserId) -> u32 {
        self.ancestors_in(self.index.user_rotations.get(user))
            .into_iter()
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
///
/// Like organization admission, it never reports a device or user as revoked: any revocation in
/// that past may be voided by removal wins, so whether an author (or a key's recipient) still
/// counts is read from the organization's current state (`workspace::state`), never from the
/// past an author chose.
pub struct CausalView<'a>(At<'a>);

/// A device in a [`CausalView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAt {
    /// Not added.
    Unknown,
    /// Certified to two users (its key signed both): it counts for neither.
    Doubled,
    /// Certified to this user (revoked or not), whose profile is this.
    Certified {
        /// Owner.
        user: UserId,
        /// Owner's profile (the least privileged of the latest settings in that past).
        profile: Profile,
    },
}

/// A user in a [`CausalView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAt {
    /// Not added.
    Unknown,
    /// Added (revoked or not).
    Known {
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
        match self.0.certified_owner(device) {
            Ok(user) => DeviceAt::Certified {
                user,
                profile: self.0.profile(&user).unwrap_or(Profile::Outsider),
            },
            Err(DeviceStatus::Unknown) => DeviceAt::Unknown,
            Err(DeviceStatus::Doubled) => DeviceAt::Doubled,
        }
    }

    /// Whether that past holds a revocation of the device or of the user it is certified to.
    /// Raw: removal wins may yet void the revocation, so this never decides whether the device
    /// still counts (the organization's current state does); a workspace uses it only to set
    /// aside, in an envelope's admission, what the author of that envelope knows to be revoked.
    pub fn revoked(&mut self, device: &DeviceId) -> bool {
        let at = &self.0;
        at.any_in(at.index.device_revokes.get(device))
            || at
                .certified_owner(device)
                .is_ok_and(|u| at.any_in(at.index.user_revokes.get(&u)))
    }

    /// A user's status.
    pub fn user(&mut self, user: &UserId) -> UserAt {
        match self.0.user_known(user) {
            Ok(()) => UserAt::Known {
                profile: self.0.profile(user).unwrap_or(Profile::Outsider),
                key_generation: self.0.generation(user),
            },
            Err(_) => UserAt::Unknown,
        }
    }
}

enum DeviceStatus {
    Unknown,
    /// Certified to two users.
    Doubled,
}

/// Checks an entry whose parents are at `parents` (its causal past is them and their ancestors).
pub fn check(
    dag: &Dag,
    entries: &[Entry],
    index: &Index,
    parents: &[u32],
    body: &EntryBody,
) -> Result<(), Rejection> {
    let q = At {
        dag,
        entries,
        index,
        past: parents,
    };
    if let Certificate::Genesis(_) = &body.cert {
        // Shape checks (root author, no parents, admin profile, first device, proof of
        // possession) were done by `check_shape` and `verify_batch`.
        return Ok(());
    }
    let author = body.author;
    let author_user = match q.certified_owner(&author) {
        Ok(u) => u,
        Err(DeviceStatus::Unknown) => return Err(Rejection::UnknownAuthor { device: author }),
        Err(DeviceStatus::Doubled) => return Err(Rejection::AuthorRevoked { device: author }),
    };
    let mut revoked_owner = None;
    let mut author_recorded = false;
    match &body.cert {
        Certificate::Genesis(_) => {}
        Certificate::UserAdded(u) => {
            if q.any_in(index.user_adds.get(&u.user)) {
                return Err(Rejection::UserExists { user: u.user });
            }
            if q.any_in(index.device_adds.get(&u.device.device)) {
                return Err(Rejection::DeviceExists {
                    device: u.device.device,
                });
            }
        }
        Certificate::DeviceAdded(d) => {
            if d.user != author_user {
                return Err(Rejection::NotOwner {
                    device: author,
                    user: d.user,
                });
            }
            // The device key is checked (a valid point of large order) with its proof of
            // possession, in `entry::verify_batch`.
            if q.any_in(index.device_adds.get(&d.device)) {
                return Err(Rejection::DeviceExists { device: d.device });
            }
        }
        Certificate::ProfileChanged { user, .. } | Certificate::UserRevoked { user } => {
            q.user_known(user)?;
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
                match q.certified_owner(device) {
                    Ok(owner) if owner == r.user => {}
                    _ => return Err(Rejection::BadRecipient { device: *device }),
                }
            }
        }
        Certificate::DeviceRevoked { device } => match q.certified_owner(device) {
            Ok(u) => revoked_owner = Some(u),
            Err(DeviceStatus::Unknown) => {
                return Err(Rejection::UnknownDevice { device: *device });
            }
            // Certified to two users: it counts for neither; revoking it needs an admin.
            Err(DeviceStatus::Doubled) => {}
        },
        Certificate::RelayAuthorized(_) => {}
        Certificate::OrgKeyRotated(r) => {
            // One share per user (sorted, checked by the shape), each to a user of the past.
            for (user, _, _) in &r.shares {
                q.user_known(user)?;
            }
        }
        Certificate::OrgKeyShared { key_id, shares } => {
            // The rotation by this author in the past, and no second share to a user there.
            let of_key = |p: &u32| {
                let e = entries[*p as usize].body();
                let s = match &e.cert {
                    Certificate::OrgKeyRotated(r) if r.key_id == *key_id => &r.shares,
                    Certificate::OrgKeyShared { key_id: k, shares } if k == key_id => shares,
                    _ => return None,
                };
                (e.author == author).then_some((matches!(e.cert, Certificate::OrgKeyRotated(_)), s))
            };
            let earlier: Vec<(bool, &super::entry::OrgKeyShares)> = q
                .ancestors_in(Some(&index.org_rotations))
                .iter()
                .chain(q.ancestors_in(Some(&index.org_shares)).iter())
                .filter_map(of_key)
                .collect();
            if !earlier.iter().any(|(rotation, _)| *rotation) {
                return Err(Rejection::UnknownOrgKey { key_id: *key_id });
            }
            for (user, _, _) in shares {
                q.user_known(user)?;
                if earlier.iter().any(|(_, s)| s.iter().any(|x| &x.0 == user)) {
                    return Err(Rejection::DuplicateShare { user: *user });
                }
            }
        }
        Certificate::RelayRevoked { relay } => {
            if !q.any_in(index.relay_authorizations.get(relay)) {
                return Err(Rejection::UnknownRelay { relay: *relay });
            }
        }
        Certificate::InvitationRecorded(i) => {
            if let Invited::Device { user } = i.invited
                && user != author_user
            {
                return Err(Rejection::NotOwner {
                    device: author,
                    user,
                });
            }
            if q.any_in(index.invitation_records.get(&i.id)) {
                return Err(Rejection::InvitationExists { id: i.id });
            }
        }
        Certificate::InvitationClosed { id, .. } => {
            let records = q.ancestors_in(index.invitation_records.get(id));
            if records.is_empty() {
                return Err(Rejection::UnknownInvitation { id: *id });
            }
            if q.any_in(index.invitation_closes.get(id)) {
                return Err(Rejection::InvitationAlreadyClosed { id: *id });
            }
            author_recorded = records
                .iter()
                .all(|p| entries[*p as usize].body().author == author);
        }
    }
    if needs_admin(&body.cert, &author_user, revoked_owner, author_recorded)
        && !q.ever_admin(&author_user)
    {
        return Err(rights_error(&body.cert, author, revoked_owner));
    }
    caps(&q, &body.cert, &author_user, body.time.millis())
}
