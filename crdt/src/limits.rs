//! Size limits on everything the document accepts, local or remote.
//!
//! Invariant: every input from outside (names, labels, manifests, change bytes, saved documents) is
//! checked against these before it is stored; remote data that breaks them is rejected (change
//! bytes) or ignored deterministically when read (field values), never trusted.

/// Largest raw change (automerge chunk) accepted from a peer. Room for one version at
/// [`MAX_CHUNKS`] chunks (68 bytes each, about 17 MB) plus automerge's overhead.
pub const MAX_CHANGE_BYTES: usize = 24 << 20;
/// Largest entry name, in UTF-8 bytes.
pub const MAX_NAME: usize = 255;
/// Largest workspace title, in UTF-8 bytes.
pub const MAX_TITLE: usize = 255;
/// Largest author display string (user name, device label), in UTF-8 bytes.
pub const MAX_LABEL: usize = 64;
/// Most chunks in one manifest (256 GiB at the 1 MiB average chunk).
pub const MAX_CHUNKS: usize = 262_144;
/// Most shards a workspace may have.
pub const MAX_SHARDS: u16 = 4096;
/// Largest saved workspace accepted by `Workspace::load`.
pub const MAX_SAVED_BYTES: usize = 4 << 30;
/// Most changes held back for missing dependencies; past this `apply_remote` refuses more.
pub const MAX_HELD_CHANGES: usize = 1 << 20;
