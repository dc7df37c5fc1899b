//! Fetching blocks on demand, in parallel, from any linked peer that shares the workspace.
//!
//! Invariants: a block is assigned to at most one peer at a time and not again to a peer that
//! lacked it, sent a wrong one or timed out on it until [`BLOCK_RETRY_MS`] have passed since
//! that failure (a peer that lacked a block may have fetched it since: with a chain A - B - C,
//! C asks B before B has it); at most [`PER_PEER`] blocks are in flight per peer; a block is
//! handed to the shell ([`Event::BlockReceived`]) only if BLAKE3 of its bytes is its id.
//!
//! Receive limit ([`Engine::set_recv_limit`]): a block is asked for only once the limit's
//! bucket (`sync::rate`) covers its expected size, in order, charged that when asked and
//! corrected to its real size when it arrives (refunded if it does not), so what peers send us, which is only
//! what we ask for, arrives at the limit however fast they could send. A peer that delivers
//! slowly (behind its own send limit) keeps its assignments as long as it delivers one of them
//! at least every [`BLOCK_TIMEOUT_MS`].

use std::collections::{BTreeMap, BTreeSet};

use super::{Engine, Event};
use crate::sync::msg::{DocId, ITEMS_TARGET, MAX_BLOCK_IDS, Msg, PackedBlock};
use crate::trust::DeviceId;

/// Blocks in flight per peer. Deep enough that a round trip (and the receiver's durable write)
/// is paid once per batch, not once per block: with 8, 5,000 small blocks took 625 round trips
/// and the machine sat idle three quarters of the time.
pub const PER_PEER: usize = 1024;
/// Bytes in flight per peer (by the sizes given to [`Engine::fetch_blocks_sized`]; a block of
/// unknown size counts as [`UNKNOWN_SIZE`]). The provider sends about one message per
/// [`ITEMS_TARGET`] bytes, so this also bounds the streams a burst opens (the network allows 64
/// per connection).
pub const PER_PEER_BYTES: u64 = 24 << 20;
/// What a block of unknown size counts for.
pub const UNKNOWN_SIZE: u64 = 1 << 20;
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
    size: u64,
    /// What the receive limit was charged for the current assignment.
    charged: u64,
}

impl Engine {
    /// Limits the rate at which blocks are asked for to `bytes_per_s` (`None`: no limit).
    pub fn set_recv_limit(&mut self, bytes_per_s: Option<u64>) {
        self.recv_limit = bytes_per_s.map(|r| crate::sync::rate::Bucket::new(r, self.now));
        self.plan_blocks();
    }

    /// The receive limit, in bytes per second.
    pub fn recv_limit(&self) -> Option<u64> {
        self.recv_limit.as_ref().map(|b| b.rate())
    }

    /// When a block assigned to `peer` at `since` is late.
    fn late_at(&self, peer: &DeviceId, since: u64) -> u64 {
        let last = self.delivered.get(peer).copied().unwrap_or(0);
        since.max(last) + BLOCK_TIMEOUT_MS
    }

