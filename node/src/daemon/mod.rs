//! `cloison run`: the daemon. One tokio task owns the [`Node`] (store, engine, documents) and
//! drives it: network events in, engine transmits out, control requests in between, the
//! engine's timer, and signals.
//!
//! Loop contract: after every input (a batch of network events, one control request, a timer
//! tick) the node is settled ([`Node::settle`]: persist, store blocks, housekeeping), then every
//! transmit is handed to the network and the allowlist is recomputed from the organization
//! state (its devices and authorized relays: a strange key never gets past the connection),
//! and the peers the engine cuts off are disconnected. A device revoked while connected gets,
//! in the same turn, a listening link (the engine sends it nothing and takes from it only what
//! makes it count again; see `sync::engine::listen`), cut off when that ends.
//!
//! Bandwidth limits (`pace`): block data leaves at the send limit, block requests go at the
//! receive limit (the engine paces them); everything else goes at once.
//!
//! Invariants: only this task touches the node (the store is opened by one process: the
//! control socket is how other commands get in); a failing request or a hostile message is
//! logged and answered, never fatal; SIGTERM, SIGINT and a `shutdown` request stop the
//! network, remove the socket and close the store cleanly.

mod dials;
mod greet;
mod mirrors;
mod pace;
mod relays;
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::control::exec::{self, error_kind};
use crate::control::{Frame, PeerInfo, Request, Response, SOCKET};
use crate::net::{Multiaddr, Net, NetConfig, NetEvent, NetHandle, peer_id};
use crate::node::{Node, NodeError, now_ms};
use crate::trust::DeviceId;

pub use pace::{Bandwidth, MAX_QUEUED};

