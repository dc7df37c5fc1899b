//! The documents a sync engine replicates: the organization log and the workspace DAGs of one
//! device (or of a relay, which holds the same logs and no key).
//!
//! Invariant: every item enters through [`OrgLog::ingest`] or [`WorkspaceLog::ingest`], the same
//! admission as everywhere else; after organization entries are admitted, every workspace log is
//! offered its waiting envelopes again.
//!
//! A workspace first seen in a peer's items is *tentative* until one of its envelopes is
//! admitted: at most [`MAX_TENTATIVE`] are, the oldest empty one is dropped for a new one, so
//! items for random workspace ids (junk, or envelopes waiting for parents that never come) never
//! take the slots of the workspaces that hold something.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::msg::DocId;
use crate::trust::{EntryId, OrgId, OrgLog};
use crate::workspace::{EnvelopeId, WorkspaceId, WorkspaceLog};

/// Most workspaces a replica accepts from peers.
pub const MAX_WORKSPACES: usize = 10_000;

/// Most workspaces opened from peers' items that hold nothing admitted yet.
pub const MAX_TENTATIVE: usize = 64;

/// What one ingest did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Admitted item ids, per document (organization entries may also release envelopes).
    pub admitted: Vec<(DocId, [u8; 32])>,
    /// Refused items with their reason label.
    pub refused: Vec<([u8; 32], &'static str)>,
    /// Items still waiting for parents afterwards.
    pub waiting: usize,
}

/// The replicated documents.
#[derive(Debug)]
pub struct Replica {
    /// The organization log. Shared copy-on-write: replicas holding the same entries may share
    /// one log (the simulator does, to run thousands of devices).
    pub org: Arc<OrgLog>,
    /// Workspace DAGs.
    pub workspaces: BTreeMap<WorkspaceId, WorkspaceLog>,
    /// Workspaces opened from items, oldest first, while they may hold nothing admitted.
    tentative: VecDeque<WorkspaceId>,
}

impl Replica {
    /// An empty replica of `org`.
    pub fn new(org: OrgId) -> Self {
        Replica::with_log(Arc::new(OrgLog::new(org)))
    }

    /// A replica of the organization log `org` and no workspace yet.
    pub fn with_log(org: Arc<OrgLog>) -> Self {
        Replica {
            org,
            workspaces: BTreeMap::new(),
            tentative: VecDeque::new(),
        }
    }

    /// Every document held.
    pub fn docs(&self) -> Vec<DocId> {
        std::iter::once(DocId::Org)
            .chain(self.workspaces.keys().map(|w| DocId::Workspace(*w)))
            .collect()
    }

    /// Heads of a document (sorted), `None` if not held.
    pub fn heads(&self, doc: DocId) -> Option<Vec<[u8; 32]>> {
        match doc {
            DocId::Org => Some(self.org.heads().into_iter().map(|h| h.0).collect()),
            DocId::Workspace(w) => self
                .workspaces
                .get(&w)
                .map(|l| l.heads().into_iter().map(|h| h.0).collect()),
        }
    }

    /// Number of admitted items.
    pub fn count(&self, doc: DocId) -> usize {
        match doc {
            DocId::Org => self.org.len(),
            DocId::Workspace(w) => self.workspaces.get(&w).map_or(0, WorkspaceLog::len),
        }
    }

    /// Whether an item is admitted.
    pub fn knows(&self, doc: DocId, id: &[u8; 32]) -> bool {
        match doc {
            DocId::Org => self.org.contains(&EntryId(*id)),
            DocId::Workspace(w) => self
                .workspaces
                .get(&w)
                .is_some_and(|l| l.contains(&EnvelopeId(*id))),
        }
    }

    /// The size of [`Replica::reconcile_set`] and the count of items that left it, cheaply. An
    /// item held moves to admitted without leaving the set; it leaves only when refused or
    /// dropped from holding (too old), which the count counts, so an unchanged key means an
    /// unchanged set.
    pub fn reconcile_key(&self, doc: DocId) -> (usize, u64) {
        match doc {
            DocId::Org => (self.org.len() + self.org.pending_len(), self.org.dropped()),
            DocId::Workspace(w) => self
                .workspaces
                .get(&w)
                .map_or((0, 0), |l| (l.len() + l.pending_len(), l.dropped())),
        }
    }

