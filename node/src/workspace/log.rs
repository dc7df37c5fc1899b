//! The workspace log: the DAG of one workspace's envelopes, admitted one by one against their
//! causal past (and the organization as of the heads each envelope names).
//!
//! Invariants: as for the organization log. Only admitted envelopes are in the DAG; a refused one
//! leaves only its [`Refusal`] in the report. Envelopes whose parents are missing wait (bounded);
//! envelopes naming organization heads this device does not have yet wait too, and are offered
//! again by [`WorkspaceLog::org_changed`]. Verdicts never change once given.

use std::collections::{BTreeSet, HashMap};

use super::admission::{self, At, Index};
use super::envelope::{self, Envelope};
use super::ids::{EnvelopeId, WorkspaceId};
use super::rejection::Refusal;
use super::state::WorkspaceState;
use crate::dag::{Dag, Holding};
use crate::trust::entry::KeyCache;
use crate::trust::{DeviceKeys, Hlc, OrgId, OrgLog};

/// Most envelopes held (missing parents, or organization heads not yet known).
pub const MAX_PENDING: usize = 100_000;

/// What one [`WorkspaceLog::ingest`] call did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Admitted, parents first.
    pub admitted: Vec<EnvelopeId>,
    /// Already known.
    pub duplicates: usize,
    /// Refused, with why.
    pub refused: Vec<(EnvelopeId, Refusal)>,
}

impl Report {
    /// Nothing refused.
    pub fn is_clean(&self) -> bool {
        self.refused.is_empty()
    }
}

/// One workspace's DAG on one device.
#[derive(Debug)]
pub struct WorkspaceLog {
    org: OrgId,
    workspace: WorkspaceId,
    envelopes: Vec<Envelope>,
    pos: HashMap<EnvelopeId, u32>,
    dag: Dag,
    index: Index,
    pending: Holding<EnvelopeId, Envelope>,
    waiting_org: Vec<Envelope>,
}

impl WorkspaceLog {
    /// An empty log for `workspace` of `org`.
    pub fn new(org: OrgId, workspace: WorkspaceId) -> Self {
        WorkspaceLog {
            org,
            workspace,
            envelopes: Vec::new(),
            pos: HashMap::new(),
            dag: Dag::new(),
            index: Index::default(),
            pending: Holding::new(MAX_PENDING),
            waiting_org: Vec::new(),
        }
    }

    /// The workspace.
    pub fn id(&self) -> WorkspaceId {
        self.workspace
    }

    /// Admitted envelopes, parents first.
    pub fn envelopes(&self) -> &[Envelope] {
        &self.envelopes
    }

    /// Number admitted.
    pub fn len(&self) -> usize {
        self.envelopes.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.envelopes.is_empty()
    }

    /// An admitted envelope.
    pub fn get(&self, id: &EnvelopeId) -> Option<&Envelope> {
        self.pos.get(id).map(|p| &self.envelopes[*p as usize])
    }

    /// Whether an envelope is held for missing parents or organization heads.
    pub fn is_held(&self, id: &EnvelopeId) -> bool {
        self.pending.contains(id) || self.waiting_org.iter().any(|e| e.id() == *id)
    }

    /// Envelopes held for missing parents or organization heads (signature checked, not
    /// admitted).
    pub fn held(&self) -> impl Iterator<Item = &Envelope> {
        self.pending.values().chain(self.waiting_org.iter())
    }

    /// Whether admitted.
    pub fn contains(&self, id: &EnvelopeId) -> bool {
        self.pos.contains_key(id)
    }

    /// Envelopes waiting (for parents or organization heads).
    pub fn pending_len(&self) -> usize {
        self.pending.len() + self.waiting_org.len()
    }

    /// Missing parents.
    pub fn missing(&self) -> BTreeSet<EnvelopeId> {
        self.pending.missing()
    }

    /// Heads of the whole DAG, sorted.
    pub fn heads(&self) -> Vec<EnvelopeId> {
        let mut h: Vec<EnvelopeId> = self
            .dag
            .heads()
            .map(|p| self.envelopes[p as usize].id())
            .collect();
        h.sort_unstable();
        h
    }

    /// Decodes, verifies and admits envelopes in any order.
    pub fn ingest(&mut self, batch: Vec<Vec<u8>>, org: &OrgLog) -> Report {
        let mut report = Report::default();
        let mut keys = KeyCache::default();
        let mut seen = std::collections::HashSet::new();
        let mut fresh = Vec::new();
        for bytes in batch {
            match envelope::decode(bytes, &mut keys) {
                Ok(u) => {
                    let id = u.id();
                    if self.pos.contains_key(&id)
                        || self.pending.contains(&id)
                        || self.waiting_org.iter().any(|e| e.id() == id)
                        || !seen.insert(id)
                    {
                        report.duplicates += 1;
                    } else {
                        fresh.push(u);
                    }
                }
                Err(r) => report.refused.push(r),
            }
        }
        let mut ok = Vec::new();
        for r in envelope::verify_batch(fresh) {
            match r {
                Ok(e) => ok.push(e),
                Err(r) => report.refused.push(r),
            }
        }
        ok.sort_by_key(|e| (e.header().time, e.id()));
        for e in ok {
            self.offer(e, org, &mut report);
        }
        report
    }

