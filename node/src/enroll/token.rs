//! The invitation token: what an admin hands to the invitee out of band, as one copyable string.
//!
//! Format (version 1), frozen by `enroll/vectors/token_v1.txt`:
//!
//! ```text
//! bytes  = 0x01 || org (32) || greeter device (32) || secret (16) || n u8 || (len u8 || addr)*n
//! string = base58(bytes || check), check = BLAKE3-derive-key("cloison 2026 token check v1", bytes)[..4]
//! ```
//!
//! `addr` are the greeter's multiaddresses as text (at most [`MAX_ADDRS`], each at most
//! [`MAX_ADDR`] bytes). The greeter device's key is its libp2p PeerId.
//!
//! Invariants: the secret zeroizes on drop and never prints; decoding is bounded
//! ([`MAX_TOKEN_CHARS`]), checks the checksum first, and refuses trailing bytes.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::EnrollError;
use crate::trust::{DeviceId, OrgId};

/// Version byte of a token.
pub const TOKEN_V1: u8 = 0x01;
/// Most greeter addresses in a token.
pub const MAX_ADDRS: usize = 4;
/// Longest address, in bytes.
pub const MAX_ADDR: usize = 128;
/// Longest token string accepted.
pub const MAX_TOKEN_CHARS: usize = 1024;

const CHECK_DOMAIN: &str = "cloison 2026 token check v1";
const ID_DOMAIN: &str = "cloison 2026 invitation id v1";
const PSK_DOMAIN: &str = "cloison 2026 invitation psk v1";

/// The 128-bit secret of an invitation.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct InvitationSecret([u8; 16]);

impl InvitationSecret {
    /// Wraps secret bytes (drawn by the caller).
    pub fn from_bytes(b: [u8; 16]) -> Self {
        InvitationSecret(b)
    }

    /// The raw bytes (for the store, sealed).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The invitation's id: public, derived from the secret so a claimer can name the
    /// invitation without revealing the secret.
    pub fn id(&self) -> InvitationId {
        let k = blake3::derive_key(ID_DOMAIN, &self.0);
        let mut id = [0u8; 16];
        id.copy_from_slice(&k[..16]);
        InvitationId(id)
    }

    /// The Noise pre-shared key.
    pub fn psk(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(blake3::derive_key(PSK_DOMAIN, &self.0))
    }
}

impl fmt::Debug for InvitationSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InvitationSecret(..)")
    }
}

/// An invitation's public id.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct InvitationId(pub [u8; 16]);

impl fmt::Display for InvitationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for InvitationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InvitationId({})", hex::encode(&self.0[..4]))
    }
}

/// A decoded token.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Token {
    /// The organization.
    pub org: OrgId,
    /// The greeting device (its key is its PeerId).
    pub greeter: DeviceId,
    /// The secret.
    pub secret: InvitationSecret,
    /// Where to reach the greeter (multiaddresses as text).
    pub addrs: Vec<String>,
}

impl Token {
    /// The token's bytes (before base58).
    pub fn to_bytes(&self) -> Result<Vec<u8>, EnrollError> {
        if self.addrs.len() > MAX_ADDRS || self.addrs.iter().any(|a| a.len() > MAX_ADDR) {
            return Err(EnrollError::Token("too many or too long addresses"));
        }
        let mut b = Vec::with_capacity(82 + self.addrs.len() * 40);
        b.push(TOKEN_V1);
        b.extend_from_slice(&self.org.0);
        b.extend_from_slice(&self.greeter.0);
        b.extend_from_slice(&self.secret.0);
        b.push(self.addrs.len() as u8);
        for a in &self.addrs {
            b.push(a.len() as u8);
            b.extend_from_slice(a.as_bytes());
        }
        Ok(b)
    }

    /// The copyable string.
    pub fn encode(&self) -> Result<String, EnrollError> {
        let mut b = self.to_bytes()?;
        let check = blake3::derive_key(CHECK_DOMAIN, &b);
        b.extend_from_slice(&check[..4]);
        let s = bs58::encode(&b).into_string();
        b.zeroize();
        Ok(s)
    }

    /// Parses a token string (whitespace anywhere is ignored, so a token split over lines
    /// still reads).
    pub fn decode(s: &str) -> Result<Token, EnrollError> {
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.is_empty() || compact.len() > MAX_TOKEN_CHARS {
            return Err(EnrollError::Token("empty or too long"));
        }
        let mut b = bs58::decode(&compact)
            .into_vec()
            .map_err(|_| EnrollError::Token("not base58 (a character was mistyped?)"))?;
        let r = Self::parse_checked(&b);
        b.zeroize();
        r
    }

    fn parse_checked(b: &[u8]) -> Result<Token, EnrollError> {
        if b.len() < 4 {
            return Err(EnrollError::Token("too short"));
        }
        let (body, check) = b.split_at(b.len() - 4);
        if blake3::derive_key(CHECK_DOMAIN, body)[..4] != *check {
            return Err(EnrollError::Token(
                "checksum mismatch (the token was altered or cut)",
            ));
        }
        Self::from_bytes(body)
    }

    /// Parses the token's bytes (no checksum).
    pub fn from_bytes(b: &[u8]) -> Result<Token, EnrollError> {
        let mut r = Reader(b);
        if r.take(1)?[0] != TOKEN_V1 {
            return Err(EnrollError::Token("unknown token version"));
        }
        let org = OrgId(r.array()?);
        let greeter = DeviceId(r.array()?);
        let secret = InvitationSecret(r.array()?);
        let n = r.take(1)?[0] as usize;
        if n > MAX_ADDRS {
            return Err(EnrollError::Token("too many addresses"));
        }
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.take(1)?[0] as usize;
            if len > MAX_ADDR {
                return Err(EnrollError::Token("address too long"));
            }
            let a = std::str::from_utf8(r.take(len)?)
                .map_err(|_| EnrollError::Token("address is not text"))?;
            addrs.push(a.to_owned());
        }
        if !r.0.is_empty() {
            return Err(EnrollError::Token("trailing bytes"));
        }
        Ok(Token {
            org,
            greeter,
            secret,
            addrs,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EnrollError> {
        if self.0.len() < n {
            return Err(EnrollError::Token("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EnrollError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}
