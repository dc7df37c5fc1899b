//! Persistence on redb: one database file per device.
//!
//! Tables (schema version [`SCHEMA`]):
//! - `meta`: `&str -> &[u8]`: `schema` (one byte), `org` (32 bytes);
//! - `log_entries`: entry id -> the entry's bytes exactly as received;
//! - `log_by_time`: `(time, id) -> ()`: load order (a topological order, since an entry's time is
//!   after its parents');
//! - `log_heads`: entry id -> (): the DAG heads, maintained on insert, for O(heads) sync without
//!   loading the log.
//!
//! Invariants: only entries that [`crate::trust::OrgLog`] admitted are written, so the store never
//! holds an unverified entry; every write is one redb transaction (all or nothing, durable on
//! commit); every table is created at open so reads never meet `TableDoesNotExist`; bytes read back
//! are still treated as hostile (the log re-verifies them on load).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::trust::{Entry, EntryId, OrgId};

/// Schema version of the database.
pub const SCHEMA: u8 = 1;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const LOG_ENTRIES: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("log_entries");
const LOG_BY_TIME: TableDefinition<'_, (u64, [u8; 32]), ()> = TableDefinition::new("log_by_time");
const LOG_HEADS: TableDefinition<'_, [u8; 32], ()> = TableDefinition::new("log_heads");

/// Failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, corruption, or the file is open in another process).
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// The file belongs to another organization or schema.
    #[error("database mismatch: {0}")]
    Mismatch(&'static str),
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
        Ok(Store { db })
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
    use crate::trust::{Clock, OrgLog, author};

    #[test]
    fn entries_survive_reopen_in_load_order_with_heads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let mut rng = rand::rng();
        let mut clock = Clock::default();
        let n = author::create_org(
            &mut rng,
            1,
            &mut clock,
            "Org",
            &author::Newcomer {
                name: "A",
                email: "a@x",
                device_label: "d",
            },
        )
        .unwrap();
        let mut log = OrgLog::new(n.org);
        log.ingest(vec![n.genesis.clone()]);
        {
            let store = Store::open(&path).unwrap();
            store.set_org(n.org).unwrap();
            assert_eq!(store.put_log_entries(log.entries()).unwrap(), 1);
            assert_eq!(
                store.put_log_entries(log.entries()).unwrap(),
                0,
                "idempotent"
            );
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.org().unwrap(), Some(n.org));
        assert!(store.set_org(OrgId([9; 32])).is_err());
        assert_eq!(store.load_log().unwrap(), vec![n.genesis]);
        assert_eq!(store.log_heads().unwrap(), log.heads());
    }

    #[test]
    fn a_second_open_of_the_same_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let _a = Store::open(&path).unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::Db(_))));
    }
}
