//! After every input to the engine (a local write, a peer's message, a timer): persist what was
//! admitted, store received blocks, answer block requests, run the housekeeping that admitted
//! entries call for (user-key and workspace-key rotations), and bring open documents up to date.
//!
//! Invariants: an item is persisted only after the engine admitted it; blocks are stored only
//! after the engine checked them against their id (the store checks again); the loop runs
//! until the engine has no event left, so a rotation written in reaction to a revocation is
//! persisted and pushed in the same call.

use std::collections::BTreeSet;

use super::{Node, NodeError, now_ms};
use crate::trust::EntryId;
use crate::workspace::{EnvelopeId, WorkspaceId};

/// What one [`Node::settle`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Organization entries persisted.
    pub entries: usize,
    /// Envelopes persisted.
    pub envelopes: usize,
    /// Blocks received and stored.
    pub blocks: usize,
    /// Items refused from peers.
    pub refused: usize,
}

/// Most settle rounds in one call (each round drains every event; housekeeping may cause one
/// more round, never an unbounded chain).
const MAX_ROUNDS: usize = 16;

impl Node {
    /// Drains the engine's events: see the module doc.
    pub fn settle(&mut self) -> Result<Settled, NodeError> {
        let mut out = Settled::default();
        for _ in 0..MAX_ROUNDS {
            let Some(d) = self.engine.drain() else {
                break;
            };
            out.refused += d.refused.values().sum::<usize>();
            for (reason, n) in &d.refused {
                *self.refused_items.entry(reason).or_default() += *n as u64;
            }
            self.disconnects.extend(d.disconnects);
            let (org_ids, ws_ids, blocks) = (d.org, d.workspaces, d.blocks);
            let now = now_ms();
            if !org_ids.is_empty() {
                let log = &self.engine.replica().org;
                out.entries += self
                    .store
                    .put_log_entries(org_ids.iter().filter_map(|id| log.get(&EntryId(*id))))?;
            }
            for (w, ids) in &ws_ids {
                let Some(log) = self.engine.replica().workspaces.get(w) else {
                    continue;
                };
                out.envelopes += self
                    .store
                    .put_envelopes(*w, ids.iter().filter_map(|id| log.get(&EnvelopeId(*id))))?;
                self.last_sync.insert(*w, now);
            }
            if !blocks.is_empty() {
                let refs: Vec<crate::store::BlockIn<'_>> = blocks
                    .iter()
                    .map(|(w, id, b)| (*w, id, b.as_slice()))
                    .collect();
                out.blocks += self.store.put_hashed_blocks(&refs)?;
                self.blocks.extend(blocks.iter().map(|(_, id, _)| *id));
            }
            let store = &self.store;
            self.engine
                .answer_block_requests(d.requests, |w, id| store.block_for(w, id))?;
            // Housekeeping: the organization changed (a revocation, a rotation sealed to us, a
            // new member) or workspaces did.
            let mut touched: BTreeSet<WorkspaceId> = ws_ids.keys().copied().collect();
            if !org_ids.is_empty() {
                self.maintain()?;
                touched.extend(self.engine.replica().workspaces.keys().copied());
            }
            self.note_merges(ws_ids.keys().copied(), now);
            for w in touched {
                self.maintain_workspace(w)?;
                if self.eager || self.docs.contains_key(&w) {
                    self.refresh_doc(w)?;
                }
            }
        }
        Ok(out)
    }
}
