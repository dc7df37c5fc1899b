//! The holding area of a log: items that wait (for missing parents, or parked for another reason
//! such as organization heads not yet known), released when what they wait for arrives. One home
//! for the organization log and the workspace logs.
//!
//! A held item is not admitted: anyone who can sign may send items whose parents never come, so
//! the area is bounded four ways ([`HeldLimits`]): in count, in bytes (the item's encoded size),
//! per *owner* (at most [`SHARE`]th of each, so one author cannot take the room of the others),
//! and in age (an item held longer than `max_age_ms` of wall time is dropped). A newcomer that
//! would pass a bound is refused; no held item is ever pushed out for it, so an author's
//! orphans cannot evict another author's items. Refused and dropped items are not lost: they
//! leave the reconciliation set, so peers offer them again, and once their parents are admitted
//! they no longer need holding.
//!
//! Invariants: an item is held once, under each parent it misses (a parked item under none); it
//! leaves when its last missing parent is admitted ([`Holding::admitted`]), when one of them is
//! refused ([`Holding::refused`]), when taken ([`Holding::take`]) or when it expires
//! ([`Holding::expire`]), never otherwise. The counters (items, bytes, per owner) always equal
//! the sums over the held items, and no bound is ever exceeded. Time is an input (the log's wall
//! clock); it never goes back here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

/// The fraction of the count and byte bounds one owner may take: 1/`SHARE`.
pub const SHARE: usize = 4;

/// How long the logs hold an item, in ms of wall time: twenty anti-entropy rounds, ten times
/// the time an id asked for stays reserved to one peer; past it the item is asked for again.
pub const MAX_HELD_AGE_MS: u64 = 10 * 60 * 1000;

/// The bounds of a holding area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLimits {
    /// Most items held.
    pub items: usize,
    /// Most bytes held (sum of the items' encoded sizes).
    pub bytes: usize,
    /// How long an item may stay held, in ms of wall time.
    pub max_age_ms: u64,
}

impl HeldLimits {
    /// Most items one owner may hold.
    pub fn owner_items(&self) -> usize {
        (self.items / SHARE).max(1)
    }

    /// Most bytes one owner may hold.
    pub fn owner_bytes(&self) -> usize {
        self.bytes / SHARE
    }
}

#[derive(Debug, Clone)]
struct Held<K, A, T> {
    item: T,
    parents: Vec<K>,
    owner: A,
    size: usize,
    since: u64,
    seq: u64,
}

/// Items and bytes held by one owner.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    items: usize,
    bytes: usize,
}

/// Items waiting, keyed by id `K`, accounted to an owner `A` (for the logs: the author when the
/// organization certifies it, else one shared bucket for all strangers).
#[derive(Debug, Clone)]
pub struct Holding<K, A, T> {
    items: HashMap<K, Held<K, A, T>>,
    /// Missing parent → the held items waiting for it.
    waiting: HashMap<K, BTreeSet<K>>,
    /// Held items in hold order (`seq`), so oldest first.
    order: BTreeMap<u64, K>,
    /// `seq` of the items held with no missing parent.
    parked: BTreeSet<u64>,
    owners: HashMap<A, Usage>,
    bytes: usize,
    limits: HeldLimits,
    /// The latest wall time given, `None` until one is.
    now: Option<u64>,
    seq: u64,
    expired: u64,
    full: u64,
}

impl<K: Copy + Eq + Hash + Ord, A: Copy + Eq + Hash, T> Holding<K, A, T> {
    /// An empty holding area within `limits`.
    pub fn new(limits: HeldLimits) -> Self {
        Holding {
            items: HashMap::new(),
            waiting: HashMap::new(),
            order: BTreeMap::new(),
            parked: BTreeSet::new(),
            owners: HashMap::new(),
            bytes: 0,
            limits,
            now: None,
            seq: 0,
            expired: 0,
            full: 0,
        }
    }

    /// Number of held items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes held (sum of the sizes given to [`Holding::hold`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Items and bytes held for `owner`.
    pub fn owner_usage(&self, owner: &A) -> (usize, usize) {
        self.owners
            .get(owner)
            .map_or((0, 0), |u| (u.items, u.bytes))
    }

    /// The bounds.
    pub fn limits(&self) -> HeldLimits {
        self.limits
    }

    /// Items dropped so far because they were held too long.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Items refused so far because a bound was reached.
    pub fn refused_full(&self) -> u64 {
        self.full
    }

