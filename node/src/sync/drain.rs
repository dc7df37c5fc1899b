//! The engine's events of one turn, sorted into what a shell must do with them: persist the
//! admitted items, store the received blocks, answer block requests, cut peers off. The device
//! (`node::settle`) and the relay (`relay::served`) drain the same way and differ only in where
//! they persist.
//!
//! Invariant: draining never drops an event; refusals and undecodable messages are logged here
//! (counted by reason in [`Drained::refused`]), everything else is handed to the caller.

use std::collections::BTreeMap;

use super::{DocId, Engine, Event};
use crate::trust::DeviceId;
use crate::workspace::WorkspaceId;

/// A block request: who asked, for which document, which ids.
pub type BlockRequest = (DeviceId, DocId, Vec<[u8; 32]>);

/// The events of one turn, by kind.
#[derive(Debug, Default)]
pub struct Drained {
    /// Organization-log entries admitted.
    pub org: Vec<[u8; 32]>,
    /// Envelopes admitted, per workspace.
    pub workspaces: BTreeMap<WorkspaceId, Vec<[u8; 32]>>,
    /// Blocks received (checked against their ids by the engine), with the workspace they were
    /// fetched for.
    pub blocks: Vec<(WorkspaceId, [u8; 32], Vec<u8>)>,
    /// Block requests to answer.
    pub requests: Vec<BlockRequest>,
    /// Peers to disconnect.
    pub disconnects: Vec<DeviceId>,
    /// Items refused from peers, by reason label.
    pub refused: BTreeMap<&'static str, usize>,
}

impl Engine {
    /// Takes every pending event; `None` when there was none.
    pub fn drain(&mut self) -> Option<Drained> {
        let mut d = Drained::default();
        let mut any = false;
        while let Some(ev) = self.poll_event() {
            any = true;
            match ev {
                Event::Admitted {
                    doc: DocId::Org,
                    ids,
                } => d.org.extend(ids),
                Event::Admitted {
                    doc: DocId::Workspace(w),
                    ids,
                } => d.workspaces.entry(w).or_default().extend(ids),
                Event::Refused { peer, id, reason } => {
                    *d.refused.entry(reason).or_default() += 1;
                    tracing::warn!(peer = %peer.short(), item = %hex::encode(&id[..6]), reason, "item from peer refused");
                }
                Event::BadMessage { peer, error } => {
                    tracing::warn!(peer = %peer.short(), %error, "undecodable message from peer");
                }
                Event::BlockRequested { peer, doc, ids } => d.requests.push((peer, doc, ids)),
                Event::BlockReceived { doc, id, bytes } => {
                    if let DocId::Workspace(w) = doc {
                        d.blocks.push((w, id, bytes));
                    }
                }
                Event::Disconnect { peer } => d.disconnects.push(peer),
            }
        }
        any.then_some(d)
    }

    /// Answers block requests from what `block` finds for the workspace asked under (the
    /// store's `block_for`: only blocks stored for it): found blocks go back, the others are
    /// said missing.
    pub fn answer_block_requests<E>(
        &mut self,
        requests: Vec<BlockRequest>,
        mut block: impl FnMut(WorkspaceId, &[u8; 32]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<(), E> {
        for (peer, doc, ids) in requests {
            let mut found = Vec::new();
            let mut missing = Vec::new();
            let DocId::Workspace(w) = doc else {
                self.provide_blocks(peer, doc, found, ids);
                continue;
            };
            for id in ids {
                match block(w, &id)? {
                    Some(b) => found.push((id, b)),
                    None => missing.push(id),
                }
            }
            self.provide_blocks(peer, doc, found, missing);
        }
        Ok(())
    }
}
