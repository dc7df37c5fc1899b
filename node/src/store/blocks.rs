//! Blocks in the store: their bytes in the packs, their place in `block_locs`, and the
//! workspaces each was stored for in `block_workspaces`.
//!
//! Invariants: a block is written only if its id is BLAKE3 of its bytes (checked here, or by the
//! caller that just computed it) and is checked again on every read; every block written is
//! tagged with the workspace it came with (a local write, a block fetched for a workspace, a
//! bundle item), even when its bytes were already stored for another; [`Store::block_for`]
//! serves a block only for a workspace it is tagged with, so a peer that may hold workspace A
//! cannot fetch B's blocks by naming their ids under A. A block with no tag at all was stored
//! before tags existed (schema 2 stores written by earlier builds) and is served as it was then.

use redb::{ReadableDatabase, ReadableTable};

use super::{BLOCK_WS, BLOCKS, Loc, Store, StoreError};
use crate::workspace::WorkspaceId;

/// A block to store: the workspace it came with, its id, its bytes.
pub type BlockIn<'a> = (WorkspaceId, &'a [u8; 32], &'a [u8]);

impl Store {
    /// Stores blocks whose id is BLAKE3 of their bytes (others are refused): the new ones are
    /// appended to the packs and synced, then indexed and tagged in one transaction. Returns how
    /// many were new.
    pub fn put_blocks(&self, blocks: &[BlockIn<'_>]) -> Result<usize, StoreError> {
        if blocks
            .iter()
            .any(|(_, id, b)| blake3::hash(b).as_bytes() != *id)
        {
            return Err(StoreError::Mismatch("block bytes do not match their id"));
        }
        self.put_hashed_blocks(blocks)
    }

    /// [`Store::put_blocks`] for blocks whose id the caller has just computed from these very
    /// bytes: the sealer (`seal`) and the sync engine (which checks every block it receives)
    /// both do, and hashing a gigabyte again cost 0.4 s on each side. Every read still checks.
    pub fn put_hashed_blocks(&self, blocks: &[BlockIn<'_>]) -> Result<usize, StoreError> {
        let mut new: Vec<(&[u8; 32], &[u8])> = Vec::new();
        let mut untagged: Vec<([u8; 32], [u8; 16])> = Vec::new();
        {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(BLOCKS)?;
            let tags = tx.open_table(BLOCK_WS)?;
            let mut seen = std::collections::HashSet::new();
            for (w, id, b) in blocks {
                if t.get(**id)?.is_none() && seen.insert(**id) {
                    new.push((id, b));
                }
                if tags.get((**id, w.0))?.is_none() {
                    untagged.push((**id, w.0));
                }
            }
        }
        if new.is_empty() && untagged.is_empty() {
            return Ok(0);
        }
        let bytes: Vec<&[u8]> = new.iter().map(|(_, b)| *b).collect();
        let locs = self.packs.append(&bytes)?;
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(BLOCKS)?;
            for ((id, _), loc) in new.iter().zip(&locs) {
                t.insert(**id, (loc.segment, loc.offset, loc.len))?;
            }
            let mut tags = tx.open_table(BLOCK_WS)?;
            for key in untagged {
                tags.insert(key, ())?;
            }
        }
        tx.commit()?;
        Ok(new.len())
    }

    /// A stored block (checked against its id), whatever workspace it was stored for: for this
    /// device's own reads (it holds the keys of what it reads).
    pub fn block(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let loc = {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(BLOCKS)?;
            t.get(*id)?.map(|v| {
                let (segment, offset, len) = v.value();
                Loc {
                    segment,
                    offset,
                    len,
                }
            })
        };
        match loc {
            Some(loc) => Ok(Some(self.packs.read(id, loc)?)),
            None => Ok(None),
        }
    }

    /// A stored block for a peer asking under workspace `w`: only if it was stored for `w` (or
    /// before tags existed, see the module doc).
    pub fn block_for(&self, w: WorkspaceId, id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        {
            let tx = self.db.begin_read()?;
            let tags = tx.open_table(BLOCK_WS)?;
            if tags.get((*id, w.0))?.is_none() {
                let any = tags.range((*id, [0u8; 16])..=(*id, [0xffu8; 16]))?.next();
                if any.is_some() {
                    return Ok(None);
                }
            }
        }
        self.block(id)
    }

    /// Whether a block is stored.
    pub fn has_block(&self, id: &[u8; 32]) -> Result<bool, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(BLOCKS)?;
        Ok(t.get(*id)?.is_some())
    }

    /// The ids of every stored block.
    pub fn block_ids(&self) -> Result<std::collections::HashSet<[u8; 32]>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(BLOCKS)?;
        let mut out = std::collections::HashSet::new();
        for row in t.iter()? {
            out.insert(row?.0.value());
        }
        Ok(out)
    }

    /// Blocks stored and the sum of their lengths (the relay's quota accounting).
    pub fn block_usage(&self) -> Result<(u64, u64), StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(BLOCKS)?;
        let (mut n, mut bytes) = (0u64, 0u64);
        for row in t.iter()? {
            let (_, _, len) = row?.1.value();
            n += 1;
            bytes += u64::from(len);
        }
        Ok((n, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_served_only_for_a_workspace_it_was_stored_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let (a, b, c) = (
            WorkspaceId([1; 16]),
            WorkspaceId([2; 16]),
            WorkspaceId([3; 16]),
        );
        let bytes = b"ciphertext of a block of A".to_vec();
        let id = *blake3::hash(&bytes).as_bytes();
        assert_eq!(store.put_blocks(&[(a, &id, &bytes)]).unwrap(), 1);
        assert_eq!(store.block_for(a, &id).unwrap(), Some(bytes.clone()));
        assert_eq!(
            store.block_for(b, &id).unwrap(),
            None,
            "served under another workspace"
        );
        assert_eq!(store.block(&id).unwrap(), Some(bytes.clone()));
        // The same bytes stored for B too (rare: convergent ids differ per workspace): tagged,
        // not stored twice.
        assert_eq!(store.put_blocks(&[(b, &id, &bytes)]).unwrap(), 0);
        assert_eq!(store.block_for(b, &id).unwrap(), Some(bytes.clone()));
        assert_eq!(store.block_for(c, &id).unwrap(), None);
        assert_eq!(store.block_for(a, &[9; 32]).unwrap(), None);
    }
}
