//! Keys in use: the epoch keys a device can open, and the workspace operations that create,
//! share, unshare, rotate, write and read with real keys (sealing through `seal`).
//!
//! An epoch is named by the id of the `Keys` envelope that opens it, which carries in clear the
//! commitment to its key (`seal::epoch_key_commitment`). A sealed blob (see `seal::epoch`) is
//! bound to the epochs whose keys it holds and their commitments: in the opening envelope the
//! epoch is written [`THIS_ENVELOPE`] (all zeros), since the envelope's id hashes the blob; a
//! share lists in clear the epochs it gives (a new member's history). [`Keyring::open`] takes a
//! key only if it matches its epoch's commitment; anything else is a typed refusal
//! ([`Keyring::refused`]) and the key is not used.
//!
//! Invariants: only an OWNER or MANAGER of the current state opens an epoch, sealed to exactly
//! the current members whose user key can receive it (a member whose key awaits rotation is left
//! out and shared with later, see `WorkspaceState::without_key`); content is sealed under the
//! current epoch of the writer's state, and never while that state `needs_rotation`: an OWNER or
//! MANAGER's [`write`] rotates first, anyone else gets [`KeyringError::AwaitingRotation`]; the
//! envelope header is the associated data; sans-IO (time and randomness are inputs).

use std::collections::BTreeMap;

use rand::CryptoRng;

use super::envelope::{
    AccessChange, Envelope, EpochKeys, Kind, SealedKeys, encode_keys, encode_payload,
};
use super::ids::{EnvelopeId, Role, WorkspaceId};
use super::log::WorkspaceLog;
use super::rejection::Refusal;
use crate::seal::{self, Commitment, EpochKey, EpochKeysContext, SealError};
use crate::trust::{Clock, DeviceKeys, OrgLog, UserId, UserSecret};

/// The epoch id written inside a blob for "the epoch this envelope opens".
pub const THIS_ENVELOPE: [u8; 32] = [0; 32];

/// Failures of keyed workspace operations.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// Sealing or opening failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// No epoch key is available to write or read.
    #[error("no key for epoch {0:?}")]
    NoKey(Option<EnvelopeId>),
    /// The envelope is not content.
    #[error("not a content envelope")]
    NotContent,
    /// A user of the organization is unknown or revoked.
    #[error("user {0:?} is not an active user")]
    UnknownUser(UserId),
    /// This device's own rules refuse what it was about to write.
    #[error("refused by this device's own rules: {0}")]
    Refused(#[from] Refusal),
    /// A share names an epoch this log has no opening envelope (and so no commitment) for.
    #[error("keys shared for unknown epoch {0:?}")]
    UnknownEpoch(EnvelopeId),
    /// The current epoch awaits a rotation (a member left or was revoked, or keys are in
    /// doubt) and only an OWNER or MANAGER can open the next one: retry once it arrives.
    #[error(
        "the workspace awaits a new epoch from an owner or manager; the write can be retried once it arrives"
    )]
    AwaitingRotation,
    /// Only an OWNER or MANAGER opens an epoch.
    #[error("only an owner or manager opens a new epoch")]
    NotManager,
}

/// The epoch keys this device holds for one workspace.
#[derive(Default)]
pub struct Keyring {
    epochs: BTreeMap<EnvelopeId, EpochKey>,
    refused: Vec<(EnvelopeId, KeyringError)>,
}

