//! Relays authorized by the organization log: `cloison relay add` (an admin writes a
//! `RelayAuthorized` entry naming the relay's key and address) and `cloison relay list`.
//!
//! Invariant: the relay's id is taken from the `/p2p/<PeerId>` of the address the admin gives
//! (an Ed25519 key, as `cloison-bootstrap run` prints it); admission decides whether the author
//! may authorize relays (admins only).

use super::{Node, NodeError};
use crate::control::RelayInfo;
use crate::net::{Multiaddr, addr_peer, peer_id};
use crate::trust::EntryId;
use crate::trust::author::relay_authorized;

/// Longest relay address accepted here (the log's own limit applies too).
const MAX_ADDR: usize = 512;

impl Node {
    /// Authorizes the relay at `addr` (which must end in `/p2p/<PeerId>`).
    pub fn relay_add(&mut self, addr: &str) -> Result<RelayInfo, NodeError> {
        let addr = addr.trim();
        if addr.len() > MAX_ADDR {
            return Err(NodeError::Invalid("relay address too long".into()));
        }
        let m: Multiaddr = addr
            .parse()
            .map_err(|e| NodeError::Invalid(format!("{addr:?} is not a multiaddress: {e}")))?;
        let relay = addr_peer(&m).ok_or_else(|| {
            NodeError::Invalid(format!(
                "{addr:?} does not end in /p2p/<PeerId> of an Ed25519 key (copy the address \
                 `cloison-bootstrap run` prints)"
            ))
        })?;
        if relay == self.device_id() || self.state().devices.contains_key(&relay) {
            return Err(NodeError::Invalid(
                "that key is a device of this organization, not a relay".into(),
            ));
        }
        let entry = self.write(relay_authorized(relay, vec![m.to_string()]))?;
        self.settle()?;
        Ok(RelayInfo {
            id: relay.to_string(),
            peer_id: peer_id(&relay).map(|p| p.to_string()).unwrap_or_default(),
            addrs: vec![m.to_string()],
            authorized_by: entry.short(),
        })
    }

    /// The authorized relays.
    pub fn relays(&self) -> Vec<RelayInfo> {
        self.state()
            .relays
            .iter()
            .map(|(id, r)| RelayInfo {
                id: id.to_string(),
                peer_id: peer_id(id).map(|p| p.to_string()).unwrap_or_default(),
                addrs: r.addrs.clone(),
                authorized_by: r.authorized_by.short(),
            })
            .collect()
    }
}

impl Node {
    /// The blocks this device holds, per workspace whose open document names them (every
    /// version the document knows, old and deleted ones included, so a device can restore any
    /// version from a relay alone), for offering to relays.
    pub fn held_blocks_by_workspace(
        &mut self,
    ) -> Vec<(crate::workspace::WorkspaceId, Vec<[u8; 32]>)> {
        let mut out = Vec::new();
        for (w, doc) in &self.docs {
            let mut ids: Vec<[u8; 32]> = doc
                .crdt
                .all_versions()
                .flat_map(|v| v.manifest.chunks.iter())
                .map(|c| c.id)
                .filter(|id| self.blocks.contains(id))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if !ids.is_empty() {
                out.push((*w, ids));
            }
        }
        out
    }

    /// The organization log's entries as signed, for introducing this device to a relay.
    pub fn log_entry_bytes(&self) -> Vec<Vec<u8>> {
        self.log().entries().map(|e| e.bytes().to_vec()).collect()
    }

    /// The answer to a relay's `LogWanted`: the entries of our log outside the causal past of
    /// its heads, in parts (`relay::wire::log_parts`).
    pub fn log_parts_beyond(&self, heads: &[[u8; 32]]) -> Vec<crate::relay::wire::RelayMsg> {
        let heads: Vec<EntryId> = heads.iter().map(|h| EntryId(*h)).collect();
        crate::relay::wire::log_parts(self.log().entries_beyond(&heads).map(|e| e.bytes()))
    }
}
