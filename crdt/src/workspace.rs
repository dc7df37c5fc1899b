//! The [`Workspace`]: K shard documents plus a settings document, the raw cache and the view.
//!
//! Invariants:
//! - `docs[0..K]` are entry shards, `docs[K]` is the settings document; K never changes.
//! - `raw` always equals what the documents hold (every local write and every applied remote
//!   change refreshes the keys it touched).
//! - `view`, when present, equals `resolve::materialize(&raw)`. Local edits (see `crate::ops`)
//!   and remote content writes (see `crate::exchange`) patch it in place only in cases proven
//!   not to affect anything else; everything else drops it. `Workspace::view_is_consistent`
//!   checks this in tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ChangeHash, ROOT, ScalarValue};

use crate::codec;
use crate::error::CrdtError;
use crate::exchange::LocalChange;
use crate::ids::EntryId;
use crate::limits;
use crate::model::Retention;
use crate::names::check_title;
use crate::resolve::materialize;
use crate::schema::{self, Field, RawCache, shard_of};
use crate::tree::{Node, Tree};

/// Default number of entry shards for a new workspace (see the crate doc, "Performance", for
/// why 256 rather than 64).
pub const DEFAULT_SHARDS: u16 = 256;

/// A workspace document: a merge-safe file tree. See the crate documentation.
#[derive(Debug)]
pub struct Workspace {
    pub(crate) k: u16,
    pub(crate) docs: Vec<AutoCommit>,
    /// Which documents have uncommitted local ops.
    pub(crate) dirty: Vec<bool>,
    pub(crate) raw: RawCache,
    pub(crate) retention: Retention,
    pub(crate) view: Option<Arc<Tree>>,
    pub(crate) outbox: Vec<LocalChange>,
    /// Remote changes held for missing dependencies: the keys they touch.
    pub(crate) held: BTreeMap<(u16, ChangeHash), Vec<String>>,
    /// Documents that had queued (held) changes when loaded: re-read when changes arrive.
    pub(crate) queued_at_load: std::collections::BTreeSet<u16>,
    /// The actor sequence numbers each document has taken (checked before a batch applies).
    pub(crate) seqs: crate::seqs::Seqs,
    /// Time of the latest local op, used as the automerge commit time (seconds).
    pub(crate) last_op_ms: i64,
    /// Automerge panicked while applying remote changes: nothing more is applied.
    pub(crate) poisoned: bool,
}

fn actor_id(actor: &[u8]) -> Result<ActorId, CrdtError> {
    if actor.is_empty() || actor.len() > 64 {
        return Err(CrdtError::TooLarge {
            what: "actor id (1..=64 bytes)",
            limit: 64,
        });
    }
    Ok(ActorId::from(actor))
}

impl Workspace {
    /// Starts a brand-new workspace with `shards` entry shards, written by `actor` (stable
    /// bytes per device, 1..=64). Records K in the settings document; the first
    /// [`Workspace::commit_local`] returns that change.
    pub fn create(actor: &[u8], shards: u16, now_ms: i64) -> Result<Self, CrdtError> {
        let mut ws = Self::join(actor, shards)?;
        let k = ws.k;
        ws.docs[usize::from(k)].put(ROOT, schema::KEY_SHARDS, ScalarValue::Int(i64::from(k)))?;
        ws.dirty[usize::from(k)] = true;
        ws.last_op_ms = now_ms;
        Ok(ws)
    }

    /// An empty replica of an existing workspace of `shards` shards (K comes with the
    /// workspace's metadata); it fills up from remote changes.
    pub fn join(actor: &[u8], shards: u16) -> Result<Self, CrdtError> {
        if shards == 0 || shards > limits::MAX_SHARDS {
            return Err(CrdtError::TooLarge {
                what: "shard count (1..=4096)",
                limit: usize::from(limits::MAX_SHARDS),
            });
        }
        let actor = actor_id(actor)?;
        let docs = (0..=shards)
            .map(|_| AutoCommit::new().with_actor(actor.clone()))
            .collect();
        Ok(Self::from_docs(shards, docs))
    }

    pub(crate) fn from_docs(k: u16, docs: Vec<AutoCommit>) -> Self {
        let n = docs.len();
        let mut ws = Workspace {
            k,
            docs,
            dirty: vec![false; n],
            raw: RawCache::default(),
            retention: Retention::KeepAll,
            view: None,
            outbox: Vec::new(),
            held: BTreeMap::new(),
            queued_at_load: Default::default(),
            seqs: Default::default(),
            last_op_ms: 0,
            poisoned: false,
        };
        for s in 0..k {
            ws.raw.rebuild_shard(&ws.docs[usize::from(s)], s, k);
        }
        ws.retention = schema::read_retention(&ws.docs[usize::from(k)]);
        ws
    }

