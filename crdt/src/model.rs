//! Plain data types of the workspace document: kinds, authors, manifests, versions, retention.
//!
//! Invariants: these are POD values with public fields; nothing here touches automerge. A
//! [`Manifest`] is valid when its chunk lengths add up to its size and it has at most
//! [`crate::limits::MAX_CHUNKS`] chunks ([`Manifest::validate`]).

use crate::error::CrdtError;
use crate::ids::VersionId;
use crate::limits;

/// What an entry is. Fixed when the entry is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A regular file with content versions.
    File,
    /// A folder; the only kind that can have children.
    Folder,
}

/// Who wrote a content version: the device (opaque id, e.g. its public key) and the display
/// strings used to name conflict copies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Author {
    /// The author device's id (32 opaque bytes; the node uses the device's public key).
    pub device: [u8; 32],
    /// The user's display name, at most [`limits::MAX_LABEL`] bytes, no `/` or control characters.
    pub user_name: String,
    /// The device's label, same limits as `user_name`.
    pub device_label: String,
}

impl Author {
    /// Checks the display strings' limits.
    pub fn validate(&self) -> Result<(), CrdtError> {
        for s in [&self.user_name, &self.device_label] {
            if s.len() > limits::MAX_LABEL || s.chars().any(|c| c == '/' || c.is_control()) {
                return Err(CrdtError::InvalidAuthor);
            }
        }
        Ok(())
    }
}

/// One chunk of a file's content, in order. Its `Debug` output leaves the key out, so logging a
/// manifest, version or tree node never leaks a decryption key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkRef {
    /// The chunk (block) id.
    pub id: [u8; 32],
    /// The chunk's convergent decryption key: readers of the (encrypted) document need it to
    /// open the block. Opaque bytes to this crate, but secret: the plaintext document (change
    /// bytes, saves) must never leave the node unsealed.
    pub key: [u8; 32],
    /// Plaintext length of the chunk in bytes.
    pub len: u32,
}

impl std::fmt::Debug for ChunkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkRef")
            .field("id", &self.id)
            .field("key", &format_args!("<redacted>"))
            .field("len", &self.len)
            .finish()
    }
}

/// The largest permission bits a manifest may carry (`rwxrwxrwx` plus setuid, setgid, sticky).
pub const MAX_MODE: u32 = 0o7777;

/// A file's content as the document records it: the bytes themselves live in blocks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Manifest {
    /// Size in bytes; equals the sum of the chunk lengths.
    pub size: u64,
    /// The ordered chunk list.
    pub chunks: Vec<ChunkRef>,
    /// Hash of the whole plaintext content.
    pub content_hash: [u8; 32],
    /// Modification time, unix milliseconds (given by the caller, never read from a clock).
    pub modified_ms: i64,
    /// Unix permission bits (`0o7777` at most) when the writer had them; `None` for a file put
    /// from a stream, and for versions written before modes were carried.
    pub mode: Option<u32>,
}

impl Manifest {
    /// The empty file.
    pub fn empty(modified_ms: i64) -> Self {
        Manifest {
            size: 0,
            chunks: Vec::new(),
            content_hash: [0; 32],
            modified_ms,
            mode: None,
        }
    }

    /// Checks the chunk count limit and that the chunk lengths add up to `size`.
    pub fn validate(&self) -> Result<(), CrdtError> {
        if self.chunks.len() > limits::MAX_CHUNKS {
            return Err(CrdtError::TooLarge {
                what: "chunk list",
                limit: limits::MAX_CHUNKS,
            });
        }
        let sum = self
            .chunks
            .iter()
            .try_fold(0u64, |acc, c| acc.checked_add(u64::from(c.len)));
        if sum != Some(self.size) || self.mode.is_some_and(|m| m > MAX_MODE) {
            return Err(CrdtError::InvalidManifest);
        }
        Ok(())
    }
}

/// One content version of a file, as kept in its history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// The version's id.
    pub id: VersionId,
    /// The content.
    pub manifest: Manifest,
    /// Who wrote it.
    pub author: Author,
    /// The versions this one supersedes (the current versions its writer saw). Empty for the first.
    pub preds: Vec<VersionId>,
    /// Set when this version restores an older one.
    pub restored_from: Option<VersionId>,
}

/// How much history to keep. Set by an owner; applied as a pure function of the document and
/// the `now` the caller passes, so replicas that pass the same `now` agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Retention {
    /// Keep every version (the default).
    #[default]
    KeepAll,
    /// Keep versions modified less than this many days before `now`.
    NewerThanDays(u32),
    /// Keep the last K versions of each file.
    LastK(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_the_chunk_key_out() {
        let c = ChunkRef {
            id: [1; 32],
            key: [0xab; 32],
            len: 7,
        };
        let shown = format!("{c:?}");
        assert!(
            shown.contains("<redacted>") && shown.contains("len: 7"),
            "{shown}"
        );
        assert!(
            !shown.contains("171"),
            "the key's bytes (0xab = 171) show: {shown}"
        );
    }
}
