//! The sync engine: a sans-IO state machine that keeps a [`Replica`]'s documents in step with
//! peers.
//!
//! Drive contract (as quinn-proto and str0m): call a `handle_*` method for every input (a peer
//! connected or left, a message arrived, local items were written, the timer fired), then drain
//! [`Engine::poll_transmit`] (messages to send), [`Engine::poll_event`] (what happened: items
//! admitted, to persist; peers to disconnect; refusals) and read [`Engine::poll_timeout`] (when
//! to call [`Engine::handle_timeout`] next). Time is an input (unix milliseconds); nothing here
//! reads a clock or does I/O.
//!
//! Protocol per (peer, document):
//! 1. On connect each side sends `Hello` with its heads for every document it shares with the
//!    other. Two up-to-date peers stop there: O(heads) bytes.
//! 2. A side that holds items but sees heads it does not know starts a negentropy range-based set
//!    reconciliation (if both do, the session of the smaller device id survives). The initiator
//!    learns which ids each side lacks: it `Want`s what it lacks and `Offer`s what the other
//!    lacks. A side asks for an id only if it neither holds it nor already awaits it from another
//!    peer, so with several peers every missing item still crosses once (up to races).
//! 3. A side that holds nothing of a document (or does not list it) receives everything pushed
//!    at once, without reconciliation.
//! 4. New local items are pushed to every linked peer sharing the document; items admitted from
//!    one peer are offered on to the other linked peers sharing the document, so writes spread
//!    over any connected topology without waiting for anti-entropy.
//! 5. Blocks (file contents, as sealed) are fetched on demand ([`Engine::fetch_blocks`]), spread
//!    over the linked peers that share the workspace, a few in flight per peer, retried on
//!    another peer when one lacks a block, sends a wrong one, leaves or times out. The engine
//!    checks every block against its id (BLAKE3 of its bytes); the shell stores and serves them.
//!
//! Zero trust: the engine syncs only with active devices of the organization and authorized
//! relays, shares a workspace only with its members' devices (and relays), and, as soon as a
//! linked device stops counting, only listens to it (see [`listen`]: it sends it nothing and
//! takes from it only the organization entries that make it count again), or asks the shell to
//! disconnect it. A relay runs the same engine with `relay = true`
//! and no keys: devices give it every workspace, and it gives each device only the workspaces
//! its user is a member of (membership is in clear access entries).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use negentropy::{Negentropy, NegentropyStorageVector};

mod blocks;
mod held;
mod listen;
mod reconcile;

pub use blocks::{BLOCK_TIMEOUT_MS, PER_PEER};
pub use held::HELD_PER_PEER;
pub use listen::{
    LISTEN_BYTES, LISTEN_COOLDOWN_MS, LISTEN_IDLE_MS, LISTEN_MAX_MS, LISTEN_TRIALS, MAX_LISTENING,
};

use super::msg::{DocId, Heads, ITEMS_TARGET, MAX_HEADS, MAX_IDS, Msg, MsgError};
use super::replica::Replica;
use crate::trust::{DeviceId, UserId};
use crate::workspace::WorkspaceId;

/// Frame size limit of negentropy messages.
const FRAME: u64 = 512 * 1024;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// This device (or relay).
    pub me: DeviceId,
    /// Keyless relay mode: serve every workspace to every active device.
    pub relay: bool,
    /// Period of the anti-entropy `Hello` to every linked peer, in ms.
    pub anti_entropy_ms: u64,
    /// Bytes of a peer's items that may end up held, per window (`engine/held.rs`;
    /// default [`HELD_PER_PEER`]).
    pub held_per_peer: usize,
}

