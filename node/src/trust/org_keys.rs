//! Rotations of the organization key: writing one, the state's view of them (which key is
//! current, whether a revoked user holds it), and a device's key ring.
//!
//! The genesis key is held by every user ever added; an admin's `OrgKeyRotated` makes a new key,
//! sealed to each remaining user's key (one share per user) and chained to the previous key, so
//! that a holder of the new key recovers every older one. Blobs name their key
//! ([`keys::blob_key`]), so concurrent rotations stay readable to their recipients.
//!
//! Invariants: the state part is a function of the kept entries only (no timestamp): the current
//! key is, among the kept rotations maximal in causal order, the one with the smallest entry id;
//! a key counts as held by a revoked user when a share was sealed to them or when their addition
//! is not in the rotation's causal past (they may have got the key at enrolment), and as open to
//! a revoked device of an active user when its share was sealed to a generation of the user's key
//! that the device may have known (set before or concurrently with its revocation). A ring only
//! holds keys whose id it checked; randomness comes from the caller.

use std::collections::{BTreeMap, BTreeSet};

use rand::CryptoRng;
use zeroize::Zeroizing;

use super::admission::Index;
use super::author::PRIVATE_ORG;
use super::entry::{Certificate, Entry, MAX_ORG_KEY_SHARES, OrgKeyRotated};
use super::ids::{EntryId, OrgId, UserId};
use super::keys::{self, BlobKey, KeyError, OrgKey, OrgKeyId, OrgKeys, UserSecret};
use super::log::OrgLog;
use super::state::OrgState;
use crate::dag::Dag;

/// Encrypts the previous organization key under a key derived from the next one: the link that
/// lets a holder of a rotated key recover the keys before it, back to the genesis key.
pub fn chain_org_prev<R: CryptoRng + ?Sized>(
    rng: &mut R,
    org: &OrgId,
    next: &OrgKey,
    prev: &OrgKey,
) -> Vec<u8> {
    keys::seal_link(
        rng,
        "cloison 2026 org-key chain v1",
        next.as_bytes(),
        &org_chain_aad(org, &next.id(), &prev.id()),
        prev.as_bytes(),
    )
}

/// Recovers the key before `next` from its chain link, given its id (checked). Whether it is
/// the genesis key is for the caller to tell ([`OrgKey::rotated_from_bytes`] or
/// [`OrgKey::from_bytes`]).
pub fn unchain_org_prev(
    org: &OrgId,
    next: &OrgKey,
    prev_id: &OrgKeyId,
    link: &[u8],
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let bytes = keys::open_link(
        "cloison 2026 org-key chain v1",
        next.as_bytes(),
        &org_chain_aad(org, &next.id(), prev_id),
        link,
    )?;
    if &OrgKey::rotated_from_bytes(&bytes).id() != prev_id {
        return Err(KeyError::Malformed);
    }
    Ok(bytes)
}

fn org_chain_aad(org: &OrgId, next: &OrgKeyId, prev: &OrgKeyId) -> Vec<u8> {
    let mut aad = b"cloison org-key chain v1\0".to_vec();
    aad.extend_from_slice(&org.0);
    aad.extend_from_slice(next);
    aad.extend_from_slice(prev);
    aad
}

/// The associated data binding an organization key sealed to one generation of a user key.
pub fn org_key_share_aad(org: &OrgId, key: &OrgKeyId, user: &UserId, generation: u32) -> Vec<u8> {
    let mut aad = b"cloison org-key to user v1\0".to_vec();
    aad.extend_from_slice(&org.0);
    aad.extend_from_slice(key);
    aad.extend_from_slice(&user.0);
    aad.extend_from_slice(&generation.to_le_bytes());
    aad
}

/// A kept rotation of the organization key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgKeyState {
    /// The rotating entry.
    pub rotated_by: EntryId,
    /// The key it replaces.
    pub previous_id: OrgKeyId,
    /// The users a share was sealed to.
    pub recipients: BTreeSet<UserId>,
}

