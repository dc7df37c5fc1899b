//! The organization log: a DAG of signed entries, admitted one by one against their causal past.
//!
//! [`OrgLog::ingest`] takes raw entries in any order and any batch size: it decodes them, checks
//! signatures in batches, holds entries whose parents are missing (bounded by [`HELD_LIMITS`]:
//! count, bytes, a quarter per author with every author the log does not certify sharing one
//! quarter, and age in wall time; see [`crate::dag::Holding`]), and admits each entry once its
//! parents are present if [`admission`](super::admission) says its author could make it in the
//! state of its causal past.
//!
//! Invariants:
//! - Only admitted entries are in the DAG; a refused entry leaves no trace but its
//!   [`Rejection`] in the report.
//! - An entry's verdict depends only on its ancestors, so it never changes and is the same on
//!   every device whatever the arrival order.
//! - The effective membership ([`OrgLog::state`]) is recomputed from the whole DAG after a change
//!   (revocation wins may drop entries that were admitted earlier, see [`super::state`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use super::admission::{self, CausalView, Index};
use super::entry::{self, Certificate, Entry, EntryBody};
use super::future::{FutureHold, too_early};
use super::ids::{DeviceId, EntryId, Hlc, OrgId};
use super::rejection::Rejection;
use super::state::{Derived, OrgState};
use crate::dag::{Dag, HeldLimits, Holding, MAX_HELD_AGE_MS};

/// Most entries held while their parents are missing.
pub const MAX_PENDING: usize = 100_000;

/// Most bytes of entries held while their parents are missing: 128 entries of the largest size
/// ([`entry::MAX_ENTRY_BYTES`]), thousands of ordinary ones; an author takes at most a quarter.
pub const MAX_PENDING_BYTES: usize = 8 << 20;

/// The bounds of the organization log's holding area.
pub const HELD_LIMITS: HeldLimits = HeldLimits {
    items: MAX_PENDING,
    bytes: MAX_PENDING_BYTES,
    max_age_ms: MAX_HELD_AGE_MS,
};

/// What one [`OrgLog::ingest`] call did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// Entries admitted into the DAG, in admission order (parents first).
    pub admitted: Vec<EntryId>,
    /// Entries already known (admitted or waiting before this call).
    pub duplicates: usize,
    /// Entries refused, with why.
    pub rejected: Vec<(EntryId, Rejection)>,
    /// Entries held (not admitted, not refused) because they are dated more than
    /// [`MAX_CLOCK_SKEW_MS`](super::ids::MAX_CLOCK_SKEW_MS) ahead of the wall clock.
    pub future: Vec<EntryId>,
    /// Entries dropped from holding because they waited for parents too long.
    pub expired: usize,
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
    /// Entries waiting for parents, accounted to their author if certified here (else to
    /// `None`, shared by every stranger).
    pending: Holding<EntryId, Option<DeviceId>, Entry>,
    /// Entries refused or dropped from holding so far (see [`OrgLog::dropped`]).
    dropped: u64,
    derived: std::sync::OnceLock<Derived>,
    /// Entries dated beyond the wall clock plus the allowed skew.
    future: FutureHold<EntryId, Entry>,
    /// The local wall clock as last told by the shell ([`OrgLog::set_wall`]).
    wall: WallClock,
}

/// The local wall time last given by the shell, in ms (`u64::MAX`: never given). Interior
/// mutability so that a log shared copy-on-write (`Arc<OrgLog>`, one per organization in the
/// simulator) is told the time without being copied; the value only ever grows.
#[derive(Debug)]
struct WallClock(AtomicU64);

impl Clone for WallClock {
    fn clone(&self) -> Self {
        WallClock(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
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
            pending: Holding::new(HELD_LIMITS),
            dropped: 0,
            derived: std::sync::OnceLock::new(),
            future: FutureHold::default(),
            wall: WallClock(AtomicU64::new(u64::MAX)),
        }
    }

