//! Fetching blocks on demand, in parallel, from any linked peer that shares the workspace.
//!
//! Invariants: a block is assigned to at most one peer at a time and not again to a peer that
//! lacked it, sent a wrong one or timed out on it until [`BLOCK_RETRY_MS`] have passed since
//! that failure (a peer that lacked a block may have fetched it since: with a chain A - B - C,
//! C asks B before B has it); at most [`PER_PEER`] blocks are in flight per peer; a block is
//! handed to the shell ([`Event::BlockReceived`]) only if BLAKE3 of its bytes is its id.

use std::collections::{BTreeMap, BTreeSet};

use super::{Engine, Event};
use crate::sync::msg::{DocId, MAX_BLOCK_IDS, Msg};
use crate::trust::DeviceId;

/// Blocks in flight per peer.
pub const PER_PEER: usize = 8;
/// How long a peer has to deliver an assigned block.
pub const BLOCK_TIMEOUT_MS: u64 = 30_000;
/// How long after a failure the peers that failed a block may be asked again.
pub const BLOCK_RETRY_MS: u64 = 2_000;

/// One wanted block.
#[derive(Debug, Clone, Default)]
pub(super) struct Fetch {
    doc: Option<DocId>,
    tried: BTreeSet<DeviceId>,
    assigned: Option<(DeviceId, u64)>,
    failed_at: Option<u64>,
}

impl Fetch {
    /// When the current assignment times out, or when the peers that failed may be retried.
    pub(super) fn deadline(&self) -> Option<u64> {
        match self.assigned {
            Some((_, since)) => Some(since + BLOCK_TIMEOUT_MS),
            None => self.failed_at.map(|t| t + BLOCK_RETRY_MS),
        }
    }
}

impl Engine {
    /// Asks for blocks of a workspace: they are fetched from linked peers sharing it, and each
    /// arrives as [`Event::BlockReceived`].
    pub fn fetch_blocks(&mut self, doc: DocId, ids: impl IntoIterator<Item = [u8; 32]>) {
        for id in ids {
            self.blocks.entry(id).or_insert_with(|| Fetch {
                doc: Some(doc),
                ..Fetch::default()
            });
        }
        self.plan_blocks();
    }

    /// Blocks wanted and not yet received.
    pub fn blocks_pending(&self) -> usize {
        self.blocks.len()
    }

    /// Answers a [`Event::BlockRequested`]: the blocks found, and the ids not held.
    pub fn provide_blocks(
        &mut self,
        peer: DeviceId,
        doc: DocId,
        found: Vec<([u8; 32], Vec<u8>)>,
        missing: Vec<[u8; 32]>,
    ) {
        for (id, bytes) in found {
            self.send(peer, &Msg::Block { doc, id, bytes });
        }
        for chunk in missing.chunks(MAX_BLOCK_IDS) {
            self.send(
                peer,
                &Msg::BlockMissing {
                    doc,
                    ids: chunk.to_vec(),
                },
            );
        }
    }

    /// Assigns unassigned blocks to peers with room, and sends the requests.
    pub(super) fn plan_blocks(&mut self) {
        let now = self.now;
        let mut load: BTreeMap<DeviceId, usize> = BTreeMap::new();
        for f in self.blocks.values() {
            if let Some((p, _)) = f.assigned {
                *load.entry(p).or_default() += 1;
            }
        }
        let peers: Vec<DeviceId> = self.links.keys().copied().collect();
        let mut requests: BTreeMap<(DeviceId, DocId), Vec<[u8; 32]>> = BTreeMap::new();
        let ids: Vec<[u8; 32]> = self
            .blocks
            .iter()
            .filter(|(_, f)| f.assigned.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(f) = self.blocks.get(&id) else {
                continue;
            };
            let Some(doc) = f.doc else { continue };
            let tried = f.tried.clone();
            // The least loaded peer that shares the workspace and has not failed this block.
            let mut best: Option<(usize, DeviceId)> = None;
            for p in &peers {
                let l = load.get(p).copied().unwrap_or(0);
                if l < PER_PEER
                    && !tried.contains(p)
                    && best.is_none_or(|(bl, _)| l < bl)
                    && self.may_share(p, doc)
                {
                    best = Some((l, *p));
                }
            }
            let Some((_, p)) = best else { continue };
            *load.entry(p).or_default() += 1;
            if let Some(f) = self.blocks.get_mut(&id) {
                f.assigned = Some((p, now));
            }
            requests.entry((p, doc)).or_default().push(id);
        }
        for ((p, doc), ids) in requests {
            for chunk in ids.chunks(MAX_BLOCK_IDS) {
                self.send(
                    p,
                    &Msg::BlockWant {
                        doc,
                        ids: chunk.to_vec(),
                    },
                );
            }
        }
    }

