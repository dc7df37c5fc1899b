//! Keys in use: the epoch keys a device can open, and the workspace operations that create,
//! share, unshare, rotate, write and read with real keys (sealing through `seal`).
//!
//! An epoch is named by the id of the `Keys` envelope that opens it. Inside a sealed blob (see
//! `seal::epoch`) the epoch that the carrying envelope opens is written [`THIS_ENVELOPE`] (all
//! zeros), since the envelope's id hashes the blob; other ids name earlier epochs (a new member's
//! history).
//!
//! Invariants: an OWNER or MANAGER seals a new epoch only to members whose user key is current
//! (a member whose key awaits rotation is left out and shared with later, see
//! `WorkspaceState::without_key`); content is sealed under the latest epoch of the writer's causal
//! past, with the envelope header as associated data; sans-IO (time and randomness are inputs).

use std::collections::BTreeMap;

use rand::CryptoRng;

use super::envelope::{AccessChange, Envelope, EpochKeys, Kind, SealedKeys, encode_payload};
use super::ids::{EnvelopeId, Role, WorkspaceId};
use super::log::WorkspaceLog;
use crate::seal::{self, EpochKey, EpochKeysContext, SealError};
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
}

/// The epoch keys this device holds for one workspace.
#[derive(Default)]
pub struct Keyring {
    epochs: BTreeMap<EnvelopeId, EpochKey>,
}

