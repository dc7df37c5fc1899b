//! The daemon's side of enrolment: the greeting swarm (started while an invitation is live),
//! one greeting session per invitation, and the control requests `invite_create`,
//! `invitations`, `invite_cancel`, `greet_wait`, `greet_confirm` and `greet_abort`.
//!
//! A session moves hello → handshake → codes (both shown) → both confirmed → welcome sent →
//! the claimer stored its home → certificates admitted → done. A wrong code on either side, or
//! an admin's abort, burns the invitation and answers the claimer's pending request with an
//! abort. A dropped connection before the claimer stored its home ends the session with
//! nothing written; once the codes were shown it also burns the invitation (a man in the middle
//! who holds the token gets one try at the codes, not one per reconnection), before that the
//! invitation stays live.
//!
//! Half-open sessions (a `Hello` answered, the claimer's proof of the token secret not yet in)
//! prove nothing, so they never block anyone: up to [`HALF_OPEN_PER_INVITATION`] are kept per
//! invitation and [`MAX_HALF_OPEN`] in all (the oldest goes first), each for at most
//! [`HALF_OPEN_MS`]; the first to finish the handshake becomes the invitation's session. Someone
//! who knows only an invitation id cannot make the real claimer see `Busy`.
//!
//! Invariants: the organization log changes only in [`Greeting::on_request`] on the claimer's
//! `Stored`, after both confirmations; every claimer request is answered (or dropped with its
//! connection); a waiting control request keeps the rest of the daemon running (network
//! events, engine timers) and never waits more than [`MAX_WAIT`].

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;

mod control;
use crate::enroll::{
    self, Claim, Codes, GreetMsg, Greeter, InvitationId, Packet, RefuseStatus, Session,
};
use crate::net::Multiaddr;
use crate::net::greet::{GreetEvent, GreetNet};
use crate::node::enrol::{InviteKind, InviteState};
use crate::node::{Node, now_ms};
use crate::trust::{DeviceId, UserId};
pub(crate) use control::{call, on_event};

/// Longest a control request waits.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most greeting sessions kept at once (finished ones are dropped first); a claimer that stops
/// answering is bounded by its connection's idle timeout and then ends its session.
const MAX_SESSIONS: usize = 16;
/// Half-open sessions kept per invitation.
pub const HALF_OPEN_PER_INVITATION: usize = 4;
/// Half-open sessions kept in all.
pub const MAX_HALF_OPEN: usize = 32;
/// How long a half-open session waits for the claimer's handshake message (one round trip).
pub const HALF_OPEN_MS: u64 = 10_000;

/// A `Hello` answered, waiting for the handshake's last message.
struct HalfOpen {
    id: InvitationId,
    peer: DeviceId,
    greeter: Greeter,
    since_ms: u64,
}

/// A session whose claimer proved the token secret (the handshake finished).
struct Sess {
    peer: DeviceId,
    session: Option<Session>,
    claim: Option<Claim>,
    codes: Option<Codes>,
    choices: Vec<String>,
    admin_ok: bool,
    /// The claimer's `Confirm` request, held until the admin confirms too.
    pending: Option<u64>,
    certs: Vec<Vec<u8>>,
    user: Option<UserId>,
    aborted: Option<String>,
    done: bool,
    /// The end (done or aborted) was reported to a control caller.
    reported: bool,
}

/// Enrolment state of the daemon.
pub(crate) struct Greeting {
    listen_cfg: Vec<Multiaddr>,
    net: Option<(GreetNet, mpsc::Receiver<GreetEvent>)>,
    addrs: Vec<Multiaddr>,
    sessions: HashMap<InvitationId, Sess>,
    half_open: Vec<HalfOpen>,
}

fn greet_listen_of(cfg: &[Multiaddr]) -> Vec<Multiaddr> {
    // TCP only, on the same interfaces as the main swarm, any port.
    let mut out = Vec::new();
    for a in cfg {
        let s = a.to_string();
        let mut parts = s.split('/').filter(|p| !p.is_empty());
        if let (Some(proto), Some(ip), Some("tcp")) = (parts.next(), parts.next(), parts.next())
            && let Ok(m) = format!("/{proto}/{ip}/tcp/0").parse()
            && !out.contains(&m)
        {
            out.push(m);
        }
    }
    out
}

impl Greeting {
    pub(crate) fn new(listen_cfg: &[Multiaddr]) -> Self {
        Greeting {
            listen_cfg: listen_cfg.to_vec(),
            net: None,
            addrs: Vec::new(),
            sessions: HashMap::new(),
            half_open: Vec::new(),
        }
    }

