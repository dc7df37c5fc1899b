//! What the relay persists, behind a small trait so another backend can be added: per
//! organization, the log entries and envelopes (bytes as received) and the sealed blocks.
//! [`RelayStorage`] is implemented on the device store ([`Store`]: redb + pack files), one
//! store per organization under the relay's data directory.
//!
//! Invariants: only admitted items and blocks checked against their id are written; every call
//! is durable when it returns (the relay answers a device only after it returns); nothing is
//! ever deleted (retention: everything).

use crate::store::{BlockIn, Store, StoreError};
use crate::trust::{Entry, OrgId};
use crate::workspace::{Envelope, WorkspaceId};

/// How much an organization stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Envelopes.
    pub envelopes: u64,
    /// Bytes of envelopes and blocks.
    pub bytes: u64,
    /// Blocks.
    pub blocks: u64,
}

/// The relay's persistence of one organization.
pub trait RelayStorage {
    /// Records the organization (refuses a store of another one).
    fn set_org(&self, org: OrgId) -> Result<(), StoreError>;
    /// Every stored log entry.
    fn load_log(&self) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Stores admitted log entries.
    fn put_log_entries(&self, entries: &[&Entry]) -> Result<usize, StoreError>;
    /// The workspaces stored.
    fn workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError>;
    /// Every stored envelope of a workspace.
    fn load_workspace(&self, w: WorkspaceId) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Stores admitted envelopes.
    fn put_envelopes(&self, w: WorkspaceId, envelopes: &[&Envelope]) -> Result<usize, StoreError>;
    /// Stores blocks already checked against their ids.
    fn put_blocks(&self, blocks: &[BlockIn<'_>]) -> Result<usize, StoreError>;
    /// A block's bytes, for a device asking under workspace `w` (only blocks stored for `w`).
    fn block_for(&self, w: WorkspaceId, id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Whether a block is stored.
    fn has_block(&self, id: &[u8; 32]) -> Result<bool, StoreError>;
    /// Blocks stored and their total size.
    fn block_usage(&self) -> Result<(u64, u64), StoreError>;
}

impl RelayStorage for Store {
    fn set_org(&self, org: OrgId) -> Result<(), StoreError> {
        Store::set_org(self, org)
    }
    fn load_log(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Store::load_log(self)
    }
    fn put_log_entries(&self, entries: &[&Entry]) -> Result<usize, StoreError> {
        Store::put_log_entries(self, entries.iter().copied())
    }
    fn workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        Store::workspaces(self)
    }
    fn load_workspace(&self, w: WorkspaceId) -> Result<Vec<Vec<u8>>, StoreError> {
        Store::load_workspace(self, w)
    }
    fn put_envelopes(&self, w: WorkspaceId, envelopes: &[&Envelope]) -> Result<usize, StoreError> {
        Store::put_envelopes(self, w, envelopes.iter().copied())
    }
    fn put_blocks(&self, blocks: &[BlockIn<'_>]) -> Result<usize, StoreError> {
        Store::put_hashed_blocks(self, blocks)
    }
    fn block_for(&self, w: WorkspaceId, id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Store::block_for(self, w, id)
    }
    fn has_block(&self, id: &[u8; 32]) -> Result<bool, StoreError> {
        Store::has_block(self, id)
    }
    fn block_usage(&self) -> Result<(u64, u64), StoreError> {
        Store::block_usage(self)
    }
}
