//! The envelope: the signed unit of a workspace's DAG, with a clear header the relay can check and
//! a payload it cannot read (for content).
//!
//! Wire format (version 1), frozen by `workspace/vectors/envelope_v1.hex`:
//!
//! ```text
//! envelope  = 0x01 || header_len (u32 LE) || header || payload || signature
//! header    = postcard(Header)
//! signature = Ed25519(author, "cloison/envelope/v1\0" || everything before the signature)
//! id        = BLAKE3(envelope)
//! ```
//!
//! The payload depends on `Header::kind`: `Content` is ciphertext (sealed with the epoch key, the
//! header bytes as associated data, see `seal`); `Access` is `postcard(AccessChange)` in clear;
//! `Keys` is `0x02 || postcard(EpochKeys)` whose blobs are sealed to each member's user key (an
//! epoch-opening `Keys` envelope carries in clear a commitment to the new epoch key; version
//! `0x01`, without it, is refused with [`Refusal::KeysVersion`]); `Merge` is empty (it only joins
//! heads).
//!
//! Invariants: an [`Envelope`] exists only for bytes whose signature checked (the only way from
//! bytes is [`decode`] then [`verify_batch`]); bytes are kept as received; every size is bounded;
//! the header and the clear payloads decode exactly, with no trailing bytes.

use curve25519_dalek::edwards::EdwardsPoint;
use serde::{Deserialize, Serialize};

use super::ids::{EnvelopeId, Role, WorkspaceId};
use super::rejection::Refusal;
use crate::trust::entry::KeyCache;
use crate::trust::{DeviceId, DeviceKeys, EntryId, Hlc, OrgId, UserId, sigcheck};

/// Format version byte.
pub const ENVELOPE_V1: u8 = 0x01;
/// Signature domain.
pub const ENVELOPE_DOMAIN: &[u8] = b"cloison/envelope/v1\0";
/// Largest envelope.
pub const MAX_ENVELOPE_BYTES: usize = 2 * 1024 * 1024;
/// Largest header.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Most parents.
pub const MAX_PARENTS: usize = 64;
/// Most organization heads named.
pub const MAX_ORG_HEADS: usize = 16;
/// Largest clear `Access` payload.
pub const MAX_ACCESS_BYTES: usize = 1024;
/// Largest `Keys` payload.
pub const MAX_KEYS_BYTES: usize = 512 * 1024;
/// Most recipients of one `Keys` envelope.
pub const MAX_KEY_RECIPIENTS: usize = 1024;
/// Format version byte of the `Keys` payload (v2: committed epoch keys).
pub const KEYS_V2: u8 = 0x02;

/// What the payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// Encrypted workspace-document changes.
    Content,
    /// A clear access change (creation, grant, removal).
    Access,
    /// Epoch keys sealed to members.
    Keys,
    /// Nothing: joins the author's heads.
    Merge,
}

/// The clear header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Organization.
    pub org: OrgId,
    /// Workspace.
    pub workspace: WorkspaceId,
    /// Signing device.
    pub author: DeviceId,
    /// The author's workspace heads: strictly increasing, empty only for the creation.
    pub parents: Vec<EnvelopeId>,
    /// The author's organization-log heads: strictly increasing, 1 to 16.
    pub org_heads: Vec<EntryId>,
    /// After every parent's time.
    pub time: Hlc,
    /// For `Content`: the `Keys` envelope that opened the epoch whose key seals the payload.
    pub epoch: Option<EnvelopeId>,
    /// Payload kind.
    pub kind: Kind,
}

/// A clear access change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessChange {
    /// Creates the workspace; the author's user becomes its first OWNER.
    Create,
    /// Gives `user` a role (or changes it).
    Grant {
        /// The user.
        user: UserId,
        /// The role.
        role: Role,
    },
    /// Removes `user` from the workspace (unshare, or leaving).
    Remove {
        /// The user.
        user: UserId,
    },
}

/// Keys sealed to members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochKeys {
    /// For an envelope that opens a new epoch (its id is the epoch id): the commitment to the new
    /// epoch key (`seal::epoch_key_commitment`), against which every blob of that key is checked
    /// when opened. `None`: this envelope shares existing epoch keys (a new member receives the
    /// history).
    pub commitment: Option<[u8; 32]>,
    /// One sealed blob per recipient, strictly increasing by user.
    pub sealed: Vec<SealedKeys>,
}

