//! The organization-log entry: its wire format, signing, and the structural checks that need no
//! state.
//!
//! Wire format (version 2), frozen by the test vectors in `trust/tests`:
//!
//! ```text
//! entry     = 0x02 || body || signature
//! body      = postcard(EntryBody)            -- must be consumed exactly: no trailing bytes
//! signature = Ed25519(author, "cloison/org-entry/v2\0" || 0x02 || body)   (64 bytes)
//! id        = BLAKE3(entry)                  -- over the bytes exactly as received
//! pop       = Ed25519(device, "cloison/device-pop/v1\0" || org || device || exchange_key
//!                     || 0x01 || user || user_key   -- a user's first device, in its UserAdded
//!                      | 0x00 || certifier)         -- a later device: the entry's author, a
//!                                                   -- device of the user it joins
//! ```
//!
//! Version 1 (before proofs of possession and derived user ids) is refused as
//! [`Rejection::RetiredVersion`].
//!
//! Invariants: an [`Entry`] exists only for bytes whose signature checked under the key named in
//! the body, and whose device certificate (if any) carries a proof of possession signed by the
//! certified device key itself (the only way to an [`Entry`] from bytes is [`decode`] then
//! [`verify_batch`]); a user id is [`UserId::derive`]d from its first device, so nobody can
//! certify a key they do not hold, nor two users for one key without that key signing both;
//! the bytes are kept as received, never re-encoded; every size is bounded ([`MAX_ENTRY_BYTES`]
//! and the per-field limits checked in [`EntryBody::check_shape`]).

use serde::{Deserialize, Serialize};

use super::ids::{DeviceId, EntryId, Hlc, OrgId, Profile, UserId};
use super::keys::DeviceKeys;
use super::pop::{POP_DOMAIN, PopFor, pop_message};
use super::rejection::Rejection;
use super::sigcheck;
use curve25519_dalek::edwards::EdwardsPoint;

/// Format version byte of an entry.
pub const ENTRY_V2: u8 = 0x02;
/// The retired first version (no proof of possession, random user ids).
pub const ENTRY_V1: u8 = 0x01;
/// Signature domain of an entry.
pub const ENTRY_DOMAIN: &[u8] = b"cloison/org-entry/v2\0";
/// Largest entry accepted, in bytes.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;
/// Most parents an entry may name.
pub const MAX_PARENTS: usize = 64;
/// Largest sealed private blob (a name, an e-mail, a label, sealed).
pub const MAX_PRIVATE_BYTES: usize = 1024;
/// Most devices a user-key rotation may seal the new key to.
pub const MAX_ROTATION_RECIPIENTS: usize = 64;
/// Largest sealed key blob.
pub const MAX_SEALED_KEY_BYTES: usize = 256;
/// Most shares in one organization-key rotation. A share is at most 102 bytes (user 16,
/// generation 5, length 1, HPKE blob 80); 512 of them with 64 parents and the other fields stay
/// below [`MAX_ENTRY_BYTES`] (about 55 KiB; checked by a test). Larger organizations continue
/// in `OrgKeyShared` entries.
pub const MAX_ORG_KEY_SHARES: usize = 512;
/// Size of a share's HPKE blob (32-byte encapsulated key, 32-byte key, 16-byte tag).
pub const ORG_KEY_SHARE_BYTES: usize = 80;
/// Most relay addresses in one authorization, and the longest.
pub const MAX_RELAY_ADDRS: usize = 8;
/// Longest relay address, in bytes.
pub const MAX_ADDR_BYTES: usize = 256;

/// The signed content of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryBody {
    /// The organization this entry belongs to.
    pub org: OrgId,
    /// The author's heads when writing: strictly increasing, empty only for the genesis.
    pub parents: Vec<EntryId>,
    /// The signing device; for the genesis, the organization root key (`org`).
    pub author: DeviceId,
    /// Strictly after every parent's time.
    pub time: Hlc,
    /// What the entry certifies.
    pub cert: Certificate,
}

