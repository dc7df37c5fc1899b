//! Epoch keys sealed to a member: one blob per (recipient user, user-key generation), holding
//! one epoch key (a new epoch) or many (a new member receives every past epoch).
//!
//! ```text
//! sealed    = 0x01 || enc (32) || HPKE-ciphertext (plaintext + 16)
//! plaintext = n × (epoch id (32) || epoch key (32)),  1 <= n <= 4096, ids strictly increasing
//! aad       = "cloison epoch-keys v1\0" || org (32) || workspace (16) || user (16) || generation u32 LE
//! ```
//!
//! HPKE is `trust::keys::seal_to` (RFC 9180 base mode, X25519-HKDF-SHA256, HKDF-SHA256,
//! ChaCha20-Poly1305, info `"cloison 2026 hpke v1"`) to the recipient's user public key of that
//! generation. The associated data binds the blob to its organization, workspace, recipient and
//! key generation: it cannot be replayed to another user, workspace or generation. The epoch ids
//! travel inside the plaintext, next to their keys, and so are authenticated by the same tag
//! rather than by the associated data: a recipient does not need to know the list in advance (a
//! new member learns which epochs it was given), and a blob that opens a new epoch cannot name in
//! its associated data the id of the envelope that carries it (that id hashes the blob). What an
//! epoch id means (for example the id of the envelope that opened the epoch, with a caller-chosen
//! value for "this envelope") is the workspace layer's choice.
//!
//! Invariants: epoch keys zeroize and never print; the plaintext is canonical (sorted, no
//! duplicates, exact length); sizes are bounded ([`MAX_EPOCHS_PER_BLOB`]); randomness comes from
//! the caller.

use rand::CryptoRng;
use zeroize::Zeroizing;

use super::error::{SealError, check_len};
use super::payload::EpochKey;
use crate::trust::keys::{KeyError, UserSecret, seal_to};
use crate::trust::{OrgId, UserId};

/// Format byte of sealed epoch keys.
pub const EPOCH_KEYS_V1: u8 = 0x01;
/// Most epoch keys in one blob.
pub const MAX_EPOCHS_PER_BLOB: usize = 4096;
const RECORD: usize = 64;
const ENC: usize = 32;
const TAG: usize = 16;
/// Largest sealed blob accepted.
pub const MAX_SEALED_EPOCH_KEYS_BYTES: usize = 1 + ENC + MAX_EPOCHS_PER_BLOB * RECORD + TAG;
const AAD_DOMAIN: &[u8] = b"cloison epoch-keys v1\0";

/// An epoch's id, as the workspace layer names it (32 bytes).
pub type EpochId = [u8; 32];

/// Where a blob of epoch keys belongs: it opens only with the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochKeysContext {
    /// The organization.
    pub org: OrgId,
    /// The workspace.
    pub workspace: [u8; 16],
    /// The recipient user.
    pub user: UserId,
}

impl EpochKeysContext {
    fn aad(&self, generation: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 68);
        aad.extend_from_slice(AAD_DOMAIN);
        aad.extend_from_slice(&self.org.0);
        aad.extend_from_slice(&self.workspace);
        aad.extend_from_slice(&self.user.0);
        aad.extend_from_slice(&generation.to_le_bytes());
        aad
    }
}

