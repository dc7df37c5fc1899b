//! Persistence on redb: one database file per device.
//!
//! Tables (schema version [`SCHEMA`]):
//! - `meta`: `&str -> &[u8]`: `schema` (one byte), `org` (32 bytes);
//! - `log_entries`: entry id -> the entry's bytes exactly as received;
//! - `log_by_time`: `(time, id) -> ()`: load order (a topological order, since an entry's time is
//!   after its parents');
//! - `log_heads`: entry id -> (): the DAG heads, maintained on insert, for O(heads) sync without
//!   loading the log;
//! - `ws_envelopes`: `(workspace, envelope id) -> bytes` exactly as received;
//! - `ws_by_time`: `(workspace, time, id) -> ()`: per-workspace load order (topological);
//! - `block_locs`: block id -> `(segment, offset, length)` of the block's bytes (ciphertext, as
//!   received) in the append-only pack files of `blocks/` beside the database (`packs`: why,
//!   and their invariants); the id is BLAKE3 of the bytes, checked on write and on every read;
//! - `block_workspaces`: `(block id, workspace) -> ()`: which workspaces a block was stored for
//!   (module `blocks`), so a block is served only to a peer asking for one of them;
//! - `dial`: multiaddress (text) -> unix ms it was added: where the daemon dials at start (the
//!   `cloison connect` targets and a joined device's greeter, kept across restarts);
//! - `dial_failures`: multiaddress -> daemon starts in a row at which the device it names did
//!   not connect (module `dial`: forgotten after `MAX_DIAL_FAILURES`);
//! - `mirrors`, `mirror_base`: folder mirrors and their last-synced state (module `mirrors`).
//!
//! Invariants: only entries that [`crate::trust::OrgLog`] admitted are written, so the store never
//! holds an unverified entry; every write is one redb transaction (all or nothing, durable on
//! commit); every table is created at open so reads never meet `TableDoesNotExist`; bytes read back
//! are still treated as hostile (the log re-verifies them on load).

mod blocks;
mod dial;
mod invitations;
mod mirrors;
mod packs;

use std::path::Path;

pub use blocks::BlockIn;
pub use dial::{DialEntry, MAX_DIAL_FAILURES};
pub use mirrors::{MirrorRecord, decode_base_entry, decode_mirror_record};
pub use packs::{Loc, PackError, Packs};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::trust::{Entry, EntryId, OrgId};
use crate::workspace::{Envelope, WorkspaceId};

/// Schema version of the database (2: block bytes moved to pack files).
pub const SCHEMA: u8 = 2;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const LOG_ENTRIES: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("log_entries");
const LOG_BY_TIME: TableDefinition<'_, (u64, [u8; 32]), ()> = TableDefinition::new("log_by_time");
const LOG_HEADS: TableDefinition<'_, [u8; 32], ()> = TableDefinition::new("log_heads");
const WS_ENVELOPES: TableDefinition<'_, ([u8; 16], [u8; 32]), &[u8]> =
    TableDefinition::new("ws_envelopes");
const WS_BY_TIME: TableDefinition<'_, ([u8; 16], u64, [u8; 32]), ()> =
    TableDefinition::new("ws_by_time");
const BLOCKS: TableDefinition<'_, [u8; 32], (u32, u64, u32)> = TableDefinition::new("block_locs");
const BLOCK_WS: TableDefinition<'_, ([u8; 32], [u8; 16]), ()> =
    TableDefinition::new("block_workspaces");
const INVITATIONS: TableDefinition<'_, [u8; 16], &[u8]> = TableDefinition::new("invitations");
const DIAL: TableDefinition<'_, &str, u64> = TableDefinition::new("dial");
/// Longest multiaddress kept in the dial table.
pub const MAX_DIAL_ADDR: usize = 512;
/// Most addresses kept in the dial table.
pub const MAX_DIAL: usize = 256;

/// Failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, corruption, or the file is open in another process).
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// The file belongs to another organization or schema.
    #[error("database mismatch: {0}")]
    Mismatch(&'static str),
    /// The block packs failed.
    #[error(transparent)]
    Pack(#[from] PackError),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The device's database.
pub struct Store {
    db: Database,
    packs: Packs,
}

impl Store {
    /// Opens (or creates) the database and its tables; checks the schema and, once set, the org.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            tx.open_table(LOG_ENTRIES)?;
            tx.open_table(LOG_BY_TIME)?;
            tx.open_table(LOG_HEADS)?;
            tx.open_table(WS_ENVELOPES)?;
            tx.open_table(WS_BY_TIME)?;
            tx.open_table(BLOCKS)?;
            tx.open_table(BLOCK_WS)?;
            tx.open_table(DIAL)?;
            tx.open_table(dial::DIAL_FAILURES)?;
            mirrors::create_tables(&tx)?;
            let schema = meta.get("schema")?.map(|v| v.value().to_vec());
            match schema.as_deref() {
                None => {
                    meta.insert("schema", [SCHEMA].as_slice())?;
                }
                Some([SCHEMA]) => {}
                Some(_) => return Err(StoreError::Mismatch("unknown schema version")),
            }
        }
        tx.commit()?;
        let packs = Packs::open(&path.parent().unwrap_or(Path::new(".")).join("blocks"))?;
        Ok(Store { db, packs })
    }

    /// The organization recorded in the store, if any.
    pub fn org(&self) -> Result<Option<OrgId>, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        let Some(v) = meta.get("org")? else {
            return Ok(None);
        };
        let bytes: [u8; 32] = v
            .value()
            .try_into()
            .map_err(|_| StoreError::Mismatch("org id of the wrong size"))?;
        Ok(Some(OrgId(bytes)))
    }

    /// Records the organization (once; a different one later is an error).
    pub fn set_org(&self, org: OrgId) -> Result<(), StoreError> {
        match self.org()? {
            Some(o) if o == org => return Ok(()),
            Some(_) => {
                return Err(StoreError::Mismatch(
                    "store belongs to another organization",
                ));
            }
            None => {}
        }
        let tx = self.db.begin_write()?;
        tx.open_table(META)?.insert("org", org.0.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Writes admitted entries (parents before children) in one transaction.
    pub fn put_log_entries<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<usize, StoreError> {
        let tx = self.db.begin_write()?;
        let mut n = 0;
        {
            let mut by_id = tx.open_table(LOG_ENTRIES)?;
            let mut by_time = tx.open_table(LOG_BY_TIME)?;
            let mut heads = tx.open_table(LOG_HEADS)?;
            for e in entries {
                let id = e.id().0;
                if by_id.get(id)?.is_some() {
                    continue;
                }
                by_id.insert(id, e.bytes())?;
                by_time.insert((e.body().time.0, id), ())?;
                for p in &e.body().parents {
                    heads.remove(p.0)?;
                }
                // A child stored earlier (possible only for entries that arrived out of order
                // and were stored in another batch) would already cover this one; entries are
                // admitted parents-first, so a new entry has no stored child.
                heads.insert(id, ())?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Every stored entry, parents before children.
    pub fn load_log(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read()?;
        let by_time = tx.open_table(LOG_BY_TIME)?;
        let by_id = tx.open_table(LOG_ENTRIES)?;
        let mut out = Vec::new();
        for row in by_time.iter()? {
            let (k, _) = row?;
            let (_, id) = k.value();
            if let Some(v) = by_id.get(id)? {
                out.push(v.value().to_vec());
            }
        }
        Ok(out)
    }

    /// Writes admitted envelopes of a workspace (parents before children) in one transaction.
    pub fn put_envelopes<'a>(
        &self,
        workspace: WorkspaceId,
        envelopes: impl IntoIterator<Item = &'a Envelope>,
    ) -> Result<usize, StoreError> {
        let tx = self.db.begin_write()?;
        let mut n = 0;
        {
            let mut by_id = tx.open_table(WS_ENVELOPES)?;
            let mut by_time = tx.open_table(WS_BY_TIME)?;
            for e in envelopes {
                let key = (workspace.0, e.id().0);
                if by_id.get(key)?.is_some() {
                    continue;
                }
                by_id.insert(key, e.bytes())?;
                by_time.insert((workspace.0, e.header().time.0, e.id().0), ())?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// The workspaces with stored envelopes.
    pub fn workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        let tx = self.db.begin_read()?;
        let by_time = tx.open_table(WS_BY_TIME)?;
        let mut out: Vec<WorkspaceId> = Vec::new();
        for row in by_time.iter()? {
            let (k, _) = row?;
            let (w, _, _) = k.value();
            if out.last() != Some(&WorkspaceId(w)) {
                out.push(WorkspaceId(w));
            }
        }
        Ok(out)
    }

    /// Every stored envelope of a workspace, parents before children.
    pub fn load_workspace(&self, workspace: WorkspaceId) -> Result<Vec<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read()?;
        let by_time = tx.open_table(WS_BY_TIME)?;
        let by_id = tx.open_table(WS_ENVELOPES)?;
        let w = workspace.0;
        let mut out = Vec::new();
        for row in by_time.range((w, 0u64, [0u8; 32])..=(w, u64::MAX, [0xff; 32]))? {
            let (k, _) = row?;
            let (_, _, id) = k.value();
            if let Some(v) = by_id.get((w, id))? {
                out.push(v.value().to_vec());
            }
        }
        Ok(out)
    }

    /// Remembers an address to dial at start (an address given again loses its failures).
    /// Returns false (and keeps nothing) for an address over [`MAX_DIAL_ADDR`] bytes or once
    /// [`MAX_DIAL`] are kept.
    pub fn add_dial(&self, addr: &str, now_ms: u64) -> Result<bool, StoreError> {
        if addr.len() > MAX_DIAL_ADDR {
            return Ok(false);
        }
        let tx = self.db.begin_write()?;
        let ok = {
            let mut t = tx.open_table(DIAL)?;
            if t.get(addr)?.is_some() {
                tx.open_table(dial::DIAL_FAILURES)?.remove(addr)?;
                true
            } else if t.len()? as usize >= MAX_DIAL {
                false
            } else {
                t.insert(addr, now_ms)?;
                true
            }
        };
        tx.commit()?;
        Ok(ok)
    }

    /// The addresses to dial at start.
    pub fn dial_addrs(&self) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(DIAL)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            out.push(row?.0.value().to_owned());
        }
        Ok(out)
    }

    /// The stored DAG heads, sorted.
    pub fn log_heads(&self) -> Result<Vec<EntryId>, StoreError> {
        let tx = self.db.begin_read()?;
        let heads = tx.open_table(LOG_HEADS)?;
        let mut out = Vec::new();
        for row in heads.iter()? {
            out.push(EntryId(row?.0.value()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::Clock;

    #[test]
    fn entries_survive_reopen_in_load_order_with_heads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let f = crate::testkit::Fixture::new(1);
        let log = &f.org;
        let genesis = f.entries().remove(0);
        let org = log.org();
        {
            let store = Store::open(&path).unwrap();
            store.set_org(org).unwrap();
            assert_eq!(store.put_log_entries(log.entries()).unwrap(), 1);
            assert_eq!(
                store.put_log_entries(log.entries()).unwrap(),
                0,
                "idempotent"
            );
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.org().unwrap(), Some(org));
        assert!(store.set_org(OrgId([9; 32])).is_err());
        assert_eq!(store.load_log().unwrap(), vec![genesis]);
        assert_eq!(store.log_heads().unwrap(), log.heads());
    }

    #[test]
    fn envelopes_survive_reopen_per_workspace_in_load_order() {
        use crate::workspace::{AccessChange, Kind, WorkspaceLog, envelope::encode_payload};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let f = crate::testkit::Fixture::new(2);
        let (org, device) = (&f.org, &f.admin.keys);
        let mut clock = Clock::default();
        let w = WorkspaceId([5; 16]);
        let mut log = WorkspaceLog::new(org.org(), w);
        for (i, kind) in [Kind::Access, Kind::Merge, Kind::Merge]
            .into_iter()
            .enumerate()
        {
            let payload = if kind == Kind::Access {
                encode_payload(&AccessChange::Create)
            } else {
                Vec::new()
            };
            let b = log
                .draft(org, device, &mut clock, 10 + i as u64, kind, None, |_| {
                    payload
                })
                .unwrap();
            assert!(log.ingest(vec![b], org).is_clean());
        }
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.put_envelopes(w, log.envelopes()).unwrap(), 3);
            assert_eq!(store.put_envelopes(w, log.envelopes()).unwrap(), 0);
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.workspaces().unwrap(), vec![w]);
        let loaded = store.load_workspace(w).unwrap();
        let expected: Vec<Vec<u8>> = log.envelopes().iter().map(|e| e.bytes().to_vec()).collect();
        assert_eq!(loaded, expected);
        assert!(
            store
                .load_workspace(WorkspaceId([6; 16]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn blocks_are_checked_against_their_id_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let b = b"ciphertext".to_vec();
        let id = *blake3::hash(&b).as_bytes();
        {
            let store = Store::open(&path).unwrap();
            let w = WorkspaceId([1; 16]);
            assert_eq!(store.put_blocks(&[(w, &id, &b)]).unwrap(), 1);
            assert_eq!(store.put_blocks(&[(w, &id, &b)]).unwrap(), 0);
            assert!(store.put_blocks(&[(w, &[0; 32], &b)]).is_err());
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.block(&id).unwrap(), Some(b));
        assert_eq!(store.block(&[0; 32]).unwrap(), None);
        assert!(store.workspaces().unwrap().is_empty());
    }

    #[test]
    fn a_second_open_of_the_same_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let _a = Store::open(&path).unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::Db(_))));
    }
}