impl Keyring {
    /// Opens every `Keys` envelope of `log` sealed to `user` at a generation `secret_of` holds,
    /// keeping only keys that match their epoch's commitment.
    pub fn open(
        log: &WorkspaceLog,
        org: &OrgLog,
        user: UserId,
        secret_of: impl Fn(u32) -> Option<UserSecret>,
    ) -> Keyring {
        let ctx = EpochKeysContext {
            org: org.org(),
            workspace: log.id().0,
            user,
        };
        let keys_of = |e: &Envelope| (e.header().kind == Kind::Keys).then(|| e.keys()).flatten();
        let commitments: BTreeMap<EnvelopeId, Commitment> = log
            .envelopes()
            .iter()
            .filter_map(|e| keys_of(e).and_then(|k| k.commitment).map(|c| (e.id(), c)))
            .collect();
        let mut ring = Keyring::default();
        for e in log.envelopes() {
            let Some(keys) = keys_of(e) else {
                continue;
            };
            for s in keys.sealed.iter().filter(|s| s.user == user) {
                let Some(secret) = secret_of(s.generation) else {
                    continue;
                };
                let refs: Result<Vec<(seal::EpochId, Commitment)>, KeyringError> =
                    match keys.commitment {
                        Some(c) => Ok(vec![(THIS_ENVELOPE, c)]),
                        None => s
                            .epochs
                            .iter()
                            .map(|id| {
                                commitments
                                    .get(id)
                                    .map(|c| (id.0, *c))
                                    .ok_or(KeyringError::UnknownEpoch(*id))
                            })
                            .collect(),
                    };
                let opened =
                    refs.and_then(|refs| Ok(seal::open_epoch_keys(&secret, &ctx, &refs, &s.blob)?));
                match opened {
                    Ok(opened) => {
                        for (id, key) in opened {
                            let id = if id == THIS_ENVELOPE {
                                e.id()
                            } else {
                                EnvelopeId(id)
                            };
                            ring.epochs.entry(id).or_insert(key);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(envelope = %e.id(), "epoch keys sealed to us refused: {err}");
                        ring.refused.push((e.id(), err));
                    }
                }
            }
        }
        ring
    }

    /// `Keys` envelopes sealed to this user whose keys were refused (a blob that does not open,
    /// or a key that does not match its epoch's commitment), with why. None of their keys is used.
    pub fn refused(&self) -> &[(EnvelopeId, KeyringError)] {
        &self.refused
    }

    /// The key of an epoch.
    pub fn epoch(&self, id: &EnvelopeId) -> Option<&EpochKey> {
        self.epochs.get(id)
    }

    /// Number of epochs held.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// Opens a content envelope.
    pub fn read(&self, e: &Envelope) -> Result<Vec<u8>, KeyringError> {
        if e.header().kind != Kind::Content {
            return Err(KeyringError::NotContent);
        }
        let epoch = e.header().epoch;
        let key = epoch
            .and_then(|id| self.epochs.get(&id))
            .ok_or(KeyringError::NoKey(epoch))?;
        Ok(seal::open_payload(
            key,
            &e.header().workspace.0,
            e.header_bytes(),
            e.payload(),
        )?)
    }
}

/// A device acting on a workspace.
pub struct Actor<'a> {
    /// Its keys.
    pub keys: &'a DeviceKeys,
    /// Its clock.
    pub clock: &'a mut Clock,
}

/// Seals a new epoch key to every member of `members` whose user key is current, as an
/// `EpochKeys` payload.
fn new_epoch_payload<R: CryptoRng + ?Sized>(
    rng: &mut R,
    org: &OrgLog,
    workspace: WorkspaceId,
    members: impl IntoIterator<Item = UserId>,
    key: &EpochKey,
) -> Result<Vec<u8>, KeyringError> {
    let st = org.state();
    let mut sealed = Vec::new();
    for user in members {
        let Some(u) = st.users.get(&user).filter(|u| u.revoked_by.is_none()) else {
            continue;
        };
        if u.key.needs_rotation {
            continue;
        }
        let ctx = EpochKeysContext {
            org: org.org(),
            workspace: workspace.0,
            user,
        };
        let blob = seal::seal_epoch_key(
            rng,
            &ctx,
            &u.key.public,
            u.key.generation,
            THIS_ENVELOPE,
            key,
        )?;
        sealed.push(SealedKeys {
            user,
            generation: u.key.generation,
            epochs: Vec::new(),
            blob,
        });
    }
    sealed.sort_by_key(|s| s.user);
    Ok(encode_keys(&EpochKeys {
        commitment: Some(seal::epoch_key_commitment(key)),
        sealed,
    }))
}

/// Writes a clear access change.
fn access(
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
    change: AccessChange,
) -> Result<Vec<u8>, KeyringError> {
    draft_admit(
        log,
        org,
        me,
        now,
        Kind::Access,
        None,
        encode_payload(&change),
    )
}

