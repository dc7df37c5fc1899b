//! The daemon's side of the relay protocol (`relay::wire`): it dials every relay the
//! organization log authorizes (at start and whenever the log changes), introduces itself (its
//! organization; the part of its log the relay lacks when the relay asks for it), and links the
//! relay to the sync engine only once welcomed (the engine then reconciles the organization log
//! like any document and gives it every workspace). Once welcomed it listens through the relay
//! (`…/p2p-circuit`: a reservation, so devices that cannot reach each other connect through the
//! relay, and DCUtR may upgrade), dials the other active devices through it, and offers the
//! relay the blocks it holds (again whenever it stores new ones). Every
//! `RENDEZVOUS_EVERY_MS` it registers its addresses at each welcomed relay's rendezvous (under
//! its organization's namespace) and discovers the other devices' there, which the network
//! dials directly; the circuit dials stay the fallback.
//!
//! A relay revoked while connected (`RelayRevoked` counts here: it left the authorized relays)
//! gets a farewell: one more `Intro` whose heads name the revocation, so the relay asks for it
//! (`LogWanted`), its copy holds it and it stops serving the organization (it answers `Refused { RelayRevoked }`).
//! Its connection is kept (allowlisted, the engine's cut deferred) until that answer or
//! [`FAREWELL_MS`], then closed; it is never dialled, linked or listened through again.
//!
//! Invariants: a relay's sync messages that arrive before its welcome are held (bounded) and
//! replayed after it, so none is lost to the race between streams; refusals and quota errors
//! are logged and shown in `cloison peers`, never fatal; nothing here decides what a relay
//! may receive (the engine does; a revoked relay is linked to nothing).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::net::{Multiaddr, NetHandle, peer_id, rendezvous::namespace_of};
use crate::node::{Node, now_ms};
use crate::relay::wire::{MAX_OFFER_IDS, Refusal, RelayMsg, is_relay_msg};
use crate::trust::DeviceId;

/// Sync messages held per relay before its welcome.
const EARLY_MAX: usize = 256;
/// Least time between two offers of new blocks (finding them walks every open document).
const OFFER_EVERY_MS: u64 = 1_000;
/// How often an authorized relay we are not connected to is dialled again (the network's own
/// redial gives up after a few minutes; a relay may be down longer).
const REDIAL_MS: u64 = 30_000;
/// How often we register again at our relays' rendezvous and discover the other devices there
/// (registrations last `net::rendezvous::CLIENT_TTL`, far longer).
const RENDEZVOUS_EVERY_MS: u64 = 20_000;
/// Longest a revoked relay's connection is kept for its farewell (the `Intro` that brings it
/// the revocation) when it does not answer.
pub(super) const FAREWELL_MS: u64 = 5_000;

/// What the daemon knows of its relays.
#[derive(Default)]
pub(super) struct RelayLinks {
    /// Relays dialled, with the addresses the log gave.
    dialled: BTreeMap<DeviceId, Vec<String>>,
    /// Relays connected now.
    connected: BTreeSet<DeviceId>,
    /// When relays not connected are dialled again.
    next_redial: u64,
    welcomed: BTreeSet<DeviceId>,
    /// Circuit addresses we listen on, per relay (forgotten when the relay's connection drops:
    /// its reservation goes with it, and the next welcome listens again).
    circuits: BTreeMap<DeviceId, BTreeSet<String>>,
    early: HashMap<DeviceId, Vec<Vec<u8>>>,
    /// Blocks offered per relay this session.
    offered: HashMap<DeviceId, HashSet<[u8; 32]>>,
    /// `Node::block_count` when blocks were last offered, and when.
    offered_at: usize,
    offered_ms: u64,
    /// The last refusal or quota error per relay.
    pub(super) notices: BTreeMap<DeviceId, (String, u64)>,
    out: Vec<(DeviceId, Vec<u8>)>,
    /// Our organization's rendezvous namespace (known from the first welcome), and when the
    /// next registration and discovery round is due.
    namespace: Option<String>,
    rendezvous_next: u64,
    dials: Vec<Multiaddr>,
    listens: Vec<Multiaddr>,
    /// Revoked relays still connected for their farewell, until when.
    farewell: BTreeMap<DeviceId, u64>,
}

impl RelayLinks {
    /// Whether `peer` is an authorized relay.
    pub(super) fn is_relay(node: &Node, peer: &DeviceId) -> bool {
        node.state().relays.contains_key(peer)
    }

