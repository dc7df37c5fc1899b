//! Epoch keys sealed to a member: one blob per (recipient user, user-key generation), holding
//! one epoch key (a new epoch) or many (a new member receives every past epoch). Every epoch key
//! is *committed*: the envelope that opens an epoch carries in clear
//! [`epoch_key_commitment`] of its key, and a blob opens only if each key it holds matches the
//! commitment of the epoch it is bound to.
//!
//! ```text
//! sealed     = 0x02 || enc (32) || HPKE-ciphertext (plaintext + 16)
//! plaintext  = n × epoch key (32),  1 <= n <= 4096
//! aad        = "cloison epoch-keys v2\0" || org (32) || workspace (16) || user (16)
//!              || generation u32 LE || n u32 LE || n × (epoch id (32) || commitment (32))
//! commitment = BLAKE3-derive_key("cloison 2026 epoch-key commitment v1", epoch key)
//! ```
//!
//! HPKE is `trust::keys::seal_to` (RFC 9180 base mode, X25519-HKDF-SHA256, HKDF-SHA256,
//! ChaCha20-Poly1305, info `"cloison 2026 hpke v1"`) to the recipient's user public key of that
//! generation. The associated data binds the blob to its organization, workspace, recipient, key
//! generation and to the epochs (ids, strictly increasing, and their commitments) whose keys it
//! holds, in that order: the opener names them (they travel in clear next to the blob), and
//! [`open_epoch_keys`] checks each decrypted key against its commitment, so a blob cannot pass
//! off another key as an epoch's, nor be moved to another epoch. What an epoch id means (for
//! example the id of the envelope that opened the epoch, with a caller-chosen value for "this
//! envelope", whose id hashes the blob) is the workspace layer's choice.
//!
//! Version `0x01` (ids inside the plaintext, no commitment) is refused
//! ([`SealError::UnknownVersion`]).
//!
//! Invariants: epoch keys zeroize and never print; the epoch list is canonical (sorted, no
//! duplicates) and the plaintext has the exact length; sizes are bounded
//! ([`MAX_EPOCHS_PER_BLOB`]); randomness comes from the caller.

use rand::CryptoRng;
use zeroize::Zeroizing;

use super::error::{SealError, check_len};
use super::payload::EpochKey;
use crate::trust::keys::{KeyError, UserSecret, seal_to};
use crate::trust::{OrgId, UserId};

/// Format byte of sealed epoch keys.
pub const EPOCH_KEYS_V2: u8 = 0x02;
/// Most epoch keys in one blob.
pub const MAX_EPOCHS_PER_BLOB: usize = 4096;
const KEY: usize = 32;
const ENC: usize = 32;
const TAG: usize = 16;
/// Largest sealed blob accepted.
pub const MAX_SEALED_EPOCH_KEYS_BYTES: usize = 1 + ENC + MAX_EPOCHS_PER_BLOB * KEY + TAG;
const AAD_DOMAIN: &[u8] = b"cloison epoch-keys v2\0";
const COMMITMENT_DOMAIN: &str = "cloison 2026 epoch-key commitment v1";

/// An epoch's id, as the workspace layer names it (32 bytes).
pub type EpochId = [u8; 32];
/// A commitment to an epoch key.
pub type Commitment = [u8; 32];

/// The commitment to an epoch key, published in clear by the envelope that opens the epoch.
pub fn epoch_key_commitment(key: &EpochKey) -> Commitment {
    blake3::derive_key(COMMITMENT_DOMAIN, key.as_bytes())
}

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
    fn aad(&self, generation: u32, epochs: &[(EpochId, Commitment)]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 72 + 64 * epochs.len());
        aad.extend_from_slice(AAD_DOMAIN);
        aad.extend_from_slice(&self.org.0);
        aad.extend_from_slice(&self.workspace);
        aad.extend_from_slice(&self.user.0);
        aad.extend_from_slice(&generation.to_le_bytes());
        aad.extend_from_slice(&(epochs.len() as u32).to_le_bytes());
        for (id, c) in epochs {
            aad.extend_from_slice(id);
            aad.extend_from_slice(c);
        }
        aad
    }
}

fn check_epochs<T>(epochs: &[(EpochId, T)]) -> Result<(), SealError> {
    if epochs.is_empty() {
        return Err(SealError::Malformed("no epoch key"));
    }
    check_len(epochs.len(), MAX_EPOCHS_PER_BLOB)?;
    if epochs.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(SealError::Malformed("epoch ids not strictly increasing"));
    }
    Ok(())
}