fn draft_admit(
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
    kind: Kind,
    epoch: Option<EnvelopeId>,
    payload: Vec<u8>,
) -> Result<Vec<u8>, KeyringError> {
    let b = log.draft(org, me.keys, me.clock, now, kind, epoch, |_| payload)?;
    admit_own(log, org, &b)?;
    Ok(b)
}

/// Admits an envelope this device just drafted (and checked).
fn admit_own(log: &mut WorkspaceLog, org: &OrgLog, b: &[u8]) -> Result<(), KeyringError> {
    let r = log.ingest(vec![b.to_vec()], org);
    match r.refused.into_iter().next() {
        Some((_, why)) => Err(KeyringError::Refused(why)),
        None => Ok(()),
    }
}

/// Creates a workspace: `Create`, then the first epoch sealed to the creator's user.
pub fn create<R: CryptoRng + ?Sized>(
    rng: &mut R,
    org: &OrgLog,
    me: &mut Actor<'_>,
    me_user: UserId,
    now: u64,
    workspace: WorkspaceId,
) -> Result<(WorkspaceLog, Vec<Vec<u8>>), KeyringError> {
    let mut log = WorkspaceLog::new(org.org(), workspace);
    let c = access(&mut log, org, me, now, AccessChange::Create)?;
    let key = EpochKey::generate(rng);
    let p = new_epoch_payload(rng, org, workspace, [me_user], &key)?;
    let k = draft_admit(&mut log, org, me, now + 1, Kind::Keys, None, p)?;
    Ok((log, vec![c, k]))
}

/// Shares the workspace with `user` in `role`: the grant, then every epoch key this device holds
/// sealed to the new member (its history).
#[allow(clippy::too_many_arguments)]
pub fn share<R: CryptoRng + ?Sized>(
    rng: &mut R,
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
    ring: &Keyring,
    user: UserId,
    role: Role,
) -> Result<Vec<Vec<u8>>, KeyringError> {
    let g = access(log, org, me, now, AccessChange::Grant { user, role })?;
    let mut out = vec![g];
    out.extend(share_keys(rng, log, org, me, now + 1, ring, user)?);
    Ok(out)
}

/// Seals every epoch key `ring` holds to `user` (a new member's history, or a member who was left
/// out of an epoch while their user key awaited rotation). Nothing if `ring` is empty or the
/// user's key still awaits rotation.
pub fn share_keys<R: CryptoRng + ?Sized>(
    rng: &mut R,
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
    ring: &Keyring,
    user: UserId,
) -> Result<Option<Vec<u8>>, KeyringError> {
    let u = org
        .state()
        .users
        .get(&user)
        .filter(|u| u.revoked_by.is_none())
        .ok_or(KeyringError::UnknownUser(user))?
        .clone();
    if ring.is_empty() || u.key.needs_rotation {
        return Ok(None);
    }
    let ctx = EpochKeysContext {
        org: org.org(),
        workspace: log.id().0,
        user,
    };
    let keys: Vec<([u8; 32], &EpochKey)> = ring.epochs.iter().map(|(id, k)| (id.0, k)).collect();
    let blob = seal::seal_epoch_keys(rng, &ctx, &u.key.public, u.key.generation, &keys)?;
    let p = encode_keys(&EpochKeys {
        commitment: None,
        sealed: vec![SealedKeys {
            user,
            generation: u.key.generation,
            epochs: ring.epochs.keys().copied().collect(),
            blob,
        }],
    });
    Ok(Some(draft_admit(log, org, me, now, Kind::Keys, None, p)?))
}

