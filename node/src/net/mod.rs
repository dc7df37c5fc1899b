//! `node::net`: the thin async shell that carries **opaque bytes** between devices over libp2p.
//! The sync engine (sans-IO) decides what the bytes mean; this module only moves them, and only
//! between allowed devices.
//!
//! [`Net::start`] builds a libp2p swarm from the device key (the Ed25519 device key *is* the
//! libp2p identity, [`peer_id`] / [`device_id`] convert) and spawns **one tokio task** that owns
//! it, running `tokio::select!` over the swarm, the [`NetHandle`] commands and one redial timer.
//! Everything else goes through the handle (commands, answered on a oneshot) and the
//! [`NetEvent`] receiver.
//!
//! - **One-way messages** ([`NetHandle::send`] → [`NetEvent::Message`]): request-response on
//!   `/cloison/msg/1`, request = `u32` big-endian length + bytes, response = a one-byte ack sent
//!   once the message is queued for the engine (so an ack means "handed to the engine", not
//!   "processed"). If the event queue is full, no ack is sent and the sender sees
//!   [`NetEvent::SendFailed`]: back-pressure, not silent loss.
//! - **Gossip** ([`NetHandle::publish`], [`NetHandle::subscribe`] → [`NetEvent::Gossip`]):
//!   gossipsub with signed messages, strict validation and content-addressed ids
//!   ([`MsgId`] = BLAKE3 of the bytes). Messages are *held*: gossipsub forwards a message to
//!   other peers only after the engine calls [`NetHandle::report`] with `accept = true`. The
//!   engine must report within gossipsub's history window (about 5 s with the default
//!   heartbeat), after which the message is still delivered but no longer forwarded. Unreported
//!   messages beyond [`MAX_PENDING_GOSSIP`] are ignored oldest first.
//! - **Topics** are 32-byte ids; the gossipsub topic is their lowercase hex.
//!
//! **Invariants**
//! - `node::net` is the only module that imports libp2p; nothing libp2p-typed crosses the API
//!   except [`Multiaddr`] (addresses have no better representation).
//! - **Zero trust at the connection.** The allowlist starts empty. After the Noise (TCP) or TLS
//!   1.3 (QUIC) handshake authenticates the remote key, the gate (first behaviour of the swarm)
//!   denies any peer that is not an allowed device, so no other protocol runs on that
//!   connection and nothing it says reaches the engine ([`NetEvent::Refused`]). Removing a
//!   device from the allowlist closes its connections at once. Gossip *authored* by a device
//!   that is not allowed is rejected even when an allowed peer relays it.
//! - **Hostile input never panics or stops the task.** A malformed or oversized message is
//!   dropped with a `tracing` warning and a counter ([`NetStats`]); the size limit
//!   ([`NetConfig::max_message`]) holds on both sides, before allocation on the receiving side.
//! - mDNS opens no socket at all unless [`NetConfig::mdns`] is true (a `Toggle` holds `None`);
//!   [`mdns_env_allows`] lets `CLOISON_MDNS=0` force it off.
//!
//! **Relays and NAT:** the swarm has the circuit-relay v2 client (dial
//! `…/p2p/<relay>/p2p-circuit/p2p/<device>`, or [`NetHandle::listen`] on
//! `…/p2p/<relay>/p2p-circuit` to be reachable through a relay), DCUtR (a relayed connection
//! tries to become direct) and AutoNAT. The relay itself is an allowed peer like any other: the
//! gate checks the relay's connection and, separately, the device at the end of the circuit.
//! **Rendezvous** ([`rendezvous`]): a device registers its addresses at its relays under its
//! organization's namespace and discovers the other devices there, dialling the allowed ones
//! directly; the relay serves each admitted device only its own organization's registrations.
//! There is no DNS resolution.

mod codec;
mod driver;
mod gate;
pub mod greet;
mod ids;
pub mod rendezvous;

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    time::Duration,
};

pub use libp2p::Multiaddr;
use tokio::sync::{mpsc, oneshot};

use crate::trust::{ids::DeviceId, keys::DeviceKeys};

pub use codec::{MESSAGE_PROTOCOL, WireError, read_message};
pub use gate::RefuseReason;
pub use ids::{addr_peer, device_id, peer_id};