/// The organization-key part of the state (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrgKeysState {
    /// Kept rotations by key id (two kept rotations naming one id: the smallest entry id).
    pub rotations: BTreeMap<OrgKeyId, OrgKeyState>,
    /// The current key: `None` for the genesis key.
    pub current: Option<OrgKeyId>,
    /// An admin's device must rotate the current key: a revoked user holds it, or a revoked
    /// device of a user still active can open it ([`Self::exposed_by_devices_of`]).
    pub needs_rotation: bool,
    /// A user now revoked holds the current key: rotate at once.
    pub revoked_user_holds: bool,
    /// Active users with a revoked device that can open the current key (its share was sealed
    /// to a generation of their user key set before, or concurrently with, that device's
    /// revocation; every device held the genesis key). A rotation leaves that device out only
    /// once the user's key has rotated (`UserKeyState::needs_rotation` false), so an admin's
    /// device waits for that first.
    pub exposed_by_devices_of: BTreeSet<UserId>,
}

/// The fold of the kept rotations, given the state's users (revocations included).
pub(crate) fn fold(
    entries: &[Entry],
    dag: &Dag,
    index: &Index,
    kept: &[bool],
    st: &OrgState,
) -> OrgKeysState {
    let mut rs: Vec<u32> = index
        .org_rotations
        .iter()
        .copied()
        .filter(|p| kept[*p as usize])
        .collect();
    rs.sort_by_key(|p| entries[*p as usize].id());
    let mut out = OrgKeysState::default();
    // The users given a share of the key that the rotation at `p` made, with the generation of
    // their user key it was sealed to: its own shares and those of the kept continuations by
    // its author.
    let recipients = |p: u32| -> BTreeMap<UserId, u32> {
        let rot = entries[p as usize].body();
        let Certificate::OrgKeyRotated(r) = &rot.cert else {
            return BTreeMap::new();
        };
        let more = index
            .org_shares
            .iter()
            .filter(|c| kept[**c as usize] && entries[**c as usize].body().author == rot.author)
            .filter_map(|c| match &entries[*c as usize].body().cert {
                Certificate::OrgKeyShared { key_id, shares } if *key_id == r.key_id => Some(shares),
                _ => None,
            })
            .flatten();
        r.shares.iter().chain(more).map(|s| (s.0, s.1)).collect()
    };
    for p in &rs {
        if let Certificate::OrgKeyRotated(r) = &entries[*p as usize].body().cert {
            out.rotations
                .entry(r.key_id)
                .or_insert_with(|| OrgKeyState {
                    rotated_by: entries[*p as usize].id(),
                    previous_id: r.previous_id,
                    recipients: recipients(*p).into_keys().collect(),
                });
        }
    }
    // Sorted by id, so the first maximal one breaks ties.
    let current = rs
        .iter()
        .copied()
        .find(|a| !rs.iter().any(|b| dag.is_ancestor(*a, *b)));
    let revoked = st.users.iter().filter(|(_, u)| u.revoked_by.is_some());
    // Revoked devices of active users, with the positions of their kept revocations.
    let kept_in = |list: Option<&Vec<u32>>| -> Vec<u32> {
        list.into_iter()
            .flatten()
            .copied()
            .filter(|p| kept[*p as usize])
            .collect()
    };
    let lost_devices = st.devices.iter().filter(|(_, d)| {
        d.revoked_by.is_some()
            && st
                .users
                .get(&d.user)
                .is_some_and(|u| u.revoked_by.is_none())
    });
    match current {
        None => {
            out.revoked_user_holds = revoked.count() > 0;
            out.exposed_by_devices_of = lost_devices.map(|(_, d)| d.user).collect();
        }
        Some(p) => {
            let Certificate::OrgKeyRotated(r) = &entries[p as usize].body().cert else {
                return out;
            };
            out.current = Some(r.key_id);
            let given = recipients(p);
            let holds = |user: &UserId| {
                let added_before = index
                    .user_adds
                    .get(user)
                    .into_iter()
                    .flatten()
                    .any(|a| kept[*a as usize] && dag.is_ancestor(*a, p));
                given.contains_key(user) || !added_before
            };
            out.revoked_user_holds = revoked.map(|(u, _)| u).any(holds);
            // The entries that set `user`'s key at `generation` (its addition for 0).
            let setters = |user: &UserId, generation: u32| -> Vec<u32> {
                if generation == 0 {
                    return kept_in(index.user_adds.get(user));
                }
                kept_in(index.user_rotations.get(user))
                    .into_iter()
                    .filter(|s| {
                        matches!(&entries[*s as usize].body().cert,
                            Certificate::UserKeyRotated(k) if k.generation == generation)
                    })
                    .collect()
            };
            out.exposed_by_devices_of = lost_devices
                .filter(|(device, d)| {
                    let Some(generation) = given.get(&d.user) else {
                        return false;
                    };
                    let revocations: Vec<u32> = kept_in(index.device_revokes.get(*device))
                        .into_iter()
                        .chain(kept_in(index.user_revokes.get(&d.user)))
                        .collect();
                    // It knew that generation unless every setter follows a revocation of it.
                    setters(&d.user, *generation).iter().any(|s| {
                        revocations.is_empty()
                            || revocations.iter().any(|r| !dag.is_ancestor(*r, *s))
                    })
                })
                .map(|(_, d)| d.user)
                .collect();
        }
    }
    out.needs_rotation = out.revoked_user_holds || !out.exposed_by_devices_of.is_empty();
    out
}

