//! The effective organization state: who is in, with which keys, after *revocation wins*.
//!
//! Computed from the whole DAG of admitted entries in two steps (DESIGN §2):
//!
//! 1. **Kept set.** A device is *legitimate* when an entry that adds it is kept. The kept set is
//!    the smallest set closed under ancestry that contains the genesis, every entry of a
//!    legitimate device that is not revoked, and every revocation by a legitimate device (so two
//!    admins revoking each other both take effect). It is a least fixpoint, computed by
//!    iteration; without any revocation everything is kept and the iteration is skipped.
//!    Consequences: what a revoked device wrote is dropped everywhere, except what it wrote before
//!    its revocation (an ancestor of it) or what an honest device built on before learning of the
//!    revocation (an ancestor of an honest entry); devices that a revoked device added and that
//!    nobody honest built on are dropped with it.
//! 2. **Fold.** Kept entries are applied in `(time, id)` order, a topological order because an
//!    entry's time is after its parents'. First certificate wins for a user or device id.
//!
//! Invariant: the result is a function of the set of admitted entries only (never of arrival
//! order or positions), so every device with the same entries computes the same state.

use std::collections::{BTreeMap, BTreeSet};

use super::admission::{Index, device_owner};
use super::entry::{Certificate, CloseReason, Entry, Invited};
use super::ids::{DeviceId, EntryId, Hlc, OrgId, Profile, UserId};
use crate::dag::Dag;

/// A user as the organization currently sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    /// Current profile.
    pub profile: Profile,
    /// Name and e-mail, sealed under the organization key.
    pub private: Vec<u8>,
    /// The entry that added the user.
    pub added_by: EntryId,
    /// The revocation, if revoked.
    pub revoked_by: Option<EntryId>,
    /// The user's devices (active or revoked).
    pub devices: BTreeSet<DeviceId>,
    /// Current user key.
    pub key: UserKeyState,
}

/// A user's current key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeyState {
    /// Generation.
    pub generation: u32,
    /// Public key.
    pub public: [u8; 32],
    /// The entry that set it.
    pub set_by: EntryId,
    /// A device that may hold this key was revoked since: the user's devices must rotate it.
    pub needs_rotation: bool,
}

/// A device as the organization currently sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    /// Owner.
    pub user: UserId,
    /// X25519 exchange key.
    pub exchange_key: [u8; 32],
    /// Label, sealed under the organization key.
    pub private: Vec<u8>,
    /// The entry that added the device.
    pub added_by: EntryId,
    /// The revocation, if revoked (directly or with its user).
    pub revoked_by: Option<EntryId>,
}

/// An authorized relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayState {
    /// Addresses to reach it.
    pub addrs: Vec<String>,
    /// The authorizing entry.
    pub authorized_by: EntryId,
}

/// An invitation recorded in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationState {
    /// For whom.
    pub invited: Invited,
    /// Unix ms after which it is refused.
    pub expires_ms: u64,
    /// The greeting device.
    pub greeter: DeviceId,
    /// The recording device.
    pub recorded_by: DeviceId,
    /// The recording entry.
    pub entry: EntryId,
    /// Unix ms of the recording entry.
    pub recorded_ms: u64,
    /// The e-mail (user invitations), sealed under the organization key.
    pub private: Vec<u8>,
    /// How and by which entry it was closed, if it was.
    pub closed: Option<(CloseReason, EntryId)>,
}

/// The effective state of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrgState {
    /// The organization.
    pub org: OrgId,
    /// Its genesis entry (none before it arrives).
    pub genesis: Option<EntryId>,
    /// The organization's name, sealed.
    pub org_private: Vec<u8>,
    /// Users by id.
    pub users: BTreeMap<UserId, UserState>,
    /// Devices by id.
    pub devices: BTreeMap<DeviceId, DeviceState>,
    /// Relays by id.
    pub relays: BTreeMap<DeviceId, RelayState>,
    /// Recorded invitations by id (first record wins; first close wins).
    pub invitations: BTreeMap<[u8; 16], InvitationState>,
    /// Heads of the kept entries: the parents of the next local entry. Sorted.
    pub heads: Vec<EntryId>,
    /// Admitted entries that revocation wins dropped. Sorted.
    pub dropped: Vec<EntryId>,
}

impl OrgState {
    /// Whether `device` is an active device of the organization.
    pub fn is_active(&self, device: &DeviceId) -> bool {
        self.devices
            .get(device)
            .is_some_and(|d| d.revoked_by.is_none())
    }