    /// The earliest time a block needs attention: an assignment late, failed peers retried, or
    /// the receive limit ready again for blocks it held back.
    pub(super) fn blocks_deadline(&self) -> Option<u64> {
        let mut held_back = false;
        let mut first: Option<u64> = None;
        for f in self.blocks.values() {
            let t = match f.assigned {
                Some((p, since)) => Some(self.late_at(&p, since)),
                None => {
                    held_back |= f.failed_at.is_none();
                    f.failed_at.map(|t| t + BLOCK_RETRY_MS)
                }
            };
            first = match (first, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        // Only a bucket in debt gives a time: a ready one held nothing back.
        let paced = self
            .recv_limit
            .as_ref()
            .map(|b| b.ready_at())
            .filter(|t| held_back && *t > self.now);
        match (first, paced) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Asks for blocks of a workspace: they are fetched from linked peers sharing it, and each
    /// arrives as [`Event::BlockReceived`].
    pub fn fetch_blocks(&mut self, doc: DocId, ids: impl IntoIterator<Item = [u8; 32]>) {
        self.fetch_blocks_sized(doc, ids.into_iter().map(|id| (id, UNKNOWN_SIZE)));
    }

    /// [`Engine::fetch_blocks`] with each block's (approximate) size, so that many small blocks
    /// can be in flight at once.
    pub fn fetch_blocks_sized(
        &mut self,
        doc: DocId,
        ids: impl IntoIterator<Item = ([u8; 32], u64)>,
    ) {
        for (id, size) in ids {
            self.blocks.entry(id).or_insert_with(|| Fetch {
                doc: Some(doc),
                size: size.max(1),
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
        let mut batch: Vec<PackedBlock> = Vec::new();
        let mut size = 0;
        for (id, bytes) in found {
            size += bytes.len() + 40;
            batch.push(PackedBlock { id, bytes });
            if size >= ITEMS_TARGET || batch.len() >= MAX_BLOCK_IDS {
                let blocks = std::mem::take(&mut batch);
                self.send(peer, &Msg::Blocks { doc, blocks });
                size = 0;
            }
        }
        if !batch.is_empty() {
            self.send(peer, &Msg::Blocks { doc, blocks: batch });
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
        let mut load: BTreeMap<DeviceId, (usize, u64)> = BTreeMap::new();
        for f in self.blocks.values() {
            if let Some((p, _)) = f.assigned {
                let l = load.entry(p).or_default();
                l.0 += 1;
                l.1 += f.size;
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
            let size = f.size;
            // In order: a large block is not passed over for the small ones behind it.
            if let Some(b) = self.recv_limit.as_mut()
                && !b.ready(now, size)
            {
                break;
            }
            // The least loaded peer (by bytes) that shares the workspace, has room, and has not
            // failed this block.
            let mut best: Option<(u64, DeviceId)> = None;
            for p in &peers {
                let (n, bytes) = load.get(p).copied().unwrap_or((0, 0));
                let room = n < PER_PEER && (n == 0 || bytes + size <= PER_PEER_BYTES);
                if room
                    && !tried.contains(p)
                    && best.is_none_or(|(bb, _)| bytes < bb)
                    && self.may_share(p, doc)
                {
                    best = Some((bytes, *p));
                }
            }
            let Some((_, p)) = best else { continue };
            let l = load.entry(p).or_default();
            l.0 += 1;
            l.1 += size;
            if let Some(f) = self.blocks.get_mut(&id) {
                f.assigned = Some((p, now));
                if let Some(b) = self.recv_limit.as_mut() {
                    b.take(now, size);
                    f.charged = size;
                }
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
            let now = self.now;
            if let Some(f) = self.blocks.remove(&id)
                && let Some(b) = self.recv_limit.as_mut()
            {
                // Charged its expected size when asked; corrected to the size it came in.
                let got = bytes.len() as u64;
                match got.checked_sub(f.charged) {
                    Some(more) => b.take(now, more),
                    None => b.refund(f.charged - got),
                }
            }
            self.delivered.insert(peer, now);
            self.events
                .push_back(Event::BlockReceived { doc, id, bytes });
        }
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
            if let Some(b) = self.recv_limit.as_mut() {
                b.refund(std::mem::take(&mut f.charged));
            }
        }
    }

    /// Unassigns the blocks of a peer that left or timed out, and replans.
    pub(super) fn blocks_peer_gone(&mut self, peer: DeviceId) {
        self.delivered.remove(&peer);
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

    /// Gives up on assignments older than [`BLOCK_TIMEOUT_MS`] (counted from the peer's last
    /// delivery, if later).
    pub(super) fn blocks_tick(&mut self) {
        let now = self.now;
        let late: Vec<([u8; 32], DeviceId)> = self
            .blocks
            .iter()
            .filter_map(|(id, f)| match f.assigned {
                Some((p, since)) if now >= self.late_at(&p, since) => Some((*id, p)),
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