    /// Queues dials to relays authorized since the last call (or whose addresses changed), and
    /// every [`REDIAL_MS`] to the authorized relays we are not connected to.
    pub(super) fn dial_new(&mut self, node: &Node) {
        let now = now_ms();
        let redial = now >= self.next_redial;
        if redial {
            self.next_redial = now + REDIAL_MS;
        }
        for (id, r) in &node.state().relays {
            let known = self.dialled.get(id) == Some(&r.addrs);
            let wanted_again = redial && !self.connected.contains(id);
            if known && !wanted_again {
                continue;
            }
            for a in &r.addrs {
                match a.parse::<Multiaddr>() {
                    Ok(m) => self.dials.push(m),
                    Err(_) => tracing::warn!(addr = %a, "relay address does not parse"),
                }
            }
            self.dialled.insert(*id, r.addrs.clone());
        }
    }

    /// Whether `peer` is a revoked relay kept connected for its farewell (its messages come
    /// here, the allowlist keeps it, the engine's cut waits).
    pub(super) fn in_farewell(&self, peer: &DeviceId) -> bool {
        self.farewell.contains_key(peer)
    }

    /// Revoked relays kept connected for their farewell.
    pub(super) fn farewells(&self) -> impl Iterator<Item = &DeviceId> {
        self.farewell.keys()
    }