    /// At daemon start: if live invitations exist, listen where their tokens say.
    pub(crate) async fn resume(&mut self, node: &Node) {
        let now = now_ms();
        let Ok(recs) = node.invitation_records() else {
            return;
        };
        let mut wanted: Vec<Multiaddr> = Vec::new();
        for r in recs.iter().filter(|r| r.refusal(now).is_none()) {
            for a in &r.addrs {
                if let Ok(m) = a.parse::<Multiaddr>()
                    && !wanted.contains(&m)
                {
                    wanted.push(m);
                }
            }
        }
        if recs.iter().any(|r| r.refusal(now).is_none()) {
            self.start(node, wanted).await;
        }
    }

    async fn start(&mut self, node: &Node, mut listen: Vec<Multiaddr>) {
        if self.net.is_some() {
            return;
        }
        if listen.is_empty() {
            listen = greet_listen_of(&self.listen_cfg);
        }
        let keys = node.device_keys();
        let r = GreetNet::start(&keys, listen.clone()).or_else(|e| {
            tracing::warn!("greeting swarm on {listen:?}: {e}; trying any port");
            GreetNet::start(&keys, greet_listen_of(&self.listen_cfg))
        });
        match r {
            Ok((net, mut rx)) => {
                // Collect the listen addresses, briefly.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
                while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                    if let GreetEvent::Listening(a) = ev {
                        self.addrs.push(a);
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                while let Ok(ev) = rx.try_recv() {
                    if let GreetEvent::Listening(a) = ev {
                        self.addrs.push(a);
                    }
                }
                tracing::info!(addrs = ?self.addrs, "greeting swarm listening");
                self.net = Some((net, rx));
            }
            Err(e) => tracing::error!("cannot start the greeting swarm: {e}"),
        }
    }

    /// Stops the greeting swarm when no invitation is live and no session runs.
    async fn stop_if_idle(&mut self, node: &Node) {
        let now = now_ms();
        let live = node
            .invitation_records()
            .map(|v| v.iter().any(|r| r.refusal(now).is_none()))
            .unwrap_or(true);
        let busy = self
            .sessions
            .values()
            .any(|s| !s.done && s.aborted.is_none());
        if !live
            && !busy
            && let Some((net, _)) = self.net.take()
        {
            net.shutdown().await;
            self.addrs.clear();
        }
    }

    pub(crate) async fn shutdown(&mut self) {
        if let Some((net, _)) = self.net.take() {
            net.shutdown().await;
        }
    }

    /// The next event of the greeting swarm (never, when it does not run).
    pub(crate) async fn recv(&mut self) -> Option<GreetEvent> {
        match &mut self.net {
            Some((_, rx)) => rx.recv().await,
            None => std::future::pending().await,
        }
    }

    fn token_addrs(&self) -> Vec<String> {
        let mut v: Vec<&Multiaddr> = self.addrs.iter().collect();
        // Non-loopback first: a token is for another machine.
        v.sort_by_key(|a| {
            a.to_string().starts_with("/ip4/127.") || a.to_string().starts_with("/ip6/::1")
        });
        v.into_iter()
            .map(|a| a.to_string())
            .filter(|a| a.len() <= enroll::token::MAX_ADDR)
            .take(enroll::token::MAX_ADDRS)
            .collect()
    }

    async fn respond(&self, id: u64, bytes: Vec<u8>) {
        if let Some((net, _)) = &self.net {
            net.respond(id, bytes).await;
        }
    }

    /// Handles an event of the greeting swarm.
    pub(crate) async fn on_event(&mut self, node: &mut Node, ev: Option<GreetEvent>) {
        match ev {
            None => {
                self.net = None;
                self.addrs.clear();
            }
            Some(GreetEvent::Listening(a)) => {
                if !self.addrs.contains(&a) {
                    self.addrs.push(a);
                }
            }
            Some(GreetEvent::Request { peer, id, bytes }) => {
                match self.on_request(node, peer, id, &bytes) {
                    Reply::Now(b) => self.respond(id, b).await,
                    Reply::Hold => {
                        if let Some((rid, b)) = self.complete(node, peer) {
                            self.respond(rid, b).await;
                        }
                    }
                    Reply::Nothing => self.respond(id, Vec::new()).await,
                }
            }
            Some(GreetEvent::Gone(peer)) => {
                self.half_open.retain(|h| h.peer != peer);
                for (id, s) in &mut self.sessions {
                    if s.peer == peer && !s.done && s.aborted.is_none() {
                        s.pending = None;
                        if s.codes.is_some() {
                            tracing::warn!(invitation = %id, "the claimer dropped after the codes were shown; invitation burned");
                            let _ = node.set_invitation_state(id, InviteState::Burned);
                            s.aborted = Some(
                                "the connection to the claimer dropped after the codes were shown: the invitation is burned".into(),
                            );
                        } else {
                            s.aborted = Some("the connection to the claimer dropped".into());
                        }
                    }
                }
                // Only now, with the claimer gone, can the swarm stop without cutting off an
                // answer still being written.
                self.stop_if_idle(node).await;
            }
        }
    }

    /// Answers one claimer request.
    fn on_request(&mut self, node: &mut Node, peer: DeviceId, req: u64, bytes: &[u8]) -> Reply {
        match self.on_packet(node, peer, req, bytes) {
            Some(Some(b)) => Reply::Now(b),
            Some(None) => Reply::Hold,
            None => Reply::Nothing,
        }
    }

    /// `Some(Some(bytes))`: answer now; `Some(None)`: held; `None`: answer with nothing (the
    /// claimer sees a failure).
    fn on_packet(
        &mut self,
        node: &mut Node,
        peer: DeviceId,
        req: u64,
        bytes: &[u8],
    ) -> Option<Option<Vec<u8>>> {
        let refused = |s| Some(Some(Packet::Refused(s).encode()));
        let packet = Packet::decode(bytes).ok()?;
        if let Packet::Hello { id, .. } = &packet {
            let id = *id;
            let rec = match node.invitation_by_id(&id) {
                Ok(Some(r)) => r,
                _ => return refused(RefuseStatus::Unknown),
            };
            if let Some(r) = rec.refusal(now_ms()) {
                return refused(r);
            }
            if self.busy(&id, peer) {
                return refused(RefuseStatus::Busy);
            }
            let mut seed = [0u8; 32];
            rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
            let keys = node.device_keys();
            return match Greeter::respond(&node.org_id(), &rec.secret(), &keys, peer, seed, bytes) {
                Ok((greeter, reply)) => {
                    self.hold_half_open(HalfOpen {
                        id,
                        peer,
                        greeter,
                        since_ms: now_ms(),
                    });
                    Some(Some(reply))
                }
                Err(e) => {
                    tracing::warn!(peer = %peer.short(), "greeting hello refused: {e}");
                    refused(RefuseStatus::Unknown)
                }
            };
        }
        // The handshake's last message of a half-open session: the claimer proves the secret.
        if let Some(i) = self.half_open.iter().position(|h| h.peer == peer) {
            let h = self.half_open.swap_remove(i);
            if now_ms().saturating_sub(h.since_ms) >= HALF_OPEN_MS {
                tracing::info!(peer = %peer.short(), "greeting handshake too late: say hello again");
                return None;
            }
            return self.finish_handshake(node, h.id, peer, h.greeter, bytes);
        }
        // Any other packet belongs to this peer's live session.
        let (id, s) = self
            .sessions
            .iter_mut()
            .find(|(_, s)| s.peer == peer && !s.done)?;
        let id = *id;
        let session = s.session.as_mut()?;
        let msg = match session.open(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(peer = %peer.short(), "greeting message refused: {e}");
                return None;
            }
        };
        let r = match msg {
            GreetMsg::Confirm => {
                if let Some(reason) = &s.aborted {
                    let reason = reason.clone();
                    return Some(session.seal(&GreetMsg::Abort { reason }).ok());
                }
                // Held until the admin confirms (answered at once by `complete` if they did).
                s.pending = Some(req);
                return Some(None);
            }
            GreetMsg::Abort { reason } => {
                tracing::warn!(invitation = %id, %reason, "the claimer aborted; invitation burned");
                let _ = node.set_invitation_state(&id, InviteState::Burned);
                s.aborted = Some(format!("the claimer aborted: {reason}"));
                session
                    .seal(&GreetMsg::Abort {
                        reason: "aborted".into(),
                    })
                    .ok()
            }
            GreetMsg::Stored if !s.certs.is_empty() => {
                let certs = std::mem::take(&mut s.certs);
                match node.admit_enrolment(certs) {
                    Ok(()) => {
                        let _ = node.set_invitation_state(&id, InviteState::Used);
                        s.done = true;
                        session.seal(&GreetMsg::Done).ok()
                    }
                    Err(e) => {
                        s.aborted = Some(format!("the certificates were refused: {e}"));
                        session
                            .seal(&GreetMsg::Abort {
                                reason: "the certificates were refused".into(),
                            })
                            .ok()
                    }
                }
            }
            _ => session
                .seal(&GreetMsg::Abort {
                    reason: "unexpected message".into(),
                })
                .ok(),
        };
        Some(r)
    }