/// One certificate per entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Certificate {
    /// The organization's first entry, signed by the root key and nothing else.
    Genesis(Genesis),
    /// A new user.
    UserAdded(UserAdded),
    /// A new device of an existing user.
    DeviceAdded(DeviceAdded),
    /// A user's profile changes.
    ProfileChanged {
        /// The user.
        user: UserId,
        /// The new profile.
        profile: Profile,
    },
    /// A user's key moves to a new generation (after a device revocation, or to include a device).
    UserKeyRotated(UserKeyRotated),
    /// A device loses all rights, for good.
    DeviceRevoked {
        /// The device.
        device: DeviceId,
    },
    /// A user and all their devices lose all rights, for good.
    UserRevoked {
        /// The user.
        user: UserId,
    },
    /// A relay may serve this organization's devices.
    RelayAuthorized(RelayAuthorized),
    /// An invitation was made (so that every admin sees it); never its secret.
    InvitationRecorded(InvitationRecorded),
    /// A recorded invitation can no longer be claimed.
    InvitationClosed {
        /// The invitation id (derived from its secret, see `enroll::token`).
        id: [u8; 16],
        /// Why.
        reason: CloseReason,
    },
    /// A relay may no longer serve this organization, for good (admins; last, so that the
    /// encodings of the earlier variants do not change).
    RelayRevoked {
        /// The relay's libp2p identity key (authorized in the entry's causal past).
        relay: DeviceId,
    },
    /// The organization key moves to a new key, sealed to the remaining users (admins; after a
    /// user revocation; last, so that the encodings of the earlier variants do not change).
    OrgKeyRotated(OrgKeyRotated),
    /// More shares of a rotated organization key, for organizations with more users than one
    /// `OrgKeyRotated` holds (admins; the rotation by the same author in the causal past).
    OrgKeyShared {
        /// The rotated key's id.
        key_id: [u8; 8],
        /// As in [`OrgKeyRotated::shares`]; at least one.
        shares: OrgKeyShares,
    },
}

/// Shares of an organization key: (user, user-key generation, the key sealed to that user key).
pub type OrgKeyShares = Vec<(UserId, u32, Vec<u8>)>;

/// A rotation of the organization key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgKeyRotated {
    /// The new key's id (`keys::OrgKey::id`); the blobs it seals carry it.
    pub key_id: [u8; 8],
    /// The id of the key it replaces (the genesis key's or a rotated one's).
    pub previous_id: [u8; 8],
    /// The previous key encrypted under the new one (`org_keys::chain_org_prev`).
    pub previous: Vec<u8>,
    /// The new key sealed to each remaining user: (user, user-key generation, HPKE blob bound
    /// to the organization, the key id, the user and the generation). Sorted by user, one each.
    pub shares: OrgKeyShares,
}

/// Who a recorded invitation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Invited {
    /// A new user, who will get this profile.
    User {
        /// The profile.
        profile: Profile,
    },
    /// A new device of this existing user.
    Device {
        /// The user.
        user: UserId,
    },
}

/// Why an invitation was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// An admin (or the recording device) cancelled it.
    Cancelled,
    /// An enrolment used it.
    Used,
}

impl CloseReason {
    /// `cancelled` or `used`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Cancelled => "cancelled",
            CloseReason::Used => "used",
        }
    }
}

/// An invitation record in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRecorded {
    /// The invitation id (derived from the secret; the secret itself is never in the log).
    pub id: [u8; 16],
    /// For whom.
    pub invited: Invited,
    /// Unix ms after which the greeter refuses it.
    pub expires_ms: u64,
    /// The device that greets it (the author, today).
    pub greeter: DeviceId,
    /// For a user invitation, the e-mail, sealed under the organization key (purpose
    /// `invitation-email`, subject the id); empty for a device invitation.
    pub private: Vec<u8>,
}

/// Longest lifetime of a recorded invitation, in ms (30 days).
pub const MAX_INVITATION_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

/// The genesis certificate: the organization and its first admin with their first device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The organization's name, sealed under the organization key.
    pub private: Vec<u8>,
    /// The first admin, with their first device.
    pub admin: UserAdded,
}

/// A user's certificate, with the user's first device: a user never exists without a device
/// whose key signed its own certificate, and only that user's devices add more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAdded {
    /// [`UserId::derive`]`(org, device.device)`.
    pub user: UserId,
    /// Profile at creation.
    pub profile: Profile,
    /// Generation-0 public user key.
    pub user_key: [u8; 32],
    /// Name and e-mail, sealed under the organization key.
    pub private: Vec<u8>,
    /// The first device (its proof of possession also covers `user_key`).
    pub device: DeviceAdded,
}

/// A device's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAdded {
    /// The owner.
    pub user: UserId,
    /// The device (its Ed25519 verifying key).
    pub device: DeviceId,
    /// The device's X25519 exchange key.
    pub exchange_key: [u8; 32],
    /// The device label, sealed under the organization key.
    pub private: Vec<u8>,
    /// The device key's signature over [`pop_message`] (64 bytes).
    pub pop: Vec<u8>,
}