    /// Whether an item is admitted or held for its parents.
    pub fn holds(&self, doc: DocId, id: &[u8; 32]) -> bool {
        self.knows(doc, id)
            || match doc {
                DocId::Org => self.org.is_held(&EntryId(*id)),
                DocId::Workspace(w) => self
                    .workspaces
                    .get(&w)
                    .is_some_and(|l| l.is_held(&EnvelopeId(*id))),
            }
    }

    /// Whether an item waits in a holding area (for parents or organization heads; not for the
    /// wall clock): what [`Replica::unhold`] can take out.
    pub fn in_holding(&self, doc: DocId, id: &[u8; 32]) -> bool {
        match doc {
            DocId::Org => self.org.holding().contains(&EntryId(*id)),
            DocId::Workspace(w) => self
                .workspaces
                .get(&w)
                .is_some_and(|l| l.holding().contains(&EnvelopeId(*id))),
        }
    }

    /// Takes items out of a holding area without a verdict; they leave the reconciliation set
    /// and are asked for again later. Returns how many were held.
    pub fn unhold(&mut self, doc: DocId, ids: &[[u8; 32]]) -> usize {
        match doc {
            DocId::Org => {
                let ids: Vec<EntryId> = ids.iter().map(|i| EntryId(*i)).collect();
                if !ids.iter().any(|id| self.org.holding().contains(id)) {
                    return 0;
                }
                Arc::make_mut(&mut self.org).unhold(&ids)
            }
            DocId::Workspace(w) => self.workspaces.get_mut(&w).map_or(0, |l| {
                let ids: Vec<EnvelopeId> = ids.iter().map(|i| EnvelopeId(*i)).collect();
                l.unhold(&ids)
            }),
        }
    }

