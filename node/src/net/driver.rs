//! The network task: owns the libp2p swarm and runs one `tokio::select!` over swarm events,
//! handle commands and the redial timer. Each branch makes one `on_*` call and returns.
//!
//! Invariants: the only `await`s in the loop are the three `select!` branches, so a slow engine
//! never blocks the swarm (events are `try_send`; a full queue drops and counts, and a one-way
//! message is then left unacknowledged so its sender sees `SendFailed`). Events anyone can cause
//! without being allowed (refusals, dial and listener errors) only use the first three quarters
//! of the queue, so a flood of strangers cannot crowd out messages from allowed devices. Peer input is never unwrapped:
//! every refusal is a `tracing` warning plus a [`NetStats`] counter. Redialling is bounded:
//! [`REDIAL_ATTEMPTS`] tries per drop with exponential backoff from [`REDIAL_FIRST`] to
//! [`REDIAL_MAX`], only for allowed devices whose connection dropped on an I/O error (not our idle
//! timeout nor our own close).

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, autonat, dcutr, gossipsub, identify, mdns, noise, ping,
    relay, rendezvous,
    request_response::{self, ProtocolSupport},
    swarm::{
        ConnectionError, NetworkBehaviour, SwarmEvent,
        behaviour::toggle::Toggle,
        dial_opts::{DialOpts, PeerCondition},
    },
    tcp, yamux,
};
use tokio::{
    sync::{mpsc, oneshot},
    time::{Instant, sleep_until},
};

use crate::trust::{ids::DeviceId, keys::DeviceKeys};

use super::{
    Command, EVENT_QUEUE, MAX_PENDING_GOSSIP, MsgId, NetConfig, NetError, NetEvent, NetStats,
    codec::{BytesCodec, MESSAGE_PROTOCOL, WireCounters},
    gate::{Gate, GateEvent, RefuseReason},
    ids::{device_id, keypair, peer_id},
    rendezvous::{CLIENT_TTL, OrgRendezvous, direct_addrs},
};

/// First redial delay after a drop.
pub(crate) const REDIAL_FIRST: Duration = Duration::from_secs(1);
/// Longest redial delay.
pub(crate) const REDIAL_MAX: Duration = Duration::from_secs(60);
/// Redial attempts per drop before giving up.
pub(crate) const REDIAL_ATTEMPTS: u32 = 8;
/// Addresses remembered per peer for redialling.
const ADDRS_PER_PEER: usize = 8;
/// Bytes of gossipsub framing allowed on top of the payload limit (signature, key, topic, ids).
const GOSSIP_OVERHEAD: usize = 16 << 10;
/// Concurrent message streams per connection (bounds memory at this × `max_message`). Must stay
/// above the sync engine's blocks in flight per peer (`sync::engine::PER_PEER`) plus the other
/// messages of a burst: a stream over the limit is dropped and its message lost until the
/// engine's timeout.
const MAX_STREAMS: usize = 64;
/// Registrations asked for in one rendezvous discovery.
const DISCOVER_LIMIT: u64 = 256;
/// Time for one message to be written and acknowledged.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Gossipsub with a raised cap on subscriptions (the default filter allows 100 topics).
type Gossipsub = gossipsub::Behaviour<
    gossipsub::IdentityTransform,
    gossipsub::MaxCountSubscriptionFilter<gossipsub::AllowAllSubscriptionFilter>,
>;

/// The swarm's behaviour. The gate comes **first**: the derived hooks call the fields in order
/// and stop at the first denial, so a refused peer gets no handler from any other protocol.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    gate: Gate,
    gossipsub: Gossipsub,
    rr: request_response::Behaviour<BytesCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
    /// Reaching peers through a circuit-relay v2 relay (`/p2p/<relay>/p2p-circuit/p2p/<peer>`),
    /// and listening through one.
    relay_client: relay::client::Behaviour,
    /// Upgrading a relayed connection to a direct one (hole punching).
    dcutr: dcutr::Behaviour,
    /// Learning whether our addresses are reachable from outside.
    autonat: autonat::Behaviour,
    /// The circuit-relay v2 server (relay mode only): reservations and circuits for authorized
    /// peers only.
    relay_server: Toggle<relay::Behaviour>,
    /// The rendezvous server, one per organization (relay mode only).
    rendezvous_server: Toggle<OrgRendezvous>,
    /// The rendezvous client: registering at relays and discovering devices (devices only).
    rendezvous_client: Toggle<rendezvous::client::Behaviour>,
}

