//! The effective organization state: which admitted entries count, then a fold that reads no
//! timestamp.
//!
//! Admission ([`super::admission`]) checks each entry against the causal past its author chose,
//! and refuses nothing for a revocation or demotion there (removal wins may void it). An author
//! chooses that past, so an entry can be admitted that its author could no longer have written
//! had it cited everything: a revoked device writing on a stale copy, a demoted admin promoting
//! itself there. The state therefore decides, over the whole set of admitted entries, which ones
//! count (*kept*, computed by `super::verdicts`):
//!
//! 1. **Rights on the kept past.** An entry counts only if its author held what it needs among
//!    the kept entries of its own past: a device certificate that counts (certified to one user,
//!    whose own certificate counts; a key certified to two users counts for neither), no
//!    revocation of the device or its user that counts (for a key rotation, none of a
//!    recipient either), and for an entry that needs it, the admin profile by the kept settings.
//!    A right granted by a voided entry backs nothing; a voided removal binds nobody.
//! 2. **Removals.** A removal is a device revocation, a user revocation, or a profile change to a
//!    non-admin profile (a demotion). A kept removal *voids* every entry, other than itself, by a
//!    device it removes (for a demotion: every entry that needed the admin profile) that is
//!    *concurrent* with it: neither its ancestor nor its descendant. What the author wrote
//!    before the removal (its ancestors) stays. There is no exception for entries that others
//!    built on: any member may be an accomplice, so citing a voided entry saves nothing (the
//!    citing entry counts on its own merits). A removal of its author's own user (a device of
//!    it, the user, its admin profile: a confession) is never voided: that would give a right
//!    back only to the user who gave it up.
//! 3. **Mutual removals.** Removals can void each other (each removes the other's author). In a
//!    mutual pair, the removal by the *senior* author wins: the one whose device certificate is
//!    an ancestor of the other's (it was in the organization before the other joined; fixed at
//!    enrolment, so nothing an attacker writes later changes it). Between authors with no such
//!    order, neither voids the other and both count. Rules 1 to 3 are solved together, as a
//!    grounded labelling (in, out, undecided) propagated to its least fixpoint, and what is left
//!    undecided on cycles is decided by fixed steps (`super::verdicts`: on a cycle, the
//!    removals of the authors no other one there is senior to count first). So a stolen admin device
//!    that revokes everyone on a stale copy, once revoked by a senior admin, removes nobody;
//!    revoked by an admin of no seniority order, it takes that admin with it and nobody else
//!    (docs/security.md, "Mutual removals").
//! 4. **Fold.** Every rule is a function of sets, never of times: a profile is the least
//!    privileged of the latest (maximal) kept settings; a user key is the highest generation
//!    (the smallest entry id among concurrent rotations to it, all by that user's devices);
//!    display fields come from the certificate with the smallest id. A relay is authorized
//!    by a kept `RelayAuthorized` unless a `RelayRevoked` of it is kept: a revocation is final,
//!    whatever authorizations come before, after or concurrently. The current organization key
//!    is the kept rotation maximal in causal order with the smallest id ([`super::org_keys`]).
//!
//! Invariant: the result is a function of the set of admitted entries only (never of arrival
//! order, positions or timestamps), so every device with the same entries computes the same
//! state.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::admission::{Index, least_privileged, needs_admin, profile_set};
use super::entry::{Certificate, CloseReason, Entry, Invited};
use super::ids::{DeviceId, EntryId, OrgId, Profile, UserId};
use super::org_keys::{self, OrgKeysState};
use super::verdicts::Verdicts;
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

/// A revoked relay: it serves the organization no more, whatever authorizes it (a revocation
/// is final).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedRelay {
    /// Its addresses, from its kept authorization with the smallest id (none if every
    /// authorization of it was voided).
    pub addrs: Vec<String>,
    /// The revoking entry that counts, with the smallest id.
    pub revoked_by: EntryId,
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
    /// Authorized relays by id: a relay with a kept authorization and no kept revocation.
    pub relays: BTreeMap<DeviceId, RelayState>,
    /// Relays with a kept revocation (never in `relays`).
    pub revoked_relays: BTreeMap<DeviceId, RevokedRelay>,
    /// Recorded invitations by id (a cancel beats a use; two records of one id close it).
    pub invitations: BTreeMap<[u8; 16], InvitationState>,
    /// Organization-key rotations, the current key, whether it must rotate
    /// ([`super::org_keys`]).
    pub org_keys: OrgKeysState,
    /// Heads of the kept entries: the parents of the next local entry. Sorted.
    pub heads: Vec<EntryId>,
    /// Admitted entries that removal wins voided (or whose author is not a device of one user).
    /// Sorted.
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
}