/// Seals epoch keys to `ctx.user`'s user key of generation `generation`, whose public half is
/// `user_public`, bound to their epoch ids and commitments. The keys may come in any order; an
/// id given twice is refused.
pub fn seal_epoch_keys<R: CryptoRng + ?Sized>(
    rng: &mut R,
    ctx: &EpochKeysContext,
    user_public: &[u8; 32],
    generation: u32,
    keys: &[(EpochId, &EpochKey)],
) -> Result<Vec<u8>, SealError> {
    let mut sorted: Vec<(EpochId, &EpochKey)> = keys.to_vec();
    sorted.sort_by_key(|a| a.0);
    if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(SealError::Malformed("duplicate epoch id"));
    }
    check_epochs(&sorted)?;
    let refs: Vec<(EpochId, Commitment)> = sorted
        .iter()
        .map(|(id, k)| (*id, epoch_key_commitment(k)))
        .collect();
    let mut plain = Zeroizing::new(Vec::with_capacity(sorted.len() * KEY));
    for (_, key) in &sorted {
        plain.extend_from_slice(key.as_bytes());
    }
    let ct =
        seal_to(rng, user_public, &ctx.aad(generation, &refs), &plain).map_err(|e| match e {
            KeyError::BadRecipient => SealError::BadRecipient,
            KeyError::Open | KeyError::Malformed | KeyError::UnknownKey => {
                SealError::Malformed("hpke")
            }
        })?;
    let mut out = Vec::with_capacity(1 + ct.len());
    out.push(EPOCH_KEYS_V2);
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