/// Default limit on one message (request or gossip payload): 8 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 8 << 20;
/// Default idle timeout of a connection (libp2p's own default is 10 s, far too short).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Capacity of the event channel; when full, events are dropped and counted (see module doc).
pub const EVENT_QUEUE: usize = 1024;
/// Gossip messages held for the engine's verdict at most.
pub const MAX_PENDING_GOSSIP: usize = 4096;

/// How a node listens and what it runs.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Addresses to listen on (TCP and/or QUIC).
    pub listen: Vec<Multiaddr>,
    /// Run mDNS discovery on the LAN. When false no multicast socket is opened.
    pub mdns: bool,
    /// Close a connection no protocol keeps alive for this long. (Observed with libp2p 0.57:
    /// gossipsub's long-lived streams keep a connection between two of our nodes open anyway;
    /// the timeout matters for peers that do not speak gossipsub.)
    pub idle_timeout: Duration,
    /// Largest message, in bytes, sent or accepted (one-way messages and gossip payloads).
    pub max_message: usize,
    /// Run as a relay (`cloison-bootstrap`): the gate is *open* (any Ed25519 peer may connect
    /// and introduce itself; the allowlist then names the *authorized* peers, and removing one
    /// still closes its connections), and the circuit-relay v2 server runs, handing out
    /// reservations and circuits only to authorized peers. Devices leave it false.
    pub relay_server: bool,
}

impl Default for NetConfig {
    /// TCP and QUIC on an ephemeral port on every interface, mDNS on (subject to
    /// [`mdns_env_allows`], which the daemon applies with [`NetConfig::with_env`]).
    fn default() -> Self {
        NetConfig {
            listen: vec![
                multiaddr_const("/ip4/0.0.0.0/tcp/0"),
                multiaddr_const("/ip4/0.0.0.0/udp/0/quic-v1"),
            ],
            mdns: true,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_message: DEFAULT_MAX_MESSAGE,
            relay_server: false,
        }
    }
}

impl NetConfig {
    /// TCP and QUIC on ephemeral ports of 127.0.0.1 only, mDNS off: for tests.
    pub fn loopback() -> Self {
        NetConfig {
            listen: vec![
                multiaddr_const("/ip4/127.0.0.1/tcp/0"),
                multiaddr_const("/ip4/127.0.0.1/udp/0/quic-v1"),
            ],
            mdns: false,
            ..NetConfig::default()
        }
    }

    /// Applies the environment: `CLOISON_MDNS=0` turns mDNS off.
    pub fn with_env(mut self) -> Self {
        self.mdns &= mdns_env_allows();
        self
    }
}

/// Builds one of the fixed addresses above. They are valid literals, so the fallback (an empty
/// address, which listens nowhere) is unreachable in practice; no `expect` needed.
fn multiaddr_const(s: &str) -> Multiaddr {
    s.parse().unwrap_or_else(|_| Multiaddr::empty())
}

/// Does the environment allow mDNS? False when `CLOISON_MDNS` is `0`, `false`, `off` or `no`.
pub fn mdns_env_allows() -> bool {
    mdns_allowed_by(std::env::var("CLOISON_MDNS").ok().as_deref())
}

/// Whether this value of `CLOISON_MDNS` allows mDNS (unset: yes).
pub fn mdns_allowed_by(value: Option<&str>) -> bool {
    !matches!(
        value.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("0" | "false" | "off" | "no")
    )
}

/// A gossip message id: BLAKE3 of its bytes (content-addressed, the same on every node).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId(pub [u8; 32]);

impl MsgId {
    /// The id of a payload.
    pub fn of(bytes: &[u8]) -> Self {
        MsgId(*blake3::hash(bytes).as_bytes())
    }
}

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MsgId({})", hex::encode(&self.0[..6]))
    }
}

