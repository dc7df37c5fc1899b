//! The relay's loop (`cloison-bootstrap run`): one tokio task owns the network handle and one
//! keyless sync engine (`sync::Config::relay`) with its store per organization served.
//!
//! How an organization becomes known: a device connects and sends [`RelayMsg::Intro`] naming
//! its organization. A device active in the log of a served organization that authorizes this
//! relay is welcomed at once (the engine then reconciles the log like any document). Otherwise
//! the relay asks for the entries it lacks ([`RelayMsg::LogWanted`] with its heads, or none for
//! an organization it does not serve) and collects them (`intro`). For an organization not
//! served yet, the log is verified in a scratch [`OrgLog`](crate::trust::OrgLog) and the organization is served (a
//! directory and a store created) only if the log authorizes *this* relay's key and the device
//! is active in it. For a served one, the entries go through the engine (admission as always)
//! only if the device counts with them. The device is then linked to that organization's engine
//! and welcomed; otherwise refused (typed, counted) and disconnected. A device that does not
//! introduce itself within [`INTRO_TIMEOUT_MS`] (or between two parts of its log) is
//! disconnected.
//!
//! Loop contract (as the daemon's): after every input, each engine's events are persisted
//! (admitted items, received blocks) **before** any transmit leaves, so whatever the relay
//! tells a device it holds is durable. The allowlist (the authorized set: active devices of
//! every organization served) is recomputed each turn; the network closes the connections of
//! a device that leaves it, and only authorized devices get circuit-relay reservations.
//! Rendezvous: the welcomed devices and their organization are handed to the network (before
//! the welcome leaves) so each reaches only its own organization's rendezvous server.
//!
//! Revocation: once the log this relay holds for an organization counts a `RelayRevoked` of its
//! key (brought like any entry, typically by the revoking admin's farewell `Intro`), the
//! organization is no longer served: its welcomed devices get `Refused { RelayRevoked }` and are
//! cut off, its devices leave the allowlist (no reservation, no circuit), every later `Intro`
//! is refused the same way and nothing more is stored for it. What is stored is kept: it is
//! sealed and the relay never could read it, so deleting it protects nothing, and a revocation
//! that counts on a stale copy (a revoked admin's) may be voided later: an `Intro` whose
//! entries, judged on a copy, make this relay authorized again and the sender active is taken
//! and serves the organization again. Deleting is the operator's choice (`status` lists the
//! organization as revoked).
//!
//! Quotas: once an organization stores its byte or envelope quota, workspace `Items` and
//! `Offer`s and block offers from its devices are not passed to the engine; the device gets
//! [`RelayMsg::QuotaExceeded`] (counted, logged). Blocks are asked for only under the quota, so
//! it may be passed by at most one batch; nothing accepted is ever dropped.

mod intro;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::metrics::{self, IngestTimer};
use super::served::{Served, coalesce_offers, identity, items_refused, open_served, settle};
use super::status::{self, OrgStatus, RelayStatus};
use super::wire::{Quota, Refusal, RelayMsg, is_relay_msg};
use crate::net::{Multiaddr, Net, NetConfig, NetError, NetEvent, NetHandle, peer_id};
use crate::node::now_ms;
use crate::store::StoreError;
use crate::sync::{DocId, Msg};
use crate::trust::{DeviceId, OrgId};
use crate::workspace::WorkspaceId;

/// How long a connected peer has to introduce itself.
pub const INTRO_TIMEOUT_MS: u64 = 20_000;
/// How long after a refusal the connection is closed (so the refusal can arrive).
const REFUSE_CLOSE_MS: u64 = 1_000;
/// Network events handled in one turn.
const EVENT_BATCH: usize = 256;
/// Longest sleep between timer checks.
const MAX_TICK: Duration = Duration::from_millis(500);
/// The identity file in the data directory.
pub const IDENTITY_FILE: &str = "relay.key";
/// Most organizations served.
const MAX_ORGS: usize = 10_000;
/// Most blocks wanted at once per organization (offers beyond are ignored until it drains).
const MAX_WANTED_BLOCKS: usize = 1_000_000;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Its data directory (identity, one store per organization, the status socket).
    pub data: PathBuf,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Bytes stored per organization, at most.
    pub quota_bytes: Option<u64>,
    /// Envelopes stored per organization, at most.
    pub quota_envelopes: Option<u64>,
    /// Where to serve Prometheus metrics (`metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Whether a non-loopback metrics address is allowed.
    pub metrics_public: bool,
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The network failed.
    #[error("network: {0}")]
    Net(#[from] NetError),
    /// A store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The data directory failed.
    #[error("{path}: {err}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The identity file is damaged.
    #[error("identity file {0} is damaged")]
    Identity(PathBuf),
    /// The metrics address is not a loopback one and was not made public on purpose.
    #[error(
        "metrics address {0} is not a loopback address: refused (serve it on purpose with --metrics-public)"
    )]
    MetricsNotLoopback(SocketAddr),
    /// The metrics address could not be bound.
    #[error("metrics address {addr}: {err}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        err: std::io::Error,
    },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RelayError + '_ {
    move |err| RelayError::Io {
        path: path.to_owned(),
        err,
    }
}