/// The state with what is needed to extend it cheaply when an entry is appended.
#[derive(Debug, Clone)]
pub struct Derived {
    /// The effective state.
    pub state: OrgState,
    kept: Vec<bool>,
    heads: BTreeSet<EntryId>,
}

impl Derived {
    /// Computes the state from the admitted entries.
    pub fn compute(org: OrgId, entries: &[Entry], dag: &Dag, index: &Index) -> Derived {
        let v = Verdicts::compute(entries, dag, index);
        let st = fold(org, entries, dag, index, &v);
        let heads = st.heads.iter().copied().collect();
        Derived {
            state: st,
            kept: v.kept,
            heads,
        }
    }

    /// Extends the state with `entries[at]`, just appended, when that provably gives the same
    /// result as [`Derived::compute`]: the entry is not a removal and brings in something new
    /// (a user, a device, a relay, an invitation), its author is a kept device with one
    /// certificate that no removal in the index names (so nothing can void it), its parents are
    /// all kept, and if it needs the admin profile, its author's user is admin by settings that
    /// are all kept and all in its past (so its kept past makes it admin). Returns false
    /// otherwise, and the caller recomputes.
    pub fn try_extend(
        &mut self,
        entries: &[Entry],
        dag: &Dag,
        index: &Index,
        parents: &[u32],
        at: u32,
    ) -> bool {
        let e = &entries[at as usize];
        let body = e.body();
        let Some(author) = self.state.devices.get(&body.author) else {
            return false;
        };
        let author_user = author.user;
        let untouched = author.revoked_by.is_none()
            && index
                .removals
                .iter()
                .all(|r| match &entries[*r as usize].body().cert {
                    Certificate::DeviceRevoked { device } => *device != body.author,
                    Certificate::UserRevoked { user }
                    | Certificate::ProfileChanged { user, .. } => *user != author_user,
                    _ => true,
                });
        let simple = match &body.cert {
            Certificate::UserAdded(u) => {
                once(&index.user_adds, &u.user) && once(&index.device_adds, &u.device.device)
            }
            Certificate::DeviceAdded(d) => {
                once(&index.device_adds, &d.device) && self.state.users.contains_key(&d.user)
            }
            Certificate::RelayAuthorized(r) => {
                !self.state.relays.contains_key(&r.relay)
                    && !index.relay_revocations.contains_key(&r.relay)
            }
            Certificate::InvitationRecorded(i) => once(&index.invitation_records, &i.id),
            _ => false,
        };
        let admin_ok = || {
            if !needs_admin(&body.cert, &author_user, None, false) {
                return true;
            }
            let mut settings = index.user_profiles.get(&author_user).into_iter().flatten();
            self.state.users.get(&author_user).map(|u| u.profile) == Some(Profile::Admin)
                && settings.all(|s| self.kept[*s as usize] && dag.in_past(*s, parents))
        };
        let ok = at as usize == self.kept.len()
            && simple
            && untouched
            && once(&index.device_adds, &body.author)
            && parents.iter().all(|p| self.kept[*p as usize])
            && admin_ok();
        if !ok {
            return false;
        }
        self.kept.push(true);
        let id = e.id();
        match &body.cert {
            Certificate::UserAdded(u) => {
                insert_user(&mut self.state, id, u, u.profile);
                insert_device(&mut self.state, id, &u.device);
            }
            Certificate::DeviceAdded(d) => insert_device(&mut self.state, id, d),
            Certificate::RelayAuthorized(r) => {
                self.state.relays.insert(
                    r.relay,
                    RelayState {
                        addrs: r.addrs.clone(),
                        authorized_by: id,
                    },
                );
            }
            Certificate::InvitationRecorded(i) => {
                self.state.invitations.insert(i.id, invitation(e, i));
            }
            _ => {}
        }
        for p in &body.parents {
            self.heads.remove(p);
        }
        self.heads.insert(id);
        self.state.heads = self.heads.iter().copied().collect();
        true
    }
}

fn insert_user(st: &mut OrgState, id: EntryId, u: &super::entry::UserAdded, profile: Profile) {
    st.users.insert(
        u.user,
        UserState {
            profile,
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
        },
    );
}

