//! A budget of held bytes per peer, across all documents: the per-log bounds of
//! [`crate::dag::Holding`] cap each log, this caps what one peer can make a replica hold in all
//! its logs together (a member may push orphans into every workspace the replica holds).
//!
//! Each item a peer sends that ends up in a holding area (waiting for parents or organization
//! heads) is charged its size to the peer for a window of [`MAX_HELD_AGE_MS`]; past
//! [`Config::held_per_peer`](super::Config::held_per_peer) in a window, the peer's newly held
//! items are taken out again at once, without a verdict (a peer sending them once their parents
//! are here has them admitted; nothing is cut off, since an honest peer catching us up from
//! another peer's parents looks the same for a while).
//!
//! Invariant: items held from one peer, in all logs, never exceed twice the budget (the window
//! and the previous one; older items have expired), plus what expiry has not yet swept.

use super::Engine;
use crate::dag::MAX_HELD_AGE_MS;
use crate::sync::msg::DocId;
use crate::trust::DeviceId;

/// Default budget of held bytes per peer and window.
pub const HELD_PER_PEER: usize = 16 << 20;

impl Engine {
    /// Charges `peer` for the items among `fresh` (id, size: new to the replica before the
    /// ingest) that are now held; takes out those past the budget.
    pub(super) fn charge_held(&mut self, peer: DeviceId, doc: DocId, fresh: &[([u8; 32], usize)]) {
        let now = self.now;
        let budget = self.cfg.held_per_peer;
        let window = self.held_from.entry(peer).or_insert((now, 0));
        if now.saturating_sub(window.0) >= MAX_HELD_AGE_MS {
            *window = (now, 0);
        }
        let mut over = Vec::new();
        for (id, size) in fresh {
            if !self.replica.in_holding(doc, id) {
                continue;
            }
            if window.1.saturating_add(*size) <= budget {
                window.1 += size;
            } else {
                over.push(*id);
            }
        }
        if !over.is_empty() {
            let n = self.replica.unhold(doc, &over);
            self.stats.held_over_budget += n as u64;
            tracing::debug!(peer = %peer.short(), items = n, "peer past its budget of held bytes");
        }
    }

    /// Forgets the windows that ended.
    pub(super) fn held_tick(&mut self) {
        let now = self.now;
        self.held_from
            .retain(|_, (start, _)| now.saturating_sub(*start) < MAX_HELD_AGE_MS);
    }

    /// Bytes charged to `peer` in its current window of held items.
    pub fn held_charged(&self, peer: &DeviceId) -> usize {
        self.held_from.get(peer).map_or(0, |w| w.1)
    }
}
