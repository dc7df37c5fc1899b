//! `node::enroll` (sans-IO): enrolment by invitation token and short codes (DESIGN §7).
//!
//! - [`token`]: the invitation token (organization, greeter device and addresses, 128-bit
//!   secret) as one copyable string; the invitation id and the Noise PSK derived from the secret.
//! - [`handshake`]: `Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s` as two state machines,
//!   [`Claimer`] and [`Greeter`], ending in a [`Session`] with the short [`Codes`].
//! - [`msg`]: the packets and the messages after the handshake (`Claim`, `Welcome`, ...).
//! - [`offline`]: the same exchange carried in a request file and an answer file.
//!
//! Codes: each side derives two 6-digit codes from the handshake hash, one per direction; each
//! person reads theirs aloud and types the other's. A code typed wrong aborts both sides.
//! Offline, the claimer's code also mixes in a [`Challenge`] the greeter draws after reading
//! the request (commit before reveal: see [`offline`]).
//!
//! Invariants: no I/O, no clock, no ambient randomness (seeds are inputs); secrets (the
//! invitation secret, the PSK, the organization key and sealed user keys in a `Welcome`)
//! zeroize on drop and never print.

pub mod handshake;
pub mod msg;
pub mod offline;
pub mod token;

#[cfg(test)]
mod tests;

pub use handshake::{Claimer, Greeter, Session};
pub use msg::{Claim, GreetMsg, NewUser, Packet, RefuseStatus, Secret32, Welcome};
pub use offline::{Challenge, OfflineClaimer, OfflineGreeter};
pub use token::{InvitationId, InvitationSecret, Token};

/// Why an enrolment step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollError {
    /// The token does not parse.
    #[error("invalid invitation token: {0}")]
    Token(&'static str),
    /// A message does not parse or breaks a limit.
    #[error("malformed greeting message: {0}")]
    Malformed(&'static str),
    /// The Noise handshake or decryption failed (wrong token secret, or tampering).
    #[error("the secure channel failed (wrong or forged token?)")]
    Noise,
    /// The greeter refused the invitation.
    #[error("{}", .0.message())]
    Refused(RefuseStatus),
    /// An air-gapped file of version 1 (before the greeter's challenge).
    #[error(
        "this {0} file was made by an older cloison (version 1, without the admin's challenge): \
         the claimer must make a new request with this version"
    )]
    OldOffline(&'static str),
    /// A name or label is empty, too long or not printable.
    #[error(transparent)]
    Text(#[from] crate::trust::author::TextError),
}

/// The two short codes of a session: the greeter's (read by the admin, typed by the claimer)
/// and the claimer's (read by the claimer, typed by the admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codes {
    /// The greeter's code.
    pub greeter: String,
    /// The claimer's code.
    pub claimer: String,
}

impl Codes {
    /// Both codes from a Noise handshake hash.
    pub fn from_hash(h: &[u8]) -> Codes {
        Codes {
            greeter: code_of("cloison 2026 greeter code v1", h),
            claimer: code_of("cloison 2026 claimer code v1", h),
        }
    }
}

pub(super) fn code_of(domain: &str, h: &[u8]) -> String {
    let d = blake3::derive_key(domain, h);
    let n = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]) % 1_000_000;
    format!("{n:06}")
}

/// A code as typed: digits only (spaces, dashes and the like are ignored).
pub fn normalize_code(typed: &str) -> String {
    typed.chars().filter(char::is_ascii_digit).collect()
}

/// Does `typed` match `expected`?
pub fn code_matches(typed: &str, expected: &str) -> bool {
    normalize_code(typed) == expected
}

/// Three decoys and the right code, in a seed-determined order (for a UI that lets the admin
/// pick the claimer's code instead of typing it).
pub fn code_choices(right: &str, seed: [u8; 32]) -> Vec<String> {
    let mut out = vec![right.to_owned()];
    let mut i = 0u8;
    while out.len() < 4 && i < 64 {
        let c = code_of("cloison 2026 code decoy v1", &[&seed[..], &[i]].concat());
        if !out.contains(&c) {
            out.push(c);
        }
        i += 1;
    }
    out.sort();
    out
}
