//! Size buckets: the padding that keeps a block's length from telling its plaintext's length.
//!
//! A chunk of `L` bytes is encrypted as `P = bucket(L + 4)` bytes:
//!
//! ```text
//! padded = plaintext (L) || 0x00 * (P - L - 4) || L as u32 LE
//! bucket(n) = 512                 if n <= 512
//!           = Padmé(n)            otherwise
//! Padmé(n)  = n rounded up to a multiple of 2^(E - S), E = floor(log2 n), S = floor(log2 E) + 1
//! ```
//!
//! **Why Padmé** (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
//! Communication with PURBs", PETS 2019): a padded length reveals only O(log log L) bits of `L`
//! (its top `S` bits), and the overhead shrinks as sizes grow, unlike power-of-two buckets (up to
//! 100 %). For the chunk sizes we produce (256 KiB..4 MiB, E = 18..22, S = 5) the rounding unit is
//! 1/32 of the chunk's power of two: at most 3.1 % more bytes, about 1.6 % on average, stored and
//! sent. Small chunks (a file's tail, small files) pay at most 6.25 % above 512 bytes (S = 4);
//! everything up to 508 bytes becomes the same 512-byte bucket, so small files are
//! indistinguishable by size.
//!
//! Invariants: the padding is canonical (one padded form per plaintext: zeros only, the exact
//! bucket of the declared length), so a block decodes to exactly one plaintext and [`unpad`]
//! refuses anything else; `bucket` is idempotent, so [`is_bucket`] can reject impossible lengths
//! before any decryption.

use super::error::SealError;

/// The smallest padded size: everything shorter looks the same.
pub const MIN_PADDED: usize = 512;
/// Bytes of the length trailer at the end of the padded plaintext.
pub const TRAILER: usize = 4;

/// Padmé rounding of `n` (`n >= 2`).
fn padme(n: usize) -> usize {
    let e = usize::BITS - 1 - n.leading_zeros(); // floor(log2 n)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let last_bits = e.saturating_sub(s);
    let mask = (1usize << last_bits) - 1;
    n.saturating_add(mask) & !mask
}

/// The padded size of a bucket holding `n` bytes (plaintext plus trailer).
pub fn bucket(n: usize) -> usize {
    if n <= MIN_PADDED {
        MIN_PADDED
    } else {
        padme(n)
    }
}

/// The padded length of a plaintext of `plain_len` bytes (what the block's ciphertext will be).
pub fn padded_len(plain_len: usize) -> usize {
    bucket(plain_len.saturating_add(TRAILER))
}

/// Whether `p` is a size that [`padded_len`] can produce.
pub fn is_bucket(p: usize) -> bool {
    p >= MIN_PADDED && bucket(p) == p
}

/// Appends the padding for the `plain_len` bytes that end `buf`. `plain_len` must fit a `u32`
/// (callers bound it by [`super::block::MAX_CHUNK`]).
pub(crate) fn pad(buf: &mut Vec<u8>, plain_len: usize) {
    let p = padded_len(plain_len);
    let zeros = p - plain_len - TRAILER;
    buf.resize(buf.len() + zeros, 0);
    let declared = u32::try_from(plain_len).unwrap_or(u32::MAX);
    buf.extend_from_slice(&declared.to_le_bytes());
}

/// Checks the padding of `padded` and returns the plaintext length it declares.
pub fn unpad(padded: &[u8]) -> Result<usize, SealError> {
    let p = padded.len();
    let trailer_at = p.checked_sub(TRAILER).ok_or(SealError::BadPadding)?;
    let mut le = [0u8; TRAILER];
    le.copy_from_slice(&padded[trailer_at..]);
    let len = u32::from_le_bytes(le) as usize;
    if len > trailer_at || padded_len(len) != p {
        return Err(SealError::BadPadding);
    }
    // OR-fold rather than `all`: no early exit, so the compiler vectorizes it.
    if padded[len..trailer_at].iter().fold(0u8, |a, &b| a | b) != 0 {
        return Err(SealError::BadPadding);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_padme_with_a_floor() {
        assert_eq!(padded_len(0), 512);
        assert_eq!(padded_len(508), 512);
        assert_eq!(padded_len(509), 544); // 513 → multiple of 32
        assert_eq!(padded_len(1 << 20), (1 << 20) + (1 << 15)); // 1 MiB + 4 → next 32 KiB
        assert_eq!(padded_len((1 << 20) - 4), 1 << 20);
        assert_eq!(padded_len(4 << 20), (4 << 20) + (1 << 17));
        for n in [
            0usize,
            1,
            100,
            508,
            509,
            1000,
            4096,
            65_536,
            300_000,
            1 << 20,
            4 << 20,
        ] {
            let p = padded_len(n);
            assert!(p >= n + TRAILER);
            assert!(is_bucket(p), "{n} → {p}");
            assert_eq!(bucket(p), p, "idempotent");
            if n + TRAILER > MIN_PADDED {
                // Overhead bound of Padmé: under 2^-S of the size, S >= 4 here.
                assert!((p - n - TRAILER) * 16 <= n + TRAILER, "{n} → {p}");
            }
        }
        assert!(!is_bucket(511));
        assert!(!is_bucket(513));
    }

    #[test]
    fn unpad_is_strict() {
        for n in [0usize, 5, 508, 509, 5000] {
            let mut b: Vec<u8> = (0..n).map(|i| (i % 251) as u8 + 1).collect();
            pad(&mut b, n);
            assert_eq!(b.len(), padded_len(n));
            assert_eq!(unpad(&b), Ok(n));
            // A non-zero padding byte.
            if b.len() - n > TRAILER {
                let mut bad = b.clone();
                bad[n] = 1;
                assert_eq!(unpad(&bad), Err(SealError::BadPadding));
            }
            // A declared length longer than the bucket, or whose bucket is another one.
            let mut lies = vec![b.len() - TRAILER + 1, u32::MAX as usize];
            if padded_len(100) != b.len() {
                lies.push(100);
            }
            for declared in lies {
                let mut bad = b.clone();
                let at = bad.len() - TRAILER;
                bad[at..].copy_from_slice(&(declared as u32).to_le_bytes());
                assert_eq!(
                    unpad(&bad),
                    Err(SealError::BadPadding),
                    "declared {declared}"
                );
            }
        }
        assert_eq!(unpad(&[0, 0, 0]), Err(SealError::BadPadding));
    }
}