    /// `(time, id)` of every admitted item, for sending everything.
    pub fn items(&self, doc: DocId) -> Vec<(u64, [u8; 32])> {
        match doc {
            DocId::Org => self
                .org
                .entries()
                .map(|e| (e.body().time.0, e.id().0))
                .collect(),
            DocId::Workspace(w) => self
                .workspaces
                .get(&w)
                .map(|l| {
                    l.envelopes()
                        .iter()
                        .map(|e| (e.header().time.0, e.id().0))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// `(time, id)` of every item held, admitted or waiting for parents: the set reconciliation
    /// works on (so nothing already here is asked for again).
    pub fn reconcile_set(&self, doc: DocId) -> Vec<(u64, [u8; 32])> {
        let mut v = self.items(doc);
        match doc {
            DocId::Org => v.extend(self.org.held().map(|e| (e.body().time.0, e.id().0))),
            DocId::Workspace(w) => {
                if let Some(l) = self.workspaces.get(&w) {
                    v.extend(l.held().map(|e| (e.header().time.0, e.id().0)));
                }
            }
        }
        v
    }

    /// The bytes and time of an admitted item.
    pub fn item(&self, doc: DocId, id: &[u8; 32]) -> Option<(u64, &[u8])> {
        match doc {
            DocId::Org => self
                .org
                .get(&EntryId(*id))
                .map(|e| (e.body().time.0, e.bytes())),
            DocId::Workspace(w) => self
                .workspaces
                .get(&w)?
                .get(&EnvelopeId(*id))
                .map(|e| (e.header().time.0, e.bytes())),
        }
    }

    /// Starts holding a workspace (offered by a peer, or created here). False past the limit.
    pub fn open_workspace(&mut self, w: WorkspaceId) -> bool {
        if self.workspaces.contains_key(&w) {
            return true;
        }
        if self.workspaces.len() >= MAX_WORKSPACES {
            return false;
        }
        let org = self.org.org();
        self.workspaces.insert(w, WorkspaceLog::new(org, w));
        true
    }

    /// Opens `w` as a tentative workspace (see the module comment), dropping the oldest one still
    /// empty if [`MAX_TENTATIVE`] are. False past [`MAX_WORKSPACES`].
    fn open_tentative(&mut self, w: WorkspaceId) -> bool {
        let workspaces = &self.workspaces;
        self.tentative
            .retain(|t| workspaces.get(t).is_some_and(WorkspaceLog::is_empty));
        if self.tentative.len() >= MAX_TENTATIVE
            && let Some(old) = self.tentative.pop_front()
        {
            self.workspaces.remove(&old);
        }
        if !self.open_workspace(w) {
            return false;
        }
        self.tentative.push_back(w);
        true
    }

    /// Replaces the organization log by one that holds at least the same entries (a log another
    /// replica already brought up to date: the simulator shares logs this way), and offers every
    /// workspace its waiting envelopes again. Returns the envelopes that were admitted.
    pub fn adopt_org(&mut self, org: Arc<OrgLog>) -> Ingested {
        let mut out = Ingested::default();
        if org.org() != self.org.org() || !self.org.heads().iter().all(|h| org.contains(h)) {
            return out;
        }
        self.org = org;
        self.org_changed(&mut out);
        out
    }

    /// Offers again the organization entries that waited for the wall clock and are now due,
    /// and drops the items held too long for their parents (the engine calls this from its
    /// timer; a shared log is copied only when some are due or too old).
    pub fn release_due(&mut self) -> Ingested {
        let mut out = Ingested::default();
        if self.org.has_due() || self.org.has_expired() {
            let r = Arc::make_mut(&mut self.org).release_due();
            self.org_ingested(&r, &mut out);
        }
        let ws_due = self
            .workspaces
            .values()
            .filter_map(WorkspaceLog::next_due_ms)
            .min();
        let expired = self.workspaces.values().any(|l| l.has_expired(&self.org));
        if expired || matches!((ws_due, self.org.wall_ms()), (Some(due), Some(wall)) if due <= wall)
        {
            self.org_changed(&mut out);
        }
        out
    }

    /// The wall time at which an item held for the clock (organization or workspace) becomes
    /// admissible.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.workspaces
            .values()
            .filter_map(WorkspaceLog::next_due_ms)
            .chain(self.org.next_due_ms())
            .min()
    }

    /// What an organization ingest did, in the replica's terms: admitted entries, refusals,
    /// and what the workspaces admit now that the organization moved.
    fn org_ingested(&mut self, r: &crate::trust::IngestReport, out: &mut Ingested) {
        out.admitted
            .extend(r.admitted.iter().map(|id| (DocId::Org, id.0)));
        out.refused
            .extend(r.rejected.iter().map(|(id, why)| (id.0, why.label())));
        if !r.admitted.is_empty() {
            self.org_changed(out);
        }
        out.waiting = self.org.pending_len();
    }

    /// Offers every workspace its envelopes that waited for the organization (or the clock).
    fn org_changed(&mut self, out: &mut Ingested) {
        for (w, log) in self.workspaces.iter_mut() {
            let r = log.org_changed(&self.org);
            out.admitted
                .extend(r.admitted.iter().map(|id| (DocId::Workspace(*w), id.0)));
            out.refused
                .extend(r.refused.iter().map(|(id, why)| (id.0, why.label())));
        }
    }

    /// Admits items of a document.
    pub fn ingest(&mut self, doc: DocId, items: Vec<Vec<u8>>) -> Ingested {
        let mut out = Ingested::default();
        match doc {
            DocId::Org => {
                // A shared log is copied only if something in the batch is new to it.
                if items
                    .iter()
                    .all(|b| self.holds(DocId::Org, blake3::hash(b).as_bytes()))
                {
                    out.waiting = self.org.pending_len();
                    return out;
                }
                let r = Arc::make_mut(&mut self.org).ingest(items);
                self.org_ingested(&r, &mut out);
            }
            DocId::Workspace(w) => {
                if !self.workspaces.contains_key(&w) && !self.open_tentative(w) {
                    return out;
                }
                let Some(log) = self.workspaces.get_mut(&w) else {
                    return out;
                };
                let r = log.ingest(items, &self.org);
                out.admitted.extend(r.admitted.iter().map(|id| (doc, id.0)));
                out.refused
                    .extend(r.refused.iter().map(|(id, why)| (id.0, why.label())));
                out.waiting = log.pending_len();
            }
        }
        out
    }
}
