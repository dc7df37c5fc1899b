//! Rendezvous (libp2p `/rendezvous/1.0.0`): devices register their addresses at a relay under
//! their organization's namespace and discover each other's there.
//!
//! The server side ([`OrgRendezvous`], relay flavour only) is **one libp2p rendezvous server per
//! organization** behind a router: every request of a peer goes to the server of the organization
//! the relay admitted it to ([`super::NetHandle::set_rendezvous_orgs`]), so a device only ever
//! sees and fills its own organization's registrations, whatever namespace it names. A peer the
//! relay has not admitted (a stranger, a device not yet welcomed, a revoked one) reaches no
//! server: its requests are dropped and its stream closes without an answer.
//!
//! Invariants: a connection whose request was once dropped stays blocked (its later handler
//! events never reach a server, so no server sees an answer for a request it never got); a
//! connection that reached organization X's server only ever reaches X's server, and is blocked
//! as soon as its peer is no longer admitted to X. Bounded: registrations per peer
//! ([`MAX_REGISTRATIONS_PER_PEER`]), per organization ([`MAX_REGISTRATIONS_PER_ORG`]), TTL
//! between [`MIN_TTL`] and [`MAX_TTL`], one server per organization served; the messages
//! themselves are bounded by the rendezvous codec (1 MiB).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    task::{Context, Poll},
};

use libp2p::{
    Multiaddr, PeerId,
    core::{Endpoint, transport::PortUse},
    rendezvous,
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm, behaviour::ConnectionClosed,
    },
};

/// Shortest registration lifetime the relay accepts, in seconds.
pub const MIN_TTL: u64 = 60;
/// Longest registration lifetime the relay grants, in seconds.
pub const MAX_TTL: u64 = 3600;
/// The lifetime devices ask for, in seconds (they register again well before it ends).
pub const CLIENT_TTL: u64 = 600;
/// Registrations one peer may hold at one organization's server.
pub const MAX_REGISTRATIONS_PER_PEER: usize = 2;
/// Registrations one organization's server holds at most.
pub const MAX_REGISTRATIONS_PER_ORG: usize = 4096;
/// Discovery cookies one organization's server remembers.
const MAX_COOKIES: usize = 1024;

/// The namespace of an organization: its id in lowercase hex.
pub fn namespace_of(org: &[u8; 32]) -> String {
    hex::encode(org)
}

/// The peer → organization map the relay maintains (admitted devices only).
pub(crate) type Admitted = Arc<RwLock<HashMap<PeerId, [u8; 32]>>>;

/// Where one connection's rendezvous traffic goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Org([u8; 32]),
    Blocked,
}

/// The relay's rendezvous service: one server per organization, routed by the admitted map.
pub(crate) struct OrgRendezvous {
    admitted: Admitted,
    servers: HashMap<[u8; 32], rendezvous::server::Behaviour>,
    /// Open connections, made known to every server (request-response learns a connection
    /// when it builds its handler; the discarded handler is the price of that).
    connections: HashMap<ConnectionId, PeerId>,
    routes: HashMap<ConnectionId, Route>,
    /// Handlers come from this server (they are all alike; a handler knows no organization).
    template: rendezvous::server::Behaviour,
    /// Requests dropped because their peer was not admitted (for logs).
    pub(crate) refused: u64,
    refused_peers: HashSet<PeerId>,
}

fn server() -> rendezvous::server::Behaviour {
    rendezvous::server::Behaviour::new(
        rendezvous::server::Config::default()
            .with_min_ttl(MIN_TTL)
            .with_max_ttl(MAX_TTL)
            .with_max_registration_per_peer(MAX_REGISTRATIONS_PER_PEER)
            .with_max_registration_total(MAX_REGISTRATIONS_PER_ORG)
            .with_max_stored_cookies(MAX_COOKIES),
    )
}

