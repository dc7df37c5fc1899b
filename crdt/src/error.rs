//! The crate's error type.
//!
//! Invariant: an operation that returns an error has left the workspace as it was (local edits
//! are validated before anything is written; remote changes are parsed and checked in full
//! before any is applied). The one exception is documented on [`CrdtError::Apply`].

use crate::ids::EntryId;

/// Why a workspace operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrdtError {
    /// The entry does not exist, or is not visible (deleted) where a live entry is needed.
    #[error("no such entry: {0}")]
    NotFound(EntryId),
    /// The operation needs a folder (as a parent) and got a file.
    #[error("not a folder: {0}")]
    NotAFolder(EntryId),
    /// The operation needs a file and got a folder.
    #[error("not a file: {0}")]
    NotAFile(EntryId),
    /// The root folder cannot be renamed, moved or deleted.
    #[error("the root folder cannot be changed")]
    IsRoot,
    /// A live entry with this name already exists in the folder.
    #[error("name already taken in the folder: {0:?}")]
    NameTaken(String),
    /// The name breaks the naming rules (empty, `.`/`..`, contains `/` or NUL, too long).
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    /// The workspace title breaks the rules (empty, too long, or contains control characters).
    #[error("invalid workspace title: {0}")]
    InvalidTitle(&'static str),
    /// The author's display strings break the limits.
    #[error("invalid author label (too long, or contains '/' or control characters)")]
    InvalidAuthor,
    /// The manifest's chunk lengths do not add up to its size.
    #[error("invalid manifest: chunk lengths do not add up to the size")]
    InvalidManifest,
    /// The move would put a folder inside itself.
    #[error("moving {0} there would create a cycle")]
    WouldCycle(EntryId),
    /// No such version in the entry's history.
    #[error("no such version")]
    NoSuchVersion,
    /// Some input is over a size limit.
    #[error("{what} is over the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A remote change names a shard this workspace does not have.
    #[error("shard index {index} out of range (workspace has {count})")]
    BadShard {
        /// The index given.
        index: u16,
        /// The number of documents (entry shards + settings).
        count: u16,
    },
    /// Change bytes that do not parse as an automerge change (or fail its checksum).
    #[error("malformed change at position {index} of the batch: {reason}")]
    MalformedChange {
        /// Position in the batch given to `apply_remote`.
        index: usize,
        /// The parser's explanation.
        reason: String,
    },
    /// Two changes of one batch claim the same actor and sequence number in one document.
    #[error("change at position {index} reuses an actor sequence number of another change")]
    ConflictingSeq {
        /// Position in the batch.
        index: usize,
    },
    /// A change whose hash differs from the one the caller expected.
    #[error("change at position {index} does not have the expected hash")]
    HashMismatch {
        /// Position in the batch.
        index: usize,
    },
    /// Automerge refused to apply parsed changes (e.g. an actor sequence number that the
    /// document already holds from another change). Automerge checks this before touching the
    /// shard, but documents of the batch handled earlier (lower shard index) stay applied; the
    /// caches are consistent with the documents either way.
    #[error("automerge refused the changes: {0}")]
    Apply(#[from] automerge::AutomergeError),
    /// Saved bytes that cannot be loaded.
    #[error("corrupt saved workspace: {0}")]
    CorruptSave(String),
    /// Automerge panicked while applying these changes (a bug of automerge that hostile change
    /// bytes reach, see `Workspace::apply_remote`). The panic was caught, but the documents may
    /// be half-changed: this workspace refuses everything from now on and must be rebuilt from
    /// its other changes, without these.
    #[error(
        "the document library failed on these changes: the document must be rebuilt without them"
    )]
    Poisoned,
}