    /// Offers again the envelopes that waited for organization heads.
    pub fn org_changed(&mut self, org: &OrgLog) -> Report {
        let mut report = Report::default();
        let waiting = std::mem::take(&mut self.waiting_org);
        for e in waiting {
            self.offer(e, org, &mut report);
        }
        report
    }

    fn offer(&mut self, e: Envelope, org: &OrgLog, report: &mut Report) {
        let h = e.header();
        if h.org != self.org || h.workspace != self.workspace {
            report.refused.push((e.id(), Refusal::WrongWorkspace));
            return;
        }
        let pos = &self.pos;
        if !h.parents.iter().all(|p| pos.contains_key(p)) {
            let (id, parents) = (e.id(), h.parents.clone());
            if self
                .pending
                .hold(id, e, &parents, |p| pos.contains_key(p))
                .is_err()
            {
                report.refused.push((id, Refusal::PendingFull));
            }
            return;
        }
        let mut ready = vec![e];
        while let Some(e) = ready.pop() {
            let id = e.id();
            match self.admit(e, org) {
                Ok(None) => {}
                Ok(Some(())) => {
                    report.admitted.push(id);
                    let pos = &self.pos;
                    ready.extend(self.pending.admitted(&id, |p| pos.contains_key(p)));
                }
                Err(r) => {
                    report.refused.push((id, r));
                    for (c, _) in self.pending.refused(id) {
                        report
                            .refused
                            .push((c, Refusal::ParentRefused { parent: id }));
                    }
                }
            }
        }
    }

    /// `Ok(None)`: parked until the organization log has the heads the envelope names.
    fn admit(&mut self, e: Envelope, org: &OrgLog) -> Result<Option<()>, Refusal> {
        let parents: Vec<u32> = e
            .header()
            .parents
            .iter()
            .map(|p| self.pos.get(p).copied().ok_or(Refusal::BadParents))
            .collect::<Result<_, _>>()?;
        if parents
            .iter()
            .any(|p| self.envelopes[*p as usize].header().time >= e.header().time)
        {
            return Err(Refusal::TimeNotAfterParents);
        }
        let mut q = At {
            dag: &self.dag,
            envelopes: &self.envelopes,
            index: &self.index,
            past: &parents,
        };
        match admission::check(&mut q, org, &e) {
            Ok(Some(a)) => {
                let at = self.dag.push(&parents);
                self.index.add(at, &e, a.author_user);
                self.pos.insert(e.id(), at);
                self.envelopes.push(e);
                Ok(Some(()))
            }
            Ok(None) => {
                if self.waiting_org.len() >= MAX_PENDING {
                    return Err(Refusal::PendingFull);
                }
                self.waiting_org.push(e);
                Ok(None)
            }
            Err(r) => Err(r),
        }
    }

    /// The role the author of an admitted envelope had in the envelope's causal past (its
    /// parents): the same on every replica, whatever arrived since.
    pub fn author_role(&self, id: &EnvelopeId, org: &OrgLog) -> Option<super::ids::Role> {
        let e = self.get(id)?;
        let user = org.state().devices.get(&e.header().author)?.user;
        let parents: Vec<u32> = e
            .header()
            .parents
            .iter()
            .filter_map(|p| self.pos.get(p).copied())
            .collect();
        let mut q = At {
            dag: &self.dag,
            envelopes: &self.envelopes,
            index: &self.index,
            past: &parents,
        };
        q.role(&user)
    }

    /// The effective state, given the organization's current state.
    pub fn state(&self, org: &OrgLog) -> WorkspaceState {
        WorkspaceState::compute(self.workspace, &self.envelopes, &self.dag, &self.index, org)
    }

    /// Signs an envelope on top of the kept heads, with the given organization heads.
    #[allow(clippy::too_many_arguments)]
    pub fn draft(
        &mut self,
        org: &OrgLog,
        keys: &DeviceKeys,
        clock: &mut crate::trust::Clock,
        now_ms: u64,
        kind: envelope::Kind,
        epoch: Option<EnvelopeId>,
        payload: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Vec<u8> {
        let st = self.state(org);
        let max_parent = st
            .heads
            .iter()
            .filter_map(|id| self.get(id))
            .map(|e| e.header().time)
            .max()
            .unwrap_or(Hlc(0));
        clock.observe(max_parent);
        // The newest organization heads, at most MAX_ORG_HEADS of them.
        let mut org_heads = org.state().heads.clone();
        if org_heads.len() > envelope::MAX_ORG_HEADS {
            org_heads.sort_by_key(|h| std::cmp::Reverse(org.get(h).map(|e| e.body().time)));
            org_heads.truncate(envelope::MAX_ORG_HEADS);
            org_heads.sort_unstable();
        }
        let header = envelope::Header {
            org: self.org,
            workspace: self.workspace,
            author: keys.id(),
            parents: st.heads,
            org_heads,
            time: clock.tick(now_ms),
            epoch,
            kind,
        };
        let aad = envelope::header_bytes(&header);
        envelope::sign(keys, &header, &payload(&aad))
    }
}
