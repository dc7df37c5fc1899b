//! The organization log: a DAG of signed entries, admitted one by one against their causal past.
//!
//! [`OrgLog::ingest`] takes raw entries in any order and any batch size: it decodes them, checks
//! signatures in batches, holds entries whose parents are missing (bounded by
//! [`MAX_PENDING`]), and admits each entry once its parents are present if
//! [`admission`](super::admission) says its author could make it in the state of its causal past.
//!
//! Invariants:
//! - Only admitted entries are in the DAG; a refused entry leaves no trace but its
//!   [`Rejection`] in the report.
//! - An entry's verdict depends only on its ancestors, so it never changes and is the same on
//!   every device whatever the arrival order.
//! - The effective membership ([`OrgLog::state`]) is recomputed from the whole DAG after a change
//!   (revocation wins may drop entries that were admitted earlier, see [`super::state`]).

use std::collections::{BTreeSet, HashMap};

use super::admission::{self, CausalView, Index};
use super::entry::{self, Certificate, Entry, EntryBody};
use super::ids::{EntryId, Hlc, OrgId};
use super::rejection::Rejection;
use super::state::{Derived, OrgState};
use crate::dag::{Dag, Holding};

/// Most entries held while their parents are missing.
pub const MAX_PENDING: usize = 100_000;

/// What one [`OrgLog::ingest`] call did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// Entries admitted into the DAG, in admission order (parents first).
    pub admitted: Vec<EntryId>,
    /// Entries already known (admitted or waiting before this call).
    pub duplicates: usize,
    /// Entries refused, with why.
    pub rejected: Vec<(EntryId, Rejection)>,
}

impl IngestReport {
    /// Whether nothing was refused.
    pub fn is_clean(&self) -> bool {
        self.rejected.is_empty()
    }
}

/// The organization log of one device.
#[derive(Debug, Clone)]
pub struct OrgLog {
    org: OrgId,
    entries: Vec<Entry>,
    pos: HashMap<EntryId, u32>,
    dag: Dag,
    index: Index,
    /// Entries waiting for parents.
    pending: Holding<EntryId, Entry>,
    derived: std::sync::OnceLock<Derived>,
    /// The local wall clock as last told by the shell ([`OrgLog::set_wall`]); `None` until then.
    wall_ms: Option<u64>,
}

impl OrgLog {
    /// An empty log for the organization `org` (whose genesis must come first).
    pub fn new(org: OrgId) -> Self {
        OrgLog {
            org,
            entries: Vec::new(),
            pos: HashMap::new(),
            dag: Dag::new(),
            index: Index::default(),
            pending: Holding::new(MAX_PENDING),
            derived: std::sync::OnceLock::new(),
            wall_ms: None,
        }
    }

    /// Tells the log the local wall time (the shell calls this on every turn). Entries dated
    /// more than [`MAX_CLOCK_SKEW_MS`](super::ids::MAX_CLOCK_SKEW_MS) after it are held until
    /// the wall clock reaches them; this releases those that are now due.
    pub fn set_wall(&mut self, now_ms: u64) -> IngestReport {
        self.wall_ms = Some(self.wall_ms.map_or(now_ms, |w| w.max(now_ms)));
        IngestReport::default()
    }

    /// The local wall time last given to [`OrgLog::set_wall`]; workspace logs read it too, so
    /// that there is one wall clock per device.
    pub fn wall_ms(&self) -> Option<u64> {
        self.wall_ms
    }

    /// The organization.
    pub fn org(&self) -> OrgId {
        self.org
    }

    /// Number of admitted entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was admitted yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of entries waiting for parents.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The parents that waiting entries need and that this log lacks.
    pub fn missing(&self) -> BTreeSet<EntryId> {
        self.pending.missing()
    }

    /// Whether an entry is held for missing parents.
    pub fn is_held(&self, id: &EntryId) -> bool {
        self.pending.contains(id)
    }

    /// Entries held for missing parents (signature checked, not admitted).
    pub fn held(&self) -> impl Iterator<Item = &Entry> {
        self.pending.values()
    }

    /// An admitted entry.
    pub fn get(&self, id: &EntryId) -> Option<&Entry> {
        self.pos.get(id).map(|p| &self.entries[*p as usize])
    }

    /// Whether an entry is admitted.
    pub fn contains(&self, id: &EntryId) -> bool {
        self.pos.contains_key(id)
    }

    /// Admitted entries, parents before children.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The heads of the whole DAG (including entries that revocation dropped), sorted.
    pub fn heads(&self) -> Vec<EntryId> {
        let mut h: Vec<EntryId> = self
            .dag
            .heads()
            .map(|p| self.entries[p as usize].id())
            .collect();
        h.sort_unstable();
        h
    }

    /// The latest time among `ids` (to start a clock after them).
    pub fn max_time(&self, ids: &[EntryId]) -> Hlc {
        ids.iter()
            .filter_map(|id| self.get(id))
            .map(|e| e.body().time)
            .max()
            .unwrap_or_default()
    }

