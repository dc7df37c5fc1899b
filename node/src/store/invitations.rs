//! The `invitations` table: invitation records by id, as opaque bytes (the node seals them
//! under the organization key before they get here, so the token secret and the e-mail are
//! never on disk in clear).
//!
//! Invariant: at most [`MAX_INVITATIONS`] records; each write is one transaction.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::{INVITATIONS, Store, StoreError};

/// An invitation id and its sealed record.
pub type SealedInvitation = ([u8; 16], Vec<u8>);

/// Most invitation records kept.
pub const MAX_INVITATIONS: usize = 4096;

impl Store {
    /// Inserts or replaces an invitation record; false if the table is full.
    pub fn put_invitation(&self, id: &[u8; 16], sealed: &[u8]) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let ok = {
            let mut t = tx.open_table(INVITATIONS)?;
            if t.get(id)?.is_none() && t.len()? as usize >= MAX_INVITATIONS {
                false
            } else {
                t.insert(id, sealed)?;
                true
            }
        };
        tx.commit()?;
        Ok(ok)
    }

    /// Every invitation record: (id, sealed bytes).
    pub fn invitations(&self) -> Result<Vec<SealedInvitation>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = match tx.open_table(INVITATIONS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }
}
