//! Relays authorized by the organization log: `cloison relay add` (an admin writes a
//! `RelayAuthorized` entry naming the relay's key and address), `cloison relay revoke` (an
//! admin writes `RelayRevoked`: final, the relay is never authorized again) and
//! `cloison relay list` (authorized relays, then revoked ones).
//!
//! Invariant: the relay's id is taken from the `/p2p/<PeerId>` of the address the admin gives
//! (an Ed25519 key, as `cloison-bootstrap run` prints it); admission decides whether the author
//! may authorize or revoke relays (admins only).

use super::directory::pick;
use super::{Node, NodeError};
use crate::control::RelayInfo;
use crate::net::{Multiaddr, addr_peer, peer_id};
use crate::trust::author::{relay_authorized, relay_revoked};
use crate::trust::{DeviceId, EntryId};

/// Longest relay address accepted here (the log's own limit applies too).
const MAX_ADDR: usize = 512;
/// Shortest PeerId prefix accepted as a reference (every Ed25519 PeerId starts `12D3KooW`).
const MIN_PEER_PREFIX: usize = 12;

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
        if let Some(r) = self.state().revoked_relays.get(&relay) {
            return Err(NodeError::Invalid(format!(
                "relay {} was revoked (entry {}): a revocation is final; run the relay with a \
                 new data directory (a new key) and add that",
                show_peer(&relay),
                r.revoked_by.short()
            )));
        }
        let entry = self.write(relay_authorized(relay, vec![m.to_string()]))?;
        self.settle()?;
        Ok(RelayInfo {
            id: relay.to_string(),
            peer_id: show_peer(&relay),
            addrs: vec![m.to_string()],
            authorized_by: entry.short(),
            status: RelayInfo::AUTHORIZED.into(),
            revoked_by: None,
        })
    }

    /// Revokes a relay, named by its id, its PeerId, an address ending in its `/p2p/<PeerId>`,
    /// or a prefix of its id (4+ hex digits) or PeerId. Final: devices stop using it at once,
    /// and the relay, once its copy of the log holds the revocation, serves this organization
    /// no more.
    pub fn relay_revoke(&mut self, query: &str) -> Result<RelayInfo, NodeError> {
        let relay = self.find_relay(query)?;
        if let Some(r) = self.state().revoked_relays.get(&relay) {
            return Err(NodeError::Invalid(format!(
                "relay {} is already revoked (entry {})",
                show_peer(&relay),
                r.revoked_by.short()
            )));
        }
        let addrs = self
            .state()
            .relays
            .get(&relay)
            .map(|r| r.addrs.clone())
            .unwrap_or_default();
        let authorized_by = self
            .state()
            .relays
            .get(&relay)
            .map(|r| r.authorized_by.short())
            .unwrap_or_default();
        let entry = self.write(relay_revoked(relay))?;
        self.settle()?;
        Ok(RelayInfo {
            id: relay.to_string(),
            peer_id: show_peer(&relay),
            addrs,
            authorized_by,
            status: RelayInfo::REVOKED.into(),
            revoked_by: Some(entry.short()),
        })
    }

    /// Finds a relay (authorized or revoked) by id, PeerId, address or prefix.
    fn find_relay(&self, query: &str) -> Result<DeviceId, NodeError> {
        let q = query.trim();
        let st = self.state();
        let known = st.relays.keys().chain(st.revoked_relays.keys());
        if let Ok(m) = q.parse::<Multiaddr>()
            && let Some(id) = addr_peer(&m)
        {
            return known
                .clone()
                .find(|r| **r == id)
                .copied()
                .ok_or_else(|| NodeError::NotFound {
                    what: "relay",
                    query: query.to_owned(),
                });
        }
        let lower = q.to_lowercase();
        let hits: Vec<String> = known
            .filter(|r| {
                let (id, pid) = (r.to_string(), show_peer(r));
                id == lower
                    || (lower.len() >= 4 && id.starts_with(&lower))
                    || pid == q
                    || (q.len() >= MIN_PEER_PREFIX && pid.starts_with(q))
            })
            .map(|r| r.to_string())
            .collect();
        let id = pick(
            "relay",
            query,
            &hits.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
        DeviceId::from_hex(&id).ok_or_else(|| NodeError::NotFound {
            what: "relay",
            query: query.to_owned(),
        })
    }

    /// The authorized relays, then the revoked ones.
    pub fn relays(&self) -> Vec<RelayInfo> {
        let st = self.state();
        let authorized = st.relays.iter().map(|(id, r)| RelayInfo {
            id: id.to_string(),
            peer_id: show_peer(id),
            addrs: r.addrs.clone(),
            authorized_by: r.authorized_by.short(),
            status: RelayInfo::AUTHORIZED.into(),
            revoked_by: None,
        });
        let revoked = st.revoked_relays.iter().map(|(id, r)| RelayInfo {
            id: id.to_string(),
            peer_id: show_peer(id),
            addrs: r.addrs.clone(),
            authorized_by: String::new(),
            status: RelayInfo::REVOKED.into(),
            revoked_by: Some(r.revoked_by.short()),
        });
        authorized.chain(revoked).collect()
    }
}

fn show_peer(id: &DeviceId) -> String {
    peer_id(id).map(|p| p.to_string()).unwrap_or_default()
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

    /// Our introduction to a relay: the organization and our log heads (as many as the
    /// message allows: they are a hint).
    pub fn relay_intro(&self) -> crate::relay::wire::RelayMsg {
        crate::relay::wire::RelayMsg::Intro {
            org: self.org_id().0,
            heads: self
                .log()
                .heads()
                .into_iter()
                .take(crate::relay::wire::MAX_WANTED_HEADS)
                .map(|h| h.0)
                .collect(),
        }
    }

    /// The answer to a relay's `LogWanted`: the entries of our log outside the causal past of
    /// its heads, in parts (`relay::wire::log_parts`).
    pub fn log_parts_beyond(&self, heads: &[[u8; 32]]) -> Vec<crate::relay::wire::RelayMsg> {
        let heads: Vec<EntryId> = heads.iter().map(|h| EntryId(*h)).collect();
        crate::relay::wire::log_parts(self.log().entries_beyond(&heads).map(|e| e.bytes()))
    }
}