impl Certificate {
    /// The device this certificate brings in, its owner, and the user key its proof of
    /// possession covers (for a first device).
    pub fn device_added(&self) -> Option<(&DeviceAdded, Option<&[u8; 32]>)> {
        match self {
            Certificate::Genesis(g) => Some((&g.admin.device, Some(&g.admin.user_key))),
            Certificate::UserAdded(u) => Some((&u.device, Some(&u.user_key))),
            Certificate::DeviceAdded(d) => Some((d, None)),
            _ => None,
        }
    }

    /// The user this certificate brings in.
    pub fn user_added(&self) -> Option<&UserAdded> {
        match self {
            Certificate::Genesis(g) => Some(&g.admin),
            Certificate::UserAdded(u) => Some(u),
            _ => None,
        }
    }
}

/// A user-key rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserKeyRotated {
    /// The user.
    pub user: UserId,
    /// Exactly one more than the generation in the author's causal past.
    pub generation: u32,
    /// New public key.
    pub key: [u8; 32],
    /// The new secret sealed to each device that keeps access (HPKE to its exchange key).
    pub sealed: Vec<(DeviceId, Vec<u8>)>,
    /// The previous secret encrypted under the new one (see `keys::chain_prev`).
    pub prev: Vec<u8>,
}

/// A relay authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayAuthorized {
    /// The relay's libp2p identity key.
    pub relay: DeviceId,
    /// Where to reach it (multiaddrs, as text).
    pub addrs: Vec<String>,
}

impl Certificate {
    /// A short name, for logs, tables and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Certificate::Genesis(_) => "genesis",
            Certificate::UserAdded(_) => "user-added",
            Certificate::DeviceAdded(_) => "device-added",
            Certificate::ProfileChanged { .. } => "profile-changed",
            Certificate::UserKeyRotated(_) => "user-key-rotated",
            Certificate::DeviceRevoked { .. } => "device-revoked",
            Certificate::UserRevoked { .. } => "user-revoked",
            Certificate::RelayAuthorized(_) => "relay-authorized",
            Certificate::InvitationRecorded(_) => "invitation-recorded",
            Certificate::InvitationClosed { .. } => "invitation-closed",
            Certificate::RelayRevoked { .. } => "relay-revoked",
            Certificate::OrgKeyRotated(_) => "org-key-rotated",
            Certificate::OrgKeyShared { .. } => "org-key-shared",
        }
    }
}

impl EntryBody {
    /// Checks every bound and shape rule that needs no other entry.
    pub fn check_shape(&self, org: &OrgId) -> Result<(), Rejection> {
        if &self.org != org {
            return Err(Rejection::WrongOrg);
        }
        if self.parents.len() > MAX_PARENTS {
            return Err(Rejection::TooManyParents {
                count: self.parents.len(),
            });
        }
        if self.parents.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Rejection::UnsortedParents);
        }
        if self.time > Hlc::MAX {
            return Err(Rejection::TimeOutOfRange);
        }
        let genesis = matches!(self.cert, Certificate::Genesis(_));
        if genesis != self.parents.is_empty() {
            return Err(Rejection::GenesisShape);
        }
        if genesis && self.author.0 != org.0 {
            return Err(Rejection::GenesisShape);
        }
        let private_ok = |p: &Vec<u8>| p.len() <= MAX_PRIVATE_BYTES;
        let device_ok = |d: &DeviceAdded| {
            private_ok(&d.private)
                && d.pop.len() == 64
                && d.exchange_key != [0; 32]
                && d.device.0 != org.0
        };
        let user_ok = |u: &UserAdded| {
            private_ok(&u.private)
                && device_ok(&u.device)
                && u.device.user == u.user
                && u.user == UserId::derive(org, &u.device.device)
                && u.user_key != [0; 32]
        };
        let ok = match &self.cert {
            Certificate::Genesis(g) => {
                private_ok(&g.private) && user_ok(&g.admin) && g.admin.profile == Profile::Admin
            }
            Certificate::UserAdded(u) => user_ok(u),
            Certificate::DeviceAdded(d) => device_ok(d),
            Certificate::ProfileChanged { .. }
            | Certificate::DeviceRevoked { .. }
            | Certificate::UserRevoked { .. } => true,
            Certificate::UserKeyRotated(r) => {
                r.sealed.len() <= MAX_ROTATION_RECIPIENTS
                    && r.sealed
                        .iter()
                        .all(|(_, s)| s.len() <= MAX_SEALED_KEY_BYTES)
                    && r.sealed.windows(2).all(|w| w[0].0 < w[1].0)
                    && r.prev.len() <= MAX_SEALED_KEY_BYTES
            }
            Certificate::RelayAuthorized(r) => {
                !r.addrs.is_empty()
                    && r.addrs.len() <= MAX_RELAY_ADDRS
                    && r.addrs.iter().all(|a| a.len() <= MAX_ADDR_BYTES)
            }
            Certificate::InvitationRecorded(i) => {
                let written = self.time.millis();
                let user = matches!(i.invited, Invited::User { .. });
                i.greeter == self.author
                    && i.expires_ms.saturating_sub(written) <= MAX_INVITATION_TTL_MS
                    && private_ok(&i.private)
                    && user != i.private.is_empty()
            }
            Certificate::InvitationClosed { .. } | Certificate::RelayRevoked { .. } => true,
            Certificate::OrgKeyRotated(r) => {
                r.key_id != r.previous_id
                    && r.previous.len() <= MAX_SEALED_KEY_BYTES
                    && shares_ok(&r.shares)
            }
            Certificate::OrgKeyShared { shares, .. } => !shares.is_empty() && shares_ok(shares),
        };
        if ok {
            Ok(())
        } else {
            Err(Rejection::BadShape {
                kind: self.cert.kind(),
            })
        }
    }
}