/// Opens a blob sealed to `secret` (its generation is part of the context) that holds the keys of
/// `epochs` (ids strictly increasing, each with the commitment its opening envelope published),
/// returning them in that order. A key that does not match its commitment is refused
/// ([`SealError::CommitmentMismatch`]), and then none of the blob's keys is returned.
pub fn open_epoch_keys(
    secret: &UserSecret,
    ctx: &EpochKeysContext,
    epochs: &[(EpochId, Commitment)],
    sealed: &[u8],
) -> Result<Vec<(EpochId, EpochKey)>, SealError> {
    check_len(sealed.len(), MAX_SEALED_EPOCH_KEYS_BYTES)?;
    check_epochs(epochs)?;
    if sealed.is_empty() {
        return Err(SealError::Malformed("empty sealed epoch keys"));
    }
    if sealed[0] != EPOCH_KEYS_V2 {
        return Err(SealError::UnknownVersion(sealed[0]));
    }
    if sealed.len() != 1 + ENC + epochs.len() * KEY + TAG {
        return Err(SealError::Malformed(
            "length does not match the epochs named",
        ));
    }
    let plain = secret
        .open_sealed(&ctx.aad(secret.generation, epochs), &sealed[1..])
        .map_err(|e| match e {
            KeyError::Open => SealError::Aead,
            KeyError::Malformed | KeyError::BadRecipient | KeyError::UnknownKey => {
                SealError::Malformed("hpke")
            }
        })?;
    let mut out: Vec<(EpochId, EpochKey)> = Vec::with_capacity(epochs.len());
    for (rec, (id, commitment)) in plain.chunks_exact(KEY).zip(epochs) {
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(rec);
        let key = EpochKey::from_bytes(&k);
        if epoch_key_commitment(&key) != *commitment {
            return Err(SealError::CommitmentMismatch);
        }
        out.push((*id, key));
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

    fn refs(keys: &[(EpochId, &EpochKey)]) -> Vec<(EpochId, Commitment)> {
        let mut r: Vec<(EpochId, Commitment)> = keys
            .iter()
            .map(|(id, k)| (*id, epoch_key_commitment(k)))
            .collect();
        r.sort_by_key(|a| a.0);
        r
    }

    #[test]
    fn one_and_many_round_trip() {
        let mut rng = StdRng::seed_from_u64(7);
        let user = UserSecret::generate(4, &mut rng);
        let k1 = EpochKey::generate(&mut rng);
        let k2 = EpochKey::generate(&mut rng);
        let s = seal_epoch_key(&mut rng, &ctx(), &user.public(), 4, [9; 32], &k1).unwrap();
        let got = open_epoch_keys(&user, &ctx(), &refs(&[([9; 32], &k1)]), &s).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, [9; 32]);
        assert_eq!(got[0].1.as_bytes(), k1.as_bytes());
        // Many, given out of order: returned sorted.
        let keys = [([8; 32], &k2), ([5; 32], &k1)];
        let s = seal_epoch_keys(&mut rng, &ctx(), &user.public(), 4, &keys).unwrap();
        assert_eq!(s.len(), 1 + ENC + 2 * KEY + TAG);
        let got = open_epoch_keys(&user, &ctx(), &refs(&keys), &s).unwrap();
        assert_eq!(got[0].0, [5; 32]);
        assert_eq!(got[0].1.as_bytes(), k1.as_bytes());
        assert_eq!(got[1].0, [8; 32]);
        assert_eq!(got[1].1.as_bytes(), k2.as_bytes());
    }

    #[test]
    fn bound_to_context_recipient_generation_epochs_and_commitments() {
        let mut rng = StdRng::seed_from_u64(8);
        let user = UserSecret::generate(4, &mut rng);
        let k = EpochKey::generate(&mut rng);
        let r = refs(&[([9; 32], &k)]);
        let s = seal_epoch_key(&mut rng, &ctx(), &user.public(), 4, [9; 32], &k).unwrap();
        let open = |c: &EpochKeysContext, r: &[(EpochId, Commitment)], b: &[u8]| {
            open_epoch_keys(&user, c, r, b).map(|_| ())
        };
        let mut c = ctx();
        c.org = OrgId([0; 32]);
        assert_eq!(open(&c, &r, &s).unwrap_err(), SealError::Aead);
        let mut c = ctx();
        c.workspace = [0; 16];
        assert_eq!(open(&c, &r, &s).unwrap_err(), SealError::Aead);
        let mut c = ctx();
        c.user = UserId([0; 16]);
        assert_eq!(open(&c, &r, &s).unwrap_err(), SealError::Aead);
        // Another epoch id, or another commitment: the associated data differs.
        assert_eq!(
            open(&ctx(), &[([8; 32], r[0].1)], &s).unwrap_err(),
            SealError::Aead
        );
        assert_eq!(
            open(&ctx(), &[([9; 32], [0; 32])], &s).unwrap_err(),
            SealError::Aead
        );
        // Same secret bytes, announced as another generation.
        let regen = UserSecret::from_bytes(5, user.secret_bytes());
        assert_eq!(
            open_epoch_keys(&regen, &ctx(), &r, &s)
                .map(|_| ())
                .unwrap_err(),
            SealError::Aead
        );
        // Another user key.
        let other = UserSecret::generate(4, &mut rng);
        assert_eq!(
            open_epoch_keys(&other, &ctx(), &r, &s)
                .map(|_| ())
                .unwrap_err(),
            SealError::Aead
        );
        // Tampering, truncation, version.
        let mut t = s.clone();
        t[50] ^= 1;
        assert_eq!(open(&ctx(), &r, &t).unwrap_err(), SealError::Aead);
        assert!(matches!(
            open(&ctx(), &r, &s[..s.len() - 1]),
            Err(SealError::Malformed(_))
        ));
        let mut t = s.clone();
        t[0] = 1;
        assert_eq!(
            open(&ctx(), &r, &t).unwrap_err(),
            SealError::UnknownVersion(1)
        );
        assert!(matches!(
            open(&ctx(), &r, &vec![2; MAX_SEALED_EPOCH_KEYS_BYTES + 1]),
            Err(SealError::TooLarge { .. })
        ));
    }

    /// A sealer who knows a commitment (it is public) but not the key cannot pass off another
    /// key under it.
    #[test]
    fn a_key_that_does_not_match_its_commitment_is_refused() {
        let mut rng = StdRng::seed_from_u64(10);
        let user = UserSecret::generate(0, &mut rng);
        let (real, forged) = (EpochKey::generate(&mut rng), EpochKey::generate(&mut rng));
        let r = [([9u8; 32], epoch_key_commitment(&real))];
        let aad = ctx().aad(0, &r);
        let ct = seal_to(&mut rng, &user.public(), &aad, forged.as_bytes()).unwrap();
        let mut blob = vec![EPOCH_KEYS_V2];
        blob.extend_from_slice(&ct);
        assert_eq!(
            open_epoch_keys(&user, &ctx(), &r, &blob)
                .map(|_| ())
                .unwrap_err(),
            SealError::CommitmentMismatch
        );
    }

    #[test]
    fn refuses_empty_duplicate_unsorted_and_too_many() {
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
        let c = epoch_key_commitment(&k);
        let s = seal_epoch_keys(&mut rng, &ctx(), &p, 0, &[([1; 32], &k), ([2; 32], &k)]).unwrap();
        assert!(matches!(
            open_epoch_keys(&user, &ctx(), &[([2; 32], c), ([1; 32], c)], &s),
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
            open_epoch_keys(&user, &ctx(), &refs(&many[1..]), &s)
                .unwrap()
                .len(),
            MAX_EPOCHS_PER_BLOB
        );
    }
}