struct Relay {
    me: DeviceId,
    data: PathBuf,
    net: NetHandle,
    quota_bytes: Option<u64>,
    quota_envelopes: Option<u64>,
    orgs: BTreeMap<OrgId, Served>,
    peer_org: HashMap<DeviceId, OrgId>,
    /// `peer_org` as last given to the rendezvous server.
    rendezvous_shared: HashMap<DeviceId, OrgId>,
    /// Connected, not yet introduced: since when (or since their last part of log).
    pending: HashMap<DeviceId, u64>,
    /// Logs being collected from devices not welcomed at once.
    intro_logs: intro::IntroLogs,
    connected: BTreeSet<DeviceId>,
    /// Relay messages to send after the next persist.
    replies: Vec<(DeviceId, RelayMsg)>,
    /// Peers to disconnect, and when.
    closing: Vec<(DeviceId, u64)>,
    allowed: BTreeSet<DeviceId>,
    /// Organizations and log entries when `allowed` was computed (it changes only with them).
    allowed_at: (usize, usize),
    refused: BTreeMap<String, u64>,
    quota_refusals: u64,
    /// Introductions by outcome (`RelayStatus::introductions`).
    introductions: BTreeMap<String, u64>,
    ingest: IngestTimer,
    listen: Vec<Multiaddr>,
    shared: status::Shared,
}

/// Runs the relay until SIGTERM or SIGINT. `ready` gets the full listen addresses (with
/// `/p2p/<PeerId>`) and the metrics address once they are known and the status socket answers.
pub async fn run(
    cfg: RelayConfig,
    ready: impl FnOnce(&[String], Option<SocketAddr>),
) -> Result<(), RelayError> {
    // First, so a refused metrics address leaves nothing behind.
    let metrics_listener = match cfg.metrics {
        Some(a) => Some(metrics::bind(a, cfg.metrics_public).await?),
        None => None,
    };
    std::fs::create_dir_all(&cfg.data).map_err(io_err(&cfg.data))?;
    let keys = identity(&cfg.data)?;
    let me = keys.id();
    let listener = status::bind(&cfg.data).map_err(io_err(&cfg.data))?;
    let owner = crate::control::socket::owner_uid(&cfg.data).map_err(io_err(&cfg.data))?;
    let mut orgs = BTreeMap::new();
    let orgs_dir = cfg.data.join("orgs");
    if orgs_dir.exists() {
        for e in std::fs::read_dir(&orgs_dir).map_err(io_err(&orgs_dir))? {
            let e = e.map_err(io_err(&orgs_dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(org) = hex::decode(&name)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            else {
                tracing::warn!(dir = %name, "not an organization directory; skipped");
                continue;
            };
            let org = OrgId(org);
            orgs.insert(org, open_served(me, &e.path(), org)?);
        }
    }
    let (net, mut events) = Net::start(
        &keys,
        NetConfig {
            listen: cfg.listen.clone(),
            mdns: false,
            relay_server: true,
            ..NetConfig::default()
        },
    )?;
    let shared: status::Shared = Arc::new(Mutex::new(RelayStatus::default()));
    let mut r = Relay {
        me,
        data: cfg.data.clone(),
        net,
        quota_bytes: cfg.quota_bytes,
        quota_envelopes: cfg.quota_envelopes,
        orgs,
        peer_org: HashMap::new(),
        rendezvous_shared: HashMap::new(),
        pending: HashMap::new(),
        intro_logs: intro::IntroLogs::default(),
        connected: BTreeSet::new(),
        replies: Vec::new(),
        closing: Vec::new(),
        allowed: BTreeSet::new(),
        allowed_at: (0, 0),
        refused: BTreeMap::new(),
        quota_refusals: 0,
        introductions: BTreeMap::new(),
        ingest: IngestTimer::default(),
        listen: Vec::new(),
        shared: shared.clone(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while r.listen.len() < cfg.listen.len() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ev)) => r.on_net(ev),
            _ => break,
        }
    }
    r.turn().await;
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let metrics_server = metrics_listener.map(|l| tokio::spawn(metrics::serve(l, shared.clone())));
    let server = tokio::spawn(status::serve(listener, owner, shared));
    ready(&r.full_listen(), metrics_addr);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io_err(&cfg.data))?;
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                r.on_net(ev);
                for _ in 0..EVENT_BATCH {
                    match events.try_recv() {
                        Ok(ev) => r.on_net(ev),
                        Err(_) => break,
                    }
                }
            }
            _ = tokio::time::sleep(MAX_TICK) => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
        r.timers();
        r.turn().await;
    }
    tracing::info!("relay shutting down");
    server.abort();
    if let Some(m) = metrics_server {
        m.abort();
    }
    let _ = r.net.shutdown().await;
    let _ = std::fs::remove_file(cfg.data.join(status::STATUS_SOCKET));
    Ok(())
}