/// What an OWNER or MANAGER device owes a workspace, done lazily by the first one online: a new
/// epoch when a member left, was revoked or rotated their user key, then the epoch keys for
/// members who lack them. Nothing for other roles. Returns the envelopes written.
#[allow(clippy::too_many_arguments)]
pub fn maintain<R: CryptoRng + ?Sized>(
    rng: &mut R,
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    me_user: UserId,
    now: u64,
    secret_of: impl Fn(u32) -> Option<UserSecret>,
) -> Result<Vec<Vec<u8>>, KeyringError> {
    let st = log.state(org);
    if st.members.get(&me_user).is_none_or(|r| *r < Role::Manager) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    if st.needs_rotation {
        out.push(rotate(rng, log, org, me, now)?);
    }
    let st = log.state(org);
    if !st.without_key.is_empty() {
        let ring = Keyring::open(log, org, me_user, &secret_of);
        for (i, user) in st.without_key.iter().enumerate() {
            if let Some(e) = share_keys(rng, log, org, me, now + 1 + i as u64, &ring, *user)? {
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// Opens a new epoch sealed to the current members (after an unshare, a revocation or a user-key
/// rotation). Only an OWNER or MANAGER of the current state.
pub fn rotate<R: CryptoRng + ?Sized>(
    rng: &mut R,
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
) -> Result<Vec<u8>, KeyringError> {
    Ok(open_epoch(rng, log, org, me, now)?.0)
}

/// [`rotate`], returning the new key too.
fn open_epoch<R: CryptoRng + ?Sized>(
    rng: &mut R,
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
) -> Result<(Vec<u8>, EpochKey), KeyringError> {
    let st = log.state(org);
    if role_of(&st, org, me).is_none_or(|r| r < Role::Manager) {
        return Err(KeyringError::NotManager);
    }
    let members: Vec<UserId> = st.members.keys().copied().collect();
    let key = EpochKey::generate(rng);
    let p = new_epoch_payload(rng, org, log.id(), members, &key)?;
    let b = draft_admit(log, org, me, now, Kind::Keys, None, p)?;
    Ok((b, key))
}

/// The acting device's role in `st`.
fn role_of(st: &super::WorkspaceState, org: &OrgLog, me: &Actor<'_>) -> Option<Role> {
    let user = org.state().devices.get(&me.keys.id())?.user;
    st.members.get(&user).copied()
}

/// Removes `user`, then opens a new epoch without them.
pub fn unshare<R: CryptoRng + ?Sized>(
    rng: &mut R,
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
    user: UserId,
) -> Result<Vec<Vec<u8>>, KeyringError> {
    let r = access(log, org, me, now, AccessChange::Remove { user })?;
    let k = rotate(rng, log, org, me, now + 1)?;
    Ok(vec![r, k])
}

/// Writes content under the current epoch of this device's view. If that epoch awaits a
/// rotation, an OWNER or MANAGER opens the next one first (the envelopes returned are then the
/// rotation and the content); anyone else gets [`KeyringError::AwaitingRotation`] and writes
/// nothing.
pub fn write<R: CryptoRng + ?Sized>(
    rng: &mut R,
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
    ring: &Keyring,
    plaintext: &[u8],
) -> Result<Vec<Vec<u8>>, KeyringError> {
    let st = log.state(org);
    let mut out = Vec::new();
    let fresh;
    let (epoch, key) = if st.needs_rotation && st.current.is_some() {
        if role_of(&st, org, me).is_none_or(|r| r < Role::Manager) {
            return Err(KeyringError::AwaitingRotation);
        }
        let (b, k) = open_epoch(rng, log, org, me, now)?;
        let id = id_of(&b);
        out.push(b);
        fresh = k;
        (Some(id), &fresh)
    } else {
        let epoch = st.current;
        let key = epoch
            .and_then(|id| ring.epoch(&id))
            .ok_or(KeyringError::NoKey(epoch))?;
        (epoch, key)
    };
    let workspace = log.id().0;
    let mut sealed: Result<Vec<u8>, SealError> = Ok(Vec::new());
    let b = log.draft(org, me.keys, me.clock, now, Kind::Content, epoch, |aad| {
        sealed = seal::seal_payload(key, &workspace, aad, plaintext, rng);
        sealed.clone().unwrap_or_default()
    });
    sealed?;
    let b = b?;
    admit_own(log, org, &b)?;
    out.push(b);
    Ok(out)
}

/// The envelope id of raw bytes.
pub fn id_of(bytes: &[u8]) -> EnvelopeId {
    EnvelopeId(*blake3::hash(bytes).as_bytes())
}