impl OrgRendezvous {
    pub(crate) fn new() -> Self {
        OrgRendezvous {
            admitted: Arc::default(),
            servers: HashMap::new(),
            connections: HashMap::new(),
            routes: HashMap::new(),
            template: server(),
            refused: 0,
            refused_peers: HashSet::new(),
        }
    }

    /// Replaces the admitted map.
    pub(crate) fn set_admitted(&mut self, map: HashMap<PeerId, [u8; 32]>) {
        if let Ok(mut a) = self.admitted.write() {
            *a = map;
        }
    }

    fn admitted_org(&self, peer: &PeerId) -> Option<[u8; 32]> {
        self.admitted.read().ok()?.get(peer).copied()
    }

    /// The server of `org`, created (and told of the open connections) on first use.
    fn server_of(&mut self, org: [u8; 32]) -> &mut rendezvous::server::Behaviour {
        let connections = &self.connections;
        self.servers.entry(org).or_insert_with(|| {
            let mut s = server();
            for (id, peer) in connections {
                learn(&mut s, *id, *peer);
            }
            s
        })
    }

    fn route(&mut self, peer: PeerId, connection: ConnectionId) -> Route {
        let now = self.admitted_org(&peer);
        let route = match (self.routes.get(&connection).copied(), now) {
            (Some(Route::Blocked), _) | (_, None) => Route::Blocked,
            (Some(Route::Org(pinned)), Some(org)) if pinned != org => Route::Blocked,
            (_, Some(org)) => Route::Org(org),
        };
        self.routes.insert(connection, route);
        route
    }
}

impl NetworkBehaviour for OrgRendezvous {
    type ConnectionHandler = THandler<rendezvous::server::Behaviour>;
    type ToSwarm = rendezvous::server::Event;

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.template.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.template.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match &event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connections.insert(e.connection_id, e.peer_id);
                for s in self.servers.values_mut() {
                    learn(s, e.connection_id, e.peer_id);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.connections.remove(connection_id);
                self.routes.remove(connection_id);
            }
            _ => {}
        }
        self.template.on_swarm_event(event);
        for s in self.servers.values_mut() {
            s.on_swarm_event(event);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match self.route(peer, connection) {
            Route::Org(org) => self
                .server_of(org)
                .on_connection_handler_event(peer, connection, event),
            Route::Blocked => {
                self.refused += 1;
                if self.refused_peers.len() < 1024 && self.refused_peers.insert(peer) {
                    tracing::info!(%peer, "rendezvous: request from a peer not admitted: refused");
                }
            }
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        for s in self.servers.values_mut() {
            if let Poll::Ready(ev) = s.poll(cx) {
                return Poll::Ready(ev);
            }
        }
        // The template never gets a request; polling it keeps its waker registered.
        self.template.poll(cx)
    }
}

/// Makes a server know a connection (request-response registers a connection when it builds
/// the handler; the addresses are unused for inbound-only servers).
fn learn(s: &mut rendezvous::server::Behaviour, id: ConnectionId, peer: PeerId) {
    let none = Multiaddr::empty();
    let _ = s.handle_established_inbound_connection(id, peer, &none, &none);
}

/// Addresses worth dialling directly: not through a circuit.
pub(crate) fn direct_addrs(addrs: &[Multiaddr]) -> Vec<Multiaddr> {
    addrs
        .iter()
        .filter(|a| !is_circuit(a))
        .take(8)
        .cloned()
        .collect()
}

/// Does the address go through a relay circuit?
fn is_circuit(addr: &Multiaddr) -> bool {
    addr.iter()
        .any(|p| matches!(p, libp2p::multiaddr::Protocol::P2pCircuit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_addresses_are_not_direct() {
        let relayed: Multiaddr = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp/p2p-circuit"
            .parse()
            .unwrap();
        let direct: Multiaddr = "/ip4/127.0.0.1/tcp/2".parse().unwrap();
        assert!(is_circuit(&relayed));
        assert_eq!(direct_addrs(&[relayed, direct.clone()]), vec![direct]);
        assert_eq!(namespace_of(&[0xab; 32]).len(), 64);
    }
}
