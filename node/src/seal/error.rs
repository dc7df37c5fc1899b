//! `SealError`: why sealed bytes were refused (or could not be sealed).
//!
//! Invariants: one variant per reason, each with a stable [`SealError::label`] for metrics; no
//! variant carries secret material or plaintext; every refusal of hostile input is one of these
//! values, never a panic.

/// A sealed block, payload or key blob was refused, or input was out of bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Input larger than the format allows.
    #[error("too large: {len} bytes, limit {limit}")]
    TooLarge {
        /// Size received.
        len: usize,
        /// The limit it exceeds.
        limit: usize,
    },
    /// Shorter than the fixed parts of the format, or a length field that cannot be right.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// The format byte is not one we know.
    #[error("unknown format version {0:#04x}")]
    UnknownVersion(u8),
    /// The block's cipher-suite byte is not one we know.
    #[error("unknown cipher suite {0:#04x}")]
    UnknownSuite(u8),
    /// BLAKE3 of the received block bytes is not the id it was asked for under.
    #[error("block id does not match its bytes")]
    IdMismatch,
    /// The AEAD tag did not verify: wrong key, wrong associated data, or altered bytes.
    #[error("cannot decrypt: wrong key, wrong context or altered bytes")]
    Aead,
    /// Decrypted, but the padding is not the canonical one for the length it declares.
    #[error("bad padding")]
    BadPadding,
    /// The recipient's public key was refused by HPKE (for example a low-order point).
    #[error("invalid recipient key")]
    BadRecipient,
    /// A decrypted epoch key does not match the commitment its epoch published.
    #[error("epoch key does not match its epoch's commitment")]
    CommitmentMismatch,
}

impl SealError {
    /// A stable, short label (metrics, logs).
    pub fn label(&self) -> &'static str {
        match self {
            SealError::TooLarge { .. } => "too_large",
            SealError::Malformed(_) => "malformed",
            SealError::UnknownVersion(_) => "unknown_version",
            SealError::UnknownSuite(_) => "unknown_suite",
            SealError::IdMismatch => "id_mismatch",
            SealError::Aead => "aead_failed",
            SealError::BadPadding => "bad_padding",
            SealError::BadRecipient => "bad_recipient",
            SealError::CommitmentMismatch => "commitment_mismatch",
        }
    }
}

/// Refuses `len` above `limit`.
pub(crate) fn check_len(len: usize, limit: usize) -> Result<(), SealError> {
    if len > limit {
        Err(SealError::TooLarge { len, limit })
    } else {
        Ok(())
    }
}
