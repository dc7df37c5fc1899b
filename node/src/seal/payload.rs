//! Content payloads: the encrypted part of a content envelope (automerge changes).
//!
//! ```text
//! payload = 0x01 || nonce (24, random) || XChaCha20-Poly1305(k, plaintext, aad) (ciphertext || tag 16)
//! k       = BLAKE3-derive-key("cloison 2026 content v1", epoch_key (32) || workspace id (16))
//! aad     = the envelope's clear header bytes, as the caller passes them
//! ```
//!
//! The key is per (epoch, workspace), so an epoch key can never open another workspace's
//! payloads even if it were reused; the header as associated data binds the payload to its
//! envelope (org, workspace, epoch, author, parents, time), so it cannot be moved to another one.
//! Nonces are 24 random bytes from the caller's CSPRNG: with XChaCha's 192-bit nonces, random
//! nonces never collide in practice, whatever the number of writers of an epoch.
//!
//! Invariants: the epoch key zeroizes on drop and never prints; sizes are bounded on both sides
//! ([`MAX_PAYLOAD_BYTES`], [`MAX_AAD_BYTES`]), so what we seal is always openable; a refusal is a
//! typed [`SealError`], never a panic; randomness comes from the caller (sans-IO).

use std::fmt;

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{AeadInOut, KeyInit},
};
use rand::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::{SealError, check_len};

/// Format byte of a content payload.
pub const PAYLOAD_V1: u8 = 0x01;
/// Nonce bytes.
pub const NONCE_BYTES: usize = 24;
/// Tag bytes.
pub const TAG_BYTES: usize = 16;
/// Fixed overhead of a sealed payload.
pub const OVERHEAD: usize = 1 + NONCE_BYTES + TAG_BYTES;
/// Largest sealed payload (an envelope is at most 2 MiB, header and signature included).
pub const MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;
/// Largest plaintext that [`seal_payload`] accepts.
pub const MAX_PLAINTEXT_BYTES: usize = MAX_PAYLOAD_BYTES - OVERHEAD;
/// Largest associated data (an envelope header is at most 8 KiB).
pub const MAX_AAD_BYTES: usize = 16 * 1024;

const CONTENT_CONTEXT: &str = "cloison 2026 content v1";

/// A workspace epoch's key: 32 random bytes, sealed to every member of the epoch.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EpochKey([u8; 32]);

impl EpochKey {
    /// A fresh key (a new epoch).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        let key = EpochKey(k);
        k.zeroize();
        key
    }
    /// Rebuilds a key from its bytes.
    pub fn from_bytes(b: &[u8; 32]) -> Self {
        EpochKey(*b)
    }
    /// The key bytes (for sealing to members and to the device's store).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EpochKey(..)")
    }
}

/// The payload key of one (epoch, workspace): derive it once, then seal or open many payloads.
/// (The cipher zeroizes its key on drop: chacha20poly1305's `zeroize` feature.)
#[derive(Clone)]
pub struct ContentKey {
    cipher: XChaCha20Poly1305,
}

impl ContentKey {
    /// `BLAKE3-derive-key("cloison 2026 content v1", epoch_key || workspace)`.
    pub fn derive(epoch_key: &EpochKey, workspace: &[u8; 16]) -> Self {
        let mut material = Zeroizing::new([0u8; 48]);
        material[..32].copy_from_slice(&epoch_key.0);
        material[32..].copy_from_slice(workspace);
        let key = Zeroizing::new(blake3::derive_key(CONTENT_CONTEXT, material.as_ref()));
        ContentKey {
            cipher: XChaCha20Poly1305::new(&(*key).into()),
        }
    }

    /// Seals `plaintext` with a random nonce from `rng`.
    pub fn seal<R: CryptoRng + ?Sized>(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rng.fill_bytes(&mut nonce);
        self.seal_with_nonce(aad, plaintext, &nonce)
    }