/// Seals epoch keys to `ctx.user`'s user key of generation `generation`, whose public half is
/// `user_public`. The keys may come in any order; an id given twice is refused.
pub fn seal_epoch_keys<R: CryptoRng + ?Sized>(
    rng: &mut R,
    ctx: &EpochKeysContext,
    user_public: &[u8; 32],
    generation: u32,
    keys: &[(EpochId, &EpochKey)],
) -> Result<Vec<u8>, SealError> {
    if keys.is_empty() {
        return Err(SealError::Malformed("no epoch key"));
    }
    check_len(keys.len(), MAX_EPOCHS_PER_BLOB)?;
    let mut sorted: Vec<&(EpochId, &EpochKey)> = keys.iter().collect();
    sorted.sort_by_key(|a| a.0);
    if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(SealError::Malformed("duplicate epoch id"));
    }
    let mut plain = Zeroizing::new(Vec::with_capacity(sorted.len() * RECORD));
    for (id, key) in sorted {
        plain.extend_from_slice(id);
        plain.extend_from_slice(key.as_bytes());
    }
    let ct = seal_to(rng, user_public, &ctx.aad(generation), &plain).map_err(|e| match e {
        KeyError::BadRecipient => SealError::BadRecipient,
        KeyError::Open | KeyError::Malformed => SealError::Malformed("hpke"),
    })?;
    let mut out = Vec::with_capacity(1 + ct.len());
    out.push(EPOCH_KEYS_V1);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Seals a single epoch key (a new epoch) to one member.
pub fn seal_epoch_key<R: CryptoRng + ?Sized>(
    rng: &mut R,
    ctx: &EpochKeysContext,
    user_public: &[u8; 32],
    generation: u32,
    epoch: EpochId,
    key: &EpochKey,
) -> Result<Vec<u8>, SealError> {
    seal_epoch_keys(rng, ctx, user_public, generation, &[(epoch, key)])
}

