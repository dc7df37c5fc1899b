//! Whether the remembered addresses the daemon dialled at start reach their devices: an address
//! that names a device (`/p2p/<peer id>`) succeeds when that device connects within
//! [`VERDICT_MS`] of the start and fails otherwise; the store forgets an address after
//! `store::MAX_DIAL_FAILURES` failed starts in a row. Addresses that name no device, and the
//! `--peer` / `peers` of the configuration (which the user keeps up to date), are not judged.
//!
//! Invariant: each remembered address is judged at most once per daemon start.

use std::collections::BTreeMap;

use crate::control::{PeerInfo, RememberedAddr};
use crate::net::{Multiaddr, addr_peer};
use crate::node::Node;
use crate::trust::DeviceId;

/// How long after the start a remembered address's device has to connect.
pub const VERDICT_MS: u64 = 10_000;

/// The start-up dials still waiting for a verdict.
pub(super) struct StartDials {
    due: u64,
    pending: BTreeMap<DeviceId, Vec<String>>,
}

impl StartDials {
    /// Judges `addrs` (the remembered ones, dialled at `now`).
    pub(super) fn new(addrs: &[(String, Multiaddr)], now: u64) -> StartDials {
        let mut pending: BTreeMap<DeviceId, Vec<String>> = BTreeMap::new();
        for (text, m) in addrs {
            if let Some(d) = addr_peer(m) {
                pending.entry(d).or_default().push(text.clone());
            }
        }
        StartDials {
            due: now + VERDICT_MS,
            pending,
        }
    }

    /// `peer` connected: its addresses succeeded.
    pub(super) fn connected(&mut self, node: &Node, peer: &DeviceId) {
        for a in self.pending.remove(peer).unwrap_or_default() {
            if let Err(e) = node.store().dial_outcome(&a, true) {
                tracing::warn!("remembered address {a}: {e}");
            }
        }
    }

    /// At the verdict time: the addresses whose device did not connect failed.
    pub(super) fn tick(&mut self, node: &Node, now: u64) {
        if now < self.due || self.pending.is_empty() {
            return;
        }
        for a in std::mem::take(&mut self.pending).into_values().flatten() {
            match node.store().dial_outcome(&a, false) {
                Ok(true) => tracing::warn!(
                    addr = %a,
                    "remembered address forgotten: its device did not connect at the last starts"
                ),
                Ok(false) => {
                    tracing::info!(addr = %a, "remembered address: its device did not connect")
                }
                Err(e) => tracing::warn!("remembered address {a}: {e}"),
            }
        }
    }
}

/// Adds the remembered addresses to the peers list: to the row of the device an address names,
/// or to a new `remembered` row (device `-` for an address that names none). `label` gives a
/// device's label and user name.
pub(super) fn list_remembered(
    node: &Node,
    out: &mut Vec<PeerInfo>,
    label: impl Fn(&DeviceId) -> Option<(String, String)>,
) {
    let entries = match node.store().dial_entries() {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("remembered addresses: {e}");
            return;
        }
    };
    for e in entries {
        let device = e.addr.parse::<Multiaddr>().ok().and_then(|m| addr_peer(&m));
        let key = device.map_or_else(|| "-".to_owned(), |d| d.to_string());
        let r = RememberedAddr {
            addr: e.addr,
            failures: e.failures,
        };
        if let Some(p) = out.iter_mut().find(|p| p.device == key) {
            p.remembered.push(r);
            continue;
        }
        let l = device.as_ref().and_then(&label);
        out.push(PeerInfo {
            device: key,
            label: l.as_ref().map(|x| x.0.clone()),
            user: l.map(|x| x.1),
            state: "remembered".into(),
            reason: None,
            since_ms: e.added_ms,
            remembered: vec![r],
        });
    }
}