    /// Active devices of `user`.
    pub fn active_devices_of(&self, user: &UserId) -> Vec<DeviceId> {
        self.users
            .get(user)
            .map(|u| {
                u.devices
                    .iter()
                    .filter(|d| self.is_active(d))
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn apply(&mut self, e: &Entry) {
        let id = e.id();
        match &e.body().cert {
            Certificate::Genesis(g) => {
                self.genesis = Some(id);
                self.org_private = g.private.clone();
                self.add_user(id, &g.admin);
                self.add_device(id, &g.device);
            }
            Certificate::UserAdded(u) => self.add_user(id, u),
            Certificate::DeviceAdded(d) => self.add_device(id, d),
            Certificate::ProfileChanged { user, profile } => {
                if let Some(u) = self.users.get_mut(user) {
                    u.profile = *profile;
                }
            }
            Certificate::UserKeyRotated(r) => {
                if let Some(u) = self.users.get_mut(&r.user)
                    && r.generation == u.key.generation + 1
                {
                    u.key = UserKeyState {
                        generation: r.generation,
                        public: r.key,
                        set_by: id,
                        needs_rotation: false,
                    };
                }
            }
            Certificate::DeviceRevoked { device } => self.revoke_device(id, device),
            Certificate::UserRevoked { user } => {
                let devices: Vec<DeviceId> = match self.users.get_mut(user) {
                    Some(u) if u.revoked_by.is_none() => {
                        u.revoked_by = Some(id);
                        u.devices.iter().copied().collect()
                    }
                    _ => Vec::new(),
                };
                for d in devices {
                    self.revoke_device(id, &d);
                }
            }
            Certificate::RelayAuthorized(r) => {
                self.relays.entry(r.relay).or_insert(RelayState {
                    addrs: r.addrs.clone(),
                    authorized_by: id,
                });
            }
            Certificate::InvitationRecorded(i) => {
                self.invitations.entry(i.id).or_insert(InvitationState {
                    invited: i.invited,
                    expires_ms: i.expires_ms,
                    greeter: i.greeter,
                    recorded_by: e.body().author,
                    entry: id,
                    recorded_ms: e.body().time.millis(),
                    private: i.private.clone(),
                    closed: None,
                });
            }
            Certificate::InvitationClosed { id: inv, reason } => {
                if let Some(i) = self.invitations.get_mut(inv)
                    && i.closed.is_none()
                {
                    i.closed = Some((*reason, id));
                }
            }
        }
    }

    fn add_user(&mut self, id: EntryId, u: &super::entry::UserAdded) {
        self.users.entry(u.user).or_insert_with(|| UserState {
            profile: u.profile,
            private: u.private.clone(),
            added_by: id,
            revoked_by: None,
            devices: BTreeSet::new(),
            key: UserKeyState {
                generation: 0,
                public: u.user_key,
                set_by: id,
                needs_rotation: false,
            },
        });
    }

    fn add_device(&mut self, id: EntryId, d: &super::entry::DeviceAdded) {
        let Some(user) = self.users.get_mut(&d.user) else {
            return;
        };
        if self.devices.contains_key(&d.device) {
            return;
        }
        user.devices.insert(d.device);
        // A device added concurrently with its user's revocation is born revoked.
        let revoked_by = user.revoked_by;
        self.devices.insert(
            d.device,
            DeviceState {
                user: d.user,
                exchange_key: d.exchange_key,
                private: d.private.clone(),
                added_by: id,
                revoked_by,
            },
        );
    }

    fn revoke_device(&mut self, id: EntryId, device: &DeviceId) {
        let Some(d) = self.devices.get_mut(device) else {
            return;
        };
        if d.revoked_by.is_some() {
            return;
        }
        d.revoked_by = Some(id);
        if let Some(u) = self.users.get_mut(&d.user) {
            u.key.needs_rotation = true;
        }
    }
}

/// The state with what is needed to extend it cheaply when an entry is appended.
#[derive(Debug, Clone)]
pub struct Derived {
    /// The effective state.
    pub state: OrgState,
    kept: Vec<bool>,
    legit: BTreeSet<DeviceId>,
    revoked: BTreeSet<DeviceId>,
    last_key: Option<(Hlc, EntryId)>,
    heads: BTreeSet<EntryId>,
}

impl Derived {
    /// Computes the state from the admitted entries.
    pub fn compute(org: OrgId, entries: &[Entry], dag: &Dag, index: &Index) -> Derived {
        let (kept, legit, revoked) = kept_set(entries, dag, index);
        let mut order: Vec<usize> = (0..entries.len()).filter(|p| kept[*p]).collect();
        order.sort_by_key(|p| (entries[*p].body().time, entries[*p].id()));
        let mut st = OrgState {
            org,
            ..OrgState::default()
        };
        for p in &order {
            let e = &entries[*p];
            // A kept revocation by a device that is not legitimate (kept only because an honest
            // entry descends from it) does not count: see `kept_set`.
            if is_revocation(e) && !legit.contains(&e.body().author) {
                continue;
            }
            st.apply(e);
        }
        let heads: BTreeSet<EntryId> = dag
            .heads_of(&kept)
            .into_iter()
            .map(|p| entries[p as usize].id())
            .collect();
        st.heads = heads.iter().copied().collect();
        st.dropped = (0..entries.len())
            .filter(|p| !kept[*p])
            .map(|p| entries[p].id())
            .collect();
        st.dropped.sort_unstable();
        let last_key = order
            .last()
            .map(|p| (entries[*p].body().time, entries[*p].id()));
        Derived {
            state: st,
            kept,
            legit,
            revoked,
            last_key,
            heads,
        }
    }

    /// Extends the state with `entries[at]`, just appended, when that provably gives the same
    /// result as [`Derived::compute`]: the entry comes last in `(time, id)` order, is not a
    /// revocation, its author is legitimate and not revoked (so it is a root of the kept set),
    /// and its parents are all kept (so it keeps nothing new). Returns false otherwise, and the
    /// caller recomputes.
    pub fn try_extend(&mut self, entries: &[Entry], parents: &[u32], at: u32) -> bool {
        let e = &entries[at as usize];
        let body = e.body();
        let key = (body.time, e.id());
        let ok = at as usize == self.kept.len()
            && self.last_key.is_none_or(|k| key > k)
            && !is_revocation(e)
            && !matches!(body.cert, Certificate::Genesis(_))
            && self.legit.contains(&body.author)
            && !self.revoked.contains(&body.author)
            && parents.iter().all(|p| self.kept[*p as usize]);
        if !ok {
            return false;
        }
        self.kept.push(true);
        if let Certificate::DeviceAdded(d) = &body.cert {
            self.legit.insert(d.device);
        }
        self.last_key = Some(key);
        for p in &body.parents {
            self.heads.remove(p);
        }
        self.heads.insert(e.id());
        self.state.apply(e);
        self.state.heads = self.heads.iter().copied().collect();
        true
    }
}

fn is_revocation(e: &Entry) -> bool {
    matches!(
        e.body().cert,
        Certificate::DeviceRevoked { .. } | Certificate::UserRevoked { .. }
    )
}

/// Most fixpoint rounds. The rule is not monotone in contrived DAGs (a device whose only
/// support is a device it revokes); the cap keeps the result a pure function of the DAG anyway.
const MAX_ROUNDS: usize = 64;

/// The kept set (see the module doc) as a membership vector over positions, and the set of
/// legitimate devices (whose adding entry is kept).
type KeptSet = (Vec<bool>, BTreeSet<DeviceId>, BTreeSet<DeviceId>);

fn kept_set(entries: &[Entry], dag: &Dag, index: &Index) -> KeptSet {
    let n = entries.len();
    if index.revocations.is_empty() {
        let all = index.device_adds.keys().copied().collect();
        return (vec![true; n], all, BTreeSet::new());
    }
    // Owners of devices, for user revocations.
    let mut devices_of: BTreeMap<UserId, Vec<DeviceId>> = BTreeMap::new();
    for (device, adds) in &index.device_adds {
        for p in adds {
            if let Some(u) = device_owner(entries[*p as usize].body(), device) {
                devices_of.entry(u).or_default().push(*device);
            }
        }
    }
    let mut kept = vec![false; n];
    let mut legit = BTreeSet::new();
    let mut revoked = BTreeSet::new();
    for _ in 0..MAX_ROUNDS {
        legit = index
            .device_adds
            .iter()
            .filter(|(_, adds)| adds.iter().any(|p| kept[*p as usize]))
            .map(|(d, _)| *d)
            .collect();
        // Revocations count when their author is legitimate (they are then always kept).
        revoked = BTreeSet::new();
        for p in &index.revocations {
            let body = entries[*p as usize].body();
            if !legit.contains(&body.author) {
                continue;
            }
            match &body.cert {
                Certificate::DeviceRevoked { device } => {
                    revoked.insert(*device);
                }
                Certificate::UserRevoked { user } => {
                    revoked.extend(devices_of.get(user).into_iter().flatten().copied());
                }
                _ => {}
            }
        }
        let roots = (0..n).filter(|p| {
            let body = entries[*p].body();
            let revocation = matches!(
                body.cert,
                Certificate::DeviceRevoked { .. } | Certificate::UserRevoked { .. }
            );
            matches!(body.cert, Certificate::Genesis(_))
                || (legit.contains(&body.author) && (revocation || !revoked.contains(&body.author)))
        });
        let next = dag.closure(roots.map(|p| p as u32));
        if next == kept {
            break;
        }
        kept = next;
    }
    (kept, legit, revoked)
}