    /// Whether another claimer's proven session holds invitation `id` (a half-open one never
    /// does). Finished and aborted sessions are dropped first when the table is full.
    fn busy(&mut self, id: &InvitationId, peer: DeviceId) -> bool {
        if let Some(s) = self.sessions.get(id)
            && s.peer != peer
            && !s.done
            && s.aborted.is_none()
        {
            return true;
        }
        if self.sessions.len() >= MAX_SESSIONS {
            self.sessions.retain(|_, s| !s.done && s.aborted.is_none());
        }
        self.sessions.len() >= MAX_SESSIONS && !self.sessions.contains_key(id)
    }

    /// Keeps a half-open session within the bounds of the module doc: expired ones and this
    /// peer's earlier one go, then the oldest of the invitation, then the oldest of all.
    fn hold_half_open(&mut self, h: HalfOpen) {
        let now = h.since_ms;
        self.half_open
            .retain(|o| o.peer != h.peer && now.saturating_sub(o.since_ms) < HALF_OPEN_MS);
        let oldest = |v: &Vec<HalfOpen>, of: Option<InvitationId>| {
            v.iter()
                .enumerate()
                .filter(|(_, o)| of.is_none_or(|id| o.id == id))
                .min_by_key(|(_, o)| o.since_ms)
                .map(|(i, _)| i)
        };
        if self.half_open.iter().filter(|o| o.id == h.id).count() >= HALF_OPEN_PER_INVITATION
            && let Some(i) = oldest(&self.half_open, Some(h.id))
        {
            self.half_open.swap_remove(i);
        }
        if self.half_open.len() >= MAX_HALF_OPEN
            && let Some(i) = oldest(&self.half_open, None)
        {
            self.half_open.swap_remove(i);
        }
        self.half_open.push(h);
    }