/// What the network tells the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// We listen on this address.
    Listening(Multiaddr),
    /// First connection to an allowed device is up.
    Connected(DeviceId),
    /// Last connection to a device is down.
    Disconnected(DeviceId),
    /// A device was refused after its handshake, or cut off. (Refusals of strangers are
    /// dropped rather than queued when the event queue is three quarters full.)
    Refused {
        /// The device.
        peer: DeviceId,
        /// Why.
        reason: RefuseReason,
    },
    /// A one-way message from an allowed device.
    Message {
        /// The sender (authenticated by the transport handshake).
        from: DeviceId,
        /// Opaque bytes.
        bytes: Vec<u8>,
    },
    /// A gossip message, held until [`NetHandle::report`].
    Gossip {
        /// The author (gossipsub signature, strict mode).
        from: DeviceId,
        /// The allowed peer that forwarded it to us (the author if it came directly).
        via: DeviceId,
        /// The topic.
        topic: [u8; 32],
        /// Opaque bytes.
        bytes: Vec<u8>,
        /// Its id, for [`NetHandle::report`].
        msg_id: MsgId,
    },
    /// A connected device subscribed to a topic (publishing there now reaches it).
    Subscribed {
        /// The device.
        peer: DeviceId,
        /// The topic.
        topic: [u8; 32],
    },
    /// A one-way message was not acknowledged (peer unreachable, refused, full, or too large
    /// for it).
    SendFailed {
        /// The intended recipient.
        to: DeviceId,
        /// libp2p's reason, for logs.
        reason: String,
    },
    /// Something went wrong that the engine may want to log (dial or listener failures).
    Error(String),
}

impl NetEvent {
    /// The variant's name, for logs (never the bytes).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            NetEvent::Listening(_) => "listening",
            NetEvent::Connected(_) => "connected",
            NetEvent::Disconnected(_) => "disconnected",
            NetEvent::Refused { .. } => "refused",
            NetEvent::Message { .. } => "message",
            NetEvent::Gossip { .. } => "gossip",
            NetEvent::Subscribed { .. } => "subscribed",
            NetEvent::SendFailed { .. } => "send_failed",
            NetEvent::Error(_) => "error",
        }
    }
}

/// Counters of dropped or refused input, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Inbound messages over our limit.
    pub oversized: u64,
    /// Inbound messages that were malformed (truncated, trailing bytes, bad framing).
    pub malformed: u64,
    /// Other inbound stream failures (timeouts, closed streams).
    pub inbound_failures: u64,
    /// Connections refused by the allowlist (including cut-offs).
    pub refused: u64,
    /// Connections from peers whose key is not Ed25519.
    pub not_a_device: u64,
    /// Gossip rejected by the engine or because its author is not allowed.
    pub gossip_rejected: u64,
    /// Gossip whose verdict never came (evicted from the pending set).
    pub gossip_unreported: u64,
    /// Events dropped because the event channel was full.
    pub events_dropped: u64,
    /// One-way messages that were not acknowledged.
    pub send_failures: u64,
    /// Redial attempts after a dropped connection.
    pub redials: u64,
}

/// Errors of the network shell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The device key could not become a libp2p identity.
    #[error("identity: {0}")]
    Identity(String),
    /// Building the transports or behaviours failed.
    #[error("transport setup: {0}")]
    Setup(String),
    /// Could not listen on an address.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Closed,
    /// The message exceeds the limit.
    #[error("message of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The device id is not a valid Ed25519 key.
    #[error("not a valid device id")]
    NotADevice,
    /// The device is not in the allowlist.
    #[error("device {0:?} is not allowed")]
    NotAllowed(DeviceId),
    /// Nobody we are connected to subscribes to the topic yet (gossip is best effort; retry or
    /// fall back to messages).
    #[error("no connected peer subscribes to the topic")]
    NoPeers,
    /// The same bytes were already published on this topic recently.
    #[error("duplicate gossip message")]
    Duplicate,
    /// Another gossipsub refusal.
    #[error("gossip: {0}")]
    Gossip(String),
    /// Dialling failed at once (bad address, no transport for it).
    #[error("dial: {0}")]
    Dial(String),
    /// No held gossip message has this id (already reported, evicted or never received).
    #[error("unknown gossip message")]
    UnknownMessage,
    /// A rendezvous request could not be made (no address to register, bad namespace).
    #[error("rendezvous: {0}")]
    Rendezvous(String),
}

