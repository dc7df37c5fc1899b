//! Identifiers: stable random entry ids, version ids, and where they come from.
//!
//! Invariants: an [`EntryId`] never changes for the life of an entry (rename and move keep it);
//! [`EntryId::ROOT`] (all zero) is the implicit root folder and is never stored. Ids are made by a
//! caller-provided [`IdSource`], so the crate itself draws no randomness. Ids derived from other ids
//! (conflict copies) are BLAKE3 of a domain-separated input, so every replica derives the same id.

use std::fmt;

/// Length in bytes of entry and version ids.
pub const ID_LEN: usize = 16;

/// A stable, random 16-byte entry id. Entries are keyed by id, never by path.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntryId(pub [u8; ID_LEN]);

/// A random 16-byte id naming one content version of a file.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VersionId(pub [u8; ID_LEN]);

impl EntryId {
    /// The implicit root folder of every workspace.
    pub const ROOT: EntryId = EntryId([0; ID_LEN]);

    /// Lower-case hex, 32 characters (the form used in document keys).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 32 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        unhex16(s).map(EntryId)
    }

    /// True for [`EntryId::ROOT`].
    pub fn is_root(&self) -> bool {
        *self == Self::ROOT
    }
}

impl VersionId {
    /// Lower-case hex, 32 characters.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 32 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        unhex16(s).map(VersionId)
    }
}

impl fmt::Debug for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E:{}", &self.to_hex()[..8])
    }
}
impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "V:{}", &self.to_hex()[..8])
    }
}
impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Where new ids come from. The node implements it over its CSPRNG; tests use [`SeededIds`].
pub trait IdSource {
    /// Fills 16 fresh random bytes.
    fn next_bytes(&mut self) -> [u8; ID_LEN];

    /// A fresh entry id (never the root id).
    fn entry_id(&mut self) -> EntryId {
        loop {
            let id = EntryId(self.next_bytes());
            if !id.is_root() {
                return id;
            }
        }
    }

    /// A fresh version id.
    fn version_id(&mut self) -> VersionId {
        VersionId(self.next_bytes())
    }
}

/// A deterministic [`IdSource`] (SplitMix64) for tests, benchmarks and simulations.
/// Not for production: ids must be unpredictable across devices.
#[derive(Debug, Clone)]
pub struct SeededIds {
    state: u64,
}

impl SeededIds {
    /// A generator from a seed; equal seeds give equal sequences.
    pub fn new(seed: u64) -> Self {
        SeededIds { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl IdSource for SeededIds {
    fn next_bytes(&mut self) -> [u8; ID_LEN] {
        let mut out = [0u8; ID_LEN];
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        out
    }
}

/// The id of the conflict copy of `entry`'s losing version `version`: the same on every replica.
pub(crate) fn conflict_copy_id(entry: EntryId, version: VersionId) -> EntryId {
    let mut h = blake3::Hasher::new_derive_key("cloison-crdt 2026 conflict copy entry v1");
    h.update(&entry.0);
    h.update(&version.0);
    let mut out = [0u8; ID_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..ID_LEN]);
    EntryId(out)
}

/// The version id under which a promoted conflict copy stores its (copied) version.
pub(crate) fn conflict_copy_version(entry: EntryId, version: VersionId) -> VersionId {
    let mut h = blake3::Hasher::new_derive_key("cloison-crdt 2026 conflict copy version v1");
    h.update(&entry.0);
    h.update(&version.0);
    let mut out = [0u8; ID_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..ID_LEN]);
    VersionId(out)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex16(s: &str) -> Option<[u8; ID_LEN]> {
    let b = s.as_bytes();
    if b.len() != ID_LEN * 2 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; ID_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let mut ids = SeededIds::new(7);
        let id = ids.entry_id();
        assert_eq!(EntryId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(EntryId::from_hex("zz"), None);
        assert_eq!(
            EntryId::from_hex(&"A".repeat(32)),
            None,
            "upper case is not canonical"
        );
    }
}