/// Network events handled in one turn before the node is settled.
const EVENT_BATCH: usize = 256;
/// Longest sleep between engine timer checks.
const MAX_TICK: Duration = Duration::from_millis(1000);
/// Period of the node's housekeeping ([`Node::tick`]: merges) and of the engine's timer when
/// inputs keep the loop busy.
const TICK_MS: u64 = 500;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Addresses to dial at start (besides the remembered ones).
    pub peers: Vec<Multiaddr>,
    /// LAN discovery.
    pub mdns: bool,
    /// Bandwidth limits on block data.
    pub bandwidth: Bandwidth,
}

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The network failed to start.
    #[error("network: {0}")]
    Net(#[from] crate::net::NetError),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The control socket failed.
    #[error("control socket {path}: {err}")]
    Socket {
        /// Its path.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// Another daemon serves this home.
    #[error("a daemon already runs for this home ({0} answers)")]
    AlreadyRunning(PathBuf),
}

/// A request from the control socket, with where to send its frames.
pub(crate) type Call = (Request, mpsc::Sender<Frame>);

struct Daemon {
    node: Node,
    io: Io,
    mirrors: mirrors::Mirrors,
}

/// Everything of the daemon but the node, so that a long request holding the node can still
/// pump the network ([`Io::pump`]).
struct Io {
    net: NetHandle,
    events: mpsc::Receiver<NetEvent>,
    allowed: BTreeSet<DeviceId>,
    listen: Vec<Multiaddr>,
    refused: BTreeMap<DeviceId, (String, u64)>,
    connected: BTreeMap<DeviceId, u64>,
    stop: bool,
    /// When the node's housekeeping runs next.
    next_tick: u64,
    /// Enrolment: the greeting swarm and sessions.
    greet: greet::Greeting,
    /// Authorized relays: introduction, circuits, block offers.
    relays: relays::RelayLinks,
    /// The send limit's queue and the rate meters.
    pace: pace::Pace,
    /// The remembered addresses dialled at start, until their verdict.
    start_dials: dials::StartDials,
}

/// Runs the daemon until a signal or a `shutdown` request. `ready` is called once, with the
/// full listen addresses (`.../p2p/<peer id>`), when the control socket accepts requests.
pub async fn run(
    node: Node,
    cfg: DaemonConfig,
    ready: impl FnOnce(&[String]),
) -> Result<(), DaemonError> {
    run_mirroring(node, cfg, Vec::new(), ready).await
}

/// [`run`], also mirroring `extra` (workspace, directory) pairs that are not registered
/// (`cloison sync --foreground`).
pub async fn run_mirroring(
    mut node: Node,
    cfg: DaemonConfig,
    extra: Vec<(crate::workspace::WorkspaceId, PathBuf)>,
    ready: impl FnOnce(&[String]),
) -> Result<(), DaemonError> {
    let sock = node.home().join(SOCKET);
    let listener = server::bind(&sock)?;
    let owner =
        crate::control::socket::owner_uid(node.home()).map_err(|err| DaemonError::Socket {
            path: sock.clone(),
            err,
        })?;
    let keys = node.device_keys();
    let (net, events) = Net::start(
        &keys,
        NetConfig {
            listen: cfg.listen.clone(),
            mdns: cfg.mdns,
            ..NetConfig::default()
        },
    )?;
    node.set_eager(true)?;
    node.engine_mut()
        .set_recv_limit(cfg.bandwidth.recv_bytes_per_s());
    let mut d = Daemon {
        node,
        io: Io {
            net,
            events,
            allowed: BTreeSet::new(),
            listen: Vec::new(),
            refused: BTreeMap::new(),
            connected: BTreeMap::new(),
            stop: false,
            next_tick: now_ms() + TICK_MS,
            greet: greet::Greeting::new(&cfg.listen),
            relays: relays::RelayLinks::default(),
            pace: pace::Pace::new(cfg.bandwidth, now_ms()),
            start_dials: dials::StartDials::new(&[], now_ms()),
        },
        mirrors: mirrors::Mirrors::new(),
    };
    d.io.greet.resume(&d.node).await;
    d.io.sync_allowlist(&d.node).await;
    d.io.relays.dial_new(&d.node);
    d.io.relays.flush(&d.io.net).await;
    // Collect the listen addresses (one per configured address), briefly.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while d.io.listen.len() < cfg.listen.len() {
        match tokio::time::timeout_at(deadline, d.io.events.recv()).await {
            Ok(Some(ev)) => d.io.on_net(&mut d.node, ev),
            _ => break,
        }
    }
    let mut remembered: Vec<(String, Multiaddr)> = Vec::new();
    for a in d.node.store().dial_addrs().map_err(NodeError::from)? {
        match a.parse() {
            Ok(m) => remembered.push((a, m)),
            Err(_) => tracing::warn!(addr = %a, "remembered address does not parse; skipped"),
        }
    }
    d.io.start_dials = dials::StartDials::new(&remembered, now_ms());
    // Devices that connected while the listen addresses came in are reached already.
    for p in d.io.connected.keys() {
        d.io.start_dials.connected(&d.node, p);
    }
    let dial = cfg
        .peers
        .iter()
        .cloned()
        .chain(remembered.into_iter().map(|(_, m)| m));
    for a in dial {
        if let Err(e) = d.io.net.dial(a.clone()).await {
            tracing::warn!(addr = %a, "dial failed: {e}");
        }
    }
    let (call_tx, mut calls) = mpsc::channel::<Call>(16);
    let server = tokio::spawn(server::serve(listener, owner, call_tx));
    d.mirrors.restore(&mut d.node, &extra);
    ready(&d.io.full_listen(&d.node));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|err| DaemonError::Socket {
            path: sock.clone(),
            err,
        })?;
    while !d.io.stop {
        let wait = d
            .node
            .engine()
            .poll_timeout()
            .map_or(MAX_TICK, |t| {
                Duration::from_millis(t.saturating_sub(now_ms()))
            })
            .min(MAX_TICK)
            .min(d.mirrors.next_due().map_or(MAX_TICK, |t| {
                t.saturating_duration_since(std::time::Instant::now())
            }))
            .min(d.io.pace.wake_at().map_or(MAX_TICK, |t| {
                Duration::from_millis(t.saturating_sub(now_ms()))
            }));
        tokio::select! {
            ev = d.io.events.recv() => {
                let Some(ev) = ev else { break };
                d.io.on_net(&mut d.node, ev);
                d.io.drain(&mut d.node);
            }
            ev = d.io.greet.recv() => greet::on_event(&mut d.node, &mut d.io, ev).await,
            call = calls.recv() => {
                if let Some((req, reply)) = call {
                    d.on_call(req, reply).await;
                }
            }
            Some(w) = d.mirrors.rx.recv() => d.mirrors.touched(w),
            _ = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
        d.io.timers(&mut d.node);
        d.io.turn(&mut d.node).await;
        d.mirror_turn();
    }
    tracing::info!("shutting down");
    server.abort();
    d.io.greet.shutdown().await;
    let _ = d.io.net.shutdown().await;
    let _ = std::fs::remove_file(&sock);
    Ok(())
}

