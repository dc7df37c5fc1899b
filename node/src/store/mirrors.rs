//! Tables of the folder mirrors (`cloison sync`):
//! - `mirrors`: workspace -> postcard [`MirrorRecord`] (the local directory): the mirrors the
//!   daemon restores at start;
//! - `mirror_base`: `(workspace, path) -> postcard BaseEntry`: each mirror's last-synced state
//!   (what both sides agreed on at each path), so a restarted mirror neither re-sends nor
//!   mistakes anything for a deletion.
//!
//! Invariants: a base update is one transaction (all of a round or nothing); rows that do not
//! decode are skipped with a warning (they only cost a re-hash); removing a mirror removes its
//! base.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{Store, StoreError};
use crate::node::folder::plan::BaseEntry;
use crate::workspace::WorkspaceId;

const MIRRORS: TableDefinition<'_, [u8; 16], &[u8]> = TableDefinition::new("mirrors");
const MIRROR_BASE: TableDefinition<'_, ([u8; 16], &str), &[u8]> =
    TableDefinition::new("mirror_base");

/// A registered mirror.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MirrorRecord {
    /// The local directory (absolute).
    pub dir: String,
    /// Unix ms it was registered.
    pub added_ms: u64,
}

/// Decodes a row of the `mirrors` table (hostile: the store is not trusted more than the
/// network). Public for the fuzz targets (`fuzz/`).
pub fn decode_mirror_record(bytes: &[u8]) -> Result<MirrorRecord, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// Decodes a row of the `mirror_base` table. Public for the fuzz targets (`fuzz/`).
pub fn decode_base_entry(bytes: &[u8]) -> Result<BaseEntry, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// Creates the mirror tables (at open).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(MIRRORS)?;
    tx.open_table(MIRROR_BASE)?;
    Ok(())
}

impl Store {
    /// Registers (or re-points) a mirror.
    pub fn put_mirror(&self, ws: WorkspaceId, rec: &MirrorRecord) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(rec)
            .map_err(|_| StoreError::Mismatch("mirror record does not encode"))?;
        let tx = self.db.begin_write()?;
        tx.open_table(MIRRORS)?.insert(ws.0, bytes.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// The registered mirrors.
    pub fn mirrors(&self) -> Result<Vec<(WorkspaceId, MirrorRecord)>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(MIRRORS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            match decode_mirror_record(v.value()) {
                Ok(r) => out.push((WorkspaceId(k.value()), r)),
                Err(e) => tracing::warn!("mirror record does not decode: {e}"),
            }
        }
        Ok(out)
    }

    /// Forgets a mirror and its last-synced state.
    pub fn remove_mirror(&self, ws: WorkspaceId) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let had = {
            let had = tx.open_table(MIRRORS)?.remove(ws.0)?.is_some();
            let mut t = tx.open_table(MIRROR_BASE)?;
            let keys: Vec<String> = t
                .range((ws.0, "")..)?
                .map_while(|r| r.ok())
                .take_while(|(k, _)| k.value().0 == ws.0)
                .map(|(k, _)| k.value().1.to_owned())
                .collect();
            for k in keys {
                t.remove((ws.0, k.as_str()))?;
            }
            had
        };
        tx.commit()?;
        Ok(had)
    }

    /// A mirror's last-synced state.
    pub fn mirror_base(
        &self,
        ws: WorkspaceId,
    ) -> Result<std::collections::BTreeMap<String, BaseEntry>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(MIRROR_BASE)?;
        let mut out = std::collections::BTreeMap::new();
        for row in t.range((ws.0, "")..)? {
            let (k, v) = row?;
            let (w, path) = k.value();
            if w != ws.0 {
                break;
            }
            match decode_base_entry(v.value()) {
                Ok(b) => {
                    out.insert(path.to_owned(), b);
                }
                Err(e) => tracing::warn!(path, "mirror state does not decode: {e}"),
            }
        }
        Ok(out)
    }

    /// Applies changes to a mirror's last-synced state in one transaction: `Some` writes, `None`
    /// removes.
    pub fn update_mirror_base(
        &self,
        ws: WorkspaceId,
        changes: &[(&str, Option<&BaseEntry>)],
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(MIRROR_BASE)?;
            for (path, b) in changes {
                match b {
                    Some(b) => {
                        let bytes = postcard::to_stdvec(b)
                            .map_err(|_| StoreError::Mismatch("mirror state does not encode"))?;
                        t.insert((ws.0, *path), bytes.as_slice())?;
                    }
                    None => {
                        t.remove((ws.0, *path))?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}