impl Relay {
    fn full_listen(&self) -> Vec<String> {
        let pid = peer_id(&self.me).map(|p| p.to_string()).unwrap_or_default();
        self.listen
            .iter()
            .map(|a| format!("{a}/p2p/{pid}"))
            .collect()
    }

    fn refuse(&mut self, peer: DeviceId, reason: Refusal) {
        *self.refused.entry(reason.label().to_owned()).or_default() += 1;
        tracing::warn!(peer = %peer.short(), reason = reason.label(), "device refused");
        self.replies.push((peer, RelayMsg::Refused { reason }));
        self.closing.push((peer, now_ms() + REFUSE_CLOSE_MS));
    }

    fn on_net(&mut self, ev: NetEvent) {
        let now = now_ms();
        match ev {
            NetEvent::Listening(a) => {
                tracing::info!(addr = %a, "listening");
                self.listen.push(a);
            }
            NetEvent::Connected(p) => {
                self.connected.insert(p);
                self.pending.insert(p, now);
            }
            NetEvent::Disconnected(p) | NetEvent::Refused { peer: p, .. } => {
                self.connected.remove(&p);
                self.pending.remove(&p);
                self.intro_logs.forget(&p);
                self.unlink(p);
            }
            NetEvent::Message { from, bytes } => {
                if is_relay_msg(&bytes) {
                    match RelayMsg::decode(&bytes) {
                        Ok(m) => self.on_relay_msg(from, m),
                        Err(e) => {
                            tracing::warn!(peer = %from.short(), %e, "bad relay message");
                            self.refuse(from, Refusal::BadIntro);
                        }
                    }
                } else {
                    self.on_sync_msg(from, &bytes);
                }
            }
            NetEvent::Gossip { msg_id, .. } => {
                let net = self.net.clone();
                tokio::spawn(async move {
                    let _ = net.report(msg_id, false).await;
                });
            }
            NetEvent::Subscribed { .. } | NetEvent::SendFailed { .. } => {}
            NetEvent::Error(e) => tracing::debug!("network: {e}"),
        }
    }

    fn over_quota(&self, s: &Served) -> Option<(Quota, u64, u64)> {
        if let Some(l) = self.quota_envelopes
            && s.usage.envelopes >= l
        {
            return Some((Quota::Envelopes, l, s.usage.envelopes));
        }
        if let Some(l) = self.quota_bytes
            && s.usage.bytes >= l
        {
            return Some((Quota::Bytes, l, s.usage.bytes));
        }
        None
    }

    fn quota_refusal(&mut self, peer: DeviceId, q: (Quota, u64, u64)) {
        self.quota_refusals += 1;
        tracing::warn!(peer = %peer.short(), quota = ?q.0, limit = q.1, used = q.2, "quota reached: refused");
        self.replies.push((
            peer,
            RelayMsg::QuotaExceeded {
                quota: q.0,
                limit: q.1,
                used: q.2,
            },
        ));
    }