    /// Decodes, verifies and admits a batch of raw entries, in any order.
    pub fn ingest(&mut self, batch: Vec<Vec<u8>>) -> IngestReport {
        let mut report = IngestReport::default();
        let mut fresh = Vec::with_capacity(batch.len());
        let mut seen = std::collections::HashSet::new();
        let mut keys = entry::KeyCache::default();
        for bytes in batch {
            match entry::decode_with(bytes, &mut keys) {
                Ok(u) => {
                    if self.pos.contains_key(&u.id())
                        || self.pending.contains(&u.id())
                        || !seen.insert(u.id())
                    {
                        report.duplicates += 1;
                    } else {
                        fresh.push(u);
                    }
                }
                Err((id, r)) => report.rejected.push((id, r)),
            }
        }
        let mut verified = Vec::with_capacity(fresh.len());
        for r in entry::verify_batch(fresh) {
            match r {
                Ok(e) => verified.push(e),
                Err(rej) => report.rejected.push(rej),
            }
        }
        // Time order is a topological order for honest entries: parents first, fewer holds.
        verified.sort_by_key(|e| (e.body().time, e.id()));
        for e in verified {
            self.offer(e, &mut report);
        }
        report
    }

    /// Admits `e` now if its parents are present, else holds it.
    fn offer(&mut self, e: Entry, report: &mut IngestReport) {
        if let Err(r) = e.body().check_shape(&self.org) {
            report.rejected.push((e.id(), r));
            return;
        }
        let pos = &self.pos;
        if !e.body().parents.iter().all(|p| pos.contains_key(p)) {
            let id = e.id();
            let parents = e.body().parents.clone();
            if self
                .pending
                .hold(id, e, &parents, |p| pos.contains_key(p))
                .is_err()
            {
                report.rejected.push((id, Rejection::PendingFull));
            }
            return;
        }
        // Admit, then release whatever waited for it (iteratively, no recursion).
        let mut ready = vec![e];
        while let Some(e) = ready.pop() {
            let id = e.id();
            match self.admit(e) {
                Ok(()) => {
                    report.admitted.push(id);
                    let pos = &self.pos;
                    ready.extend(self.pending.admitted(&id, |p| pos.contains_key(p)));
                }
                Err(r) => {
                    report.rejected.push((id, r));
                    // Entries waiting for a refused entry can never be admitted.
                    for (c, _) in self.pending.refused(id) {
                        report
                            .rejected
                            .push((c, Rejection::ParentRefused { parent: id }));
                    }
                }
            }
        }
    }

    /// Checks `e` against its causal past and appends it to the DAG.
    fn admit(&mut self, e: Entry) -> Result<(), Rejection> {
        let body: &EntryBody = e.body();
        let parents: Vec<u32> = body
            .parents
            .iter()
            .map(|p| {
                self.pos.get(p).copied().ok_or(Rejection::UnknownAuthor {
                    device: body.author,
                })
            })
            .collect::<Result<_, _>>()?;
        if let Certificate::Genesis(_) = body.cert {
            if !self.entries.is_empty() {
                return Err(Rejection::SecondGenesis);
            }
        } else if self.entries.is_empty() {
            return Err(Rejection::UnknownAuthor {
                device: body.author,
            });
        }
        if parents
            .iter()
            .any(|p| self.entries[*p as usize].body().time >= body.time)
        {
            return Err(Rejection::TimeNotAfterParents);
        }
        admission::check(&self.dag, &self.entries, &self.index, &parents, body)?;
        let at = self.dag.push(&parents);
        self.index.add(at, body);
        self.pos.insert(e.id(), at);
        self.entries.push(e);
        if let Some(d) = self.derived.get_mut()
            && !d.try_extend(&self.entries, &parents, at)
        {
            self.derived = std::sync::OnceLock::new();
        }
        Ok(())
    }

    /// Runs `f` on the organization as it was in the causal past of `heads` (the heads and their
    /// ancestors). `None` if a head is unknown here (the caller holds what depends on it until
    /// the organization log catches up) or `heads` is empty.
    pub fn at_heads<R>(
        &self,
        heads: &[EntryId],
        f: impl FnOnce(&mut CausalView<'_>) -> R,
    ) -> Option<R> {
        let past: Vec<u32> = heads
            .iter()
            .map(|h| self.pos.get(h).copied())
            .collect::<Option<_>>()?;
        if past.is_empty() {
            return None;
        }
        Some(f(&mut CausalView::new(
            &self.dag,
            &self.entries,
            &self.index,
            &past,
        )))
    }

    /// The effective organization state (after revocation wins), computed on demand and cached.
    pub fn state(&self) -> &OrgState {
        &self
            .derived
            .get_or_init(|| Derived::compute(self.org, &self.entries, &self.dag, &self.index))
            .state
    }
}
