//! The actor sequence numbers each document has taken, so that [`Workspace::apply_remote`]
//! refuses a batch that reuses one *before* it applies anything.
//!
//! Automerge refuses a change whose actor already has a change with that sequence number in the
//! document (applied or held), but it does so while applying one document of the batch, after
//! the batch's earlier documents were applied, and it drops held changes of that actor on the way:
//! a refused batch would have changed the workspace. Found by the `crdt_changes` fuzz target.
//!
//! Invariants: the applied maxima of a document are read from automerge on first use (one pass
//! over its change metadata) and then kept up to date by every application and local commit, or
//! dropped and read again after anything this module does not follow (a rebuild); held changes
//! are noted when automerge holds them and forgotten when they land.
//!
//! [`Workspace::apply_remote`]: crate::Workspace::apply_remote

use std::collections::{BTreeSet, HashMap};

use automerge::AutoCommit;

/// Taken `(actor, seq)` pairs per document.
#[derive(Debug, Default)]
pub(crate) struct Seqs {
    /// Per document read so far: actor → highest sequence number applied.
    applied: HashMap<u16, HashMap<Vec<u8>, u64>>,
    /// Held changes' `(document, actor, seq)`.
    held: BTreeSet<(u16, Vec<u8>, u64)>,
}

impl Seqs {
    /// Whether a change of `actor` numbered `seq` that the document does not hold would be
    /// refused by automerge as a reused sequence number.
    pub(crate) fn taken(
        &mut self,
        doc: &mut AutoCommit,
        shard: u16,
        actor: &[u8],
        seq: u64,
    ) -> bool {
        let applied = self.applied.entry(shard).or_insert_with(|| {
            let mut m: HashMap<Vec<u8>, u64> = HashMap::new();
            for c in doc.get_changes_meta(&[]) {
                let e = m.entry(c.actor.to_bytes().to_vec()).or_default();
                *e = (*e).max(c.seq);
            }
            m
        });
        applied.get(actor).is_some_and(|&max| max >= seq)
            || self.held.contains(&(shard, actor.to_vec(), seq))
    }

    /// A change of `actor` numbered `seq` became part of the document.
    pub(crate) fn applied(&mut self, shard: u16, actor: &[u8], seq: u64) {
        self.held.remove(&(shard, actor.to_vec(), seq));
        if let Some(m) = self.applied.get_mut(&shard) {
            let e = m.entry(actor.to_vec()).or_default();
            *e = (*e).max(seq);
        }
    }

    /// Automerge holds a change of `actor` numbered `seq` for its dependencies.
    pub(crate) fn held(&mut self, shard: u16, actor: &[u8], seq: u64) {
        self.held.insert((shard, actor.to_vec(), seq));
    }

    /// The document was rebuilt outside this bookkeeping: read it again on next use.
    pub(crate) fn forget(&mut self, shard: u16) {
        self.applied.remove(&shard);
    }
}