impl Io {
    /// Our listen addresses with `/p2p/<peer id>`.
    fn full_listen(&self, node: &Node) -> Vec<String> {
        let pid = peer_id(&node.device_id()).map(|p| p.to_string());
        self.listen
            .iter()
            .map(|a| match &pid {
                Some(p) => format!("{a}/p2p/{p}"),
                None => a.to_string(),
            })
            .collect()
    }

    fn on_net(&mut self, node: &mut Node, ev: NetEvent) {
        let now = now_ms();
        match ev {
            NetEvent::Listening(a) => {
                tracing::info!(addr = %a, "listening");
                self.listen.push(a);
                // Told to the devices we enrol (`Welcome::peers`).
                node.set_advertised(self.full_listen(node));
            }
            NetEvent::Connected(p) => {
                tracing::info!(peer = %p.short(), "peer connected");
                self.connected.insert(p, now);
                self.refused.remove(&p);
                self.start_dials.connected(node, &p);
                if relays::RelayLinks::is_relay(node, &p) {
                    self.relays.on_connected(node, p);
                } else {
                    node.engine_mut().handle_connected(now, p);
                }
            }
            NetEvent::Disconnected(p) => {
                tracing::info!(peer = %p.short(), "peer disconnected");
                self.connected.remove(&p);
                self.pace.forget(&p);
                self.relays.on_disconnected(&p);
                node.engine_mut().handle_disconnected(p);
            }
            NetEvent::Refused { peer, reason } => {
                self.connected.remove(&peer);
                self.pace.forget(&peer);
                node.engine_mut().handle_disconnected(peer);
                self.note_refused(node, peer, &reason.to_string());
            }
            NetEvent::Message { from, bytes } => {
                self.pace.on_received(now, bytes.len());
                let relay =
                    relays::RelayLinks::is_relay(node, &from) || self.relays.in_farewell(&from);
                if !(relay && self.relays.on_message(node, from, &bytes)) {
                    node.engine_mut().handle_message(now, from, &bytes);
                }
            }
            NetEvent::Gossip { msg_id, .. } => {
                // We do not subscribe to gossip; refuse anything that arrives anyway.
                let net = self.net.clone();
                tokio::spawn(async move {
                    let _ = net.report(msg_id, false).await;
                });
            }
            NetEvent::Subscribed { .. } => {}
            NetEvent::SendFailed { to, reason } => {
                tracing::debug!(peer = %to.short(), %reason, "message not delivered");
            }
            NetEvent::Error(e) => tracing::warn!("network: {e}"),
        }
    }

    /// Handles the network events already queued (up to a batch).
    fn drain(&mut self, node: &mut Node) {
        for _ in 0..EVENT_BATCH {
            match self.events.try_recv() {
                Ok(ev) => self.on_net(node, ev),
                Err(_) => break,
            }
        }
    }

