//! Change exchange with the sync layer, and saving/loading.
//!
//! Local edits accumulate in open automerge transactions; [`Workspace::commit_local`] turns them
//! into one change per touched document, to be sealed and sent. Remote changes go through
//! [`Workspace::apply_remote`] in any order and any batching: changes whose dependencies are
//! missing are held by automerge and applied when the dependencies arrive.
//!
//! Invariants: change bytes are hostile input. A batch is parsed and size-checked in full
//! before anything is applied, so a malformed change leaves the workspace unchanged and yields
//! [`CrdtError::MalformedChange`]; so does a change reusing an actor sequence number that a
//! document already took ([`CrdtError::ConflictingSeq`], checked through `crate::seqs`). Only changes automerge actually applied refresh the cache
//! (held ones are remembered by hash and refreshed when they land). The kept view is patched in
//! place when the changes that landed only wrote content versions (and the "alive" deletion
//! value that goes with them) of visible files that stay alive with one head version and no
//! conflict copy; after anything else it is dropped and re-derived on the next read.

use std::collections::BTreeSet;

use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, Change, ChangeHash, ReadDoc};

use crate::error::CrdtError;
use crate::ids::EntryId;
use crate::limits;
use crate::model::Kind;
use crate::schema::{self, Field, shard_of};
use crate::workspace::Workspace;

/// A change produced locally: seal `bytes` and send it with its shard index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalChange {
    /// The document it belongs to (0..K entry shards, K the settings document).
    pub shard: u16,
    /// Automerge change hash.
    pub hash: ChangeHash,
    /// Raw (uncompressed) automerge change bytes.
    pub bytes: Vec<u8>,
}

/// A change received from a peer (after the sync layer opened and verified its envelope).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteChange {
    /// The document it belongs to.
    pub shard: u16,
    /// Raw or compressed automerge change bytes.
    pub bytes: Vec<u8>,
}

impl From<LocalChange> for RemoteChange {
    fn from(c: LocalChange) -> Self {
        RemoteChange {
            shard: c.shard,
            bytes: c.bytes,
        }
    }
}

/// What [`Workspace::apply_remote`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Changes that became part of the document in this call (including earlier held ones).
    pub applied: usize,
    /// Changes of this batch already known (applied or held) before.
    pub duplicates: usize,
    /// Changes held for missing dependencies after this call (all batches).
    pub held: usize,
}

impl Workspace {
    /// Commits every pending local edit: one change per touched document, in shard order.
    /// Also returns changes committed implicitly since the last call (by `heads`, `save`, or
    /// `apply_remote`, which commit pending edits first).
    pub fn commit_local(&mut self) -> Vec<LocalChange> {
        self.flush();
        std::mem::take(&mut self.outbox)
    }

    fn flush(&mut self) {
        let secs = self.last_op_ms.div_euclid(1000);
        for s in 0..self.docs.len() {
            if !self.dirty[s] {
                continue;
            }
            self.dirty[s] = false;
            let doc = &mut self.docs[s];
            let Some(hash) = doc.commit_with(CommitOptions::default().with_time(secs)) else {
                continue;
            };
            if let Some(change) = doc.get_change_by_hash(&hash) {
                self.seqs
                    .applied(s as u16, change.actor_id().to_bytes(), change.seq());
                self.outbox.push(LocalChange {
                    shard: s as u16,
                    hash,
                    bytes: change.raw_bytes().to_vec(),
                });
            }
        }
    }

    /// The actor id that wrote a change (automerge does not authenticate it: the sync layer checks
    /// it against the device that signed the envelope carrying the change).
    pub fn change_actor(bytes: &[u8]) -> Result<Vec<u8>, CrdtError> {
        if bytes.len() > limits::MAX_CHANGE_BYTES {
            return Err(CrdtError::TooLarge {
                what: "change",
                limit: limits::MAX_CHANGE_BYTES,
            });
        }
        let change = Change::try_from(bytes).map_err(|e| CrdtError::MalformedChange {
            index: 0,
            reason: e.to_string(),
        })?;
        Ok(change.actor_id().to_bytes().to_vec())
    }