    pub(super) fn on_block_want(&mut self, peer: DeviceId, doc: DocId, ids: Vec<[u8; 32]>) {
        if self.may_share(&peer, doc) {
            self.events
                .push_back(Event::BlockRequested { peer, doc, ids });
        }
    }

    pub(super) fn on_block(&mut self, peer: DeviceId, doc: DocId, id: [u8; 32], bytes: Vec<u8>) {
        let assigned_here = self
            .blocks
            .get(&id)
            .is_some_and(|f| f.assigned.is_some_and(|(p, _)| p == peer));
        if !assigned_here {
            return; // not asked for, or asked elsewhere after a timeout
        }
        if blake3::hash(&bytes).as_bytes() != &id {
            tracing::warn!(peer = %peer.short(), "block does not match its id");
            self.events.push_back(Event::Refused {
                peer,
                id,
                reason: "block_id_mismatch",
            });
            self.block_failed(peer, id);
        } else {
            self.blocks.remove(&id);
            self.events
                .push_back(Event::BlockReceived { doc, id, bytes });
        }
        self.plan_blocks();
    }

    pub(super) fn on_block_missing(&mut self, peer: DeviceId, ids: Vec<[u8; 32]>) {
        for id in ids {
            let assigned_here = self
                .blocks
                .get(&id)
                .is_some_and(|f| f.assigned.is_some_and(|(p, _)| p == peer));
            if assigned_here {
                self.block_failed(peer, id);
            }
        }
        self.plan_blocks();
    }

    fn block_failed(&mut self, peer: DeviceId, id: [u8; 32]) {
        let now = self.now;
        if let Some(f) = self.blocks.get_mut(&id) {
            f.tried.insert(peer);
            f.assigned = None;
            f.failed_at = Some(now);
        }
    }

    /// Unassigns the blocks of a peer that left or timed out, and replans.
    pub(super) fn blocks_peer_gone(&mut self, peer: DeviceId) {
        let ids: Vec<[u8; 32]> = self
            .blocks
            .iter()
            .filter(|(_, f)| f.assigned.is_some_and(|(p, _)| p == peer))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.block_failed(peer, id);
        }
        self.plan_blocks();
    }

    /// Gives up on assignments older than [`BLOCK_TIMEOUT_MS`].
    pub(super) fn blocks_tick(&mut self) {
        let now = self.now;
        let late: Vec<([u8; 32], DeviceId)> = self
            .blocks
            .iter()
            .filter_map(|(id, f)| match f.assigned {
                Some((p, since)) if now.saturating_sub(since) >= BLOCK_TIMEOUT_MS => Some((*id, p)),
                _ => None,
            })
            .collect();
        for (id, p) in late {
            self.block_failed(p, id);
        }
        for f in self.blocks.values_mut() {
            if f.assigned.is_none()
                && f.failed_at
                    .is_some_and(|t| now.saturating_sub(t) >= BLOCK_RETRY_MS)
            {
                f.tried.clear();
                f.failed_at = None;
            }
        }
        self.plan_blocks();
    }
}