/// A command for the network task; each carries its answer channel.
enum Command {
    Send(DeviceId, Vec<u8>, oneshot::Sender<Result<(), NetError>>),
    Publish([u8; 32], Vec<u8>, oneshot::Sender<Result<MsgId, NetError>>),
    Subscribe([u8; 32], oneshot::Sender<Result<(), NetError>>),
    Unsubscribe([u8; 32], oneshot::Sender<Result<(), NetError>>),
    Report(MsgId, bool, oneshot::Sender<Result<(), NetError>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    Listen(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    SetAllowed(BTreeSet<DeviceId>, oneshot::Sender<Result<(), NetError>>),
    ListenAddrs(oneshot::Sender<Result<Vec<Multiaddr>, NetError>>),
    Peers(oneshot::Sender<Result<Vec<DeviceId>, NetError>>),
    Stats(oneshot::Sender<Result<NetStats, NetError>>),
    Shutdown(oneshot::Sender<Result<(), NetError>>),
    Disconnect(DeviceId, oneshot::Sender<Result<(), NetError>>),
    SetRendezvousOrgs(
        HashMap<DeviceId, [u8; 32]>,
        oneshot::Sender<Result<(), NetError>>,
    ),
    RendezvousRegister(DeviceId, String, oneshot::Sender<Result<(), NetError>>),
    RendezvousDiscover(DeviceId, String, oneshot::Sender<Result<(), NetError>>),
}

/// The network of one device.
pub struct Net;

impl Net {
    /// Builds the swarm from the device key, starts listening on `cfg.listen` and spawns the
    /// task that owns it. Outside a tokio runtime it fails with [`NetError::Setup`]. The
    /// allowlist starts empty.
    pub fn start(
        keys: &DeviceKeys,
        cfg: NetConfig,
    ) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), NetError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| NetError::Setup("Net::start needs a tokio runtime".into()))?;
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let driver = driver::Driver::new(keys, &cfg, ev_tx)?;
        runtime.spawn(driver.run(cmd_rx));
        Ok((
            NetHandle {
                tx: cmd_tx,
                local: keys.id(),
                max_message: cfg.max_message,
            },
            ev_rx,
        ))
    }
}

/// Commands to the network task. Cheap to clone; every method waits for the task's answer.
/// Once every handle is dropped (or after [`NetHandle::shutdown`]) the task ends.
#[derive(Clone)]
pub struct NetHandle {
    tx: mpsc::Sender<Command>,
    local: DeviceId,
    max_message: usize,
}

impl fmt::Debug for NetHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetHandle")
            .field("local", &self.local)
            .finish()
    }
}