    /// Sealing with a given nonce: for the frozen test vectors only (a nonce must never repeat).
    pub(crate) fn seal_with_nonce(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        nonce: &[u8; NONCE_BYTES],
    ) -> Result<Vec<u8>, SealError> {
        check_len(plaintext.len(), MAX_PLAINTEXT_BYTES)?;
        check_len(aad.len(), MAX_AAD_BYTES)?;
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.push(PAYLOAD_V1);
        out.extend_from_slice(nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_inout_detached(
                &XNonce::from(*nonce),
                aad,
                (&mut out[1 + NONCE_BYTES..]).into(),
            )
            .map_err(|_| SealError::TooLarge {
                len: plaintext.len(),
                limit: MAX_PLAINTEXT_BYTES,
            })?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a payload sealed under this key with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        check_len(sealed.len(), MAX_PAYLOAD_BYTES)?;
        check_len(aad.len(), MAX_AAD_BYTES)?;
        if sealed.len() < OVERHEAD {
            return Err(SealError::Malformed("shorter than a payload"));
        }
        if sealed[0] != PAYLOAD_V1 {
            return Err(SealError::UnknownVersion(sealed[0]));
        }
        let (nonce, rest) = sealed[1..].split_at(NONCE_BYTES);
        let (ct, tag) = rest.split_at(rest.len() - TAG_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Malformed("nonce"))?;
        let tag = chacha20poly1305::Tag::try_from(tag).map_err(|_| SealError::Malformed("tag"))?;
        let mut out = ct.to_vec();
        self.cipher
            .decrypt_inout_detached(&nonce, aad, out.as_mut_slice().into(), &tag)
            .map_err(|_| SealError::Aead)?;
        Ok(out)
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

/// Seals a content payload: `0x01 || nonce || XChaCha20-Poly1305(k, plaintext, aad)`.
/// Derives the payload key each call; keep a [`ContentKey`] to seal many.
pub fn seal_payload<R: CryptoRng + ?Sized>(
    epoch_key: &EpochKey,
    workspace: &[u8; 16],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, SealError> {
    ContentKey::derive(epoch_key, workspace).seal(aad, plaintext, rng)
}

/// Opens what [`seal_payload`] sealed under the same epoch key, workspace and `aad`.
pub fn open_payload(
    epoch_key: &EpochKey,
    workspace: &[u8; 16],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, SealError> {
    ContentKey::derive(epoch_key, workspace).open(aad, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    const WS: [u8; 16] = [4; 16];

    #[test]
    fn round_trip_and_random_nonces() {
        let mut rng = StdRng::seed_from_u64(1);
        let k = EpochKey::generate(&mut rng);
        for n in [0usize, 1, 1024, 65_536] {
            let plain = vec![0x5a; n];
            let a = seal_payload(&k, &WS, b"header", &plain, &mut rng).unwrap();
            let b = seal_payload(&k, &WS, b"header", &plain, &mut rng).unwrap();
            assert_eq!(a.len(), OVERHEAD + n);
            assert_ne!(a, b, "fresh nonce each time");
            assert_eq!(open_payload(&k, &WS, b"header", &a).unwrap(), plain);
        }
        let max = vec![1u8; MAX_PLAINTEXT_BYTES];
        let s = seal_payload(&k, &WS, b"h", &max, &mut rng).unwrap();
        assert_eq!(s.len(), MAX_PAYLOAD_BYTES);
        assert_eq!(open_payload(&k, &WS, b"h", &s).unwrap(), max);
    }

    #[test]
    fn tampering_gives_typed_errors() {
        let mut rng = StdRng::seed_from_u64(2);
        let k = EpochKey::generate(&mut rng);
        let s = seal_payload(&k, &WS, b"header", b"automerge change", &mut rng).unwrap();
        let open = |k: &EpochKey, ws: &[u8; 16], aad: &[u8], s: &[u8]| open_payload(k, ws, aad, s);
        for at in [1, 30, s.len() - 1] {
            let mut t = s.clone();
            t[at] ^= 1;
            assert_eq!(
                open(&k, &WS, b"header", &t),
                Err(SealError::Aead),
                "at {at}"
            );
        }
        assert_eq!(open(&k, &WS, b"headex", &s), Err(SealError::Aead));
        assert_eq!(open(&k, &[5; 16], b"header", &s), Err(SealError::Aead));
        let other = EpochKey::generate(&mut rng);
        assert_eq!(open(&other, &WS, b"header", &s), Err(SealError::Aead));
        let mut t = s.clone();
        t[0] = 2;
        assert_eq!(
            open(&k, &WS, b"header", &t),
            Err(SealError::UnknownVersion(2))
        );
        assert_eq!(
            open(&k, &WS, b"header", &s[..s.len() - 1]),
            Err(SealError::Aead)
        );
        assert!(matches!(
            open(&k, &WS, b"header", &s[..OVERHEAD - 1]),
            Err(SealError::Malformed(_))
        ));
        assert!(matches!(
            open(&k, &WS, b"header", &vec![1; MAX_PAYLOAD_BYTES + 1]),
            Err(SealError::TooLarge { .. })
        ));
        assert!(matches!(
            open(&k, &WS, &vec![0; MAX_AAD_BYTES + 1], &s),
            Err(SealError::TooLarge { .. })
        ));
        assert!(matches!(
            seal_payload(&k, &WS, b"", &vec![0; MAX_PLAINTEXT_BYTES + 1], &mut rng),
            Err(SealError::TooLarge { .. })
        ));
        assert_eq!(format!("{k:?}"), "EpochKey(..)");
    }
}