/// Opens a blob sealed to `secret` (its generation is part of the context), returning the epoch
/// keys sorted by id.
pub fn open_epoch_keys(
    secret: &UserSecret,
    ctx: &EpochKeysContext,
    sealed: &[u8],
) -> Result<Vec<(EpochId, EpochKey)>, SealError> {
    check_len(sealed.len(), MAX_SEALED_EPOCH_KEYS_BYTES)?;
    if sealed.len() < 1 + ENC + RECORD + TAG {
        return Err(SealError::Malformed("shorter than sealed epoch keys"));
    }
    if sealed[0] != EPOCH_KEYS_V1 {
        return Err(SealError::UnknownVersion(sealed[0]));
    }
    if !(sealed.len() - 1 - ENC - TAG).is_multiple_of(RECORD) {
        return Err(SealError::Malformed("not a whole number of epoch keys"));
    }
    let plain = secret
        .open_sealed(&ctx.aad(secret.generation), &sealed[1..])
        .map_err(|e| match e {
            KeyError::Open => SealError::Aead,
            KeyError::Malformed | KeyError::BadRecipient => SealError::Malformed("hpke"),
        })?;
    let mut out: Vec<(EpochId, EpochKey)> = Vec::with_capacity(plain.len() / RECORD);
    for rec in plain.chunks_exact(RECORD) {
        let mut id = [0u8; 32];
        id.copy_from_slice(&rec[..32]);
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&rec[32..]);
        if out.last().is_some_and(|(prev, _)| *prev >= id) {
            return Err(SealError::Malformed("epoch ids not strictly increasing"));
        }
        out.push((id, EpochKey::from_bytes(&k)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn ctx() -> EpochKeysContext {
        EpochKeysContext {
            org: OrgId([1; 32]),
            workspace: [2; 16],
            user: UserId([3; 16]),
        }
    }

    #[test]
    fn one_and_many_round_trip() {
        let mut rng = StdRng::seed_from_u64(7);
        let user = UserSecret::generate(4, &mut rng);
        let k1 = EpochKey::generate(&mut rng);
        let k2 = EpochKey::generate(&mut rng);
        let s = seal_epoch_key(&mut rng, &ctx(), &user.public(), 4, [9; 32], &k1).unwrap();
        let got = open_epoch_keys(&user, &ctx(), &s).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, [9; 32]);
        assert_eq!(got[0].1.as_bytes(), k1.as_bytes());
        // Many, given out of order: returned sorted.
        let s = seal_epoch_keys(
            &mut rng,
            &ctx(),
            &user.public(),
            4,
            &[([8; 32], &k2), ([5; 32], &k1)],
        )
        .unwrap();
        assert_eq!(s.len(), 1 + ENC + 2 * RECORD + TAG);
        let got = open_epoch_keys(&user, &ctx(), &s).unwrap();
        assert_eq!(got[0].0, [5; 32]);
        assert_eq!(got[0].1.as_bytes(), k1.as_bytes());
        assert_eq!(got[1].0, [8; 32]);
        assert_eq!(got[1].1.as_bytes(), k2.as_bytes());
    }

    #[test]
    fn bound_to_context_recipient_and_generation() {
        let mut rng = StdRng::seed_from_u64(8);
        let user = UserSecret::generate(4, &mut rng);
        let k = EpochKey::generate(&mut rng);
        let s = seal_epoch_key(&mut rng, &ctx(), &user.public(), 4, [9; 32], &k).unwrap();
        let mut c = ctx();
        c.org = OrgId([0; 32]);
        assert_eq!(open_epoch_keys(&user, &c, &s).unwrap_err(), SealError::Aead);
        let mut c = ctx();
        c.workspace = [0; 16];
        assert_eq!(open_epoch_keys(&user, &c, &s).unwrap_err(), SealError::Aead);
        let mut c = ctx();
        c.user = UserId([0; 16]);
        assert_eq!(open_epoch_keys(&user, &c, &s).unwrap_err(), SealError::Aead);
        // Same secret bytes, announced as another generation.
        let regen = UserSecret::from_bytes(5, user.secret_bytes());
        assert_eq!(
            open_epoch_keys(&regen, &ctx(), &s).unwrap_err(),
            SealError::Aead
        );
        // Another user key.
        let other = UserSecret::generate(4, &mut rng);
        assert_eq!(
            open_epoch_keys(&other, &ctx(), &s).unwrap_err(),
            SealError::Aead
        );
        // Tampering, truncation, version.
        let mut t = s.clone();
        t[50] ^= 1;
        assert_eq!(
            open_epoch_keys(&user, &ctx(), &t).unwrap_err(),
            SealError::Aead
        );
        assert!(matches!(
            open_epoch_keys(&user, &ctx(), &s[..s.len() - 1]),
            Err(SealError::Malformed(_))
        ));
        let mut t = s.clone();
        t[0] = 9;
        assert_eq!(
            open_epoch_keys(&user, &ctx(), &t).unwrap_err(),
            SealError::UnknownVersion(9)
        );
        assert!(matches!(
            open_epoch_keys(&user, &ctx(), &vec![1; MAX_SEALED_EPOCH_KEYS_BYTES + 1]),
            Err(SealError::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_empty_duplicate_and_too_many() {
        let mut rng = StdRng::seed_from_u64(9);
        let user = UserSecret::generate(0, &mut rng);
        let k = EpochKey::generate(&mut rng);
        let p = user.public();
        assert!(matches!(
            seal_epoch_keys(&mut rng, &ctx(), &p, 0, &[]),
            Err(SealError::Malformed(_))
        ));
        assert!(matches!(
            seal_epoch_keys(&mut rng, &ctx(), &p, 0, &[([1; 32], &k), ([1; 32], &k)]),
            Err(SealError::Malformed(_))
        ));
        let many: Vec<(EpochId, &EpochKey)> = (0..=MAX_EPOCHS_PER_BLOB)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                (id, &k)
            })
            .collect();
        assert!(matches!(
            seal_epoch_keys(&mut rng, &ctx(), &p, 0, &many),
            Err(SealError::TooLarge { .. })
        ));
        let s = seal_epoch_keys(&mut rng, &ctx(), &p, 0, &many[1..]).unwrap();
        assert_eq!(s.len(), MAX_SEALED_EPOCH_KEYS_BYTES);
        assert_eq!(
            open_epoch_keys(&user, &ctx(), &s).unwrap().len(),
            MAX_EPOCHS_PER_BLOB
        );
    }
}