impl NetHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, NetError>>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| NetError::Closed)?;
        rx.await.map_err(|_| NetError::Closed)?
    }

    fn check_size(&self, len: usize) -> Result<(), NetError> {
        if len > self.max_message {
            return Err(NetError::TooLarge {
                len,
                limit: self.max_message,
            });
        }
        Ok(())
    }

    /// This device.
    pub fn local_id(&self) -> DeviceId {
        self.local
    }

    /// Queues a one-way message to an allowed device (dialling it if needed and an address is
    /// known). `Ok` means queued, not delivered: a failure comes later as
    /// [`NetEvent::SendFailed`].
    pub async fn send(&self, to: DeviceId, bytes: Vec<u8>) -> Result<(), NetError> {
        self.check_size(bytes.len())?;
        self.ask(|r| Command::Send(to, bytes, r)).await
    }

    /// Publishes on a topic. Fails with [`NetError::NoPeers`] until a connected peer has
    /// subscribed ([`NetEvent::Subscribed`]).
    pub async fn publish(&self, topic: [u8; 32], bytes: Vec<u8>) -> Result<MsgId, NetError> {
        self.check_size(bytes.len())?;
        self.ask(|r| Command::Publish(topic, bytes, r)).await
    }

    /// Subscribes to a topic (idempotent).
    pub async fn subscribe(&self, topic: [u8; 32]) -> Result<(), NetError> {
        self.ask(|r| Command::Subscribe(topic, r)).await
    }

    /// Unsubscribes from a topic (idempotent).
    pub async fn unsubscribe(&self, topic: [u8; 32]) -> Result<(), NetError> {
        self.ask(|r| Command::Unsubscribe(topic, r)).await
    }

    /// The engine's verdict on a held gossip message: accepted messages are forwarded to the
    /// mesh, rejected ones dropped.
    pub async fn report(&self, msg_id: MsgId, accept: bool) -> Result<(), NetError> {
        self.ask(|r| Command::Report(msg_id, accept, r)).await
    }

    /// Dials an address (with or without a `/p2p/…` suffix). Who answers is checked against the
    /// allowlist after the handshake.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.ask(|r| Command::Dial(addr, r)).await
    }

    /// Listens on one more address, e.g. through a relay:
    /// `/ip4/…/tcp/…/p2p/<relay>/p2p-circuit` (the relay must be allowed).
    pub async fn listen(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.ask(|r| Command::Listen(addr, r)).await
    }

    /// Replaces the allowlist. Connected devices that are no longer in it are disconnected at
    /// once (and reported as [`NetEvent::Refused`] with [`RefuseReason::NoLongerAllowed`]).
    pub async fn set_allowed(&self, devices: BTreeSet<DeviceId>) -> Result<(), NetError> {
        self.ask(|r| Command::SetAllowed(devices, r)).await
    }

    /// The addresses we listen on now.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(Command::ListenAddrs).await
    }

    /// The devices we have at least one connection to.
    pub async fn peers(&self) -> Result<Vec<DeviceId>, NetError> {
        self.ask(Command::Peers).await
    }

    /// Counters of refused and dropped input.
    pub async fn stats(&self) -> Result<NetStats, NetError> {
        self.ask(Command::Stats).await
    }

    /// Closes every connection to a peer now (a relay refusing a peer that introduced itself
    /// badly). It may connect again; the caller decides again.
    pub async fn disconnect(&self, peer: DeviceId) -> Result<(), NetError> {
        self.ask(|r| Command::Disconnect(peer, r)).await
    }

    /// Relay mode: the devices admitted to rendezvous and their organization (each device's
    /// requests reach only its organization's server; anyone else's are refused). Replaces the
    /// previous map. A device node ignores it.
    pub async fn set_rendezvous_orgs(
        &self,
        admitted: HashMap<DeviceId, [u8; 32]>,
    ) -> Result<(), NetError> {
        self.ask(|r| Command::SetRendezvousOrgs(admitted, r)).await
    }

    /// Registers our addresses (listen and external, circuits included) at a connected relay's
    /// rendezvous under `namespace` ([`rendezvous::namespace_of`]), for
    /// [`rendezvous::CLIENT_TTL`] seconds.
    pub async fn rendezvous_register(
        &self,
        relay: DeviceId,
        namespace: String,
    ) -> Result<(), NetError> {
        self.ask(|r| Command::RendezvousRegister(relay, namespace, r))
            .await
    }

    /// Asks a relay's rendezvous for the devices registered under `namespace`; allowed ones
    /// we have no direct connection to are dialled on their direct addresses.
    pub async fn rendezvous_discover(
        &self,
        relay: DeviceId,
        namespace: String,
    ) -> Result<(), NetError> {
        self.ask(|r| Command::RendezvousDiscover(relay, namespace, r))
            .await
    }

    /// Stops the task and closes every connection; returns once the swarm is dropped.
    pub async fn shutdown(&self) -> Result<(), NetError> {
        self.ask(Command::Shutdown).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mdns_env_values() {
        assert!(mdns_allowed_by(None));
        assert!(mdns_allowed_by(Some("1")));
        for off in ["0", "false", "OFF", " no "] {
            assert!(!mdns_allowed_by(Some(off)), "{off}");
        }
    }

    #[test]
    fn start_outside_a_runtime_is_an_error() {
        let keys = DeviceKeys::generate(&mut rand::rng());
        assert!(matches!(
            Net::start(&keys, NetConfig::loopback()),
            Err(NetError::Setup(_))
        ));
    }

    #[test]
    fn default_config() {
        let c = NetConfig::default();
        assert_eq!(c.listen.len(), 2);
        assert!(c.listen.iter().all(|a| !a.is_empty()));
        assert_eq!(c.max_message, 8 << 20);
        let l = NetConfig::loopback();
        assert!(!l.mdns);
        assert!(
            l.listen
                .iter()
                .all(|a| a.to_string().starts_with("/ip4/127.0.0.1/"))
        );
    }
}