impl Config {
    /// Defaults for a device.
    pub fn device(me: DeviceId) -> Config {
        Config {
            me,
            relay: false,
            anti_entropy_ms: 30_000,
            held_per_peer: HELD_PER_PEER,
        }
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// To whom.
    pub peer: DeviceId,
    /// Encoded [`Msg`].
    pub bytes: Vec<u8>,
    /// Block data ([`Msg::Block`], [`Msg::Blocks`]): what a send limit paces. Everything else
    /// (hellos, reconciliation, items, block requests) is small or urgent and goes at once.
    pub bulk: bool,
}

/// What happened, for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Items admitted into a document (persist them).
    Admitted {
        /// Document.
        doc: DocId,
        /// Ids, parents first.
        ids: Vec<[u8; 32]>,
    },
    /// An item from a peer was refused.
    Refused {
        /// Who sent it.
        peer: DeviceId,
        /// Item id.
        id: [u8; 32],
        /// Reason label.
        reason: &'static str,
    },
    /// A message from a peer did not decode.
    BadMessage {
        /// Who sent it.
        peer: DeviceId,
        /// Why.
        error: MsgError,
    },
    /// A peer asks for blocks: answer with [`Engine::provide_blocks`].
    BlockRequested {
        /// The peer.
        peer: DeviceId,
        /// The workspace.
        doc: DocId,
        /// Block ids.
        ids: Vec<[u8; 32]>,
    },
    /// A block asked for with [`Engine::fetch_blocks`] arrived and matches its id.
    BlockReceived {
        /// The workspace.
        doc: DocId,
        /// Its id.
        id: [u8; 32],
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// Close the connection to this peer (not, or no longer, allowed).
    Disconnect {
        /// The peer.
        peer: DeviceId,
    },
}

/// Byte and message counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Bytes queued for sending.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Messages queued.
    pub messages_sent: u64,
    /// Items sent.
    pub items_sent: u64,
    /// Items received that were already known.
    pub duplicates_received: u64,
    /// Items taken out of holding because their peer was past its budget (`engine/held.rs`).
    pub held_over_budget: u64,
}

#[derive(Default)]
struct Link {
    sessions: HashMap<DocId, Negentropy<'static, NegentropyStorageVector>>,
    /// `Some` for a listening link (the peer does not count here; see [`listen`]).
    listen: Option<listen::Listen>,
}

/// The engine.
pub struct Engine {
    cfg: Config,
    replica: Replica,
    links: BTreeMap<DeviceId, Link>,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_anti_entropy: u64,
    stats: Stats,
    /// Members of each workspace, and the reverse index, refreshed for the workspaces marked
    /// dirty (or all of them after an organization change).
    members: HashMap<WorkspaceId, BTreeSet<UserId>>,
    by_user: HashMap<UserId, BTreeSet<WorkspaceId>>,
    dirty: BTreeSet<WorkspaceId>,
    all_dirty: bool,
    /// Ids asked for and not yet received, per document: with whom and since when.
    inflight: HashMap<DocId, HashMap<[u8; 32], (DeviceId, u64)>>,
    /// Blocks wanted.
    blocks: BTreeMap<[u8; 32], blocks::Fetch>,
    /// Per peer: when it last delivered a block we asked of it (its assignments are late only
    /// [`BLOCK_TIMEOUT_MS`] after that, so a peer behind a send limit is not given up on).
    delivered: BTreeMap<DeviceId, u64>,
    /// The receive limit: block requests are paced by it (`engine/blocks.rs`).
    recv_limit: Option<super::rate::Bucket>,
    /// The responder's reconciliation storage per document, with the set's key
    /// ([`Replica::reconcile_key`]) it was built at.
    neg_cache: HashMap<DocId, (ReconcileKey, NegentropyStorageVector)>,
    /// Peers whose listening link ended without them coming to count: refused until then.
    cooldown: BTreeMap<DeviceId, u64>,
    /// Per peer: the start of its window of held items and the bytes charged in it.
    held_from: HashMap<DeviceId, (u64, usize)>,
    now: u64,
}

/// What identifies a reconciliation set's content (see [`Replica::reconcile_key`]).
type ReconcileKey = (usize, u64);

/// How long an id asked for stays reserved to the peer it was asked from.
const INFLIGHT_MS: u64 = 60_000;