/// Organization-key shares: bounded, each blob of its fixed size, sorted by user, one per user.
fn shares_ok(shares: &[(UserId, u32, Vec<u8>)]) -> bool {
    shares.len() <= MAX_ORG_KEY_SHARES
        && shares.iter().all(|s| s.2.len() == ORG_KEY_SHARE_BYTES)
        && shares.windows(2).all(|w| w[0].0 < w[1].0)
}

/// A signed entry whose signature has been checked, with its bytes exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    id: EntryId,
    bytes: Vec<u8>,
    body: EntryBody,
}

impl Entry {
    /// Id: BLAKE3 of the bytes.
    pub fn id(&self) -> EntryId {
        self.id
    }
    /// The signed bytes as received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The decoded body.
    pub fn body(&self) -> &EntryBody {
        &self.body
    }
}

/// An entry decoded but whose signature is not yet checked.
#[derive(Debug)]
pub struct Unverified {
    id: EntryId,
    bytes: Vec<u8>,
    body: EntryBody,
    key: EdwardsPoint,
    sig: [u8; 64],
    /// The certified device's key, the message and the signature of its proof of possession.
    pop: Option<(EdwardsPoint, Vec<u8>, [u8; 64])>,
}

impl Unverified {
    /// The id the entry would have.
    pub fn id(&self) -> EntryId {
        self.id
    }
    /// The decoded body (not yet authenticated).
    pub fn body(&self) -> &EntryBody {
        &self.body
    }
}

/// Decompressed author keys, so that a batch signed mostly by a few devices decompresses each
/// key once (decompression costs about as much as a third of a verification).
#[derive(Default)]
pub struct KeyCache(std::collections::HashMap<[u8; 32], Option<EdwardsPoint>>);

impl KeyCache {
    /// The key, or `None` if the bytes are not a valid Ed25519 key of large order.
    pub(crate) fn get(&mut self, bytes: &[u8; 32]) -> Option<EdwardsPoint> {
        if self.0.len() > 100_000 {
            self.0.clear();
        }
        *self.0.entry(*bytes).or_insert_with(|| {
            ed25519_dalek::VerifyingKey::from_bytes(bytes)
                .ok()
                .filter(|k| !k.is_weak())
                .map(|k| k.to_edwards())
        })
    }
}

/// Decodes the framing and the body; checks version, size and trailing bytes. The signature is
/// checked separately, in batches, by [`verify_batch`].
pub fn decode(bytes: Vec<u8>) -> Result<Unverified, (EntryId, Rejection)> {
    decode_with(bytes, &mut KeyCache::default())
}