/// The relay server's settings: reservations and circuits only for authorized peers (the
/// gate's allowlist), circuits long and large enough to carry a sync.
fn relay_server_config(authorized: &Arc<std::sync::RwLock<HashSet<PeerId>>>) -> relay::Config {
    let check = |set: Arc<std::sync::RwLock<HashSet<PeerId>>>| {
        move |peer: PeerId, _: &Multiaddr, _| set.read().is_ok_and(|s| s.contains(&peer))
    };
    relay::Config {
        max_reservations: 4096,
        max_reservations_per_peer: 4,
        reservation_duration: Duration::from_secs(3600),
        reservation_rate_limiters: vec![Box::new(check(authorized.clone()))],
        max_circuits: 4096,
        max_circuits_per_peer: 64,
        max_circuit_duration: Duration::from_secs(24 * 3600),
        max_circuit_bytes: 0,
        circuit_src_rate_limiters: vec![Box::new(check(authorized.clone()))],
    }
}

fn gossipsub_config(max_message: usize) -> Result<gossipsub::Config, NetError> {
    gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(max_message.saturating_add(GOSSIP_OVERHEAD))
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(MsgId::of(&m.data).0.to_vec())
        })
        .mesh_n(4)
        .mesh_n_low(2)
        .mesh_n_high(8)
        .mesh_outbound_min(1)
        .build()
        .map_err(|e| NetError::Setup(e.to_string()))
}

fn topic_of(topic: &[u8; 32]) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(hex::encode(topic))
}

fn topic_id(hash: &gossipsub::TopicHash) -> Option<[u8; 32]> {
    hex::decode(hash.as_str()).ok()?.try_into().ok()
}

