//! Workspace identifiers and roles.
//!
//! Invariants: ids are fixed-size byte arrays with a total order; roles are totally ordered from
//! READER up to OWNER, so "at least CONTRIBUTOR" is a comparison.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A workspace (random 16 bytes).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkspaceId(pub [u8; 16]);

/// An envelope: BLAKE3 of its bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EnvelopeId(pub [u8; 32]);

impl WorkspaceId {
    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut b = [0u8; 16];
        hex::decode_to_slice(s, &mut b).ok()?;
        Some(WorkspaceId(b))
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
impl fmt::Debug for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkspaceId({})", hex::encode(&self.0[..6]))
    }
}
impl fmt::Display for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
impl fmt::Debug for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvelopeId({})", hex::encode(&self.0[..6]))
    }
}

/// A member's role, ordered from least to most power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Reads.
    Reader,
    /// Reads and writes content.
    Contributor,
    /// Also grants READER and CONTRIBUTOR, removes them, and rotates keys.
    Manager,
    /// Everything.
    Owner,
}

impl Role {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Contributor => "contributor",
            Role::Manager => "manager",
            Role::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "reader" => Ok(Role::Reader),
            "contributor" => Ok(Role::Contributor),
            "manager" => Ok(Role::Manager),
            "owner" => Ok(Role::Owner),
            o => Err(format!(
                "unknown role {o:?} (owner, manager, contributor or reader)"
            )),
        }
    }
}