    fn on_sync_msg(&mut self, from: DeviceId, bytes: &[u8]) {
        let Some(org) = self.peer_org.get(&from).copied() else {
            *self.refused.entry("before_intro".into()).or_default() += 1;
            tracing::debug!(peer = %from.short(), "sync message before introduction: dropped");
            return;
        };
        let Some(s) = self.orgs.get(&org) else { return };
        if s.revoked {
            return;
        }
        if let Some(q) = self.over_quota(s) {
            let new_content = matches!(
                Msg::decode(bytes),
                Ok(Msg::Items {
                    doc: DocId::Workspace(_),
                    ..
                } | Msg::Offer {
                    doc: DocId::Workspace(_),
                    ..
                })
            );
            if new_content {
                self.quota_refusal(from, q);
                return;
            }
        }
        if let Some(s) = self.orgs.get_mut(&org) {
            self.ingest.arrived(org);
            s.engine.handle_message(now_ms(), from, bytes);
        }
    }

    fn on_relay_msg(&mut self, from: DeviceId, m: RelayMsg) {
        match m {
            RelayMsg::Intro { org, heads } => self.on_intro(from, OrgId(org), &heads),
            RelayMsg::LogPart { entries, last } => self.on_log_part(from, entries, last),
            RelayMsg::BlockOffer { workspace, ids } => self.on_block_offer(from, workspace, ids),
            RelayMsg::Welcome
            | RelayMsg::Refused { .. }
            | RelayMsg::QuotaExceeded { .. }
            | RelayMsg::LogWanted { .. } => {
                tracing::debug!(peer = %from.short(), "relay message meant for a device: ignored");
            }
        }
    }

    fn on_block_offer(&mut self, from: DeviceId, w: WorkspaceId, ids: Vec<[u8; 32]>) {
        let Some(org) = self.peer_org.get(&from).copied() else {
            return;
        };
        let Some(s) = self.orgs.get(&org) else { return };
        if s.revoked {
            return;
        }
        let missing: Vec<[u8; 32]> = ids
            .into_iter()
            .filter(|id| !matches!(s.store.has_block(id), Ok(true)))
            .collect();
        if missing.is_empty() {
            return;
        }
        if let Some(q) = self.over_quota(s) {
            self.quota_refusal(from, q);
            return;
        }
        if let Some(s) = self.orgs.get_mut(&org) {
            if s.engine.blocks_pending() >= MAX_WANTED_BLOCKS {
                tracing::warn!(peer = %from.short(), "too many blocks wanted already: offer ignored");
                return;
            }
            // Offers may come before the envelopes that make the device a member of `w`;
            // the blocks are then asked for once membership is known (see `turn`).
            s.engine.fetch_blocks(DocId::Workspace(w), missing);
        }
    }

    fn timers(&mut self) {
        let now = now_ms();
        for s in self.orgs.values_mut() {
            if s.engine.poll_timeout().is_some_and(|t| now >= t) {
                s.engine.handle_timeout(now);
            }
        }
        let late: Vec<DeviceId> = self
            .pending
            .iter()
            .filter(|(_, t)| now.saturating_sub(**t) >= INTRO_TIMEOUT_MS)
            .map(|(p, _)| *p)
            .collect();
        for p in late {
            self.pending.remove(&p);
            self.intro_logs.forget(&p);
            *self.refused.entry("no_intro".into()).or_default() += 1;
            self.closing.push((p, now));
        }
        for p in self.intro_logs.expire(now) {
            self.pending.remove(&p);
            *self.refused.entry("log_too_slow".into()).or_default() += 1;
            self.closing.push((p, now));
        }
    }