    /// During a long request: handle what the network brought, settle, transmit. Blocks the
    /// calling thread (which runs under `block_in_place`) on the runtime.
    fn pump(&mut self, node: &mut Node, rt: &tokio::runtime::Handle) {
        self.drain(node);
        // Timers (block retries, timeouts, merges) must run during a long request too.
        self.timers(node);
        rt.block_on(self.turn(node));
    }

    /// Runs the engine's timer when it is due and the node's housekeeping every [`TICK_MS`],
    /// whether the loop is idle or kept busy by inputs.
    fn timers(&mut self, node: &mut Node) {
        let now = now_ms();
        self.start_dials.tick(node, now);
        if now >= self.next_tick || node.engine().poll_timeout().is_some_and(|t| now >= t) {
            node.engine_mut().handle_timeout(now);
            if let Err(e) = node.tick(now) {
                tracing::warn!("housekeeping: {e}");
            }
            self.next_tick = now + TICK_MS;
        }
    }

    /// Records that `peer` was refused or cut off (`detail`: by what), with why in terms of the
    /// organization state.
    fn note_refused(&mut self, node: &Node, peer: DeviceId, detail: &str) {
        let why = match node.state().devices.get(&peer) {
            Some(d) if d.revoked_by.is_some() => "revoked device".to_owned(),
            Some(_) => format!("device not active ({detail})"),
            None => "not a device of this organization".to_owned(),
        };
        tracing::warn!(peer = %peer.short(), reason = %why, "connection refused");
        if self.refused.len() < 1024 || self.refused.contains_key(&peer) {
            self.refused.insert(peer, (why, now_ms()));
        }
    }

    /// After an input: settle, transmit, update the allowlist.
    async fn turn(&mut self, node: &mut Node) {
        if let Err(e) = node.settle() {
            tracing::error!("could not settle: {e}");
        }
        while let Some(t) = node.engine_mut().poll_transmit() {
            if let Some(t) = self.pace.admit(now_ms(), t) {
                self.send(t).await;
            }
        }
        while let Some(t) = self.pace.due(now_ms()) {
            self.send(t).await;
        }
        self.relays.drop_unauthorized(node);
        for p in node.take_disconnects() {
            if self.relays.in_farewell(&p) {
                // A revoked relay: closed once its farewell ends (see `relays`).
                continue;
            }
            tracing::info!(peer = %p.short(), "engine cut the peer off");
            if let Err(e) = self.net.disconnect(p).await {
                tracing::debug!(peer = %p.short(), "disconnect: {e}");
            }
            if self.connected.remove(&p).is_some() {
                self.note_refused(node, p, "cut off");
            }
        }
        self.sync_allowlist(node).await;
        self.relays.dial_new(node);
        self.relays.offer_blocks(node, false);
        self.relays.flush(&self.net).await;
    }

    /// Hands one engine message to the network (counted in the meters).
    async fn send(&mut self, t: crate::sync::Transmit) {
        self.pace.on_sent(now_ms(), t.bytes.len());
        if let Err(e) = self.net.send(t.peer, t.bytes).await {
            tracing::debug!(peer = %t.peer.short(), "send: {e}");
        }
    }

    /// The allowlist is every device of the organization (but us), active or not (the engine
    /// decides what an inactive one gets: a listening link, or nothing), and every authorized
    /// relay (a revoked one only during its farewell: leaving the list closes its connection).
    async fn sync_allowlist(&mut self, node: &Node) {
        let me = node.device_id();
        let st = node.state();
        let now: BTreeSet<DeviceId> = st
            .devices
            .keys()
            .filter(|d| **d != me)
            .chain(st.relays.keys())
            .chain(self.relays.farewells())
            .copied()
            .collect();
        if now != self.allowed {
            if let Err(e) = self.net.set_allowed(now.clone()).await {
                tracing::error!("allowlist: {e}");
            }
            self.allowed = now;
        }
    }
}