impl EpochKeys {
    /// Whether this envelope opens a new epoch.
    pub fn new_epoch(&self) -> bool {
        self.commitment.is_some()
    }
}

/// Keys sealed to one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKeys {
    /// Recipient.
    pub user: UserId,
    /// The recipient's user-key generation sealed to.
    pub generation: u32,
    /// The epochs whose keys the blob holds, strictly increasing (bound to the blob as associated
    /// data); empty when the envelope opens an epoch (the blob holds that epoch's key only).
    pub epochs: Vec<EnvelopeId>,
    /// The sealed keys (opaque here; see `seal`).
    pub blob: Vec<u8>,
}

/// An envelope whose signature checked, with its bytes as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    id: EnvelopeId,
    bytes: Vec<u8>,
    header: Header,
    header_end: usize,
}

impl Envelope {
    /// Id.
    pub fn id(&self) -> EnvelopeId {
        self.id
    }
    /// Bytes as received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The exact header bytes (`0x01 || len || header`): the payload's associated data.
    pub fn header_bytes(&self) -> &[u8] {
        &self.bytes[..self.header_end]
    }
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.header_end..self.bytes.len() - 64]
    }
    /// The clear access change (for `Access`).
    pub fn access(&self) -> Option<AccessChange> {
        decode_exact(self.payload()).ok()
    }
    /// The sealed keys (for `Keys`).
    pub fn keys(&self) -> Option<EpochKeys> {
        decode_keys(self.payload()).ok()
    }
}

fn decode_keys(b: &[u8]) -> Result<EpochKeys, Refusal> {
    match b.split_first() {
        Some((&KEYS_V2, rest)) => decode_exact(rest),
        Some((v, _)) => Err(Refusal::KeysVersion(*v)),
        None => Err(Refusal::Truncated),
    }
}

fn decode_exact<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, Refusal> {
    match postcard::take_from_bytes::<T>(b) {
        Ok((v, [])) => Ok(v),
        Ok(_) => Err(Refusal::TrailingBytes),
        Err(postcard::Error::DeserializeUnexpectedEnd) => Err(Refusal::Truncated),
        Err(_) => Err(Refusal::Malformed),
    }
}

/// Decoded, signature not yet checked.
pub struct Unverified {
    inner: Envelope,
    key: EdwardsPoint,
    sig: [u8; 64],
}

impl Unverified {
    /// The id it would have.
    pub fn id(&self) -> EnvelopeId {
        self.inner.id
    }
}

/// Decodes framing, header and clear payload; checks version, sizes and shapes.
pub fn decode(bytes: Vec<u8>, keys: &mut KeyCache) -> Result<Unverified, (EnvelopeId, Refusal)> {
    let id = EnvelopeId(*blake3::hash(&bytes).as_bytes());
    let fail = |r| Err((id, r));
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return fail(Refusal::TooLarge {
            size: bytes.len(),
            limit: MAX_ENVELOPE_BYTES,
        });
    }
    if bytes.is_empty() {
        return fail(Refusal::Truncated);
    }
    if bytes[0] != ENVELOPE_V1 {
        return fail(Refusal::UnknownVersion(bytes[0]));
    }
    if bytes.len() < 5 + 64 {
        return fail(Refusal::Truncated);
    }
    let hlen = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    if hlen > MAX_HEADER_BYTES {
        return fail(Refusal::TooLarge {
            size: hlen,
            limit: MAX_HEADER_BYTES,
        });
    }
    let header_end = 5 + hlen;
    if header_end > bytes.len() - 64 {
        return fail(Refusal::Truncated);
    }
    let header: Header = match decode_exact(&bytes[5..header_end]) {
        Ok(h) => h,
        Err(r) => return fail(r),
    };
    if let Err(r) = check_header(&header) {
        return fail(r);
    }
    let payload = &bytes[header_end..bytes.len() - 64];
    if let Err(r) = check_payload(header.kind, header.epoch.is_some(), payload) {
        return fail(r);
    }
    let Some(key) = keys.get(&header.author.0) else {
        return fail(Refusal::BadKey);
    };
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&bytes[bytes.len() - 64..]);
    Ok(Unverified {
        inner: Envelope {
            id,
            bytes,
            header,
            header_end,
        },
        key,
        sig,
    })
}