    /// Persists every engine's events, then sends replies and transmits, closes what must be
    /// closed, updates the allowlist and the status.
    async fn turn(&mut self) {
        for s in self.orgs.values_mut() {
            if s.engine.blocks_pending() > 0 {
                // Assign wanted blocks to peers that may now share them (membership may have
                // arrived since they were offered).
                s.engine.fetch_blocks(DocId::Org, std::iter::empty());
            }
        }
        let mut cut = Vec::new();
        for (org, s) in &mut self.orgs {
            match settle(s) {
                Ok((c, stored)) => {
                    cut.extend(c);
                    self.ingest.settled(org, Some(stored));
                }
                Err(e) => {
                    self.ingest.settled(org, None);
                    tracing::error!(org = %hex::encode(&org.0[..6]), "could not persist: {e}")
                }
            }
        }
        for p in cut {
            tracing::info!(peer = %p.short(), "device no longer active: cut off");
            self.peer_org.remove(&p);
            self.closing.push((p, now_ms()));
        }
        self.apply_revocations();
        // The allowlist is updated before any welcome leaves: a welcomed device asks for its
        // circuit reservation at once, and must find itself already authorized.
        self.refresh_allowlist().await;
        self.share_rendezvous().await;
        for (peer, m) in std::mem::take(&mut self.replies) {
            let _ = self.net.send(peer, m.encode()).await;
        }
        for s in self.orgs.values_mut() {
            for (peer, bytes) in coalesce_offers(std::iter::from_fn(|| s.engine.poll_transmit())) {
                if let Err(e) = self.net.send(peer, bytes).await {
                    tracing::debug!(peer = %peer.short(), "send: {e}");
                }
            }
        }
        let now = now_ms();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.closing)
            .into_iter()
            .partition(|(_, t)| *t <= now);
        self.closing = later;
        for (p, _) in due {
            if !self.peer_org.contains_key(&p) {
                let _ = self.net.disconnect(p).await;
            }
        }
        self.snapshot();
    }

    /// Recomputes the authorized set (active devices of every organization whose relay is not
    /// revoked) when an organization or its log changed, and hands it to the network.
    async fn refresh_allowlist(&mut self) {
        let at = (
            self.orgs.len(),
            self.orgs
                .values()
                .map(|s| s.engine.replica().org.len())
                .sum(),
        );
        if at == self.allowed_at {
            return;
        }
        self.allowed_at = at;
        let allowed: BTreeSet<DeviceId> = self
            .orgs
            .values()
            .filter(|s| !s.revoked)
            .flat_map(|s| {
                let st = s.engine.replica().org.state();
                st.devices
                    .keys()
                    .filter(|d| st.is_active(d))
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect();
        if allowed != self.allowed {
            if let Err(e) = self.net.set_allowed(allowed.clone()).await {
                tracing::error!("allowlist: {e}");
            }
            self.allowed = allowed;
        }
    }

    /// Tells the network which devices may use rendezvous, and in which organization: the
    /// welcomed ones (before their welcome leaves, so they can register right after it).
    async fn share_rendezvous(&mut self) {
        if self.peer_org == self.rendezvous_shared {
            return;
        }
        let map = self.peer_org.iter().map(|(d, o)| (*d, o.0)).collect();
        if let Err(e) = self.net.set_rendezvous_orgs(map).await {
            tracing::error!("rendezvous: {e}");
        }
        self.rendezvous_shared = self.peer_org.clone();
    }

    fn snapshot(&self) {
        let organizations: Vec<OrgStatus> = self
            .orgs
            .iter()
            .map(|(org, s)| {
                let r = s.engine.replica();
                let st = r.org.state();
                OrgStatus {
                    org: hex::encode(org.0),
                    devices_active: st.devices.keys().filter(|d| st.is_active(d)).count(),
                    devices_connected: self.peer_org.values().filter(|o| *o == org).count(),
                    entries: r.org.len(),
                    workspaces: r.workspaces.len(),
                    envelopes: s.usage.envelopes,
                    blocks: s.usage.blocks,
                    bytes: s.usage.bytes,
                    revoked: s.revoked,
                }
            })
            .collect();
        let snap = RelayStatus {
            peer_id: peer_id(&self.me).map(|p| p.to_string()).unwrap_or_default(),
            listen: self.full_listen(),
            connections: self.connected.len(),
            bytes_stored: organizations.iter().map(|o| o.bytes).sum(),
            organizations,
            refused: self.refused.clone(),
            quota_refusals: self.quota_refusals,
            introductions: self.introductions.clone(),
            ingest: self.ingest.histogram.clone(),
            items_refused: items_refused(self.orgs.values()),
        };
        if let Ok(mut s) = self.shared.lock() {
            *s = snap;
        }
    }
}
