//! The workspace log: the DAG of one workspace's envelopes, admitted one by one against their
//! causal past (and the organization as of the heads each envelope names).
//!
//! Invariants: as for the organization log. Only admitted envelopes are in the DAG; a refused one
//! leaves only its [`Refusal`] in the report. Envelopes whose parents are missing wait (bounded);
//! envelopes naming organization heads this device does not have yet wait too, and are offered
//! again by [`WorkspaceLog::org_changed`]; so do envelopes dated more than
//! [`MAX_CLOCK_SKEW_MS`](crate::trust::ids::MAX_CLOCK_SKEW_MS) after the device's wall clock (`OrgLog::wall_ms`, when the shell has set
//! it), until the wall clock reaches them (offered again by the next `ingest` or `org_changed`).
//! Holding is bounded: the clock's hold by `trust::future`; parents and organization heads
//! share one [`Holding`] area within [`HELD_LIMITS`] (count, bytes, a quarter per author with
//! every author the organization does not certify sharing one quarter, and age in wall time).
//! Verdicts never change once given.
//!
//! [`WorkspaceLog::draft`] never lets other envelopes block a writer: it cites at most
//! [`envelope::MAX_PARENTS`] kept heads (merging in steps, state-bearing heads first, then those
//! covering the most ancestors), never a head dated beyond its own wall clock plus the skew (it
//! cites that head's parents instead, so its clock never jumps past them), and checks its own
//! draft against admission before returning it.

use std::collections::{BTreeSet, HashMap};

use super::admission::{self, At, Index};
use super::envelope::{self, Envelope};
use super::ids::{EnvelopeId, WorkspaceId};
use super::rejection::Refusal;
use super::state::WorkspaceState;
use crate::dag::{Dag, HeldLimits, Holding, MAX_HELD_AGE_MS};
use crate::trust::entry::KeyCache;
use crate::trust::future::{FutureHold, too_early};
use crate::trust::{DeviceId, DeviceKeys, Hlc, OrgId, OrgLog};

/// Most envelopes held (missing parents, or organization heads not yet known).
pub const MAX_PENDING: usize = 100_000;

/// Most bytes of envelopes held (missing parents, or organization heads not yet known): four
/// envelopes of the largest size ([`envelope::MAX_ENVELOPE_BYTES`]), so an author's quarter
/// always fits one.
pub const MAX_PENDING_BYTES: usize = 8 << 20;