    /// Applies remote changes, in any order. All are parsed and checked first; any malformed one,
    /// or one reusing a sequence number its actor already has, rejects the whole batch with the
    /// workspace unchanged.
    pub fn apply_remote(
        &mut self,
        changes: impl IntoIterator<Item = RemoteChange>,
    ) -> Result<ApplyReport, CrdtError> {
        if self.poisoned {
            return Err(CrdtError::Poisoned);
        }
        // Pending local edits first, so that their sequence numbers are taken before the check.
        self.flush();
        let count = self.docs.len() as u16;
        let mut parsed: Vec<Vec<(Change, Vec<String>)>> = (0..count).map(|_| Vec::new()).collect();
        let mut total = 0usize;
        let mut seqs: std::collections::BTreeMap<(u16, Vec<u8>, u64), ChangeHash> =
            Default::default();
        for (index, rc) in changes.into_iter().enumerate() {
            if rc.shard >= count {
                return Err(CrdtError::BadShard {
                    index: rc.shard,
                    count,
                });
            }
            if rc.bytes.len() > limits::MAX_CHANGE_BYTES {
                return Err(CrdtError::TooLarge {
                    what: "change",
                    limit: limits::MAX_CHANGE_BYTES,
                });
            }
            let change =
                Change::try_from(&rc.bytes[..]).map_err(|e| CrdtError::MalformedChange {
                    index,
                    reason: e.to_string(),
                })?;
            let seq_key = (
                rc.shard,
                change.actor_id().to_bytes().to_vec(),
                change.seq(),
            );
            if *seqs.entry(seq_key).or_insert(change.hash()) != change.hash() {
                return Err(CrdtError::ConflictingSeq { index });
            }
            // Automerge would refuse it mid-batch, after earlier documents were applied.
            let s = usize::from(rc.shard);
            let h = change.hash();
            let known = self.held.contains_key(&(rc.shard, h))
                || self.docs[s].get_change_meta_by_hash(&h).is_some();
            if !known
                && self.seqs.taken(
                    &mut self.docs[s],
                    rc.shard,
                    change.actor_id().to_bytes(),
                    change.seq(),
                )
            {
                return Err(CrdtError::ConflictingSeq { index });
            }
            // Automerge refuses a second author for an actor, also mid-batch; Cloison never
            // writes automerge authors (the envelope's signature names the device).
            if change.author().is_some() {
                return Err(CrdtError::MalformedChange {
                    index,
                    reason: "automerge authors are not used".into(),
                });
            }
            let keys = touched_keys(&change);
            parsed[usize::from(rc.shard)].push((change, keys));
            total += 1;
        }
        if self.held.len() + total > limits::MAX_HELD_CHANGES {
            return Err(CrdtError::TooLarge {
                what: "held changes",
                limit: limits::MAX_HELD_CHANGES,
            });
        }
        let mut report = ApplyReport::default();
        // Entries whose version or deletion keys landed; `None` once anything else landed (or
        // there is no view to patch).
        let mut touched: Option<BTreeSet<EntryId>> = self.view.as_ref().map(|_| BTreeSet::new());
        for (s, batch) in parsed.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let s16 = s as u16;
            let mut fresh = Vec::with_capacity(batch.len());
            for (change, keys) in batch {
                let h = change.hash();
                if self.held.contains_key(&(s16, h))
                    || self.docs[s].get_change_meta_by_hash(&h).is_some()
                {
                    report.duplicates += 1;
                } else {
                    fresh.push((change, keys));
                }
            }
            if fresh.is_empty() {
                continue;
            }
            let to_apply: Vec<Change> = fresh.iter().map(|(c, _)| c.clone()).collect();
            // Automerge 0.12 unwraps inside its import (a change whose actor, or an actor it
            // names, is not registered when it applies, e.g. one numbered 92 by an actor the
            // document has never seen: found by the `crdt_changes` fuzz target). Such bytes come
            // from any member's content envelope, so the panic is caught here and the workspace
            // refuses everything after it; its owner rebuilds it without those changes.
            let doc = &mut self.docs[s];
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                doc.apply_changes(to_apply)
            }));
            match applied {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.rebuild_after_error(s16);
                    return Err(e.into());
                }
                Err(_) => {
                    self.poisoned = true;
                    self.view = None;
                    return Err(CrdtError::Poisoned);
                }
            }
            for (change, keys) in fresh {
                self.seqs
                    .held(s16, change.actor_id().to_bytes(), change.seq());
                self.held.insert((s16, change.hash()), keys);
            }
            // Everything of this shard that is now in the document lands in the cache.
            let landed: Vec<(u16, ChangeHash)> = self
                .held
                .range((s16, ChangeHash([0; 32]))..=(s16, ChangeHash([0xff; 32])))
                .map(|(k, _)| *k)
                .filter(|(_, h)| self.docs[s].get_change_meta_by_hash(h).is_some())
                .collect();
            for k in landed {
                if let Some(keys) = self.held.remove(&k) {
                    if let Some(m) = self.docs[s].get_change_meta_by_hash(&k.1) {
                        let (actor, seq) = (m.actor.to_bytes().to_vec(), m.seq);
                        self.seqs.applied(s16, &actor, seq);
                    }
                    report.applied += 1;
                    for key in keys {
                        self.raw.refresh_key(&self.docs[s], s16, self.k, &key);
                        note_touched(&mut touched, s16, self.k, &key);
                    }
                }
            }
            if self.queued_at_load.contains(&s16) {
                // Changes queued in a loaded save have no recorded keys: re-read the shard.
                self.rebuild_after_error(s16);
                if self.docs[s].get_missing_deps(&[]).is_empty() {
                    self.queued_at_load.remove(&s16);
                }
                report.applied += 1;
                touched = None;
            }
            if s16 == self.k {
                self.retention = schema::read_retention(&self.docs[s]);
            }
        }
        if report.applied > 0 {
            match touched {
                Some(ids) if !ids.is_empty() => self.patch_remote_writes(&ids),
                _ => self.view = None,
            }
        }
        report.held = self.held.len();
        Ok(report)
    }

    /// Patches the kept view after remote changes that touched only version and deletion keys
    /// of the entries `ids` (the raw cache already refreshed); drops it unless every entry is
    /// a plain case where materializing again would change nothing but the node's `current`:
    /// - the entry shows in the view as a real (not virtual) file with no conflict copies, so
    ///   its place, name and parent are those of the view (its `p` and `n` keys were not
    ///   touched) and nothing else in the view derives from its versions;
    /// - it is still alive itself (a visible file is alive itself: files have no children), so
    ///   it and its folders stay visible;
    /// - it has one head version now (no losing head, so no conflict copy appears).
    fn patch_remote_writes(&mut self, ids: &BTreeSet<EntryId>) {
        let mut currents = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(raw) = self.raw.entries.get(id) else {
                self.view = None;
                return;
            };
            let (current, losers) = raw.current_and_losers();
            if !raw.self_alive() || !losers.is_empty() {
                self.view = None;
                return;
            }
            currents.push((*id, current.cloned()));
        }
        self.patch_view(|t| {
            for (id, current) in currents {
                if t.with_copies.contains(&id) {
                    return false;
                }
                match t.nodes.get_mut(&id) {
                    Some(n) if !n.is_virtual && n.kind == Kind::File => n.current = current,
                    _ => return false,
                }
            }
            true
        });
    }

    fn rebuild_after_error(&mut self, s: u16) {
        self.seqs.forget(s);
        if s < self.k {
            self.raw
                .rebuild_shard(&self.docs[usize::from(s)], s, self.k);
        } else {
            self.retention = schema::read_retention(&self.docs[usize::from(s)]);
        }
        self.view = None;
    }

    /// Current heads of every document (index = shard; the last is the settings document).
    pub fn heads(&mut self) -> Vec<Vec<ChangeHash>> {
        self.flush();
        self.docs.iter_mut().map(AutoCommit::get_heads).collect()
    }

    /// Dependencies that held changes are waiting for, per document.
    pub fn missing_deps(&mut self) -> Vec<(u16, ChangeHash)> {
        let mut out = Vec::new();
        for (s, doc) in self.docs.iter_mut().enumerate() {
            for h in doc.get_missing_deps(&[]) {
                out.push((s as u16, h));
            }
        }
        out
    }

    /// Changes of document `shard` not reachable from `have` (for catch-up).
    pub fn changes_since(
        &mut self,
        shard: u16,
        have: &[ChangeHash],
    ) -> Result<Vec<LocalChange>, CrdtError> {
        let count = self.docs.len() as u16;
        if shard >= count {
            return Err(CrdtError::BadShard {
                index: shard,
                count,
            });
        }
        self.flush();
        Ok(self.docs[usize::from(shard)]
            .get_changes(have)
            .into_iter()
            .map(|c| LocalChange {
                shard,
                hash: c.hash(),
                bytes: c.raw_bytes().to_vec(),
            })
            .collect())
    }

    /// Saves every document (held changes included) in one byte string. Pending local edits are
    /// committed first (their changes wait in `commit_local`).
    pub fn save(&mut self) -> Vec<u8> {
        self.flush();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.k.to_be_bytes());
        for doc in &mut self.docs {
            let bytes = doc.save();
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        out
    }

    /// Loads what [`Workspace::save`] wrote, for the device with this actor id.
    pub fn load(actor: &[u8], bytes: &[u8]) -> Result<Self, CrdtError> {
        if bytes.len() > limits::MAX_SAVED_BYTES {
            return Err(CrdtError::TooLarge {
                what: "saved workspace",
                limit: limits::MAX_SAVED_BYTES,
            });
        }
        let corrupt = |m: &str| CrdtError::CorruptSave(m.to_owned());
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| corrupt("bad magic"))?;
        let (kb, mut rest) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| corrupt("truncated"))?;
        let k = u16::from_be_bytes(*kb);
        if k == 0 || k > limits::MAX_SHARDS {
            return Err(corrupt("bad shard count"));
        }
        let template = Workspace::join(actor, k)?;
        let actor_id = template.docs[0].get_actor().clone();
        let mut docs = Vec::with_capacity(usize::from(k) + 1);
        for _ in 0..=k {
            let (lb, r) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| corrupt("truncated"))?;
            let len =
                usize::try_from(u64::from_be_bytes(*lb)).map_err(|_| corrupt("bad length"))?;
            if len > r.len() {
                return Err(corrupt("truncated document"));
            }
            let (doc_bytes, r) = r.split_at(len);
            let doc =
                AutoCommit::load(doc_bytes).map_err(|e| CrdtError::CorruptSave(e.to_string()))?;
            docs.push(doc.with_actor(actor_id.clone()));
            rest = r;
        }
        if !rest.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        let mut ws = Workspace::from_docs(k, docs);
        // Changes automerge kept queued in the save are found again by their missing deps;
        // their keys are unknown here, so the shard is re-read whenever changes reach it.
        for s in 0..=k {
            if !ws.docs[usize::from(s)].get_missing_deps(&[]).is_empty() {
                ws.queued_at_load.insert(s);
            }
        }
        Ok(ws)
    }
}

const MAGIC: &[u8] = b"CLOISON-WS\x01";

/// Records an entry key of shard `shard` that a landed change touched, for patching the view:
/// version and deletion keys of an entry living in that shard are noted; any other key (place,
/// name, settings, unknown, misplaced) gives up on patching.
fn note_touched(touched: &mut Option<BTreeSet<EntryId>>, shard: u16, k: u16, key: &str) {
    let Some(ids) = touched else { return };
    match schema::parse_key(key) {
        Some((id, Field::Version(_) | Field::Deleted)) if shard_of(id, k) == shard => {
            ids.insert(id);
        }
        _ => *touched = None,
    }
}

/// Root-map keys a change writes (entry fields and settings), read from its ops.
fn touched_keys(change: &Change) -> Vec<String> {
    use automerge::legacy::{Key, ObjectId};
    let mut keys: Vec<String> = change
        .decode()
        .operations
        .into_iter()
        .filter(|op| matches!(op.obj, ObjectId::Root))
        .filter_map(|op| match op.key {
            Key::Map(k) => Some(k.to_string()),
            Key::Seq(_) => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