impl Daemon {
    async fn on_call(&mut self, req: Request, reply: mpsc::Sender<Frame>) {
        let result = match req {
            Request::Shutdown => {
                self.io.stop = true;
                Ok(Response::Message("daemon stopping".into()))
            }
            Request::Peers => Ok(Response::Peers(self.peers())),
            Request::Status => self.status().await,
            Request::Connect { addr } => self.connect(&addr).await,
            r @ (Request::InviteCreate { .. }
            | Request::Invitations
            | Request::InviteCancel { .. }
            | Request::GreetWait { .. }
            | Request::GreetConfirm { .. }
            | Request::GreetAbort { .. }) => greet::call(&mut self.node, &mut self.io, r).await,
            req @ (Request::SyncAdd { .. } | Request::SyncList | Request::SyncStop { .. }) => self
                .mirror_call(&req)
                .unwrap_or_else(|| Err(NodeError::Invalid("not a mirror request".into()))),
            other => {
                let Daemon { node, io, .. } = self;
                let progress_tx = reply.clone();
                let mut last = std::time::Instant::now();
                let rt = tokio::runtime::Handle::current();
                tokio::task::block_in_place(|| {
                    exec::execute(
                        node,
                        other,
                        &mut |p| {
                            if last.elapsed() >= Duration::from_millis(100)
                                || p.files == p.total_files
                            {
                                last = std::time::Instant::now();
                                let _ = progress_tx.try_send(Frame::Progress { progress: p });
                            }
                        },
                        &mut |n| io.pump(n, &rt),
                    )
                })
                .inspect(|_| self.mirrors.poke_all())
            }
        };
        let frame = match result {
            Ok(r) => Frame::Ok {
                response: Box::new(r),
            },
            Err(e) => Frame::Err {
                kind: error_kind(&e).to_owned(),
                message: e.to_string(),
            },
        };
        let _ = reply.send(frame).await;
    }

    async fn status(&mut self) -> Result<Response, NodeError> {
        let mut s = exec::status(&mut self.node, true)?;
        s.listen = self.io.full_listen(&self.node);
        let listening = self.node.engine().listening_peers();
        s.peers = self
            .io
            .connected
            .keys()
            .filter(|d| !listening.contains(d))
            .count();
        s.bandwidth = Some(self.io.pace.info(now_ms()));
        Ok(Response::Status(s))
    }

    async fn connect(&mut self, addr: &str) -> Result<Response, NodeError> {
        let m: Multiaddr = addr
            .parse()
            .map_err(|e| NodeError::Invalid(format!("{addr:?} is not a multiaddress: {e}")))?;
        self.io
            .net
            .dial(m)
            .await
            .map_err(|e| NodeError::Invalid(format!("cannot dial {addr}: {e}")))?;
        self.node.store().add_dial(addr, now_ms())?;
        Ok(Response::Message(format!("dialling {addr}")))
    }

    fn peers(&mut self) -> Vec<PeerInfo> {
        let devices = self.node.devices();
        let label = |d: &DeviceId| {
            let id = d.to_string();
            devices
                .iter()
                .find(|x| x.id == id)
                .map(|x| (x.label.clone(), x.user_name.clone()))
        };
        let listening = self.node.engine().listening_peers();
        let connected = self.io.connected.iter().map(|(d, since)| {
            if listening.contains(d) {
                let why = "does not count here: receive-only".to_owned();
                (d, "listening", Some(why), *since)
            } else {
                (d, "connected", None, *since)
            }
        });
        let refused = self
            .io
            .refused
            .iter()
            .chain(self.io.relays.notices.iter())
            .map(|(d, (why, since))| (d, "refused", Some(why.clone()), *since));
        let mut out = Vec::new();
        for (d, state, reason, since_ms) in connected.chain(refused) {
            let l = label(d);
            out.push(PeerInfo {
                device: d.to_string(),
                label: l.as_ref().map(|x| x.0.clone()),
                user: l.map(|x| x.1),
                state: state.into(),
                reason,
                since_ms,
                remembered: Vec::new(),
            });
        }
        dials::list_remembered(&self.node, &mut out, label);
        out
    }
}
