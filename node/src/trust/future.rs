//! Items dated too far ahead of the local wall clock: held, neither admitted nor refused, until
//! the wall clock reaches them. One home for the organization log and the workspace logs.
//!
//! An author chooses its own timestamp. Admitting an entry dated at the end of time would make
//! every later entry impossible (a child must be dated after its parents), and a local clock
//! that observed it would jump there. So an item dated more than [`MAX_CLOCK_SKEW_MS`] after the
//! wall clock waits here; verdicts on admitted items stay a pure function of the DAG.
//!
//! Invariants: an item is held at most once; the hold is bounded in count
//! ([`MAX_FUTURE_ITEMS`]) and bytes ([`MAX_FUTURE_BYTES`]), so a hostile peer cannot grow it
//! past those; items leave in due order, only through [`FutureHold::take_due`].

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use super::ids::{Hlc, MAX_CLOCK_SKEW_MS};

/// Most items held for the wall clock, per log.
pub const MAX_FUTURE_ITEMS: usize = 4_096;
/// Most bytes held for the wall clock, per log.
pub const MAX_FUTURE_BYTES: usize = 8 << 20;

/// Whether an item dated `time` is too early to admit at wall time `wall_ms`.
pub fn too_early(time: Hlc, wall_ms: u64) -> bool {
    time.millis() > wall_ms.saturating_add(MAX_CLOCK_SKEW_MS)
}

/// The held items, by the wall time at which they become admissible.
#[derive(Debug, Clone)]
pub struct FutureHold<K, T> {
    by_due: BTreeMap<(u64, K), (T, usize)>,
    due_of: HashMap<K, u64>,
    bytes: usize,
}

impl<K, T> Default for FutureHold<K, T> {
    fn default() -> Self {
        FutureHold {
            by_due: BTreeMap::new(),
            due_of: HashMap::new(),
            bytes: 0,
        }
    }
}

impl<K: Ord + Hash + Copy, T> FutureHold<K, T> {
    /// Holds `item` (of `size` bytes, dated `time`); gives it back if the hold is full.
    pub fn hold(&mut self, id: K, time: Hlc, size: usize, item: T) -> Result<(), T> {
        if self.due_of.contains_key(&id) {
            return Ok(());
        }
        if self.by_due.len() >= MAX_FUTURE_ITEMS
            || self.bytes.saturating_add(size) > MAX_FUTURE_BYTES
        {
            return Err(item);
        }
        let due = time.millis().saturating_sub(MAX_CLOCK_SKEW_MS);
        self.by_due.insert((due, id), (item, size));
        self.due_of.insert(id, due);
        self.bytes += size;
        Ok(())
    }

    /// Whether `id` is held.
    pub fn contains(&self, id: &K) -> bool {
        self.due_of.contains_key(id)
    }

    /// Number of held items.
    pub fn len(&self) -> usize {
        self.by_due.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.by_due.is_empty()
    }

    /// Held items, in due order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.by_due.values().map(|(t, _)| t)
    }

    /// The wall time at which the first held item becomes admissible.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.by_due.keys().next().map(|(due, _)| *due)
    }

    /// Takes the items admissible at wall time `wall_ms`, in due order.
    pub fn take_due(&mut self, wall_ms: u64) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(entry) = self.by_due.first_entry() {
            if entry.key().0 > wall_ms {
                break;
            }
            let ((_, id), (item, size)) = entry.remove_entry();
            self.due_of.remove(&id);
            self.bytes -= size;
            out.push(item);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_wait_for_the_wall_clock_and_the_hold_is_bounded() {
        let mut h: FutureHold<u32, u32> = FutureHold::default();
        let at = |ms: u64| Hlc(ms << 16);
        assert!(!too_early(at(1_000 + MAX_CLOCK_SKEW_MS), 1_000));
        assert!(too_early(at(1_001 + MAX_CLOCK_SKEW_MS), 1_000));
        assert!(h.hold(1, at(5_000 + MAX_CLOCK_SKEW_MS), 10, 1).is_ok());
        assert!(h.hold(2, Hlc::MAX, 10, 2).is_ok());
        assert!(h.hold(2, Hlc::MAX, 10, 2).is_ok(), "held once");
        assert_eq!(h.len(), 2);
        assert_eq!(h.next_due_ms(), Some(5_000));
        assert!(h.take_due(4_999).is_empty());
        assert_eq!(h.take_due(5_000), vec![1]);
        assert!(h.contains(&2) && !h.contains(&1));
        assert_eq!(
            h.hold(3, Hlc::MAX, MAX_FUTURE_BYTES, 3),
            Err(3),
            "bytes bound"
        );
        for i in 10..(MAX_FUTURE_ITEMS as u32 + 9) {
            assert!(h.hold(i, Hlc::MAX, 1, i).is_ok());
        }
        assert_eq!(h.hold(99_999, Hlc::MAX, 1, 0), Err(0), "count bound");
    }
}