fn insert_device(st: &mut OrgState, id: EntryId, d: &super::entry::DeviceAdded) {
    if let Some(u) = st.users.get_mut(&d.user) {
        u.devices.insert(d.device);
    }
    st.devices.insert(
        d.device,
        DeviceState {
            user: d.user,
            exchange_key: d.exchange_key,
            private: d.private.clone(),
            added_by: id,
            revoked_by: None,
        },
    );
}

fn invitation(e: &Entry, i: &super::entry::InvitationRecorded) -> InvitationState {
    InvitationState {
        invited: i.invited,
        expires_ms: i.expires_ms,
        greeter: i.greeter,
        recorded_by: e.body().author,
        entry: e.id(),
        recorded_ms: e.body().time.millis(),
        private: i.private.clone(),
        closed: None,
    }
}

/// Whether `k` has exactly one entry in `m`.
fn once<K: std::hash::Hash + Eq>(m: &HashMap<K, Vec<u32>>, k: &K) -> bool {
    m.get(k).is_some_and(|v| v.len() == 1)
}

/// The kept entries of `list`, smallest id first.
fn kept_by_id(entries: &[Entry], kept: &[bool], list: Option<&Vec<u32>>) -> Vec<u32> {
    let mut v: Vec<u32> = list
        .into_iter()
        .flatten()
        .copied()
        .filter(|p| kept[*p as usize])
        .collect();
    v.sort_by_key(|p| entries[*p as usize].id());
    v
}

