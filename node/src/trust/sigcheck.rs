//! Batch verification of Ed25519 signatures with the cofactored equation (ZIP 215), with one
//! term per distinct key.
//!
//! For signatures `(R_i, s_i)` by keys `A_i` on messages `M_i`, with `h_i = SHA-512(R_i || A_i ||
//! M_i)` and 128-bit coefficients `z_i` drawn from a hash of every input (so an attacker cannot
//! choose signatures after seeing them), the batch is valid iff
//!
//! ```text
//! [8] ( -(Σ z_i s_i) B + Σ z_i R_i + Σ_A (Σ_{i: A_i = A} z_i h_i) A ) = 0
//! ```
//!
//! This is the same equation as `ed25519_dalek::verify_batch`, with the terms of each distinct
//! key merged: an organization log is signed mostly by a few admin devices, so a cold start
//! computes one multiscalar multiplication of about `n + keys` points instead of `2n`.
//! A batch of one is the cofactored single verification, so every device reaches the same verdict
//! for every signature whatever its batch sizes (see ARCHITECTURE.md, "Signatures").
//!
//! Invariants: `s` must be canonical (`< l`); `R` must decompress; keys are checked (valid, not of
//! small order) by the caller before they get here. Pure computation, no I/O.

use std::collections::HashMap;

use curve25519_dalek::{
    constants::ED25519_BASEPOINT_POINT,
    edwards::{CompressedEdwardsY, EdwardsPoint},
    scalar::Scalar,
    traits::{IsIdentity, VartimeMultiscalarMul},
};
use sha2::{Digest, Sha512};

/// One signature to check.
pub struct Item<'a> {
    /// The signer's key, compressed (as hashed into `h`).
    pub key_bytes: &'a [u8; 32],
    /// The signer's key, decompressed.
    pub key: &'a EdwardsPoint,
    /// The signing domain, prefixed to the message.
    pub domain: &'a [u8],
    /// The signed bytes.
    pub msg: &'a [u8],
    /// `R || s`.
    pub sig: &'a [u8; 64],
}

/// Whether every signature of the batch is valid (cofactored equation).
pub fn verify(items: &[Item<'_>]) -> bool {
    if items.is_empty() {
        return true;
    }
    let mut seed = blake3::Hasher::new_derive_key("cloison 2026 batch-verify coefficients v1");
    let mut rs = Vec::with_capacity(items.len());
    let mut ss = Vec::with_capacity(items.len());
    let mut hs = Vec::with_capacity(items.len());
    for it in items {
        let mut r_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&it.sig[..32]);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&it.sig[32..]);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let Some(r) = CompressedEdwardsY(r_bytes).decompress() else {
            return false;
        };
        let mut h = Sha512::new();
        h.update(r_bytes);
        h.update(it.key_bytes);
        h.update(it.domain);
        h.update(it.msg);
        let digest: [u8; 64] = h.finalize().into();
        seed.update(&digest);
        seed.update(&s_bytes);
        rs.push(r);
        ss.push(s);
        hs.push(Scalar::from_bytes_mod_order_wide(&digest));
    }
    let mut xof = seed.finalize_xof();
    let mut b_coeff = Scalar::ZERO;
    let mut scalars: Vec<Scalar> = Vec::with_capacity(items.len() * 2 + 1);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(items.len() * 2 + 1);
    let mut key_slot: HashMap<&[u8; 32], usize> = HashMap::new();
    let mut key_scalars: Vec<Scalar> = Vec::new();
    let mut key_points: Vec<EdwardsPoint> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let mut zb = [0u8; 32];
        xof.fill(&mut zb[..16]);
        let z = Scalar::from_bytes_mod_order(zb);
        b_coeff += z * ss[i];
        scalars.push(z);
        points.push(rs[i]);
        let slot = *key_slot.entry(it.key_bytes).or_insert_with(|| {
            key_scalars.push(Scalar::ZERO);
            key_points.push(*it.key);
            key_points.len() - 1
        });
        key_scalars[slot] += z * hs[i];
    }
    scalars.extend(key_scalars);
    points.extend(key_points);
    scalars.push(-b_coeff);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    fn signed(seed: u8, msg: &[u8]) -> ([u8; 32], EdwardsPoint, [u8; 64]) {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let mut m = b"dom".to_vec();
        m.extend_from_slice(msg);
        let sig = sk.sign(&m).to_bytes();
        let vk = sk.verifying_key();
        (vk.to_bytes(), vk.to_edwards(), sig)
    }

    proptest! {
        /// Agrees with ed25519-dalek on valid signatures and on single-bit forgeries.
        #[test]
        fn agrees_with_dalek(n in 1usize..12, keys in 1u8..4, flip in proptest::option::of((0usize..12, 0usize..64, 0u8..8))) {
            let msgs: Vec<Vec<u8>> = (0..n).map(|i| format!("message {i}").into_bytes()).collect();
            let mut sigs: Vec<_> = (0..n).map(|i| signed(1 + (i as u8 % keys), &msgs[i])).collect();
            if let Some((i, byte, bit)) = flip {
                let i = i % n;
                sigs[i].2[byte] ^= 1 << bit;
            }
            let items: Vec<Item<'_>> = sigs.iter().zip(&msgs).map(|((kb, k, s), m)| Item {
                key_bytes: kb, key: k, domain: b"dom", msg: m, sig: s }).collect();
            let ours = verify(&items);
            let full: Vec<Vec<u8>> = msgs.iter().map(|m| [b"dom".as_slice(), m].concat()).collect();
            let refs: Vec<&[u8]> = full.iter().map(Vec::as_slice).collect();
            let ds: Vec<_> = sigs.iter().map(|s| ed25519_dalek::Signature::from_bytes(&s.2)).collect();
            let ks: Vec<_> = sigs.iter().map(|s| ed25519_dalek::VerifyingKey::from_bytes(&s.0).unwrap()).collect();
            let theirs = ed25519_dalek::verify_batch(&refs, &ds, &ks).is_ok();
            prop_assert_eq!(ours, theirs);
            prop_assert_eq!(ours, flip.is_none());
        }
    }

    #[test]
    fn wrong_domain_or_message_fails() {
        let (kb, k, s) = signed(7, b"hello");
        let ok = Item {
            key_bytes: &kb,
            key: &k,
            domain: b"dom",
            msg: b"hello",
            sig: &s,
        };
        assert!(verify(&[ok]));
        let bad = Item {
            key_bytes: &kb,
            key: &k,
            domain: b"dom2",
            msg: b"hello",
            sig: &s,
        };
        assert!(!verify(&[bad]));
        let mut high_s = s;
        high_s[63] |= 0xf0;
        let bad = Item {
            key_bytes: &kb,
            key: &k,
            domain: b"dom",
            msg: b"hello",
            sig: &high_s,
        };
        assert!(!verify(&[bad]));
    }
}