fn check_header(h: &Header) -> Result<(), Refusal> {
    let sorted = |v: &[_]| v.windows(2).all(|w: &[EnvelopeId]| w[0] < w[1]);
    if h.parents.len() > MAX_PARENTS || !sorted(&h.parents) {
        return Err(Refusal::BadParents);
    }
    if h.org_heads.is_empty()
        || h.org_heads.len() > MAX_ORG_HEADS
        || !h.org_heads.windows(2).all(|w| w[0] < w[1])
    {
        return Err(Refusal::BadOrgHeads);
    }
    if h.time > Hlc::MAX {
        return Err(Refusal::TimeOutOfRange);
    }
    Ok(())
}

fn check_payload(kind: Kind, has_epoch: bool, payload: &[u8]) -> Result<(), Refusal> {
    let shape = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(Refusal::BadShape { kind })
        }
    };
    match kind {
        Kind::Content => shape(has_epoch && !payload.is_empty()),
        Kind::Merge => shape(!has_epoch && payload.is_empty()),
        Kind::Access => {
            if payload.len() > MAX_ACCESS_BYTES {
                return Err(Refusal::BadShape { kind });
            }
            decode_exact::<AccessChange>(payload)?;
            shape(!has_epoch)
        }
        Kind::Keys => {
            if payload.len() > MAX_KEYS_BYTES {
                return Err(Refusal::BadShape { kind });
            }
            let k = decode_keys(payload)?;
            let epochs_ok = |s: &SealedKeys| {
                if k.new_epoch() {
                    s.epochs.is_empty()
                } else {
                    !s.epochs.is_empty()
                        && s.epochs.len() <= crate::seal::epoch::MAX_EPOCHS_PER_BLOB
                        && s.epochs.windows(2).all(|w| w[0] < w[1])
                }
            };
            shape(
                !has_epoch
                    && !k.sealed.is_empty()
                    && k.sealed.len() <= MAX_KEY_RECIPIENTS
                    && k.sealed.windows(2).all(|w| w[0].user < w[1].user)
                    && k.sealed.iter().all(epochs_ok),
            )
        }
    }
}

/// Checks signatures (cofactored, batched with one term per key, as for the organization log).
pub fn verify_batch(items: Vec<Unverified>) -> Vec<Result<Envelope, (EnvelopeId, Refusal)>> {
    const CHUNK: usize = 2048;
    let ok = |chunk: &[Unverified]| {
        let checks: Vec<sigcheck::Item<'_>> = chunk
            .iter()
            .map(|u| sigcheck::Item {
                key_bytes: &u.inner.header.author.0,
                key: &u.key,
                domain: ENVELOPE_DOMAIN,
                msg: &u.inner.bytes[..u.inner.bytes.len() - 64],
                sig: &u.sig,
            })
            .collect();
        sigcheck::verify(&checks)
    };
    let mut out = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<Unverified> = items.by_ref().take(CHUNK).collect();
        if ok(&chunk) {
            out.extend(chunk.into_iter().map(|u| Ok(u.inner)));
        } else {
            for u in chunk {
                if ok(std::slice::from_ref(&u)) {
                    out.push(Ok(u.inner));
                } else {
                    out.push(Err((u.inner.id, Refusal::BadSignature)));
                }
            }
        }
    }
    out
}

/// Encodes and signs an envelope.
pub fn sign(keys: &DeviceKeys, header: &Header, payload: &[u8]) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    let h = postcard::to_stdvec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(5 + h.len() + payload.len() + 64);
    out.push(ENVELOPE_V1);
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let sig = keys.sign(ENVELOPE_DOMAIN, &out);
    out.extend_from_slice(&sig);
    out
}

/// The header bytes `sign` will produce for `header` (the associated data of a content payload,
/// needed before signing).
pub fn header_bytes(header: &Header) -> Vec<u8> {
    let h = postcard::to_stdvec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(5 + h.len());
    out.push(ENVELOPE_V1);
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    out
}

/// Encodes a `Keys` payload (version byte, then the keys).
pub fn encode_keys(k: &EpochKeys) -> Vec<u8> {
    let mut out = vec![KEYS_V2];
    out.extend(encode_payload(k));
    out
}

/// Encodes a clear payload.
pub fn encode_payload<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).unwrap_or_default()
}
