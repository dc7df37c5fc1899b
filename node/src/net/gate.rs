//! The gate: zero trust at the connection. A `NetworkBehaviour` that accepts a connection only
//! once the Noise/TLS handshake has authenticated the remote's key *and* that key is an allowed
//! device.
//!
//! Invariants: it is the **first** field of the node's behaviour, so when it denies a connection
//! no other behaviour (gossipsub, request-response, identify, ping) ever gets a handler for it:
//! not one byte of a refused peer reaches the engine. A peer that is not an Ed25519 key has no
//! device id and is always refused. Removing a peer from the allowlist closes all its connections
//! at once (the driver calls `disconnect_peer_id`; the gate also queues a close as a backstop).

use std::{
    collections::{BTreeSet, HashSet, VecDeque},
    fmt,
    task::{Context, Poll, Waker},
};

use libp2p::{
    Multiaddr, PeerId,
    core::{Endpoint, transport::PortUse},
    swarm::{
        CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
        THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
    },
};

use crate::trust::ids::DeviceId;

use super::ids::{device_id, peer_id};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// The device is not in the allowlist.
    NotAllowed,
    /// The device was removed from the allowlist while connected; its connections were closed.
    NoLongerAllowed,
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefuseReason::NotAllowed => "not in the allowlist",
            RefuseReason::NoLongerAllowed => "removed from the allowlist",
        })
    }
}

/// The error a denied connection carries inside libp2p.
#[derive(Debug)]
pub(crate) struct Denied;

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("peer refused by the allowlist")
    }
}

impl std::error::Error for Denied {}

/// What the gate tells the driver.
#[derive(Debug)]
pub(crate) enum GateEvent {
    /// A device was refused (its connection never reached the other behaviours).
    Refused(DeviceId, RefuseReason),
    /// A peer that is not an Ed25519 key tried to connect, or was dialled; always refused.
    NotADevice(PeerId),
}

/// The allowlist behaviour.
#[derive(Default)]
pub(crate) struct Gate {
    allowed: HashSet<PeerId>,
    /// Relay mode: every Ed25519 peer gets in; `allowed` is then the authorized set, shared
    /// with the relay server's reservation and circuit checks.
    open: bool,
    authorized: std::sync::Arc<std::sync::RwLock<HashSet<PeerId>>>,
    events: VecDeque<GateEvent>,
    close: VecDeque<PeerId>,
    waker: Option<Waker>,
}

impl Gate {
    /// An open gate (relay mode): see [`super::NetConfig::relay_server`].
    pub(crate) fn open() -> Gate {
        Gate {
            open: true,
            ..Gate::default()
        }
    }

    /// The authorized set, kept equal to the allowlist, for the relay server's checks.
    pub(crate) fn authorized(&self) -> std::sync::Arc<std::sync::RwLock<HashSet<PeerId>>> {
        self.authorized.clone()
    }

    /// Is this peer allowed right now? (Always, for an Ed25519 peer, when the gate is open.)
    pub(crate) fn is_allowed(&self, peer: &PeerId) -> bool {
        self.allowed.contains(peer) || (self.open && device_id(peer).is_some())
    }

    /// Replaces the allowlist. Returns the peers that were allowed and no longer are (the
    /// caller disconnects the connected ones; the gate also queues a close for each).
    /// Device ids that are not valid Ed25519 keys are skipped and counted in the second value.
    pub(crate) fn set_allowed(&mut self, devices: &BTreeSet<DeviceId>) -> (Vec<PeerId>, usize) {
        let mut invalid = 0;
        let next: HashSet<PeerId> = devices
            .iter()
            .filter_map(|d| {
                let p = peer_id(d);
                invalid += usize::from(p.is_none());
                p
            })
            .collect();
        let removed: Vec<PeerId> = self.allowed.difference(&next).copied().collect();
        if let Ok(mut a) = self.authorized.write() {
            a.clone_from(&next);
        }
        self.allowed = next;
        self.close.extend(removed.iter().copied());
        self.wake();
        (removed, invalid)
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn check(&mut self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if self.is_allowed(peer) {
            return Ok(());
        }
        self.events.push_back(match device_id(peer) {
            Some(d) => GateEvent::Refused(d, RefuseReason::NotAllowed),
            None => GateEvent::NotADevice(*peer),
        });
        self.wake();
        Err(ConnectionDenied::new(Denied))
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = GateEvent;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        // Dialling a known peer that is not allowed is pointless; dialling an address is fine,
        // the handshake tells who answers and the established hook decides.
        if let Some(peer) = peer {
            self.check(&peer)?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm<'_>) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<GateEvent, THandlerInEvent<Self>>> {
        if let Some(peer) = self.close.pop_front() {
            return Poll::Ready(ToSwarm::CloseConnection {
                peer_id: peer,
                connection: CloseConnection::All,
            });
        }
        if let Some(e) = self.events.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(e));
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