/// [`decode`] with a key cache shared across a batch.
pub fn decode_with(
    bytes: Vec<u8>,
    keys: &mut KeyCache,
) -> Result<Unverified, (EntryId, Rejection)> {
    let id = EntryId(*blake3::hash(&bytes).as_bytes());
    let fail = |r| Err((id, r));
    if bytes.len() > MAX_ENTRY_BYTES {
        return fail(Rejection::TooLarge {
            size: bytes.len(),
            limit: MAX_ENTRY_BYTES,
        });
    }
    if bytes.is_empty() {
        return fail(Rejection::Truncated);
    }
    if bytes[0] == ENTRY_V1 {
        return fail(Rejection::RetiredVersion(ENTRY_V1));
    }
    if bytes[0] != ENTRY_V2 {
        return fail(Rejection::UnknownVersion(bytes[0]));
    }
    if bytes.len() < 1 + 64 {
        return fail(Rejection::Truncated);
    }
    let (signed, sig) = bytes.split_at(bytes.len() - 64);
    let body = match postcard::take_from_bytes::<EntryBody>(&signed[1..]) {
        Ok((body, [])) => body,
        Ok((_, _rest)) => return fail(Rejection::TrailingBytes),
        Err(postcard::Error::DeserializeUnexpectedEnd) => return fail(Rejection::Truncated),
        Err(_) => return fail(Rejection::Malformed),
    };
    let Some(key) = keys.get(&body.author.0) else {
        return fail(Rejection::BadKey);
    };
    let sig: [u8; 64] = sig.try_into().map_err(|_| (id, Rejection::BadSignature))?;
    let pop = match body.cert.device_added() {
        None => None,
        Some((d, first_user_key)) => {
            let Some(dkey) = keys.get(&d.device.0) else {
                return fail(Rejection::BadKey);
            };
            let Ok(psig) = <[u8; 64]>::try_from(d.pop.as_slice()) else {
                return fail(Rejection::BadProofOfPossession);
            };
            let for_ = match first_user_key {
                Some(user_key) => PopFor::First {
                    user: &d.user,
                    user_key,
                },
                None => PopFor::By {
                    certifier: &body.author,
                },
            };
            let msg = pop_message(&body.org, &d.device, &d.exchange_key, for_);
            Some((dkey, msg, psig))
        }
    };
    Ok(Unverified {
        id,
        bytes,
        body,
        key,
        sig,
        pop,
    })
}

/// Checks the signatures of a batch, proofs of possession included (one batch). Verification is
/// ZIP-215-style (cofactored equation) for every entry, alone or in a batch, so that every
/// device reaches the same verdict whatever its batch sizes; see ARCHITECTURE.md "Signatures".
pub fn verify_batch(items: Vec<Unverified>) -> Vec<Result<Entry, (EntryId, Rejection)>> {
    const CHUNK: usize = 2048;
    let mut out = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<Unverified> = items.by_ref().take(CHUNK).collect();
        if batch_ok(&chunk) {
            out.extend(chunk.into_iter().map(|u| Ok(u.into_entry())));
        } else {
            for u in chunk {
                if !sigcheck::verify(&[u.entry_item()]) {
                    out.push(Err((u.id, Rejection::BadSignature)));
                } else if u.pop_item().is_some_and(|p| !sigcheck::verify(&[p])) {
                    out.push(Err((u.id, Rejection::BadProofOfPossession)));
                } else {
                    out.push(Ok(u.into_entry()));
                }
            }
        }
    }
    out
}

fn batch_ok(items: &[Unverified]) -> bool {
    let checks: Vec<sigcheck::Item<'_>> = items
        .iter()
        .flat_map(|u| std::iter::once(u.entry_item()).chain(u.pop_item()))
        .collect();
    sigcheck::verify(&checks)
}

impl Unverified {
    fn entry_item(&self) -> sigcheck::Item<'_> {
        sigcheck::Item {
            key_bytes: &self.body.author.0,
            key: &self.key,
            domain: ENTRY_DOMAIN,
            msg: &self.bytes[..self.bytes.len() - 64],
            sig: &self.sig,
        }
    }

    fn pop_item(&self) -> Option<sigcheck::Item<'_>> {
        let (key, msg, sig) = self.pop.as_ref()?;
        let (d, _) = self.body.cert.device_added()?;
        Some(sigcheck::Item {
            key_bytes: &d.device.0,
            key,
            domain: POP_DOMAIN,
            msg,
            sig,
        })
    }

    fn into_entry(self) -> Entry {
        Entry {
            id: self.id,
            bytes: self.bytes,
            body: self.body,
        }
    }
}

/// Encodes and signs a body with a device key (or the root key, for the genesis).
pub fn sign(keys: &DeviceKeys, body: &EntryBody) -> Vec<u8> {
    let mut out = vec![ENTRY_V2];
    // Serializing plain data into a Vec cannot fail.
    out.extend_from_slice(&postcard::to_stdvec(body).unwrap_or_default());
    let sig = keys.sign(ENTRY_DOMAIN, &out);
    out.extend_from_slice(&sig);
    out
}