/// A rotation from `prev` to `next`, sealed to `recipients` (user, generation, public user key):
/// an `OrgKeyRotated` with the first [`MAX_ORG_KEY_SHARES`] shares, then `OrgKeyShared`
/// entries with the others, to be written in that order by one device.
pub fn rotation<R: CryptoRng + ?Sized>(
    rng: &mut R,
    org: &OrgId,
    prev: &OrgKey,
    next: &OrgKey,
    recipients: &[(UserId, u32, [u8; 32])],
) -> Result<Vec<Certificate>, KeyError> {
    let key_id = next.id();
    let mut shares = Vec::with_capacity(recipients.len());
    for (user, generation, public) in recipients {
        let aad = org_key_share_aad(org, &key_id, user, *generation);
        shares.push((
            *user,
            *generation,
            keys::seal_to(rng, public, &aad, next.as_bytes())?,
        ));
    }
    shares.sort_by_key(|s| s.0);
    shares.dedup_by_key(|s| s.0);
    let mut chunks = shares.chunks(MAX_ORG_KEY_SHARES);
    let first = chunks.next().map(<[_]>::to_vec).unwrap_or_default();
    let mut out = vec![Certificate::OrgKeyRotated(OrgKeyRotated {
        key_id,
        previous_id: prev.id(),
        previous: chain_org_prev(rng, org, next, prev),
        shares: first,
    })];
    out.extend(chunks.map(|c| Certificate::OrgKeyShared {
        key_id,
        shares: c.to_vec(),
    }));
    Ok(out)
}

/// Opens the share of key `key_id` sealed to `user` among `shares`, with the user secret of its
/// generation.
pub fn open_share(
    org: &OrgId,
    user: &UserId,
    secret_of: impl Fn(u32) -> Option<UserSecret>,
    key_id: &OrgKeyId,
    shares: &[(UserId, u32, Vec<u8>)],
) -> Result<OrgKey, KeyError> {
    let (_, generation, sealed) = shares
        .iter()
        .find(|s| &s.0 == user)
        .ok_or(KeyError::UnknownKey)?;
    let secret = secret_of(*generation).ok_or(KeyError::UnknownKey)?;
    let aad = org_key_share_aad(org, key_id, user, *generation);
    let plain = secret.open_sealed(&aad, sealed)?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Malformed)?;
    let key = OrgKey::rotated_from_bytes(&bytes);
    if &key.id() != key_id {
        return Err(KeyError::Malformed);
    }
    Ok(key)
}

/// The organization keys a device holds: the key it was given, the keys sealed to its user,
/// and every key chained before those.
#[derive(Clone, Default)]
pub struct OrgKeyRing {
    keys: BTreeMap<BlobKey, OrgKey>,
    /// The key writers seal with.
    current: Option<BlobKey>,
}

impl OrgKeyRing {
    /// A ring of one key (tests; a device before its log arrives).
    pub fn single(key: OrgKey) -> Self {
        let slot = key.slot();
        OrgKeyRing {
            keys: BTreeMap::from([(slot, key)]),
            current: Some(slot),
        }
    }