    /// Number of entry shards K.
    pub fn shard_count(&self) -> u16 {
        self.k
    }

    /// Index of the settings document (= K). Changes to it alter workspace settings
    /// (retention, title): the sync layer should admit them only from owners.
    pub fn settings_shard(&self) -> u16 {
        self.k
    }

    /// The shard count K recorded by the creator in the settings document, once its change has
    /// arrived. A replica should check it equals [`Workspace::shard_count`]; a mismatch means
    /// the replica was joined with the wrong K and its entry shards are meaningless.
    pub fn recorded_shard_count(&self) -> Option<u16> {
        use automerge::ReadDoc;
        let settings = &self.docs[usize::from(self.k)];
        match settings.get(ROOT, schema::KEY_SHARDS) {
            Ok(Some((automerge::Value::Scalar(v), _))) => match v.as_ref() {
                ScalarValue::Int(i) => u16::try_from(*i).ok(),
                _ => None,
            },
            _ => None,
        }
    }

    /// Which shard an entry lives in.
    pub fn shard_of(&self, id: EntryId) -> u16 {
        shard_of(id, self.k)
    }

    /// The materialized tree (computed once, then kept until something changes it).
    pub fn tree(&mut self) -> Arc<Tree> {
        if let Some(t) = &self.view {
            return Arc::clone(t);
        }
        let t = Arc::new(materialize(&self.raw));
        self.view = Some(Arc::clone(&t));
        t
    }

    /// Benchmark support: drops the kept view and materializes it again from the raw cache.
    #[doc(hidden)]
    pub fn rematerialize(&mut self) -> Arc<Tree> {
        self.view = None;
        self.tree()
    }

    /// Number of entries known to the document (visible, deleted, or not yet placed).
    pub fn entry_count(&self) -> usize {
        self.raw.entries.len()
    }

    /// The visible children of a folder, sorted by name.
    pub fn list(&mut self, folder: EntryId) -> Result<Vec<Node>, CrdtError> {
        let t = self.tree();
        match t.get(folder) {
            None => Err(CrdtError::NotFound(folder)),
            Some(n) if n.kind != crate::model::Kind::Folder => Err(CrdtError::NotAFolder(folder)),
            Some(_) => Ok(t.children(folder).cloned().collect()),
        }
    }

    /// One visible entry.
    pub fn stat(&mut self, id: EntryId) -> Option<Node> {
        self.tree().get(id).cloned()
    }

    /// Resolves a `/`-separated path to a visible entry.
    pub fn resolve(&mut self, path: &str) -> Option<Node> {
        self.tree().resolve(path).cloned()
    }

    /// Every visible entry with its path, depth first.
    pub fn walk(&mut self) -> Vec<(String, Node)> {
        self.tree()
            .walk()
            .into_iter()
            .map(|(p, n)| (p, n.clone()))
            .collect()
    }

    /// The current retention policy.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Sets the workspace title, its display name (an owner's decision, like retention: it lives
    /// in the settings document). Rules: [`crate::check_title`]. Concurrent titles resolve to
    /// the one with the greatest `(time, encoding)` on every replica.
    pub fn set_title(&mut self, title: &str, now_ms: i64) -> Result<(), CrdtError> {
        check_title(title)?;
        let s = usize::from(self.k);
        let value = ScalarValue::Bytes(codec::encode_title(now_ms, title));
        self.docs[s].put(ROOT, schema::KEY_TITLE, value)?;
        self.dirty[s] = true;
        self.touch(now_ms);
        Ok(())
    }

    /// The workspace title, once one was set and its change has arrived. Read from the settings
    /// document on each call (it is tiny); stored values breaking the rules are ignored.
    pub fn title(&self) -> Option<String> {
        schema::read_title(&self.docs[usize::from(self.k)])
    }

    /// Test support: true when the kept view equals a fresh materialization.
    #[doc(hidden)]
    pub fn view_is_consistent(&self) -> bool {
        match &self.view {
            None => true,
            Some(v) => **v == materialize(&self.raw),
        }
    }

    /// Writes one field of an entry locally and refreshes the cache.
    pub(crate) fn put_field(
        &mut self,
        id: EntryId,
        field: Field,
        value: ScalarValue,
    ) -> Result<(), CrdtError> {
        let s = shard_of(id, self.k);
        let key = schema::key(id, field);
        let doc = &mut self.docs[usize::from(s)];
        doc.put(ROOT, key.as_str(), value)?;
        self.dirty[usize::from(s)] = true;
        self.raw
            .refresh_key(&self.docs[usize::from(s)], s, self.k, &key);
        Ok(())
    }
}