impl Engine {
    /// A new engine over `replica`.
    pub fn new(cfg: Config, replica: Replica, now: u64) -> Engine {
        let next_anti_entropy = now + cfg.anti_entropy_ms;
        Engine {
            cfg,
            replica,
            links: BTreeMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_anti_entropy,
            stats: Stats::default(),
            members: HashMap::new(),
            by_user: HashMap::new(),
            dirty: BTreeSet::new(),
            all_dirty: true,
            inflight: HashMap::new(),
            blocks: BTreeMap::new(),
            delivered: BTreeMap::new(),
            recv_limit: None,
            neg_cache: HashMap::new(),
            cooldown: BTreeMap::new(),
            held_from: HashMap::new(),
            now,
        }
    }

    /// The replicated documents.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The replicated documents, to draft local items (then pass them to
    /// [`Engine::handle_local`]).
    pub fn replica_mut(&mut self) -> &mut Replica {
        // Whatever the caller changes, membership is recomputed before it is next used.
        self.all_dirty = true;
        &mut self.replica
    }

    /// This engine's device (or relay) id.
    pub fn me(&self) -> DeviceId {
        self.cfg.me
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Peers with a full link (see [`Engine::listening_peers`] for the others).
    pub fn peers(&self) -> Vec<DeviceId> {
        self.links
            .iter()
            .filter(|(_, l)| l.listen.is_none())
            .map(|(p, _)| *p)
            .collect()
    }

    /// Peers with a full link that share `doc` with us.
    pub fn peers_sharing(&mut self, doc: DocId) -> Vec<DeviceId> {
        self.peers()
            .into_iter()
            .filter(|p| self.may_share(p, doc))
            .collect()
    }

    /// Whether `peer` may sync with us at all: an active device, or an authorized relay.
    pub fn may_talk(&mut self, peer: &DeviceId) -> bool {
        let st = self.replica.org.state();
        st.is_active(peer) || (!self.cfg.relay && st.relays.contains_key(peer))
    }

    fn is_relay(&mut self, peer: &DeviceId) -> bool {
        self.replica.org.state().relays.contains_key(peer)
    }

    /// Documents shared with `peer` (on a listening link: the organization log only).
    fn shared_docs(&mut self, peer: &DeviceId) -> Vec<DocId> {
        let mut docs = vec![DocId::Org];
        if self.listening(peer) {
            return docs;
        }
        // To a relay: everything (it stores and forwards). From anyone, relay included, to a
        // device: the workspaces its user is a member of.
        if self.is_relay(peer) {
            docs.extend(self.replica.workspaces.keys().map(|w| DocId::Workspace(*w)));
            return docs;
        }
        let Some(user) = self.replica.org.state().devices.get(peer).map(|d| d.user) else {
            return docs;
        };
        self.refresh_membership();
        if let Some(ws) = self.by_user.get(&user) {
            docs.extend(ws.iter().map(|w| DocId::Workspace(*w)));
        }
        docs
    }

    /// Recomputes the members of the workspaces that changed, and the user -> workspaces index.
    fn refresh_membership(&mut self) {
        let dirty: Vec<WorkspaceId> = if self.all_dirty {
            self.replica.workspaces.keys().copied().collect()
        } else {
            std::mem::take(&mut self.dirty).into_iter().collect()
        };
        self.all_dirty = false;
        self.dirty.clear();
        for w in dirty {
            let new: BTreeSet<UserId> = match self.replica.workspaces.get(&w) {
                Some(log) => log
                    .state(&self.replica.org)
                    .members
                    .keys()
                    .copied()
                    .collect(),
                None => BTreeSet::new(),
            };
            let old = self.members.insert(w, new.clone()).unwrap_or_default();
            for u in old.difference(&new) {
                if let Some(set) = self.by_user.get_mut(u) {
                    set.remove(&w);
                }
            }
            for u in new.difference(&old) {
                self.by_user.entry(*u).or_default().insert(w);
            }
        }
    }

    /// Whether `doc` is shared with `peer`: the organization log with anyone linked (but a
    /// listening link is sent nothing, see [`listen`]), a workspace with its members' devices
    /// and relays.
    fn may_share(&mut self, peer: &DeviceId, doc: DocId) -> bool {
        let DocId::Workspace(w) = doc else {
            return true;
        };
        if self.listening(peer) {
            return false;
        }
        if self.is_relay(peer) {
            return self.replica.workspaces.contains_key(&w);
        }
        let Some(user) = self.replica.org.state().devices.get(peer).map(|d| d.user) else {
            return false;
        };
        self.refresh_membership();
        self.members.get(&w).is_some_and(|m| m.contains(&user))
    }

    fn send(&mut self, peer: DeviceId, msg: &Msg) {
        let bytes = msg.encode();
        self.stats.bytes_sent += bytes.len() as u64;
        self.stats.messages_sent += 1;
        let bulk = matches!(msg, Msg::Block { .. } | Msg::Blocks { .. });
        self.out.push_back(Transmit { peer, bytes, bulk });
    }

    fn hello(&mut self, peer: DeviceId) {
        let docs = self
            .shared_docs(&peer)
            .into_iter()
            .map(|doc| {
                let heads = self.replica.heads(doc).unwrap_or_default();
                Heads {
                    doc,
                    count: self.replica.count(doc) as u64,
                    heads: if heads.len() <= MAX_HEADS {
                        heads
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect();
        self.send(peer, &Msg::Hello { docs });
    }

    /// Takes the shell's wall time, for the engine and for the organization log (which holds
    /// entries dated too far ahead of it; see `trust::future`).
    fn set_now(&mut self, now: u64) {
        self.now = now;
        self.replica.org.set_wall(now);
    }

    /// A connection to `peer` is up (after its transport authenticated it).
    pub fn handle_connected(&mut self, now: u64, peer: DeviceId) {
        self.set_now(now);
        let standing = if peer == self.cfg.me {
            listen::Standing::Refuse
        } else {
            self.standing(&peer, self.links.contains_key(&peer))
        };
        // A new link: whatever we asked of this peer on an earlier one may never come.
        self.release_asked_of(&peer);
        match standing {
            listen::Standing::Refuse => {
                self.links.remove(&peer);
                self.events.push_back(Event::Disconnect { peer });
            }
            // Another connection of a peer we already listen to keeps the link's window and
            // counts: reconnecting must not reset them.
            listen::Standing::Listen if self.listening(&peer) => {}
            listen::Standing::Listen => self.listen_to(peer),
            listen::Standing::Full => {
                self.links.insert(peer, Link::default());
                self.hello(peer);
                self.plan_blocks();
            }
        }
    }

    /// The connection to `peer` is gone.
    pub fn handle_disconnected(&mut self, peer: DeviceId) {
        self.links.remove(&peer);
        self.release_asked_of(&peer);
        self.blocks_peer_gone(peer);
    }

    /// Forgets the items asked of `peer` and not yet received, so that the next reconciliation
    /// (with it or another peer) asks for them at once instead of after [`INFLIGHT_MS`].
    fn release_asked_of(&mut self, peer: &DeviceId) {
        for ids in self.inflight.values_mut() {
            ids.retain(|_, (p, _)| p != peer);
        }
    }

    /// Local items (signed on this replica) to admit and push. Items the replica already holds
    /// (a keyring operation admits its own envelopes as it drafts them) are pushed too, and
    /// reported as [`Event::Admitted`] so the shell persists them.
    ///
    /// Returns what the replica did with them (refusals carry their reason's label).
    pub fn handle_local(
        &mut self,
        now: u64,
        doc: DocId,
        items: Vec<Vec<u8>>,
    ) -> super::replica::Ingested {
        self.set_now(now);
        let ids: Vec<[u8; 32]> = items.iter().map(|b| *blake3::hash(b).as_bytes()).collect();
        let known_before: BTreeSet<[u8; 32]> = ids
            .iter()
            .filter(|id| self.replica.knows(doc, id))
            .copied()
            .collect();
        let r = self.replica.ingest(doc, items.clone());
        self.after_ingest(None, &r, false);
        if !known_before.is_empty() {
            self.events.push_back(Event::Admitted {
                doc,
                ids: ids
                    .iter()
                    .filter(|id| known_before.contains(*id))
                    .copied()
                    .collect(),
            });
        }
        let items: Vec<Vec<u8>> = items
            .into_iter()
            .zip(&ids)
            .filter(|(_, id)| self.replica.knows(doc, id))
            .map(|(b, _)| b)
            .collect();
        if items.is_empty() {
            return r;
        }
        for p in self.peers() {
            if self.may_share(&p, doc) {
                self.stats.items_sent += items.len() as u64;
                self.send(
                    p,
                    &Msg::Items {
                        doc,
                        items: items.clone(),
                    },
                );
            }
        }
        r
    }

    /// Adopts an organization log that holds at least our entries (see [`Replica::adopt_org`]),
    /// with the same consequences as receiving its new entries: waiting envelopes are offered
    /// again and revoked peers are cut off.
    ///
    /// `new` are the entries the adopted log has and ours lacked (the caller knows them: it built
    /// the log from them); they are offered on to the linked peers other than `from`, as if they
    /// had arrived from `from`.
    pub fn adopt_org(
        &mut self,
        org: std::sync::Arc<crate::trust::OrgLog>,
        from: Option<DeviceId>,
        new: Vec<[u8; 32]>,
    ) {
        let r = self.replica.adopt_org(org);
        self.after_ingest(None, &r, true);
        if let Some(ids) = self.inflight.get_mut(&DocId::Org) {
            for id in &new {
                ids.remove(id);
            }
        }
        let mut fresh: BTreeMap<DocId, Vec<[u8; 32]>> = BTreeMap::new();
        fresh.insert(DocId::Org, new);
        for (d, id) in &r.admitted {
            fresh.entry(*d).or_default().push(*id);
        }
        self.pass_on(from, fresh);
    }

    /// The timer fired.
    pub fn handle_timeout(&mut self, now: u64) {
        self.set_now(now);
        let r = self.replica.release_due();
        if !r.admitted.is_empty() {
            self.after_ingest(None, &r, false);
            self.pass_on(None, by_doc(&r));
        }
        for ids in self.inflight.values_mut() {
            ids.retain(|_, (_, since)| now.saturating_sub(*since) < INFLIGHT_MS);
        }
        if now >= self.next_anti_entropy {
            self.next_anti_entropy = now + self.cfg.anti_entropy_ms;
            for p in self.peers() {
                self.hello(p);
            }
        }
        self.listen_tick();
        self.blocks_tick();
        self.held_tick();
    }

    /// When to call [`Engine::handle_timeout`]: anti-entropy, block deadlines, and the wall time
    /// at which an item held for the clock becomes admissible.
    pub fn poll_timeout(&self) -> Option<u64> {
        let block_deadline = self.blocks_deadline();
        let due = self.replica.next_due_ms();
        let first = [block_deadline, due, self.listen_deadline()]
            .into_iter()
            .flatten()
            .fold(self.next_anti_entropy, u64::min);
        Some(first)
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A message from `peer`.
    pub fn handle_message(&mut self, now: u64, peer: DeviceId, bytes: &[u8]) {
        self.set_now(now);
        self.stats.bytes_received += bytes.len() as u64;
        if !self.links.contains_key(&peer) {
            return;
        }
        let msg = match Msg::decode(bytes) {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(peer = %peer.short(), %error, "undecodable sync message");
                self.events.push_back(Event::BadMessage { peer, error });
                return;
            }
        };
        match msg {
            Msg::Hello { docs } => self.on_hello(now, peer, docs),
            Msg::Reconcile { doc, body } => self.on_reconcile(peer, doc, &body),
            Msg::ReconcileReply { doc, body } => self.on_reply(peer, doc, &body),
            Msg::Want { doc, ids } => {
                if self.may_share(&peer, doc) {
                    self.send_items(peer, doc, ids);
                }
            }
            Msg::Offer { doc, ids } => {
                // A workspace we do not hold yet is offered by an active device that decided we
                // are a member (as with `Items`); admission checks whatever then arrives.
                let new_workspace = matches!(doc, DocId::Workspace(w)
                    if !self.replica.workspaces.contains_key(&w))
                    && !self.listening(&peer);
                if self.may_share(&peer, doc) || self.cfg.relay || new_workspace {
                    self.want(peer, doc, ids);
                }
            }
            Msg::Items { doc, items } if self.listening(&peer) => {
                self.on_items_listening(peer, doc, items);
            }
            Msg::Items { doc, items } => self.on_items(peer, doc, items),
            Msg::BlockWant { doc, ids } => self.on_block_want(peer, doc, ids),
            Msg::Block { doc, id, bytes } => {
                self.on_block(peer, doc, id, bytes);
                self.plan_blocks();
            }
            Msg::Blocks { doc, blocks } => {
                for b in blocks {
                    self.on_block(peer, doc, b.id, b.bytes);
                }
                self.plan_blocks();
            }
            Msg::BlockMissing { ids, .. } => self.on_block_missing(peer, ids),
        }
    }

    fn on_hello(&mut self, _now: u64, peer: DeviceId, docs: Vec<Heads>) {
        // A workspace the peer lists and we do not hold is not opened here (a `Hello` may name
        // any ids): a peer that counts us a member pushes it, since our `Hello` lacks it, and the
        // replica opens it from those items.
        let theirs: BTreeMap<DocId, Heads> = docs.into_iter().map(|h| (h.doc, h)).collect();
        for doc in self.shared_docs(&peer) {
            let mine = self.replica.count(doc);
            match theirs.get(&doc) {
                None => {
                    if mine > 0 {
                        self.push_all(peer, doc);
                    }
                }
                Some(h) if h.count == 0 => {
                    if mine > 0 {
                        self.push_all(peer, doc);
                    }
                }
                Some(h) => {
                    if mine == 0 {
                        continue; // they push everything to us
                    }
                    let my_heads = self.replica.heads(doc).unwrap_or_default();
                    if h.heads == my_heads {
                        continue;
                    }
                    let all_known =
                        !h.heads.is_empty() && h.heads.iter().all(|id| self.replica.knows(doc, id));
                    let in_session = self
                        .links
                        .get(&peer)
                        .is_some_and(|l| l.sessions.contains_key(&doc));
                    if !all_known && !in_session {
                        self.initiate(peer, doc);
                    }
                }
            }
        }
    }

    fn push_all(&mut self, peer: DeviceId, doc: DocId) {
        let ids = self
            .replica
            .items(doc)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        self.send_items(peer, doc, ids);
    }

    /// Sends the items among `ids` that we hold, parents first, in messages of bounded size
    /// (nothing on a listening link).
    fn send_items(&mut self, peer: DeviceId, doc: DocId, ids: Vec<[u8; 32]>) {
        if self.listening(&peer) {
            return;
        }
        let mut found: Vec<(u64, [u8; 32], Vec<u8>)> = ids
            .iter()
            .filter_map(|id| {
                self.replica
                    .item(doc, id)
                    .map(|(t, b)| (t, *id, b.to_vec()))
            })
            .collect();
        found.sort_by_key(|(t, id, _)| (*t, *id));
        let mut batch = Vec::new();
        let mut size = 0;
        for (_, _, b) in found {
            size += b.len();
            batch.push(b);
            if size >= ITEMS_TARGET {
                self.stats.items_sent += batch.len() as u64;
                let items = std::mem::take(&mut batch);
                self.send(peer, &Msg::Items { doc, items });
                size = 0;
            }
        }
        if !batch.is_empty() {
            self.stats.items_sent += batch.len() as u64;
            self.send(peer, &Msg::Items { doc, items: batch });
        }
    }

    fn on_items(&mut self, peer: DeviceId, doc: DocId, items: Vec<Vec<u8>>) {
        // A workspace we do not hold yet is taken from an active device of our organization (it
        // decided we are a member): the replica opens it, tentatively until an envelope is
        // admitted; admission checks every item.
        let ids: Vec<[u8; 32]> = items.iter().map(|b| *blake3::hash(b).as_bytes()).collect();
        let fresh: Vec<([u8; 32], usize)> = ids
            .iter()
            .zip(&items)
            .filter(|(id, _)| !self.replica.holds(doc, id))
            .map(|(id, b)| (*id, b.len()))
            .collect();
        self.stats.duplicates_received += (ids.len() - fresh.len()) as u64;
        let mut awaited_from_peer = false;
        if let Some(inflight) = self.inflight.get_mut(&doc) {
            for id in &ids {
                inflight.remove(id);
            }
            awaited_from_peer = inflight.values().any(|(p, _)| *p == peer);
        }
        let r = self.replica.ingest(doc, items);
        self.charge_held(peer, doc, &fresh);
        self.after_ingest(Some(peer), &r, false);
        // Pass what was new on to the other peers sharing each document.
        self.pass_on(Some(peer), by_doc(&r));
        let in_session = self
            .links
            .get(&peer)
            .is_some_and(|l| l.sessions.contains_key(&doc));
        if r.waiting > 0 && !in_session && !awaited_from_peer {
            // Something is still missing below what arrived, and nothing more is on its way
            // from this peer: reconcile with it.
            tracing::debug!(peer = %peer.short(), waiting = r.waiting, "reconciling again");
            self.initiate(peer, doc);
        }
    }

    /// Offers newly admitted ids to the linked peers other than `from` that share each document.
    ///
    /// (See [`by_doc`] for grouping an ingest's admitted ids.)
    fn pass_on(&mut self, from: Option<DeviceId>, fresh: BTreeMap<DocId, Vec<[u8; 32]>>) {
        let others: Vec<DeviceId> = self
            .peers()
            .into_iter()
            .filter(|p| Some(*p) != from)
            .collect();
        for (d, ids) in fresh {
            if ids.is_empty() {
                continue;
            }
            for p in &others {
                if self.may_share(p, d) {
                    for chunk in ids.chunks(MAX_IDS) {
                        self.send(
                            *p,
                            &Msg::Offer {
                                doc: d,
                                ids: chunk.to_vec(),
                            },
                        );
                    }
                }
            }
        }
    }

    fn after_ingest(
        &mut self,
        from: Option<DeviceId>,
        r: &super::replica::Ingested,
        org_changed: bool,
    ) {
        let mut by_doc: BTreeMap<DocId, Vec<[u8; 32]>> = BTreeMap::new();
        for (d, id) in &r.admitted {
            by_doc.entry(*d).or_default().push(*id);
            match d {
                DocId::Workspace(w) => {
                    self.dirty.insert(*w);
                }
                DocId::Org => self.all_dirty = true,
            }
        }
        if org_changed {
            self.all_dirty = true;
        }
        for (doc, ids) in by_doc {
            self.events.push_back(Event::Admitted { doc, ids });
        }
        if let Some(peer) = from {
            for (id, reason) in &r.refused {
                self.events.push_back(Event::Refused {
                    peer,
                    id: *id,
                    reason,
                });
            }
        }
        if org_changed || r.admitted.iter().any(|(d, _)| *d == DocId::Org) {
            // Revocations take effect at once.
            self.restand_links();
        }
    }
}

/// The ids an ingest admitted, by document.
fn by_doc(r: &super::replica::Ingested) -> BTreeMap<DocId, Vec<[u8; 32]>> {
    let mut fresh: BTreeMap<DocId, Vec<[u8; 32]>> = BTreeMap::new();
    for (d, id) in &r.admitted {
        fresh.entry(*d).or_default().push(*id);
    }
    fresh
}