    /// Finishes the handshake of a half-open session: on success it becomes the invitation's
    /// session (unless another claimer's proven session took it meanwhile: `Busy`).
    fn finish_handshake(
        &mut self,
        node: &mut Node,
        id: InvitationId,
        peer: DeviceId,
        greeter: Greeter,
        bytes: &[u8],
    ) -> Option<Option<Vec<u8>>> {
        let refused = |s| Some(Some(Packet::Refused(s).encode()));
        let (mut session, claim) = match greeter.finish(bytes) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(peer = %peer.short(), "greeting handshake failed: {e}");
                return refused(RefuseStatus::Unknown);
            }
        };
        if self.busy(&id, peer) {
            return refused(RefuseStatus::Busy);
        }
        let rec = node.invitation_by_id(&id).ok().flatten()?;
        let mut s = Sess {
            peer,
            session: None,
            claim: None,
            codes: None,
            choices: Vec::new(),
            admin_ok: false,
            pending: None,
            certs: Vec::new(),
            user: None,
            aborted: None,
            done: false,
            reported: false,
        };
        let kind_ok = matches!(
            (&rec.kind, &claim.user),
            (InviteKind::User { .. }, Some(_)) | (InviteKind::Device { .. }, None)
        );
        let reply = if kind_ok {
            let codes = session.codes().clone();
            let mut seed = [0u8; 32];
            rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
            s.choices = enroll::code_choices(&codes.claimer, seed);
            s.codes = Some(codes);
            s.claim = Some(claim);
            let r = session.seal(&GreetMsg::Ready).ok();
            s.session = Some(session);
            r
        } else {
            s.aborted = Some("the claim does not match the invitation".into());
            session
                .seal(&GreetMsg::Abort {
                    reason: "this token is for another kind of enrolment".into(),
                })
                .ok()
        };
        self.sessions.insert(id, s);
        Some(reply)
    }

    /// Once both sides confirmed: signs the certificates and answers the claimer's held
    /// `Confirm` with the welcome. Returns the request to answer and the bytes.
    fn complete(&mut self, node: &mut Node, peer: DeviceId) -> Option<(u64, Vec<u8>)> {
        let (id, s) = self
            .sessions
            .iter_mut()
            .find(|(_, s)| s.peer == peer && !s.done)?;
        let id = *id;
        if !s.admin_ok || s.aborted.is_some() || !s.certs.is_empty() {
            return None;
        }
        let req = s.pending?;
        let session = s.session.as_mut()?;
        let claim = s.claim.as_ref()?;
        let rec = match node.invitation_by_id(&id) {
            Ok(Some(r)) if r.refusal(now_ms()).is_none() => r,
            _ => {
                s.aborted = Some("the invitation is no longer live".into());
                s.pending = None;
                let b = session
                    .seal(&GreetMsg::Abort {
                        reason: "the invitation is no longer live".into(),
                    })
                    .ok()?;
                return Some((req, b));
            }
        };
        s.pending = None;
        match node.enrolment_welcome(&rec, claim) {
            Ok((welcome, certs)) => {
                s.user = Some(welcome.user);
                s.certs = certs;
                let b = session.seal(&GreetMsg::Welcome(Box::new(welcome))).ok()?;
                Some((req, b))
            }
            Err(e) => {
                s.aborted = Some(format!("cannot certify the claimer: {e}"));
                let b = session
                    .seal(&GreetMsg::Abort {
                        reason: "the greeter cannot certify this claim".into(),
                    })
                    .ok()?;
                Some((req, b))
            }
        }
    }
}

enum Reply {
    Now(Vec<u8>),
    Hold,
    Nothing,
}
