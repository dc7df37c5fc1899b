//! The addresses the daemon dials at start (table `dial`, written by `cloison connect` and by
//! `cloison join` with the greeter's addresses) and how they fare (table `dial_failures`):
//! per address, the daemon starts in a row at which the device it names did not connect.
//!
//! Invariants: a failure count exists only for an address in `dial`; an address whose count
//! reaches [`MAX_DIAL_FAILURES`] leaves both tables in the same transaction; a success, or the
//! address given again (`cloison connect`), clears its count.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{DIAL, Store, StoreError};

pub(super) const DIAL_FAILURES: TableDefinition<'_, &str, u32> =
    TableDefinition::new("dial_failures");
/// Daemon starts in a row at which a remembered address's device did not connect, after which
/// the address is forgotten.
pub const MAX_DIAL_FAILURES: u32 = 3;

/// A remembered address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialEntry {
    /// The multiaddress, as given.
    pub addr: String,
    /// Unix ms it was added.
    pub added_ms: u64,
    /// Daemon starts in a row at which its device did not connect.
    pub failures: u32,
}

impl Store {
    /// Every remembered address, with its failures.
    pub fn dial_entries(&self) -> Result<Vec<DialEntry>, StoreError> {
        let tx = self.db.begin_read()?;
        let dial = tx.open_table(DIAL)?;
        let fails = tx.open_table(DIAL_FAILURES)?;
        let mut out = Vec::new();
        for row in dial.iter()? {
            let (k, v) = row?;
            let addr = k.value().to_owned();
            let failures = fails.get(addr.as_str())?.map_or(0, |f| f.value());
            out.push(DialEntry {
                addr,
                added_ms: v.value(),
                failures,
            });
        }
        Ok(out)
    }

    /// Records whether the device `addr` names connected after a daemon start dialled it.
    /// Returns true if the address was forgotten (its [`MAX_DIAL_FAILURES`]th failure in a row).
    pub fn dial_outcome(&self, addr: &str, reached: bool) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let forgotten = {
            let mut dial = tx.open_table(DIAL)?;
            let mut fails = tx.open_table(DIAL_FAILURES)?;
            if reached || dial.get(addr)?.is_none() {
                fails.remove(addr)?;
                false
            } else {
                let n = fails.get(addr)?.map_or(0, |f| f.value()).saturating_add(1);
                if n >= MAX_DIAL_FAILURES {
                    dial.remove(addr)?;
                    fails.remove(addr)?;
                    true
                } else {
                    fails.insert(addr, n)?;
                    false
                }
            }
        };
        tx.commit()?;
        Ok(forgotten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_forgotten_after_repeated_failures_and_a_success_clears_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("store.redb")).unwrap();
        let (good, bad) = ("/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2");
        assert!(s.add_dial(good, 5).unwrap());
        assert!(s.add_dial(bad, 6).unwrap());
        for _ in 0..MAX_DIAL_FAILURES - 1 {
            assert!(!s.dial_outcome(good, false).unwrap());
            assert!(!s.dial_outcome(bad, false).unwrap());
        }
        // The good one connects once: its count starts again.
        assert!(!s.dial_outcome(good, true).unwrap());
        let e = s.dial_entries().unwrap();
        assert_eq!(e.iter().map(|d| d.failures).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(e[0].added_ms, 5);
        // Giving an address again clears its count too.
        assert!(s.add_dial(bad, 7).unwrap());
        assert_eq!(s.dial_entries().unwrap()[1].failures, 0);
        for _ in 0..MAX_DIAL_FAILURES - 1 {
            assert!(!s.dial_outcome(bad, false).unwrap());
        }
        assert!(s.dial_outcome(bad, false).unwrap());
        assert_eq!(s.dial_addrs().unwrap(), [good]);
        // An address not remembered gets no count.
        assert!(!s.dial_outcome(bad, false).unwrap());
        assert!(s.dial_entries().unwrap().iter().all(|d| d.failures == 0));
    }
}