impl Keyring {
    /// Opens every `Keys` envelope of `log` sealed to `user` at a generation `secret_of` holds.
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
        let mut ring = Keyring::default();
        for e in log.envelopes() {
            let Some(keys) = (e.header().kind == Kind::Keys).then(|| e.keys()).flatten() else {
                continue;
            };
            for s in keys.sealed.iter().filter(|s| s.user == user) {
                let Some(secret) = secret_of(s.generation) else {
                    continue;
                };
                match seal::open_epoch_keys(&secret, &ctx, &s.blob) {
                    Ok(opened) => {
                        for (id, key) in opened {
                            let id = if id == THIS_ENVELOPE {
                                if !keys.new_epoch {
                                    continue; // only a new epoch may name itself
                                }
                                e.id()
                            } else {
                                EnvelopeId(id)
                            };
                            ring.epochs.entry(id).or_insert(key);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(envelope = %e.id(), "epoch keys sealed to us do not open: {err}");
                    }
                }
            }
        }
        ring
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
            blob,
        });
    }
    sealed.sort_by_key(|s| s.user);
    Ok(encode_payload(&EpochKeys {
        new_epoch: true,
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
    let b = log.draft(org, me.keys, me.clock, now, kind, epoch, |_| payload);
    let r = log.ingest(vec![b.clone()], org);
    if let Some((_, why)) = r.refused.first() {
        tracing::warn!("own envelope refused: {why}");
    }
    Ok(b)
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
    let p = encode_payload(&EpochKeys {
        new_epoch: false,
        sealed: vec![SealedKeys {
            user,
            generation: u.key.generation,
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
/// rotation).
pub fn rotate<R: CryptoRng + ?Sized>(
    rng: &mut R,
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
) -> Result<Vec<u8>, KeyringError> {
    let members: Vec<UserId> = log.state(org).members.keys().copied().collect();
    let key = EpochKey::generate(rng);
    let p = new_epoch_payload(rng, org, log.id(), members, &key)?;
    draft_admit(log, org, me, now, Kind::Keys, None, p)
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

/// Writes content under the latest epoch of this device's view.
pub fn write<R: CryptoRng + ?Sized>(
    rng: &mut R,
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
    ring: &Keyring,
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyringError> {
    let epoch = log.state(org).current_epoch().map(|e| e.id);
    let key = epoch
        .and_then(|id| ring.epoch(&id))
        .ok_or(KeyringError::NoKey(epoch))?;
    let workspace = log.id().0;
    let mut sealed: Result<Vec<u8>, SealError> = Ok(Vec::new());
    let b = log.draft(org, me.keys, me.clock, now, Kind::Content, epoch, |aad| {
        sealed = seal::seal_payload(key, &workspace, aad, plaintext, rng);
        sealed.clone().unwrap_or_default()
    });
    sealed?;
    let r = log.ingest(vec![b.clone()], org);
    if let Some((_, why)) = r.refused.first() {
        tracing::warn!("own content envelope refused: {why}");
    }
    Ok(b)
}

/// The envelope id of raw bytes.
pub fn id_of(bytes: &[u8]) -> EnvelopeId {
    EnvelopeId(*blake3::hash(bytes).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::Profile;

    use rand::rngs::StdRng;

    struct Person {
        keys: DeviceKeys,
        user: UserId,
        secret: UserSecret,
        clock: Clock,
    }

    /// An org with an admin (owner) and two more users; one shared org log.
    fn world() -> (StdRng, OrgLog, Vec<Person>) {
        let mut f = crate::testkit::Fixture::new(3);
        f.add_user(Profile::Standard);
        f.add_user(Profile::Standard);
        let mut people = vec![Person {
            keys: f.admin.keys,
            user: f.admin.user,
            secret: f.admin.secret,
            clock: f.clock,
        }];
        people.extend(f.members.into_iter().map(|m| Person {
            keys: m.keys,
            user: m.user,
            secret: m.secret,
            clock: Clock::default(),
        }));
        (f.rng, f.org, people)
    }

    fn ring_of(user: UserId, secret: &UserSecret, log: &WorkspaceLog, org: &OrgLog) -> Keyring {
        let s = secret.clone();
        Keyring::open(log, org, user, move |g| {
            (g == s.generation).then(|| s.clone())
        })
    }

    #[test]
    fn an_unshared_member_reads_the_past_but_not_what_follows_and_a_new_member_reads_all() {
        let (mut rng, org, mut p) = world();
        let ws = WorkspaceId([4; 16]);
        let (owner, rest) = p.split_at_mut(1);
        let o = &mut owner[0];
        let (o_user, o_secret) = (o.user, o.secret.clone());
        let mut me = Actor {
            keys: &o.keys,
            clock: &mut o.clock,
        };
        let (mut log, _) = create(&mut rng, &org, &mut me, o.user, 10_000, ws).unwrap();
        let ring = ring_of(o_user, &o_secret, &log, &org);
        assert_eq!(ring.len(), 1);
        share(
            &mut rng,
            &mut log,
            &org,
            &mut me,
            10_010,
            &ring,
            rest[0].user,
            Role::Contributor,
        )
        .unwrap();
        let before = write(
            &mut rng,
            &mut log,
            &org,
            &mut me,
            10_020,
            &ring,
            b"minutes of the 3 May board",
        )
        .unwrap();
        // Bob reads it.
        let bob = ring_of(rest[0].user, &rest[0].secret, &log, &org);
        let e1 = log.get(&id_of(&before)).unwrap().clone();
        assert_eq!(bob.read(&e1).unwrap(), b"minutes of the 3 May board");
        // Unshare Bob: a new epoch without him.
        unshare(&mut rng, &mut log, &org, &mut me, 10_030, rest[0].user).unwrap();
        let ring = ring_of(o_user, &o_secret, &log, &org);
        assert_eq!(ring.len(), 2);
        let after = write(
            &mut rng,
            &mut log,
            &org,
            &mut me,
            10_040,
            &ring,
            b"salary review",
        )
        .unwrap();
        let e2 = log.get(&id_of(&after)).unwrap().clone();
        let bob = ring_of(rest[0].user, &rest[0].secret, &log, &org);
        assert_eq!(
            bob.read(&e1).unwrap(),
            b"minutes of the 3 May board",
            "what he had stays readable"
        );
        assert!(
            matches!(bob.read(&e2), Err(KeyringError::NoKey(_))),
            "nothing after the new epoch"
        );
        // Carol joins later and receives the whole history.
        share(
            &mut rng,
            &mut log,
            &org,
            &mut me,
            10_050,
            &ring,
            rest[1].user,
            Role::Reader,
        )
        .unwrap();
        let carol = ring_of(rest[1].user, &rest[1].secret, &log, &org);
        assert_eq!(carol.read(&e1).unwrap(), b"minutes of the 3 May board");
        assert_eq!(carol.read(&e2).unwrap(), b"salary review");
        assert!(log.state(&org).members.contains_key(&rest[1].user));
        assert!(!log.state(&org).needs_rotation);
    }

    #[test]
    fn tampered_content_does_not_open() {
        let (mut rng, org, mut p) = world();
        let o = &mut p[0];
        let mut me = Actor {
            keys: &o.keys,
            clock: &mut o.clock,
        };
        let (mut log, _) = create(
            &mut rng,
            &org,
            &mut me,
            o.user,
            10_000,
            WorkspaceId([5; 16]),
        )
        .unwrap();
        let ring = Keyring::open(&log, &org, o.user, |g| (g == 0).then(|| o.secret.clone()));
        let b = write(&mut rng, &mut log, &org, &mut me, 10_020, &ring, b"x").unwrap();
        let e = log.get(&id_of(&b)).unwrap();
        assert_eq!(ring.read(e).unwrap(), b"x");
        // A device of another user holds no key.
        let other = Keyring::open(&log, &org, UserId([9; 16]), |_| None);
        assert!(matches!(other.read(e), Err(KeyringError::NoKey(_))));
    }

    #[test]
    fn the_owner_rotates_lazily_after_a_revocation_and_a_user_key_rotation() {
        use crate::trust::Certificate;
        use crate::trust::author::{self, Writer};
        let mut f = crate::testkit::Fixture::new(11);
        let bob = f.add_user(Profile::Standard);
        let carol = f.add_user(Profile::Standard);
        let (bob_user, carol_user) = (f.members[bob].user, f.members[carol].user);
        let ws = WorkspaceId([6; 16]);
        let owner_secret = f.admin.secret.clone();
        let owner = |g: u32| (g == 0).then(|| owner_secret.clone());
        let mut clock = Clock::default();
        let (mut log, _first_ring) = {
            let mut me = Actor {
                keys: &f.admin.keys,
                clock: &mut clock,
            };
            let (mut log, _) =
                create(&mut f.rng, &f.org, &mut me, f.admin.user, 10_000, ws).unwrap();
            let ring = Keyring::open(&log, &f.org, f.admin.user, owner);
            share(
                &mut f.rng,
                &mut log,
                &f.org,
                &mut me,
                10_010,
                &ring,
                bob_user,
                Role::Contributor,
            )
            .unwrap();
            share(
                &mut f.rng,
                &mut log,
                &f.org,
                &mut me,
                10_020,
                &ring,
                carol_user,
                Role::Reader,
            )
            .unwrap();
            (log, ring)
        };
        assert!(!log.state(&f.org).needs_rotation);
        // Nothing to do yet.
        let mut me = Actor {
            keys: &f.admin.keys,
            clock: &mut clock,
        };
        assert!(
            maintain(
                &mut f.rng,
                &mut log,
                &f.org,
                &mut me,
                f.admin.user,
                10_030,
                owner
            )
            .unwrap()
            .is_empty()
        );
        // The admin revokes Bob from the organization; Carol's device rotates her user key.
        let org_id = f.org.org();
        let e = Writer {
            keys: &f.admin.keys,
            org_key: &f.org_key,
            clock: &mut f.clock,
        }
        .draft(&f.org, 20_000, Certificate::UserRevoked { user: bob_user });
        assert!(f.org.ingest(vec![e]).is_clean());
        let carol_next = UserSecret::generate(1, &mut f.rng);
        let rot = author::rotation(
            &mut f.rng,
            &org_id,
            carol_user,
            &f.members[carol].secret,
            &carol_next,
            &[(
                f.members[carol].keys.id(),
                f.members[carol].keys.exchange_public(),
            )],
        )
        .unwrap();
        let e = Writer {
            keys: &f.members[carol].keys,
            org_key: &f.org_key,
            clock: &mut Clock::default(),
        }
        .draft(&f.org, 20_010, rot);
        assert!(f.org.ingest(vec![e]).is_clean());
        let st = log.state(&f.org);
        assert!(st.needs_rotation);
        assert!(!st.members.contains_key(&bob_user));
        // Carol (a READER) cannot do it; the owner does, on his next pass.
        let mut carol_me = Actor {
            keys: &f.members[carol].keys,
            clock: &mut Clock::default(),
        };
        assert!(
            maintain(
                &mut f.rng,
                &mut log,
                &f.org,
                &mut carol_me,
                carol_user,
                20_020,
                |_| None
            )
            .unwrap()
            .is_empty()
        );
        let mut me = Actor {
            keys: &f.admin.keys,
            clock: &mut clock,
        };
        let written = maintain(
            &mut f.rng,
            &mut log,
            &f.org,
            &mut me,
            f.admin.user,
            20_030,
            owner,
        )
        .unwrap();
        assert_eq!(written.len(), 1, "one new epoch");
        let st = log.state(&f.org);
        assert!(!st.needs_rotation);
        let ep = st.current_epoch().unwrap();
        assert!(!ep.recipients.contains_key(&bob_user));
        assert_eq!(
            ep.recipients.get(&carol_user),
            Some(&1),
            "sealed to Carol's new key"
        );
        let ring = Keyring::open(&log, &f.org, f.admin.user, owner);
        let b = write(
            &mut f.rng, &mut log, &f.org, &mut me, 20_040, &ring, b"after",
        )
        .unwrap();
        let e = log.get(&id_of(&b)).unwrap();
        let carol_ring = Keyring::open(&log, &f.org, carol_user, |g| {
            (g == 1).then(|| carol_next.clone())
        });
        assert_eq!(carol_ring.read(e).unwrap(), b"after");
        let bob_secret = f.members[bob].secret.clone();
        let bob_ring = Keyring::open(&log, &f.org, bob_user, move |g| {
            (g == 0).then(|| bob_secret.clone())
        });
        assert!(bob_ring.read(e).is_err());
    }
}