    /// Tells the log the local wall time (the shell calls this on every turn; it never moves
    /// back). Entries dated more than
    /// [`MAX_CLOCK_SKEW_MS`](super::ids::MAX_CLOCK_SKEW_MS) after it are held, not admitted,
    /// until the wall clock reaches them: call [`OrgLog::release_due`] when
    /// [`OrgLog::has_due`] says some are due. Until it is first called, nothing is held (tests
    /// and tools that replay a stored log).
    pub fn set_wall(&self, now_ms: u64) {
        let w = self.wall.0.load(Ordering::Relaxed);
        if w == u64::MAX || now_ms > w {
            self.wall.0.store(now_ms, Ordering::Relaxed);
        }
    }

    /// The local wall time last given to [`OrgLog::set_wall`]; workspace logs read it too, so
    /// that there is one wall clock per device.
    pub fn wall_ms(&self) -> Option<u64> {
        let w = self.wall.0.load(Ordering::Relaxed);
        (w != u64::MAX).then_some(w)
    }

    /// Number of entries held because they are dated in the future.
    pub fn future_len(&self) -> usize {
        self.future.len()
    }

    /// The wall time at which a held future entry becomes admissible (for the shell's timer).
    pub fn next_due_ms(&self) -> Option<u64> {
        self.future.next_due_ms()
    }

    /// Whether a held future entry is now due.
    pub fn has_due(&self) -> bool {
        matches!((self.next_due_ms(), self.wall_ms()), (Some(d), Some(w)) if d <= w)
    }

    /// Offers again the held future entries that are now due, and drops the entries held for
    /// their parents longer than [`MAX_HELD_AGE_MS`].
    pub fn release_due(&mut self) -> IngestReport {
        let mut report = IngestReport::default();
        self.expire(&mut report);
        let Some(wall) = self.wall_ms() else {
            return report;
        };
        for e in self.future.take_due(wall) {
            self.offer(e, &mut report);
        }
        self.dropped += report.rejected.len() as u64;
        report
    }

    /// Whether an entry held for its parents is now too old ([`OrgLog::release_due`] drops it).
    pub fn has_expired(&self) -> bool {
        self.pending.has_expired(self.wall_ms())
    }

    /// Drops the entries held for their parents for [`MAX_HELD_AGE_MS`] or more.
    fn expire(&mut self, report: &mut IngestReport) {
        let n = self.pending.expire(self.wall_ms());
        report.expired += n;
        self.dropped += n as u64;
    }

    /// Entries refused or dropped from holding so far. The reconciliation set (admitted and
    /// held entries) loses an entry only when this moves: an unchanged size and count mean an
    /// unchanged set.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The holding area for entries missing parents (its bounds and counters).
    pub fn holding(&self) -> &Holding<EntryId, Option<DeviceId>, Entry> {
        &self.pending
    }

    /// Takes entries out of the holding area without a verdict (a peer past its budget of held
    /// bytes, see `sync::engine`): peers offer them again. Returns how many were held.
    pub fn unhold(&mut self, ids: &[EntryId]) -> usize {
        let n = ids
            .iter()
            .filter(|id| self.pending.take(id).is_some())
            .count();
        self.dropped += n as u64;
        n
    }