    /// Builds the ring of a device of `user` that was given `base` (its key file's key), with
    /// `secret_of` its user secrets by generation (older ones recovered by the caller), over
    /// every admitted rotation of `log`.
    pub fn build(
        log: &OrgLog,
        base: &OrgKey,
        user: &UserId,
        secret_of: impl Fn(u32) -> Option<UserSecret>,
    ) -> Self {
        let org = log.org();
        let st = log.state();
        // The genesis key is the one that opens the organization's name (sealed at genesis).
        let is_genesis = |k: &[u8; 32]| {
            st.genesis.is_none()
                || OrgKey::from_bytes(k)
                    .open(&org, PRIVATE_ORG, &org.0, &st.org_private)
                    .is_ok()
        };
        let classify = |k: &[u8; 32]| {
            if is_genesis(k) {
                OrgKey::from_bytes(k)
            } else {
                OrgKey::rotated_from_bytes(k)
            }
        };
        let mut ring = OrgKeyRing::default();
        let base = classify(base.as_bytes());
        ring.keys.insert(base.slot(), base);
        // Admission order is a topological order: later rotations come later.
        let rotations: Vec<&OrgKeyRotated> = log
            .entries()
            .filter_map(|e| match &e.body().cert {
                Certificate::OrgKeyRotated(r) => Some(r),
                _ => None,
            })
            .collect();
        for e in log.entries() {
            let (key_id, shares) = match &e.body().cert {
                Certificate::OrgKeyRotated(r) => (&r.key_id, &r.shares),
                Certificate::OrgKeyShared { key_id, shares } => (key_id, shares),
                _ => continue,
            };
            if ring.keys.contains_key(&BlobKey::Rotated(*key_id)) {
                continue;
            }
            if let Ok(k) = open_share(&org, user, &secret_of, key_id, shares) {
                ring.keys.insert(k.slot(), k);
            }
        }
        // Follow the chains back, to a fixpoint (each pass adds a key or stops).
        loop {
            let mut added = false;
            for r in &rotations {
                let Some(next) = ring.keys.get(&BlobKey::Rotated(r.key_id)) else {
                    continue;
                };
                let held = ring.keys.values().any(|k| k.id() == r.previous_id);
                if held {
                    continue;
                }
                if let Ok(bytes) = unchain_org_prev(&org, next, &r.previous_id, &r.previous) {
                    let k = classify(&bytes);
                    ring.keys.insert(k.slot(), k);
                    added = true;
                }
            }
            if !added {
                break;
            }
        }
        // The state's current key if held; else the newest held key of a rotation that counts
        // (never one a voided rotation made: its author may be revoked); else the genesis key.
        let held = |s: &BlobKey| ring.keys.contains_key(s);
        let newest = rotations
            .iter()
            .rev()
            .filter(|r| st.org_keys.rotations.contains_key(&r.key_id))
            .map(|r| BlobKey::Rotated(r.key_id))
            .find(held);
        let state_current = st
            .org_keys
            .current
            .map_or(BlobKey::Genesis, BlobKey::Rotated);
        ring.current = Some(state_current)
            .filter(held)
            .or(newest)
            .or(Some(BlobKey::Genesis).filter(held))
            .or_else(|| ring.keys.keys().next().copied());
        ring
    }

    /// The key writers seal with.
    pub fn current(&self) -> Option<&OrgKey> {
        self.current.and_then(|s| self.keys.get(&s))
    }

    /// Whether the ring holds the key a blob names.
    pub fn holds(&self, sealed: &[u8]) -> bool {
        keys::blob_key(sealed).is_ok_and(|s| self.keys.contains_key(&s))
    }

    /// How many keys the ring holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl OrgKeys for OrgKeyRing {
    fn open(
        &self,
        org: &OrgId,
        purpose: &str,
        subject: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let slot = keys::blob_key(sealed)?;
        self.keys
            .get(&slot)
            .ok_or(KeyError::UnknownKey)?
            .open(org, purpose, subject, sealed)
    }
}