/// The fold: every field a function of the kept set (see the module doc).
fn fold(org: OrgId, entries: &[Entry], dag: &Dag, index: &Index, v: &Verdicts) -> OrgState {
    let kept = &v.kept;
    let mut st = OrgState {
        org,
        ..OrgState::default()
    };
    if let Some(g) = entries.first()
        && let Certificate::Genesis(genesis) = &g.body().cert
    {
        st.genesis = Some(g.id());
        st.org_private = genesis.private.clone();
    }
    // Users, with their profile; where each user's current key was set.
    let mut key_pos: HashMap<UserId, u32> = HashMap::new();
    for (user, adds) in &index.user_adds {
        let adds = kept_by_id(entries, kept, Some(adds));
        let Some(first) = adds.first() else { continue };
        let e = &entries[*first as usize];
        let Some(u) = e.body().cert.user_added() else {
            continue;
        };
        let settings = kept_by_id(entries, kept, index.user_profiles.get(user));
        let maximal = settings
            .iter()
            .filter(|a| !settings.iter().any(|b| dag.is_ancestor(**a, *b)));
        let profile = least_privileged(
            maximal.filter_map(|p| profile_set(entries[*p as usize].body(), user)),
        )
        .unwrap_or(Profile::Outsider);
        insert_user(&mut st, e.id(), u, profile);
        key_pos.insert(*user, *first);
    }
    // Devices that count: certified to one user, whose certificate is kept.
    for (device, owner) in &v.owners {
        let Some(user) = owner else { continue };
        if !st.users.contains_key(user) {
            continue;
        }
        let adds = kept_by_id(entries, kept, index.device_adds.get(device));
        let Some(first) = adds.first() else { continue };
        let e = &entries[*first as usize];
        if let Some((d, _)) = e.body().cert.device_added() {
            insert_device(&mut st, e.id(), d);
        }
    }
    // Removals that count (kept), smallest id first: the first names the revocation.
    let mut removals: Vec<u32> = index
        .removals
        .iter()
        .copied()
        .filter(|p| kept[*p as usize])
        .collect();
    removals.sort_by_key(|p| entries[*p as usize].id());
    let mut device_removals: HashMap<DeviceId, Vec<u32>> = HashMap::new();
    for r in &removals {
        let id = entries[*r as usize].id();
        match &entries[*r as usize].body().cert {
            Certificate::DeviceRevoked { device } => {
                device_removals.entry(*device).or_default().push(*r);
                if let Some(d) = st.devices.get_mut(device) {
                    d.revoked_by.get_or_insert(id);
                }
            }
            Certificate::UserRevoked { user } => {
                let devices: Vec<DeviceId> = match st.users.get_mut(user) {
                    Some(u) => {
                        u.revoked_by.get_or_insert(id);
                        u.devices.iter().copied().collect()
                    }
                    None => Vec::new(),
                };
                for d in devices {
                    device_removals.entry(d).or_default().push(*r);
                    if let Some(ds) = st.devices.get_mut(&d) {
                        ds.revoked_by.get_or_insert(id);
                    }
                }
            }
            _ => {}
        }
    }
    // User keys: the highest kept generation; rotation needed when a device of the user was
    // revoked by a removal that the key's setting does not descend from.
    for (user, rotations) in &index.user_rotations {
        let rs = kept_by_id(entries, kept, Some(rotations));
        let best = rs
            .iter()
            .filter_map(|p| match &entries[*p as usize].body().cert {
                Certificate::UserKeyRotated(r) => Some((r.generation, *p, r.key)),
                _ => None,
            })
            .max_by(|a, b| {
                a.0.cmp(&b.0)
                    .then(entries[b.1 as usize].id().cmp(&entries[a.1 as usize].id()))
            });
        if let (Some((generation, p, key)), Some(u)) = (best, st.users.get_mut(user)) {
            u.key = UserKeyState {
                generation,
                public: key,
                set_by: entries[p as usize].id(),
                needs_rotation: false,
            };
            key_pos.insert(*user, p);
        }
    }
    for (device, rs) in &device_removals {
        let Some(user) = st.devices.get(device).map(|d| d.user) else {
            continue;
        };
        let Some(setter) = key_pos.get(&user) else {
            continue;
        };
        if rs.iter().any(|r| !dag.is_ancestor(*r, *setter))
            && let Some(u) = st.users.get_mut(&user)
        {
            u.key.needs_rotation = true;
        }
    }
    // Relays: the certificate with the smallest id gives the addresses; a kept revocation
    // (the smallest id names it) moves the relay to `revoked_relays`, whatever authorizes it
    // before, after or concurrently.
    for p in (0..entries.len()).filter(|p| kept[*p]) {
        let e = &entries[p];
        if let Certificate::RelayAuthorized(r) = &e.body().cert {
            let better = st
                .relays
                .get(&r.relay)
                .is_none_or(|old| e.id() < old.authorized_by);
            if better {
                st.relays.insert(
                    r.relay,
                    RelayState {
                        addrs: r.addrs.clone(),
                        authorized_by: e.id(),
                    },
                );
            }
        }
    }
    for (relay, revokes) in &index.relay_revocations {
        let Some(first) = kept_by_id(entries, kept, Some(revokes)).first().copied() else {
            continue;
        };
        let addrs = st.relays.remove(relay).map(|r| r.addrs).unwrap_or_default();
        st.revoked_relays.insert(
            *relay,
            RevokedRelay {
                addrs,
                revoked_by: entries[first as usize].id(),
            },
        );
    }
    // Invitations: two records of one id close it; a cancel beats a use.
    for (id, records) in &index.invitation_records {
        let recs = kept_by_id(entries, kept, Some(records));
        let Some(first) = recs.first() else { continue };
        let e = &entries[*first as usize];
        let Certificate::InvitationRecorded(i) = &e.body().cert else {
            continue;
        };
        let mut inv = invitation(e, i);
        let closes = kept_by_id(entries, kept, index.invitation_closes.get(id));
        let reason_of = |p: &u32| match entries[*p as usize].body().cert {
            Certificate::InvitationClosed { reason, .. } => Some(reason),
            _ => None,
        };
        let cancel = closes
            .iter()
            .find(|p| reason_of(p) == Some(CloseReason::Cancelled));
        inv.closed = match (cancel, closes.first(), recs.get(1)) {
            (Some(c), _, _) => Some((CloseReason::Cancelled, entries[*c as usize].id())),
            (None, Some(c), _) => reason_of(c).map(|r| (r, entries[*c as usize].id())),
            (None, None, Some(second)) => {
                Some((CloseReason::Cancelled, entries[*second as usize].id()))
            }
            (None, None, None) => None,
        };
        st.invitations.insert(*id, inv);
    }
    st.org_keys = org_keys::fold(entries, dag, index, kept, &st);
    let mut heads: Vec<EntryId> = dag
        .heads_of(kept)
        .into_iter()
        .map(|p| entries[p as usize].id())
        .collect();
    heads.sort_unstable();
    st.heads = heads;
    st.dropped = (0..entries.len())
        .filter(|p| !kept[*p])
        .map(|p| entries[p].id())
        .collect();
    st.dropped.sort_unstable();
    st
}
