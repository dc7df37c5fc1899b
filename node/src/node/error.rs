//! Failures of node operations, each with what a user needs to act on it.
//!
//! Invariant: every variant says what went wrong in words a user can act on; none carries a
//! secret.

use std::path::PathBuf;

use crate::keystore::KeystoreError;
use crate::store::StoreError;
use crate::trust::{Rejection, author};

/// Failures of node operations, each with what a user needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The key file failed (missing, wrong passphrase, damaged).
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `init` on a home that already has a device.
    #[error("{0} already holds a device; use another --home")]
    AlreadyInitialized(PathBuf),
    /// No device in this home.
    #[error("no device in {0}: run `cloison init` (or join an organization) first")]
    NotInitialized(PathBuf),
    /// Creating the home failed.
    #[error("cannot use home directory {path}: {err}")]
    Home {
        /// The directory.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// A name, e-mail or label is not acceptable.
    #[error(transparent)]
    Text(#[from] author::TextError),
    /// Our own entry or envelope was refused by admission.
    #[error("refused: {0}")]
    Refused(String),
    /// The stored log did not load cleanly.
    #[error("stored organization log is damaged: {count} entries refused (first: {first})")]
    DamagedLog {
        /// How many.
        count: usize,
        /// The first reason.
        first: Rejection,
    },
    /// Nothing matches a user or device reference.
    #[error("no {what} matches {query:?}")]
    NotFound {
        /// "user" or "device".
        what: &'static str,
        /// The reference.
        query: String,
    },
    /// Several match.
    #[error("{query:?} matches several {what}s: {candidates}; give more of the id")]
    Ambiguous {
        /// "user" or "device".
        what: &'static str,
        /// The reference.
        query: String,
        /// Short ids of the matches.
        candidates: String,
    },
    /// The operation makes no sense here.
    #[error("{0}")]
    Invalid(String),
    /// Key sealing failed.
    #[error("key operation failed: {0}")]
    Key(#[from] crate::trust::keys::KeyError),
    /// A workspace key operation failed.
    #[error(transparent)]
    Keyring(#[from] crate::workspace::keyring::KeyringError),
    /// The workspace document refused an operation.
    #[error("{0}")]
    Document(#[from] cloison_crdt::CrdtError),
    /// Sealing or opening file contents failed.
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
    /// A local file could not be read or written.
    #[error("{path}: {err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// This device holds no key for the workspace yet (it was just shared with us, or our
    /// user key awaits rotation).
    #[error("no key for workspace {0} yet: wait for a member with the key to come online")]
    NoKey(String),
    /// Some of a file's blocks have not arrived yet.
    #[error("{path}: {missing} of its blocks have not arrived yet; try again once synced")]
    NotSynced {
        /// The file.
        path: String,
        /// How many blocks are missing.
        missing: usize,
    },
    /// The role does not allow the operation.
    #[error("your role in this workspace does not allow this ({0})")]
    Forbidden(String),
}