    /// After the organization changed: forgets relays no longer authorized (no dial, circuit,
    /// rendezvous or block offer again); a connected one that was revoked gets its farewell
    /// (an `Intro` whose heads name the revocation, which the relay then asks for); farewells
    /// past [`FAREWELL_MS`] end (the allowlist then closes the connection).
    pub(super) fn drop_unauthorized(&mut self, node: &Node) {
        let st = node.state();
        let now = now_ms();
        self.dialled.retain(|id, _| st.relays.contains_key(id));
        let gone: Vec<DeviceId> = self
            .connected
            .iter()
            .filter(|r| !st.relays.contains_key(r) && !self.farewell.contains_key(r))
            .copied()
            .collect();
        for relay in gone {
            self.welcomed.remove(&relay);
            self.early.remove(&relay);
            self.circuits.remove(&relay);
            self.offered.remove(&relay);
            if st.revoked_relays.contains_key(&relay) {
                tracing::info!(relay = %relay.short(), "relay revoked: telling it, then closing");
                // Our heads name the revocation, which the relay lacks: it asks for it.
                self.out.push((relay, node.relay_intro().encode()));
                self.farewell.insert(relay, now + FAREWELL_MS);
            }
        }
        let over: Vec<DeviceId> = self
            .farewell
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(r, _)| *r)
            .collect();
        for relay in over {
            self.end_farewell(&relay);
        }
    }

    /// A farewell is over: the relay counts as gone (it gets none again; leaving the allowlist
    /// closes its connection).
    fn end_farewell(&mut self, relay: &DeviceId) {
        self.farewell.remove(relay);
        self.connected.remove(relay);
    }

    /// A relay connected: introduce ourselves (the engine links it after the welcome).
    pub(super) fn on_connected(&mut self, node: &Node, relay: DeviceId) {
        tracing::info!(relay = %relay.short(), "relay connected; introducing");
        self.connected.insert(relay);
        self.welcomed.remove(&relay);
        self.out.push((relay, node.relay_intro().encode()));
    }

    /// A relay's connection is gone.
    pub(super) fn on_disconnected(&mut self, relay: &DeviceId) {
        self.connected.remove(relay);
        self.welcomed.remove(relay);
        self.early.remove(relay);
        self.circuits.remove(relay);
        self.offered.remove(relay);
        self.farewell.remove(relay);
    }

    /// A message from a relay. Returns true if it was handled here (the caller gives the others
    /// to the engine).
    pub(super) fn on_message(&mut self, node: &mut Node, from: DeviceId, bytes: &[u8]) -> bool {
        if !is_relay_msg(bytes) {
            if self.farewell.contains_key(&from) {
                return true;
            }
            if self.welcomed.contains(&from) {
                return false;
            }
            let q = self.early.entry(from).or_default();
            if q.len() < EARLY_MAX {
                q.push(bytes.to_vec());
            } else {
                tracing::debug!(relay = %from.short(), "too many messages before the welcome: dropped");
            }
            return true;
        }
        let msg = match RelayMsg::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(relay = %from.short(), %e, "bad message from relay");
                return true;
            }
        };
        let now = now_ms();
        match msg {
            RelayMsg::Welcome => {
                tracing::info!(relay = %from.short(), "relay welcomed us");
                self.welcomed.insert(from);
                self.notices.remove(&from);
                node.engine_mut().handle_connected(now, from);
                for m in self.early.remove(&from).unwrap_or_default() {
                    node.engine_mut().handle_message(now, from, &m);
                }
                self.through(node, from);
                self.namespace = Some(namespace_of(&node.state().org.0));
                self.rendezvous_next = 0;
                self.offered.remove(&from);
                self.offer_blocks(node, true);
            }
            RelayMsg::Refused {
                reason: Refusal::RelayRevoked,
            } if self.farewell.contains_key(&from) => {
                tracing::info!(relay = %from.short(), "the revoked relay took the revocation");
                self.end_farewell(&from);
            }
            RelayMsg::Refused { reason } => {
                tracing::warn!(relay = %from.short(), reason = reason.label(), "relay refused us");
                self.notices
                    .insert(from, (format!("relay refused: {}", reason.label()), now));
            }
            RelayMsg::QuotaExceeded { quota, limit, used } => {
                tracing::warn!(relay = %from.short(), ?quota, limit, used, "relay quota reached: it accepts nothing more of ours");
                self.notices.insert(
                    from,
                    (
                        format!("relay quota reached ({quota:?}: {used} of {limit})"),
                        now,
                    ),
                );
            }
            RelayMsg::LogWanted { heads } => {
                let parts = node.log_parts_beyond(&heads);
                tracing::info!(relay = %from.short(), parts = parts.len(), "relay asked for our organization log");
                self.out
                    .extend(parts.into_iter().map(|m| (from, m.encode())));
            }
            RelayMsg::Intro { .. } | RelayMsg::BlockOffer { .. } | RelayMsg::LogPart { .. } => {
                tracing::debug!(relay = %from.short(), "relay sent a device's message: ignored");
            }
        }
        true
    }

    /// After a welcome: listen through the relay and dial the other devices through it.
    fn through(&mut self, node: &Node, relay: DeviceId) {
        let Some(r) = node.state().relays.get(&relay) else {
            return;
        };
        let me = node.device_id();
        for a in &r.addrs {
            let circuit = format!("{a}/p2p-circuit");
            if self
                .circuits
                .entry(relay)
                .or_default()
                .insert(circuit.clone())
                && let Ok(m) = circuit.parse()
            {
                self.listens.push(m);
            }
            let st = node.state();
            for d in st.devices.keys().filter(|d| **d != me && st.is_active(d)) {
                if let Some(p) = peer_id(d)
                    && let Ok(m) = format!("{circuit}/p2p/{p}").parse()
                {
                    self.dials.push(m);
                }
            }
        }
    }

    /// Offers welcomed relays the blocks they have not been offered (all of them with
    /// `force`, else only when the node stored new blocks since the last offer).
    pub(super) fn offer_blocks(&mut self, node: &mut Node, force: bool) {
        let now = now_ms();
        let unchanged = node.block_count() == self.offered_at;
        let too_soon = now.saturating_sub(self.offered_ms) < OFFER_EVERY_MS;
        if self.welcomed.is_empty() || (!force && (unchanged || too_soon)) {
            return;
        }
        self.offered_at = node.block_count();
        self.offered_ms = now;
        let held = node.held_blocks_by_workspace();
        for relay in self.welcomed.clone() {
            let done = self.offered.entry(relay).or_default();
            for (w, ids) in &held {
                let new: Vec<[u8; 32]> =
                    ids.iter().filter(|id| done.insert(**id)).copied().collect();
                for chunk in new.chunks(MAX_OFFER_IDS) {
                    let m = RelayMsg::BlockOffer {
                        workspace: *w,
                        ids: chunk.to_vec(),
                    };
                    self.out.push((relay, m.encode()));
                }
            }
        }
    }

    /// Sends what was queued: relay messages, dials, circuit listens; and, when due, registers
    /// at every welcomed relay's rendezvous and discovers the other devices there (the network
    /// dials the allowed ones directly; circuits stay the fallback).
    pub(super) async fn flush(&mut self, net: &NetHandle) {
        let now = now_ms();
        if let Some(ns) = &self.namespace
            && now >= self.rendezvous_next
            && !self.welcomed.is_empty()
        {
            self.rendezvous_next = now + RENDEZVOUS_EVERY_MS;
            for relay in &self.welcomed {
                if let Err(e) = net.rendezvous_register(*relay, ns.clone()).await {
                    tracing::debug!(relay = %relay.short(), "rendezvous registration: {e}");
                }
                if let Err(e) = net.rendezvous_discover(*relay, ns.clone()).await {
                    tracing::debug!(relay = %relay.short(), "rendezvous discovery: {e}");
                }
            }
        }
        for (to, bytes) in std::mem::take(&mut self.out) {
            if let Err(e) = net.send(to, bytes).await {
                tracing::debug!(relay = %to.short(), "send to relay: {e}");
            }
        }
        for a in std::mem::take(&mut self.dials) {
            if let Err(e) = net.dial(a.clone()).await {
                tracing::debug!(addr = %a, "dial: {e}");
            }
        }
        for a in std::mem::take(&mut self.listens) {
            match net.listen(a.clone()).await {
                Ok(()) => tracing::info!(addr = %a, "listening through the relay"),
                Err(e) => tracing::warn!(addr = %a, "cannot listen through the relay: {e}"),
            }
        }
    }
}