/// The bounds of a workspace log's holding area.
pub const HELD_LIMITS: HeldLimits = HeldLimits {
    items: MAX_PENDING,
    bytes: MAX_PENDING_BYTES,
    max_age_ms: MAX_HELD_AGE_MS,
};

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
    /// Envelopes waiting for parents, or parked until the organization log has the heads they
    /// name; accounted to their author if the organization certifies it (else to `None`).
    pending: Holding<EnvelopeId, Option<DeviceId>, Envelope>,
    /// Envelopes refused or dropped from holding so far (see [`WorkspaceLog::dropped`]).
    dropped: u64,
    /// Dated beyond the wall clock plus the skew.
    future: FutureHold<EnvelopeId, Envelope>,
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
            pending: Holding::new(HELD_LIMITS),
            dropped: 0,
            future: FutureHold::default(),
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

    /// The wall time at which an envelope held for the clock becomes admissible.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.future.next_due_ms()
    }

    /// Whether an envelope is held for missing parents, organization heads or the wall clock.
    pub fn is_held(&self, id: &EnvelopeId) -> bool {
        self.pending.contains(id) || self.future.contains(id)
    }

    /// Envelopes held for missing parents, organization heads or the wall clock (signature
    /// checked, not admitted).
    pub fn held(&self) -> impl Iterator<Item = &Envelope> {
        self.pending.values().chain(self.future.values())
    }

    /// Whether admitted.
    pub fn contains(&self, id: &EnvelopeId) -> bool {
        self.pos.contains_key(id)
    }

    /// Envelopes waiting (for parents, organization heads or the wall clock).
    pub fn pending_len(&self) -> usize {
        self.pending.len() + self.future.len()
    }

    /// The holding area for envelopes missing parents or organization heads.
    pub fn holding(&self) -> &Holding<EnvelopeId, Option<DeviceId>, Envelope> {
        &self.pending
    }

    /// Envelopes refused or dropped from holding so far. The reconciliation set (admitted and
    /// held envelopes) loses an envelope only when this moves.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Takes envelopes out of the holding area without a verdict (a peer past its budget of
    /// held bytes, see `sync::engine`): peers offer them again. Returns how many were held.
    pub fn unhold(&mut self, ids: &[EnvelopeId]) -> usize {
        let n = ids
            .iter()
            .filter(|id| self.pending.take(id).is_some())
            .count();
        self.dropped += n as u64;
        n
    }

    /// Whether an envelope held is now too old (the next `ingest` or `org_changed` drops it).
    pub fn has_expired(&self, org: &OrgLog) -> bool {
        self.pending.has_expired(org.wall_ms())
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
        // First what expired or came due, so that a copy of either in `batch` is judged anew.
        self.release_due(org, &mut report);
        let mut keys = KeyCache::default();
        let mut seen = std::collections::HashSet::new();
        let mut fresh = Vec::new();
        for bytes in batch {
            match envelope::decode(bytes, &mut keys) {
                Ok(u) => {
                    let id = u.id();
                    if self.pos.contains_key(&id) || self.is_held(&id) || !seen.insert(id) {
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
        self.dropped += report.refused.len() as u64;
        report
    }

    /// Offers again the envelopes that waited for organization heads or the wall clock (those
    /// whose organization heads are still unknown stay where they are, keeping their age).
    pub fn org_changed(&mut self, org: &OrgLog) -> Report {
        let mut report = Report::default();
        self.release_due(org, &mut report);
        let ready: Vec<EnvelopeId> = self
            .pending
            .parked()
            .filter(|(_, e)| !matches!(self.judge(e, org), Ok(None)))
            .map(|(id, _)| id)
            .collect();
        for id in ready {
            if let Some(e) = self.pending.take(&id) {
                self.offer(e, org, &mut report);
            }
        }
        self.dropped += report.refused.len() as u64;
        report
    }

    /// Drops what was held too long, then offers the envelopes the wall clock has reached.
    fn release_due(&mut self, org: &OrgLog, report: &mut Report) {
        self.dropped += self.pending.expire(org.wall_ms()) as u64;
        let Some(wall) = org.wall_ms() else {
            return;
        };
        for e in self.future.take_due(wall) {
            self.offer(e, org, report);
        }
    }

    fn offer(&mut self, e: Envelope, org: &OrgLog, report: &mut Report) {
        let h = e.header();
        if h.org != self.org || h.workspace != self.workspace {
            report.refused.push((e.id(), Refusal::WrongWorkspace));
            return;
        }
        if org.wall_ms().is_some_and(|wall| too_early(h.time, wall)) {
            let (id, time, size) = (e.id(), h.time, e.bytes().len());
            if self.future.hold(id, time, size, e).is_err() {
                report.refused.push((id, Refusal::PendingFull));
            }
            return;
        }
        let pos = &self.pos;
        if !h.parents.iter().all(|p| pos.contains_key(p)) {
            let (id, parents, owner) = (e.id(), h.parents.clone(), owner_of(&e, org));
            let size = e.bytes().len();
            if self
                .pending
                .hold(id, e, &parents, owner, size, |p| pos.contains_key(p))
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
        match self.judge(&e, org)? {
            Some((parents, a)) => {
                let at = self.dag.push(&parents);
                self.index.add(at, &e, &a);
                self.pos.insert(e.id(), at);
                self.envelopes.push(e);
                Ok(Some(()))
            }
            None => {
                let (id, owner, size) = (e.id(), owner_of(&e, org), e.bytes().len());
                self.pending
                    .hold(id, e, &[], owner, size, |_| true)
                    .map_err(|_| Refusal::PendingFull)?;
                Ok(None)
            }
        }
    }

    /// The verdict on an envelope whose parents are all admitted (nothing changes): its parents'
    /// positions and what admission learned, or `None` if the organization heads it names are
    /// unknown here.
    fn judge(
        &self,
        e: &Envelope,
        org: &OrgLog,
    ) -> Result<Option<(Vec<u32>, admission::Admitted)>, Refusal> {
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
        let mut q = At::new(&self.dag, &self.envelopes, &self.index, &parents);
        Ok(admission::check(&mut q, org, e)?.map(|a| (parents, a)))
    }

    /// The role the author of an admitted envelope had in the envelope's causal past (its
    /// parents), as admission found it: the same on every replica, whatever arrived since.
    pub fn author_role(&self, id: &EnvelopeId) -> Option<super::ids::Role> {
        let p = self.pos.get(id)?;
        self.index.author_role.get(*p as usize).copied().flatten()
    }

    /// The effective state, given the organization's current state.
    pub fn state(&self, org: &OrgLog) -> WorkspaceState {
        WorkspaceState::compute(self.workspace, &self.envelopes, &self.dag, &self.index, org)
    }

    /// Signs an envelope on the kept heads (at most [`envelope::MAX_PARENTS`] of them, none dated
    /// beyond `now_ms` plus the skew), with the given organization heads, and checks it against
    /// admission: the refusal is returned if this device's own rules would refuse it, or if the
    /// organization's current state does not count this device.
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
    ) -> Result<Vec<u8>, Refusal> {
        // Admission takes an author revoked in the organization heads it cites (the revocation
        // may yet be voided); a writer the organization's current state does not count refuses
        // to sign instead.
        if !org.state().is_active(&keys.id()) {
            return Err(Refusal::AuthorNotActive { device: keys.id() });
        }
        let bytes = self.draft_unchecked(org, keys, clock, now_ms, kind, epoch, payload);
        let own = envelope::decode(bytes.clone(), &mut KeyCache::default()).map_err(|(_, r)| r)?;
        let Some(Ok(e)) = envelope::verify_batch(vec![own]).pop() else {
            return Err(Refusal::BadSignature);
        };
        self.judge(&e, org)?;
        Ok(bytes)
    }

    /// [`WorkspaceLog::draft`] without the admission check: what a hostile device can always
    /// sign (the simulator and the attack tests use it to forge).
    #[allow(clippy::too_many_arguments)]
    pub fn draft_unchecked(
        &self,
        org: &OrgLog,
        keys: &DeviceKeys,
        clock: &mut crate::trust::Clock,
        now_ms: u64,
        kind: envelope::Kind,
        epoch: Option<EnvelopeId>,
        payload: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Vec<u8> {
        let st = self.state(org);
        let parents = self.choose_parents(&st.heads, now_ms);
        let max_parent = parents
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
            parents,
            org_heads,
            time: clock.tick(now_ms),
            epoch,
            kind,
        };
        let aad = envelope::header_bytes(&header);
        envelope::sign(keys, &header, &payload(&aad))
    }

    /// The parents of a local draft: the kept heads, a head dated beyond `now_ms` plus the skew
    /// replaced by its parents (recursively), then at most [`envelope::MAX_PARENTS`] of them:
    /// access and key envelopes first (they carry the state the draft must see), then content,
    /// then merges; among equals those with the most ancestors, then by id. Sorted.
    fn choose_parents(&self, heads: &[EnvelopeId], now_ms: u64) -> Vec<EnvelopeId> {
        let mut stack: Vec<u32> = heads
            .iter()
            .filter_map(|h| self.pos.get(h))
            .copied()
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut chosen: Vec<u32> = Vec::new();
        while let Some(p) = stack.pop() {
            if !seen.insert(p) {
                continue;
            }
            if too_early(self.envelopes[p as usize].header().time, now_ms) {
                stack.extend_from_slice(self.dag.parents(p));
            } else {
                chosen.push(p);
            }
        }
        // Only the maximal ones (a replaced head's parent may be an ancestor of another head).
        let all = chosen.clone();
        chosen.retain(|a| !all.iter().any(|b| a != b && self.dag.is_ancestor(*a, *b)));
        if chosen.len() > envelope::MAX_PARENTS {
            let rank = |p: u32| match self.envelopes[p as usize].header().kind {
                envelope::Kind::Access | envelope::Kind::Keys => 0u8,
                envelope::Kind::Content => 1,
                envelope::Kind::Merge => 2,
            };
            let mut ranked: Vec<(u8, std::cmp::Reverse<usize>, EnvelopeId, u32)> = chosen
                .iter()
                .map(|p| {
                    let covered = self.dag.closure([*p]).iter().filter(|x| **x).count();
                    let id = self.envelopes[*p as usize].id();
                    (rank(*p), std::cmp::Reverse(covered), id, *p)
                })
                .collect();
            ranked.sort_unstable();
            chosen = ranked
                .into_iter()
                .take(envelope::MAX_PARENTS)
                .map(|r| r.3)
                .collect();
        }
        let mut ids: Vec<EnvelopeId> = chosen
            .into_iter()
            .map(|p| self.envelopes[p as usize].id())
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// Whom a held envelope is accounted to: its author if the organization certifies it, else the
/// account all strangers share.
fn owner_of(e: &Envelope, org: &OrgLog) -> Option<DeviceId> {
    let author = e.header().author;
    org.certifies(&author).then_some(author)
}