    /// The held items.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.items.values().map(|h| &h.item)
    }

    /// Whether `id` is held.
    pub fn contains(&self, id: &K) -> bool {
        self.items.contains_key(id)
    }

    /// Holds `item` (of `size` bytes, accounted to `owner`) until every id in `parents` for which
    /// `present` is false arrives; with none missing it is *parked* until
    /// [`Holding::take`]. Gives the item back if a bound would be passed: the area's
    /// count or bytes, or the owner's share of either.
    pub fn hold(
        &mut self,
        id: K,
        item: T,
        parents: &[K],
        owner: A,
        size: usize,
        present: impl Fn(&K) -> bool,
    ) -> Result<(), T> {
        if self.items.contains_key(&id) {
            return Ok(());
        }
        let used = self.owners.get(&owner).copied().unwrap_or_default();
        if self.items.len() >= self.limits.items
            || self.bytes.saturating_add(size) > self.limits.bytes
            || used.items >= self.limits.owner_items()
            || used.bytes.saturating_add(size) > self.limits.owner_bytes()
        {
            self.full += 1;
            return Err(item);
        }
        let mut missing = 0;
        for p in parents.iter().filter(|p| !present(p)) {
            self.waiting.entry(*p).or_default().insert(id);
            missing += 1;
        }
        let seq = self.seq;
        self.seq += 1;
        if missing == 0 {
            self.parked.insert(seq);
        }
        self.order.insert(seq, id);
        let u = self.owners.entry(owner).or_default();
        u.items += 1;
        u.bytes += size;
        self.bytes += size;
        let since = self.now.unwrap_or(0);
        let parents = parents.to_vec();
        self.items.insert(
            id,
            Held {
                item,
                parents,
                owner,
                size,
                since,
                seq,
            },
        );
        Ok(())
    }

    /// Removes `id` and undoes its accounting.
    fn remove(&mut self, id: &K) -> Option<T> {
        let h = self.items.remove(id)?;
        for p in &h.parents {
            if let Some(w) = self.waiting.get_mut(p) {
                w.remove(id);
                if w.is_empty() {
                    self.waiting.remove(p);
                }
            }
        }
        self.order.remove(&h.seq);
        self.parked.remove(&h.seq);
        if let Some(u) = self.owners.get_mut(&h.owner) {
            u.items -= 1;
            u.bytes -= h.size;
            if u.items == 0 {
                self.owners.remove(&h.owner);
            }
        }
        self.bytes -= h.size;
        Some(h.item)
    }

    /// `id` was admitted: returns the held items that no longer miss any parent.
    pub fn admitted(&mut self, id: &K, present: impl Fn(&K) -> bool) -> Vec<T> {
        let mut ready = Vec::new();
        for c in self.waiting.remove(id).unwrap_or_default() {
            let complete = self
                .items
                .get(&c)
                .is_some_and(|h| h.parents.iter().all(|p| p == id || present(p)));
            if complete && let Some(item) = self.remove(&c) {
                ready.push(item);
            }
        }
        ready
    }

    /// `id` was refused: removes and returns every held item that descends from it.
    pub fn refused(&mut self, id: K) -> Vec<(K, T)> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            for c in self.waiting.remove(&id).unwrap_or_default() {
                if let Some(item) = self.remove(&c) {
                    out.push((c, item));
                    stack.push(c);
                }
            }
        }
        out
    }

    /// The parked items (held with no missing parent), oldest first, with their ids.
    pub fn parked(&self) -> impl Iterator<Item = (K, &T)> {
        self.parked
            .iter()
            .filter_map(|s| self.order.get(s))
            .filter_map(|id| self.items.get(id).map(|h| (*id, &h.item)))
    }

    /// Takes `id` out (a parked item whose wait is over), keeping every other item in place.
    pub fn take(&mut self, id: &K) -> Option<T> {
        self.remove(id)
    }

    /// Tells the area the wall time (`None`: not known yet; ages then start when it first is)
    /// and drops the items held `max_age_ms` or longer. Returns how many were dropped.
    pub fn expire(&mut self, now: Option<u64>) -> usize {
        let Some(now) = now else {
            return 0;
        };
        match self.now {
            None => {
                // Items held before any time was known are aged from now on.
                for h in self.items.values_mut() {
                    h.since = now;
                }
                self.now = Some(now);
            }
            Some(t) if now > t => self.now = Some(now),
            Some(_) => {}
        }
        let now = self.now.unwrap_or(now);
        let mut dropped = 0;
        // Stamps never decrease in hold order, so the oldest come first.
        while let Some((_, id)) = self.order.first_key_value() {
            let id = *id;
            let old = self
                .items
                .get(&id)
                .is_some_and(|h| now.saturating_sub(h.since) >= self.limits.max_age_ms);
            if !old {
                break;
            }
            self.remove(&id);
            dropped += 1;
        }
        self.expired += dropped as u64;
        dropped
    }

    /// Whether [`Holding::expire`] at `now` would drop something.
    pub fn has_expired(&self, now: Option<u64>) -> bool {
        let (Some(now), Some(_)) = (now, self.now) else {
            return false;
        };
        self.order
            .first_key_value()
            .and_then(|(_, id)| self.items.get(id))
            .is_some_and(|h| now.saturating_sub(h.since) >= self.limits.max_age_ms)
    }

    /// Missing parents that are not themselves held: what to ask peers for.
    pub fn missing(&self) -> BTreeSet<K> {
        self.waiting
            .keys()
            .filter(|k| !self.items.contains_key(k))
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests;