fn build_swarm(
    keys: &DeviceKeys,
    cfg: &NetConfig,
    counters: Arc<WireCounters>,
) -> Result<Swarm<Behaviour>, NetError> {
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let max_message = cfg.max_message;
    let mdns_on = cfg.mdns;
    let relay_on = cfg.relay_server;
    let gossip_cfg = gossipsub_config(max_message)?;
    let swarm = SwarmBuilder::with_existing_identity(keypair(keys)?)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(&e))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| setup(&e))?
        .with_behaviour(|key, relay_client| {
            let local = key.public().to_peer_id();
            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), local)?)
            } else {
                None
            };
            let gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_cfg,
                gossipsub::MaxCountSubscriptionFilter {
                    filter: gossipsub::AllowAllSubscriptionFilter {},
                    max_subscribed_topics: 1000,
                    max_subscriptions_per_request: 1000,
                },
            )?;
            let gate = if relay_on {
                Gate::open()
            } else {
                Gate::default()
            };
            let relay_server = relay_on
                .then(|| relay::Behaviour::new(local, relay_server_config(&gate.authorized())));
            Ok(Behaviour {
                gate,
                gossipsub,
                rr: request_response::Behaviour::with_codec(
                    BytesCodec::new(max_message, counters),
                    [(MESSAGE_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(REQUEST_TIMEOUT)
                        .with_max_concurrent_streams(MAX_STREAMS),
                ),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/cloison/id/1".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(ping::Config::new()),
                mdns: Toggle::from(mdns),
                relay_client,
                dcutr: dcutr::Behaviour::new(local),
                autonat: autonat::Behaviour::new(local, autonat::Config::default()),
                relay_server: Toggle::from(relay_server),
                rendezvous_server: Toggle::from(relay_on.then(OrgRendezvous::new)),
                rendezvous_client: Toggle::from(
                    (!relay_on).then(|| rendezvous::client::Behaviour::new(key.clone())),
                ),
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(cfg.idle_timeout))
        .build();
    Ok(swarm)
}

/// A redial in progress for one peer.
struct Redial {
    attempt: u32,
    due: Instant,
}

/// The state of the network task.
pub(crate) struct Driver {
    swarm: Swarm<Behaviour>,
    events: mpsc::Sender<NetEvent>,
    stats: NetStats,
    /// Counters of the message codec (it sees failed reads; the behaviour does not).
    wire: Arc<WireCounters>,
    /// Gossip held for the engine's verdict: id → (gossipsub id, propagation source).
    pending: HashMap<MsgId, (gossipsub::MessageId, PeerId)>,
    pending_order: VecDeque<MsgId>,
    listening: BTreeSet<Multiaddr>,
    known: HashMap<PeerId, Vec<Multiaddr>>,
    redial: HashMap<PeerId, Redial>,
    max_message: usize,
    /// Direct (not relayed) connections per peer.
    direct: HashMap<PeerId, usize>,
    /// Devices found through rendezvous that we dialled directly (for logs), bounded.
    discovered: HashSet<PeerId>,
}

impl Driver {
    pub(crate) fn new(
        keys: &DeviceKeys,
        cfg: &NetConfig,
        events: mpsc::Sender<NetEvent>,
    ) -> Result<Self, NetError> {
        let wire = Arc::new(WireCounters::default());
        let mut swarm = build_swarm(keys, cfg, wire.clone())?;
        for addr in &cfg.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(Driver {
            swarm,
            events,
            stats: NetStats::default(),
            wire,
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            listening: BTreeSet::new(),
            known: HashMap::new(),
            redial: HashMap::new(),
            max_message: cfg.max_message,
            direct: HashMap::new(),
            discovered: HashSet::new(),
        })
    }

    /// The task: runs until shutdown or until every handle is dropped.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut done: Option<oneshot::Sender<Result<(), NetError>>> = None;
        loop {
            let next = self.redial.values().map(|r| r.due).min();
            let timer = sleep_until(next.unwrap_or_else(|| Instant::now() + REDIAL_MAX));
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm(ev),
                cmd = commands.recv() => match cmd {
                    None => break,
                    Some(Command::Shutdown(reply)) => {
                        done = Some(reply);
                        break;
                    }
                    Some(cmd) => self.on_command(cmd),
                },
                () = timer, if next.is_some() => self.on_redial_timer(),
            }
        }
        tracing::debug!("network task stopping");
        drop(self.swarm);
        if let Some(reply) = done {
            let _ = reply.send(Ok(()));
        }
    }

    /// Emits an event that strangers can trigger at will, only while the queue has room to
    /// spare (a quarter stays free for allowed devices).
    fn emit_low(&mut self, ev: NetEvent) -> bool {
        if self.events.capacity() <= EVENT_QUEUE / 4 {
            self.stats.events_dropped += 1;
            tracing::debug!(
                event = ev.kind(),
                "event queue filling up: low-priority event dropped"
            );
            return false;
        }
        self.emit(ev)
    }

    fn emit(&mut self, ev: NetEvent) -> bool {
        match self.events.try_send(ev) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(ev)) => {
                self.stats.events_dropped += 1;
                tracing::warn!(event = ev.kind(), "event queue full: event dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(ev)) => {
                self.stats.events_dropped += 1;
                tracing::debug!(event = ev.kind(), "nobody receives events: event dropped");
                false
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Send(to, bytes, reply) => {
                let _ = reply.send(self.send(to, bytes));
            }
            Command::Publish(topic, bytes, reply) => {
                let r = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic_of(&topic), bytes)
                    .map(|id| msg_id(&id).unwrap_or(MsgId([0; 32])))
                    .map_err(|e| match e {
                        gossipsub::PublishError::NoPeersSubscribedToTopic => NetError::NoPeers,
                        gossipsub::PublishError::Duplicate => NetError::Duplicate,
                        e => NetError::Gossip(e.to_string()),
                    });
                let _ = reply.send(r);
            }
            Command::Subscribe(topic, reply) => {
                let r = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .subscribe(&topic_of(&topic))
                    .map(|_| ())
                    .map_err(|e| NetError::Gossip(e.to_string()));
                let _ = reply.send(r);
            }
            Command::Unsubscribe(topic, reply) => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .unsubscribe(&topic_of(&topic));
                let _ = reply.send(Ok(()));
            }
            Command::Report(id, accept, reply) => {
                let _ = reply.send(self.report(id, accept));
            }
            Command::Listen(addr, reply) => {
                let r =
                    self.swarm
                        .listen_on(addr.clone())
                        .map(|_| ())
                        .map_err(|e| NetError::Listen {
                            addr,
                            reason: e.to_string(),
                        });
                let _ = reply.send(r);
            }
            Command::Dial(addr, reply) => {
                let r = self
                    .swarm
                    .dial(addr)
                    .map_err(|e| NetError::Dial(e.to_string()));
                let _ = reply.send(r);
            }
            Command::SetAllowed(devices, reply) => {
                self.set_allowed(&devices);
                let _ = reply.send(Ok(()));
            }
            Command::SetRendezvousOrgs(map, reply) => {
                let map = map
                    .into_iter()
                    .filter_map(|(d, org)| Some((peer_id(&d)?, org)))
                    .collect();
                if let Some(r) = self.swarm.behaviour_mut().rendezvous_server.as_mut() {
                    r.set_admitted(map);
                }
                let _ = reply.send(Ok(()));
            }
            Command::RendezvousRegister(relay, namespace, reply) => {
                let _ = reply.send(self.rendezvous_register(relay, namespace));
            }
            Command::RendezvousDiscover(relay, namespace, reply) => {
                let _ = reply.send(self.rendezvous_discover(relay, namespace));
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(Ok(self.listening.iter().cloned().collect()));
            }
            Command::Peers(reply) => {
                let peers = self.swarm.connected_peers().filter_map(device_id).collect();
                let _ = reply.send(Ok(peers));
            }
            Command::Stats(reply) => {
                let mut stats = self.stats;
                stats.oversized += self.wire.oversized.load(Ordering::Relaxed);
                stats.malformed += self.wire.malformed.load(Ordering::Relaxed);
                let _ = reply.send(Ok(stats));
            }
            Command::Disconnect(peer, reply) => {
                if let Some(p) = peer_id(&peer) {
                    self.redial.remove(&p);
                    let _ = self.swarm.disconnect_peer_id(p);
                }
                let _ = reply.send(Ok(()));
            }
            // Handled by the loop.
            Command::Shutdown(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn send(&mut self, to: DeviceId, bytes: Vec<u8>) -> Result<(), NetError> {
        let peer = peer_id(&to).ok_or(NetError::NotADevice)?;
        if !self.swarm.behaviour().gate.is_allowed(&peer) {
            return Err(NetError::NotAllowed(to));
        }
        let addrs = self.known.get(&peer).cloned().unwrap_or_default();
        self.swarm
            .behaviour_mut()
            .rr
            .send_request_with_addresses(&peer, bytes, addrs);
        Ok(())
    }

    fn report(&mut self, id: MsgId, accept: bool) -> Result<(), NetError> {
        let (gid, source) = self.pending.remove(&id).ok_or(NetError::UnknownMessage)?;
        // `pending_order` is cleaned lazily when evicting.
        let verdict = if accept {
            gossipsub::MessageAcceptance::Accept
        } else {
            self.stats.gossip_rejected += 1;
            gossipsub::MessageAcceptance::Reject
        };
        if !self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&gid, &source, verdict)
        {
            tracing::debug!(
                ?id,
                "gossip verdict came after gossipsub forgot the message"
            );
        }
        Ok(())
    }

    fn set_allowed(&mut self, devices: &BTreeSet<DeviceId>) {
        let (removed, invalid) = self.swarm.behaviour_mut().gate.set_allowed(devices);
        if invalid > 0 {
            tracing::warn!(
                invalid,
                "allowlist entries that are not Ed25519 keys were skipped"
            );
        }
        for peer in removed {
            self.redial.remove(&peer);
            self.known.remove(&peer);
            if self.swarm.is_connected(&peer) {
                let _ = self.swarm.disconnect_peer_id(peer);
                self.stats.refused += 1;
                if let Some(d) = device_id(&peer) {
                    tracing::info!(peer = %d.short(), "removed from the allowlist: disconnected");
                    self.emit(NetEvent::Refused {
                        peer: d,
                        reason: RefuseReason::NoLongerAllowed,
                    });
                }
            }
        }
    }

    fn remember(&mut self, peer: PeerId, addr: Multiaddr) {
        let list = self.known.entry(peer).or_default();
        if !list.contains(&addr) {
            if list.len() >= ADDRS_PER_PEER {
                list.remove(0);
            }
            list.push(addr);
        }
    }

    fn on_redial_timer(&mut self) {
        let now = Instant::now();
        let due: Vec<PeerId> = self
            .redial
            .iter()
            .filter(|(_, r)| r.due <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            let allowed = self.swarm.behaviour().gate.is_allowed(&peer);
            let addrs = self.known.get(&peer).cloned().unwrap_or_default();
            let Some(r) = self.redial.get_mut(&peer) else {
                continue;
            };
            if !allowed || addrs.is_empty() || r.attempt >= REDIAL_ATTEMPTS {
                if r.attempt >= REDIAL_ATTEMPTS {
                    tracing::info!(%peer, "giving up redialling");
                }
                self.redial.remove(&peer);
                continue;
            }
            r.attempt += 1;
            let delay = REDIAL_FIRST
                .saturating_mul(1 << r.attempt.min(16))
                .min(REDIAL_MAX);
            r.due = now + delay;
            self.stats.redials += 1;
            tracing::debug!(%peer, attempt = r.attempt, "redialling");
            if let Err(e) = self
                .swarm
                .dial(DialOpts::peer_id(peer).addresses(addrs).build())
            {
                tracing::debug!(%peer, error = %e, "redial failed at once");
            }
        }
    }

    fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Gate(e)) => self.on_gate(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Rr(e)) => self.on_rr(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs.into_iter().take(ADDRS_PER_PEER) {
                    self.remember(peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    if self.swarm.behaviour().gate.is_allowed(&peer) {
                        self.remember(peer, addr.clone());
                        self.swarm.add_peer_address(peer, addr);
                        if !self.swarm.is_connected(&peer) {
                            let _ = self.swarm.dial(peer);
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(e)) => match e {
                relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                    tracing::info!(peer = %src_peer_id, "relay: reservation accepted");
                }
                relay::Event::CircuitReqAccepted {
                    src_peer_id,
                    dst_peer_id,
                } => {
                    tracing::info!(src = %src_peer_id, dst = %dst_peer_id, "relay: circuit opened");
                }
                relay::Event::ReservationReqDenied { src_peer_id, .. } => {
                    tracing::info!(peer = %src_peer_id, "relay: reservation denied");
                }
                _ => {}
            },
            SwarmEvent::Behaviour(BehaviourEvent::RendezvousClient(e)) => self.on_rendezvous(e),
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::NewListenAddr { address, .. } => {
                // A relay hands out reservations only for addresses it knows to be reachable:
                // the ones it was told to listen on are. A device registers its addresses at
                // its relays' rendezvous (which takes external addresses): its listen
                // addresses are the candidates; the gate still checks whoever dials them.
                self.swarm.add_external_address(address.clone());
                self.listening.insert(address.clone());
                self.emit(NetEvent::Listening(address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.swarm.remove_external_address(&address);
                self.listening.remove(&address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                self.redial.remove(&peer_id);
                // The gate already checked; this is a backstop for a device removed in between.
                let Some(d) = device_id(&peer_id)
                    .filter(|_| self.swarm.behaviour().gate.is_allowed(&peer_id))
                else {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                };
                if endpoint.is_dialer() {
                    self.remember(peer_id, endpoint.get_remote_address().clone());
                }
                if !endpoint.is_relayed() {
                    *self.direct.entry(peer_id).or_default() += 1;
                    if endpoint.is_dialer() && self.discovered.contains(&peer_id) {
                        tracing::info!(peer = %d.short(), addr = %endpoint.get_remote_address(), "direct connection to a device found through rendezvous");
                    }
                }
                if num_established.get() == 1 {
                    self.emit(NetEvent::Connected(d));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                endpoint,
                ..
            } => {
                if !endpoint.is_relayed()
                    && let Some(n) = self.direct.get_mut(&peer_id)
                {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.direct.remove(&peer_id);
                    }
                }
                if num_established > 0 {
                    return;
                }
                if let Some(d) = device_id(&peer_id) {
                    self.emit(NetEvent::Disconnected(d));
                }
                let unexpected = matches!(cause, Some(ConnectionError::IO(_)));
                if unexpected
                    && self.swarm.behaviour().gate.is_allowed(&peer_id)
                    && self.known.contains_key(&peer_id)
                    && !self.redial.contains_key(&peer_id)
                {
                    self.redial.insert(
                        peer_id,
                        Redial {
                            attempt: 0,
                            due: Instant::now() + REDIAL_FIRST,
                        },
                    );
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. }
                if !matches!(error, libp2p::swarm::DialError::Denied { .. }) =>
            {
                tracing::debug!(?peer_id, %error, "outgoing connection failed");
                self.emit_low(NetEvent::Error(format!("dial failed: {error}")));
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!(%error, "incoming connection failed");
            }
            SwarmEvent::ListenerError { error, .. } => {
                self.emit_low(NetEvent::Error(format!("listener: {error}")));
            }
            SwarmEvent::ListenerClosed {
                reason: Err(error), ..
            } => {
                // E.g. a relay that refused a reservation.
                self.emit_low(NetEvent::Error(format!("listener closed: {error}")));
            }
            _ => {}
        }
    }

    /// The relay's PeerId, the namespace, and this device's rendezvous client.
    fn rendezvous_client(
        &mut self,
        relay: DeviceId,
        namespace: String,
    ) -> Result<
        (
            PeerId,
            rendezvous::Namespace,
            &mut rendezvous::client::Behaviour,
        ),
        NetError,
    > {
        let relay = peer_id(&relay).ok_or(NetError::NotADevice)?;
        let ns = rendezvous::Namespace::new(namespace)
            .map_err(|e| NetError::Rendezvous(e.to_string()))?;
        let client = self
            .swarm
            .behaviour_mut()
            .rendezvous_client
            .as_mut()
            .ok_or_else(|| NetError::Rendezvous("a relay runs no rendezvous client".into()))?;
        Ok((relay, ns, client))
    }

    fn rendezvous_register(&mut self, relay: DeviceId, namespace: String) -> Result<(), NetError> {
        let (relay, ns, client) = self.rendezvous_client(relay, namespace)?;
        client
            .register(ns, relay, Some(CLIENT_TTL))
            .map_err(|e| NetError::Rendezvous(e.to_string()))
    }

    fn rendezvous_discover(&mut self, relay: DeviceId, namespace: String) -> Result<(), NetError> {
        let (relay, ns, client) = self.rendezvous_client(relay, namespace)?;
        client.discover(Some(ns), None, Some(DISCOVER_LIMIT), relay);
        Ok(())
    }

    /// Discovered devices that are allowed and not directly connected are dialled on their
    /// direct addresses (the gate checks them after the handshake like anyone else).
    fn on_rendezvous(&mut self, e: rendezvous::client::Event) {
        match e {
            rendezvous::client::Event::Discovered { registrations, .. } => {
                let local = *self.swarm.local_peer_id();
                for r in registrations.iter().take(DISCOVER_LIMIT as usize) {
                    let peer = r.record.peer_id();
                    if peer == local
                        || !self.swarm.behaviour().gate.is_allowed(&peer)
                        || self.direct.contains_key(&peer)
                    {
                        continue;
                    }
                    let addrs = direct_addrs(r.record.addresses());
                    if addrs.is_empty() {
                        continue;
                    }
                    if self.discovered.len() < 4096 {
                        self.discovered.insert(peer);
                    }
                    for a in &addrs {
                        self.remember(peer, a.clone());
                    }
                    tracing::info!(%peer, n = addrs.len(), "rendezvous: dialling a discovered device directly");
                    let opts = DialOpts::peer_id(peer)
                        .condition(PeerCondition::Always)
                        .addresses(addrs)
                        .build();
                    if let Err(e) = self.swarm.dial(opts) {
                        tracing::debug!(%peer, error = %e, "direct dial failed at once");
                    }
                }
            }
            rendezvous::client::Event::Registered { namespace, ttl, .. } => {
                tracing::debug!(%namespace, ttl, "rendezvous: registered");
            }
            rendezvous::client::Event::RegisterFailed { error, .. } => {
                tracing::info!(?error, "rendezvous: registration refused");
            }
            rendezvous::client::Event::DiscoverFailed { error, .. } => {
                tracing::info!(?error, "rendezvous: discovery refused");
            }
            rendezvous::client::Event::Expired { .. } => {}
        }
    }

    fn on_gate(&mut self, e: GateEvent) {
        match e {
            GateEvent::Refused(d, reason) => {
                self.stats.refused += 1;
                tracing::info!(peer = %d.short(), %reason, "connection refused");
                self.emit_low(NetEvent::Refused { peer: d, reason });
            }
            GateEvent::NotADevice(peer) => {
                self.stats.not_a_device += 1;
                tracing::warn!(%peer, "connection refused: not an Ed25519 device key");
            }
        }
    }

    fn on_gossip(&mut self, e: gossipsub::Event) {
        match e {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.on_gossip_message(propagation_source, message_id, message),
            gossipsub::Event::Subscribed { peer_id, topic } => {
                if let (Some(peer), Some(topic)) = (device_id(&peer_id), topic_id(&topic)) {
                    self.emit(NetEvent::Subscribed { peer, topic });
                }
            }
            _ => {}
        }
    }

    fn on_gossip_message(
        &mut self,
        via: PeerId,
        gid: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let author = message.source;
        if message.data.len() > self.max_message {
            self.stats.oversized += 1;
            tracing::warn!(?author, %via, len = message.data.len(), "gossip over the size limit: rejected");
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&gid, &via, gossipsub::MessageAcceptance::Reject);
            return;
        }
        let checked = (|| {
            let author = author?;
            if !self.swarm.behaviour().gate.is_allowed(&author) {
                return None;
            }
            Some((
                device_id(&author)?,
                device_id(&via)?,
                topic_id(&message.topic)?,
                msg_id(&gid)?,
            ))
        })();
        let Some((from, via_d, topic, id)) = checked else {
            self.stats.gossip_rejected += 1;
            tracing::warn!(?author, %via, "gossip rejected: author not allowed or malformed ids");
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&gid, &via, gossipsub::MessageAcceptance::Reject);
            return;
        };
        let ev = NetEvent::Gossip {
            from,
            via: via_d,
            topic,
            bytes: message.data,
            msg_id: id,
        };
        if !self.emit(ev) {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&gid, &via, gossipsub::MessageAcceptance::Ignore);
            return;
        }
        self.pending.insert(id, (gid, via));
        self.pending_order.push_back(id);
        while self.pending.len() > MAX_PENDING_GOSSIP {
            let Some(old) = self.pending_order.pop_front() else {
                break;
            };
            if let Some((gid, src)) = self.pending.remove(&old) {
                self.stats.gossip_unreported += 1;
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(
                        &gid,
                        &src,
                        gossipsub::MessageAcceptance::Ignore,
                    );
            }
        }
        // Keep the order queue from growing with ids that were already reported.
        if self.pending_order.len() > 2 * MAX_PENDING_GOSSIP {
            let live: HashSet<MsgId> = self.pending.keys().copied().collect();
            self.pending_order.retain(|i| live.contains(i));
        }
    }

    fn on_rr(&mut self, e: request_response::Event<Vec<u8>, ()>) {
        match e {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let from =
                    device_id(&peer).filter(|_| self.swarm.behaviour().gate.is_allowed(&peer));
                let Some(from) = from else {
                    tracing::warn!(%peer, "message from a peer that is not allowed: dropped");
                    return;
                };
                if self.emit(NetEvent::Message {
                    from,
                    bytes: request,
                }) {
                    // Err: the peer went away; nothing to do.
                    let _ = self.swarm.behaviour_mut().rr.send_response(channel, ());
                }
                // Not queued: dropping the channel leaves the sender without an ack.
            }
            request_response::Event::Message {
                message: request_response::Message::Response { .. },
                ..
            } => {}
            request_response::Event::OutboundFailure { peer, error, .. } => {
                self.stats.send_failures += 1;
                tracing::debug!(%peer, %error, "message not acknowledged");
                if let Some(to) = device_id(&peer) {
                    self.emit(NetEvent::SendFailed {
                        to,
                        reason: error.to_string(),
                    });
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                self.on_inbound_failure(peer, error);
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// A failure after the request was read (reading failures are counted by the codec).
    fn on_inbound_failure(&mut self, peer: PeerId, error: request_response::InboundFailure) {
        self.stats.inbound_failures += 1;
        tracing::debug!(%peer, %error, "inbound message stream failed after reading");
    }
}

fn msg_id(id: &gossipsub::MessageId) -> Option<MsgId> {
    Some(MsgId(id.0.as_slice().try_into().ok()?))
}