    /// Whether an entry of this log certifies `device` (revoked or not): the authors whose held
    /// items are accounted to themselves; the others share one account.
    pub fn certifies(&self, device: &DeviceId) -> bool {
        self.index.device_adds.contains_key(device)
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

    /// Whether an entry is held for missing parents or for the wall clock.
    pub fn is_held(&self, id: &EntryId) -> bool {
        self.pending.contains(id) || self.future.contains(id)
    }

    /// Entries held for missing parents or for the wall clock (signature checked, not
    /// admitted).
    pub fn held(&self) -> impl Iterator<Item = &Entry> {
        self.pending.values().chain(self.future.values())
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

    /// Admitted entries outside the causal past of `heads` (heads unknown here are ignored),
    /// parents before children: what a peer whose log has these heads lacks of ours.
    pub fn entries_beyond(&self, heads: &[EntryId]) -> impl Iterator<Item = &Entry> {
        let known = self
            .dag
            .closure(heads.iter().filter_map(|h| self.pos.get(h).copied()));
        self.entries
            .iter()
            .zip(known)
            .filter(|(_, k)| !k)
            .map(|(e, _)| e)
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

    /// The parents of `author`'s next entry: the kept heads, or, when there are more than
    /// [`entry::MAX_PARENTS`], the heads that cover what admission needs of the author (its
    /// device certificate, its latest own entry, its user's latest profile settings), then
    /// others up to the limit. Each such entry merges that many heads, so heads shrink in steps
    /// and no number of heads (65 siblings from one member) blocks a writer.
    pub fn draft_parents(&self, author: &DeviceId) -> Vec<EntryId> {
        let heads = &self.state().heads;
        if heads.len() <= entry::MAX_PARENTS {
            return heads.clone();
        }
        let head_pos: Vec<u32> = heads
            .iter()
            .filter_map(|h| self.pos.get(h).copied())
            .collect();
        let mut need: Vec<u32> = Vec::new();
        need.extend(self.index.device_adds.get(author).into_iter().flatten());
        need.extend(self.index.by_author.get(author).and_then(|v| v.last()));
        let owner = need
            .first()
            .and_then(|p| admission::device_owner(self.entries[*p as usize].body(), author));
        if let Some(u) = owner {
            need.extend(self.index.user_profiles.get(&u).into_iter().flatten());
        }
        let mut chosen: Vec<u32> = Vec::new();
        for n in need {
            if self.dag.in_past(n, &chosen) {
                continue;
            }
            // The latest head that covers it.
            if let Some(h) = head_pos
                .iter()
                .rev()
                .copied()
                .filter(|h| self.dag.is_ancestor_or_self(n, *h))
                .max()
                && chosen.len() < entry::MAX_PARENTS
            {
                chosen.push(h);
            }
        }
        let mut rest: Vec<u32> = head_pos
            .iter()
            .copied()
            .filter(|h| !chosen.contains(h))
            .collect();
        rest.sort_unstable_by(|a, b| b.cmp(a));
        for h in rest {
            if chosen.len() >= entry::MAX_PARENTS {
                break;
            }
            chosen.push(h);
        }
        let mut out: Vec<EntryId> = chosen
            .iter()
            .map(|p| self.entries[*p as usize].id())
            .collect();
        out.sort_unstable();
        out
    }

    /// Whether `author` may write `cert` now: an active device of the current state whose user
    /// holds the right (the admin profile where [`admission::needs_admin`] says so), and a key
    /// rotation sealed only to active devices of its user, within the caps per user
    /// ([`admission::check_caps`], on every head, at the wall clock). A writer
    /// checks this before signing: admission refuses only what no later entry can make right
    /// (see [`admission`]), so an entry by a revoked device or a demoted admin is admitted and
    /// then does not count; this gives the writer the reason instead. Drafted on the kept heads
    /// ([`OrgLog::draft_parents`]), the entry's kept past is the current state, so an entry
    /// this accepts counts (until a concurrent removal voids it).
    pub fn may_write(&self, author: &DeviceId, cert: &Certificate) -> Result<(), Rejection> {
        let st = self.state();
        let Some(dev) = st.devices.get(author) else {
            return Err(Rejection::UnknownAuthor { device: *author });
        };
        if dev.revoked_by.is_some() {
            return Err(Rejection::AuthorRevoked { device: *author });
        }
        let revoked_owner = match cert {
            Certificate::DeviceRevoked { device } => st.devices.get(device).map(|d| d.user),
            _ => None,
        };
        let recorded = match cert {
            Certificate::InvitationClosed { id, .. } => self
                .index
                .invitation_records
                .get(id)
                .into_iter()
                .flatten()
                .all(|p| self.entries[*p as usize].body().author == *author),
            _ => false,
        };
        if let Certificate::UserKeyRotated(r) = cert
            && let Some((device, _)) = r
                .sealed
                .iter()
                .find(|(d, _)| !st.active_devices_of(&r.user).contains(d))
        {
            return Err(Rejection::BadRecipient { device: *device });
        }
        let admin = st.users.get(&dev.user).map(|u| u.profile) == Some(super::Profile::Admin);
        if admission::needs_admin(cert, &dev.user, revoked_owner, recorded) && !admin {
            return Err(admission::rights_error(cert, *author, revoked_owner));
        }
        let heads: Vec<u32> = self.dag.heads().collect();
        admission::check_caps(
            &self.dag,
            &self.entries,
            &self.index,
            &heads,
            cert,
            &dev.user,
            self.wall_ms().unwrap_or(0),
        )
    }

    /// Whether `device` counts here (is active), or would once `entries` are added.
    ///
    /// The one rule for taking organization entries from a device that does not count: a
    /// relay's `Intro` and a device's receive-only link (`sync::engine::listen`). A stale copy
    /// may believe an honest device revoked by a revoked admin's forgeries, and the entries that
    /// void them may only come from that device; a revoked device's own entries never make it
    /// count, so they are not taken. Judged on a copy, and only if one of `entries` (raw: a hint,
    /// the copy's verdict decides) is signed by a device certified here: a stranger cannot make
    /// one, so it cannot make us copy the log.
    pub fn counts_with(&self, device: &DeviceId, entries: &[Vec<u8>]) -> bool {
        self.state().is_active(device)
            || self
                .state_with(entries)
                .is_some_and(|st| st.is_active(device))
    }

    /// The state once `entries` are added, judged on a copy; `None` (and no copy made) unless
    /// one of them is signed by a device certified here (see [`OrgLog::counts_with`]).
    pub fn state_with(&self, entries: &[Vec<u8>]) -> Option<OrgState> {
        entries.iter().any(|b| self.signed_by_member(b)).then(|| {
            let mut copy = self.clone();
            copy.ingest(entries.to_vec());
            copy.state().clone()
        })
    }

    /// Whether `raw` decodes as an entry whose author is a device certified here (revoked or
    /// not). Only a hint, before any signature check: what a receiver holds aside for a device
    /// that does not count ([`OrgLog::counts_with`]), the rest is dropped at once.
    pub fn signed_by_member(&self, raw: &[u8]) -> bool {
        entry::decode(raw.to_vec())
            .is_ok_and(|e| self.state().devices.contains_key(&e.body().author))
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
        self.expire(&mut report);
        let mut fresh = Vec::with_capacity(batch.len());
        let mut seen = std::collections::HashSet::new();
        let mut keys = entry::KeyCache::default();
        for bytes in batch {
            match entry::decode_with(bytes, &mut keys) {
                Ok(u) => {
                    if self.pos.contains_key(&u.id())
                        || self.is_held(&u.id())
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
        self.dropped += report.rejected.len() as u64;
        report
    }

    /// Admits `e` now if its parents are present and its time has come, else holds it.
    fn offer(&mut self, e: Entry, report: &mut IngestReport) {
        if let Err(r) = e.body().check_shape(&self.org) {
            report.rejected.push((e.id(), r));
            return;
        }
        let time = e.body().time;
        if self.wall_ms().is_some_and(|w| too_early(time, w)) {
            let (id, size) = (e.id(), e.bytes().len());
            match self.future.hold(id, time, size, e) {
                Ok(()) => report.future.push(id),
                Err(_) => report.rejected.push((id, Rejection::FutureFull)),
            }
            return;
        }
        let pos = &self.pos;
        if !e.body().parents.iter().all(|p| pos.contains_key(p)) {
            let (id, size, author) = (e.id(), e.bytes().len(), e.body().author);
            let owner = self.certifies(&author).then_some(author);
            let parents = e.body().parents.clone();
            let pos = &self.pos;
            if self
                .pending
                .hold(id, e, &parents, owner, size, |p| pos.contains_key(p))
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
            && !d.try_extend(&self.entries, &self.dag, &self.index, &parents, at)
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
