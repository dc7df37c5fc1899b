//! The simulator core: real engines, a virtual clock and an event queue.
//!
//! Principal type: [`Simulator`]. [`Simulator::step`] pops the earliest event (by `(time, seq)`)
//! and runs it: a message arriving over a link, an engine's timer, or an [`Action`] (a write, a
//! revocation, a device going offline or online, a partition starting or ending, a bundle session
//! opening). After every `handle_*` call on an engine the simulator drains it ([`Simulator`]'s
//! `drain`): messages go onto links, events are recorded, the timer is re-armed.
//!
//! Organization logs are shared: a delivery of `Msg::Items { doc: Org }` is intercepted, the
//! resulting log is looked up in a memo keyed by (the device's current log, the item ids) and
//! adopted with `Engine::adopt_org`, so devices holding the same entries hold one log. The
//! message itself is then not handed to the engine (its `Replica::ingest` would clone the shared
//! log, `Arc::make_mut`, even for duplicates), and the simulator sends on the engine's behalf the
//! `Offer` of the new entries to its other peers that the engine's own pass-on would have sent.
//!
//! Invariants: deterministic (see the crate doc); maps are only iterated when ordered
//! (`BTreeMap`, `Vec`); a message is delivered only if its link is still in the epoch it was
//! sent in.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use cloison_node::sync::{Config, DocId, Engine, Event, Msg};
use cloison_node::trust::author::Writer;
use cloison_node::trust::{
    Certificate, Clock, DeviceId, DeviceKeys, EntryId, OrgKey, OrgLog, UserId,
};
use cloison_node::workspace::envelope::encode_payload;
use cloison_node::workspace::{AccessChange, EnvelopeId, Kind, Role, WorkspaceId};
use rand::rngs::StdRng;
use rand::{Rng, RngExt};

use crate::config::SimConfig;
use crate::net::{Link, LinkKind, Topology};
use crate::world::{World, WorldError};

/// Bytes and messages through one node.
#[derive(Debug, Default, Clone, Copy)]
pub struct Traffic {
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
}

/// One simulated device (or the relay).
pub struct Node {
    /// Its keys.
    pub keys: DeviceKeys,
    /// Its engine.
    pub engine: Engine,
    /// Its hybrid logical clock.
    pub clock: Clock,
    /// Its site (`None` for the relay).
    pub site: Option<usize>,
    /// Its team (`None` for the relay).
    pub team: Option<usize>,
    /// Whether it is online.
    pub online: bool,
    /// Traffic counters.
    pub traffic: Traffic,
    timer_at: Option<u64>,
    links: Vec<usize>,
    link_to: HashMap<DeviceId, usize>,
}

/// A scheduled action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The device writes one content envelope in its team's workspace.
    Write {
        /// Node index.
        node: usize,
    },
    /// The admin revokes a device.
    Revoke {
        /// Node index of the device revoked.
        victim: usize,
    },
    /// The device goes offline.
    Offline {
        /// Node index.
        node: usize,
    },
    /// The device comes back online (and its connections are tried again).
    Online {
        /// Node index.
        node: usize,
    },
    /// A site is cut off from the others and the relay.
    PartitionStart {
        /// The site.
        site: usize,
    },
    /// The partition heals.
    PartitionEnd,
    /// A device of a team grants the team's workspace to the user of device `grantee` (and, as
    /// the invitation, connects to the grantee's devices it has no link with).
    Grant {
        /// Node index of the granting device.
        by: usize,
        /// Node index of one device of the user granted.
        grantee: usize,
    },
    /// A device of a team removes the user of device `removed` from the team's workspace, then
    /// opens a new epoch sealed to the remaining members.
    Unshare {
        /// Node index of the device removing.
        by: usize,
        /// Node index of one device of the user removed.
        removed: usize,
    },
    /// The device writes one content envelope if it holds its team's current epoch (else the
    /// write is counted as skipped).
    WriteInEpoch {
        /// Node index.
        node: usize,
    },
    /// A bundle session opens on a bundle link (and the next one is scheduled).
    BundleOpen {
        /// Link index.
        link: usize,
    },
}

enum Ev {
    Deliver {
        link: usize,
        from: usize,
        epoch: u32,
        bytes: Vec<u8>,
    },
    Timer {
        node: usize,
        at_ms: u64,
    },
    Act(Action),
}

struct Queued {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A tracked write.
#[derive(Debug, Clone)]
pub struct WriteRec {
    /// Its envelope id.
    pub id: [u8; 32],
    /// Written at (ms).
    pub at_ms: u64,
    /// Team.
    pub team: usize,
    /// Author node.
    pub author: usize,
}

/// A grant of the `shares` scenario.
#[derive(Debug, Clone)]
pub struct GrantRec {
    /// Granted at (ms).
    pub at_ms: u64,
    /// The devices of the user granted.
    pub devices: Vec<usize>,
    /// The workspace.
    pub ws: WorkspaceId,
    /// Every envelope the granting device held once it had admitted the grant.
    pub need: Vec<[u8; 32]>,
    /// Per device (as in `devices`): when it held all of `need` (ms).
    pub done_ms: Vec<Option<u64>>,
}

/// A removal and the new epoch after it (the `shares` scenario).
#[derive(Debug, Clone)]
pub struct EpochRec {
    /// The team.
    pub team: usize,
    /// Removal written at (ms).
    pub at_ms: u64,
    /// The device that removed.
    pub by: usize,
    /// The `Keys` envelope opening the new epoch.
    pub keys: [u8; 32],
    /// The devices of the remaining members (the users it is sealed to).
    pub devices: Vec<usize>,
    /// Per device (as in `devices`): when it admitted `keys` (ms).
    pub got_ms: Vec<Option<u64>>,
    /// The devices of the user removed.
    pub removed: Vec<usize>,
    /// The envelopes `by` held just before the removal (everything else is "later").
    pub before: BTreeSet<[u8; 32]>,
}

/// What the `shares` scenario observed.
#[derive(Debug, Default)]
pub struct SharesObs {
    /// Grants.
    pub grants: Vec<GrantRec>,
    /// Removals with their new epochs.
    pub epochs: Vec<EpochRec>,
    /// Links added by grants (invitations).
    pub links_added: u64,
    /// `WriteInEpoch` writes made and skipped (the device lacked the current epoch).
    pub later_writes: (u64, u64),
    /// Granted devices not yet holding their workspace plus remaining member devices not yet
    /// holding their new epoch.
    pub pending: u64,
    grants_of: HashMap<usize, Vec<usize>>,
    epoch_index: HashMap<[u8; 32], usize>,
}

/// What the simulator observed.
#[derive(Debug, Default)]
pub struct Observed {
    /// The `shares` scenario's grants and removals.
    pub shares: SharesObs,
    /// Tracked writes.
    pub writes: Vec<WriteRec>,
    /// Index of each tracked write by id (lookups only).
    pub write_index: HashMap<[u8; 32], usize>,
    /// Per write: member devices that hold it.
    pub write_reached: Vec<u32>,
    /// Delay (ms) from a write to its admission on each other member device.
    pub delivery_ms: Vec<u64>,
    /// Per node: tracked writes received and when the last one arrived.
    pub received: Vec<(u32, u64)>,
    /// The revocation entry and when it was written (ms).
    pub revocation: Option<([u8; 32], u64, usize)>,
    /// Per node: when it admitted the revocation (ms).
    pub revoked_at: Vec<Option<u64>>,
    /// Nodes that admitted the revocation.
    pub revoked_count: usize,
    /// When the last connection to the revoked device was cut (ms).
    pub last_cut_ms: Option<u64>,
    /// Refusals by reason label.
    pub refusals: BTreeMap<&'static str, u64>,
    /// Undecodable messages.
    pub bad_messages: u64,
    /// Messages sent to a peer with no connection up (dropped by the shell).
    pub no_route: u64,
    /// Messages lost with their connection.
    pub lost: u64,
    /// Events processed.
    pub events: u64,
    /// Organization logs built by the memo (distinct logs created).
    pub org_logs_built: u64,
}

type MemoKey = (usize, Vec<[u8; 32]>);

/// The simulator.
pub struct Simulator {
    /// Settings.
    pub cfg: SimConfig,
    /// Nodes: the devices, then the relay if any.
    pub nodes: Vec<Node>,
    /// Links.
    pub links: Vec<Link>,
    /// Teams: workspace, epoch, devices.
    pub teams: Vec<(WorkspaceId, EnvelopeId, Vec<usize>)>,
    /// What was observed.
    pub obs: Observed,
    /// The admin device.
    pub admin: usize,
    /// Now, µs.
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    rng: StdRng,
    org_key: OrgKey,
    memo: HashMap<MemoKey, (Arc<OrgLog>, Arc<OrgLog>)>,
    partitioned: Option<usize>,
    /// Scenario time zero, µs.
    pub start_us: u64,
}

impl Simulator {
    /// Engines over `world`, links over `topo`; nothing connected yet.
    pub fn new(
        cfg: SimConfig,
        world: World,
        topo: Topology,
        mut rng: StdRng,
    ) -> Result<Simulator, WorldError> {
        let start_ms = world.built_at_ms + 60_000;
        let mut nodes = Vec::with_capacity(world.devices.len() + 1);
        let replicas: Vec<_> = (0..world.devices.len())
            .map(|i| world.replica(Some(i)))
            .collect::<Result<_, _>>()?;
        let relay_replica = match &world.relay {
            Some(_) => Some(world.replica(None)?),
            None => None,
        };
        let teams = world
            .teams
            .iter()
            .map(|t| (t.ws, t.epoch, t.devices.clone()))
            .collect();
        let World {
            devices,
            relay,
            org_key,
            admin,
            admin_clock,
            ..
        } = world;
        let engine_for = |keys: &DeviceKeys, relay: bool, replica, rng: &mut StdRng| {
            let cfg = Config {
                relay,
                anti_entropy_ms: cfg.anti_entropy_ms,
                ..Config::device(keys.id())
            };
            // Engines start at random phases so their anti-entropy rounds are spread out.
            let phase = rng.random_range(0..cfg.anti_entropy_ms);
            Engine::new(cfg, replica, start_ms - phase)
        };
        for (i, (d, r)) in devices.into_iter().zip(replicas).enumerate() {
            let engine = engine_for(&d.keys, false, r, &mut rng);
            let clock = if i == admin {
                admin_clock.clone()
            } else {
                Clock::default()
            };
            nodes.push(Node::new(d.keys, engine, clock, Some(d.site), Some(d.team)));
        }
        if let (Some(keys), Some(r)) = (relay, relay_replica) {
            let engine = engine_for(&keys, true, r, &mut rng);
            nodes.push(Node::new(keys, engine, Clock::default(), None, None));
        }
        for (l, link) in topo.links.iter().enumerate() {
            for (x, y) in [(link.a, link.b), (link.b, link.a)] {
                let id = nodes[y].keys.id();
                nodes[x].links.push(l);
                nodes[x].link_to.insert(id, l);
            }
        }
        let n = nodes.len();
        let obs = Observed {
            received: vec![(0, 0); n],
            revoked_at: vec![None; n],
            ..Observed::default()
        };
        let mut sim = Simulator {
            cfg,
            nodes,
            links: topo.links,
            teams,
            obs,
            admin,
            now: start_ms * 1000,
            seq: 0,
            queue: BinaryHeap::new(),
            rng,
            org_key,
            memo: HashMap::new(),
            partitioned: None,
            start_us: start_ms * 1000,
        };
        for i in 0..n {
            sim.arm_timer(i);
        }
        // Bring every non-bundle link up (devices start online).
        for l in 0..sim.links.len() {
            sim.refresh(l);
        }
        for l in topo.bundles {
            let first = sim.rng.random_range(0..sim.cfg.bundle_every_ms) * 1000;
            sim.schedule(
                sim.start_us + first,
                Ev::Act(Action::BundleOpen { link: l }),
            );
        }
        Ok(sim)
    }

    /// When the next event is due, in ms since the scenario started.
    pub fn next_ms(&self) -> Option<u64> {
        self.queue
            .peek()
            .map(|Reverse(q)| q.at.saturating_sub(self.start_us) / 1000)
    }

    /// Runs every event due up to `ms` after the scenario start (inclusive).
    pub fn run_until(&mut self, ms: u64) {
        while self.next_ms().is_some_and(|t| t <= ms) {
            self.step();
        }
        self.now = self.now.max(self.start_us + ms * 1000);
    }

    /// Now, in ms (the engines' clock).
    pub fn now_ms(&self) -> u64 {
        self.now / 1000
    }

    /// Ms since the scenario started.
    pub fn elapsed_ms(&self) -> u64 {
        (self.now - self.start_us) / 1000
    }

    /// The run's RNG (for scenarios to draw from, in a fixed order).
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Schedules `action` at `ms` after the scenario start.
    pub fn at(&mut self, ms: u64, action: Action) {
        self.schedule(self.start_us + ms * 1000, Ev::Act(action));
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            ev,
        }));
    }

    /// Runs the next event; false when the queue is empty.
    pub fn step(&mut self) -> bool {
        let Some(Reverse(q)) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(q.at);
        self.obs.events += 1;
        if self.cfg.progress && self.obs.events.is_multiple_of(1 << 20) {
            eprintln!(
                "cloison-sim: {} events, {} s simulated, {} writes, {} revoked",
                self.obs.events,
                self.elapsed_ms() / 1000,
                self.obs.delivery_ms.len(),
                self.obs.revoked_count
            );
        }
        match q.ev {
            Ev::Deliver {
                link,
                from,
                epoch,
                bytes,
            } => self.deliver(link, from, epoch, bytes),
            Ev::Timer { node, at_ms } => {
                if self.nodes[node].timer_at == Some(at_ms) {
                    self.nodes[node].timer_at = None;
                    let now = self.now_ms();
                    self.nodes[node].engine.handle_timeout(now);
                    self.drain(node);
                }
            }
            Ev::Act(a) => self.act(a),
        }
        true
    }

    fn arm_timer(&mut self, i: usize) {
        let t = self.nodes[i].engine.poll_timeout();
        if t != self.nodes[i].timer_at {
            self.nodes[i].timer_at = t;
            if let Some(t) = t {
                let at = (t * 1000).max(self.now);
                self.schedule(at, Ev::Timer { node: i, at_ms: t });
            }
        }
    }

    /// Drains an engine's outputs (and those of engines a disconnection touched).
    fn drain(&mut self, i: usize) {
        let mut work = vec![i];
        while let Some(i) = work.pop() {
            while let Some(t) = self.nodes[i].engine.poll_transmit() {
                self.transmit(i, t.peer, t.bytes);
            }
            while let Some(ev) = self.nodes[i].engine.poll_event() {
                match ev {
                    Event::Admitted { doc, ids } => self.on_admitted(i, doc, &ids),
                    Event::Refused { reason, .. } => {
                        *self.obs.refusals.entry(reason).or_default() += 1;
                    }
                    Event::BadMessage { .. } => self.obs.bad_messages += 1,
                    Event::Disconnect { peer } => {
                        if let Some(j) = self.close(i, peer) {
                            work.push(j);
                        }
                    }
                    // Blocks are not modelled (see RESULTS.md): nobody asks for any.
                    Event::BlockRequested { .. } | Event::BlockReceived { .. } => {}
                }
            }
            self.arm_timer(i);
        }
    }

    fn on_admitted(&mut self, i: usize, doc: DocId, ids: &[[u8; 32]]) {
        match doc {
            DocId::Org => self.check_revocation(i),
            DocId::Workspace(_) => {
                self.check_shares(i, ids);
                for id in ids {
                    let Some(&w) = self.obs.write_index.get(id) else {
                        continue;
                    };
                    let rec = &self.obs.writes[w];
                    if rec.author == i || self.nodes[i].team != Some(rec.team) {
                        continue;
                    }
                    let now = self.now_ms();
                    self.obs.delivery_ms.push(now - rec.at_ms);
                    self.obs.write_reached[w] += 1;
                    let r = &mut self.obs.received[i];
                    r.0 += 1;
                    r.1 = now;
                }
            }
        }
    }

    /// Records grants completed and new epochs reached at node `i` after it admitted `ids`.
    fn check_shares(&mut self, i: usize, ids: &[[u8; 32]]) {
        let now = self.now_ms();
        for id in ids {
            if let Some(&e) = self.obs.shares.epoch_index.get(id) {
                let rec = &mut self.obs.shares.epochs[e];
                if let Some(k) = rec.devices.iter().position(|&d| d == i)
                    && rec.got_ms[k].is_none()
                {
                    rec.got_ms[k] = Some(now);
                    self.obs.shares.pending -= 1;
                }
            }
        }
        let Some(gs) = self.obs.shares.grants_of.get(&i) else {
            return;
        };
        for &g in gs {
            let rec = &self.obs.shares.grants[g];
            let k = rec.devices.iter().position(|&d| d == i).unwrap_or(0);
            if rec.done_ms[k].is_some() {
                continue;
            }
            let doc = DocId::Workspace(rec.ws);
            let r = self.nodes[i].engine.replica();
            if rec.need.iter().all(|id| r.knows(doc, id)) {
                self.obs.shares.grants[g].done_ms[k] = Some(now);
                self.obs.shares.pending -= 1;
            }
        }
    }

    fn check_revocation(&mut self, i: usize) {
        if let Some((id, _, victim)) = self.obs.revocation
            && i != victim
            && self.obs.revoked_at[i].is_none()
            && self.nodes[i].engine.replica().org.contains(&EntryId(id))
        {
            self.obs.revoked_at[i] = Some(self.now_ms());
            self.obs.revoked_count += 1;
        }
    }

    fn transmit(&mut self, i: usize, peer: DeviceId, bytes: Vec<u8>) {
        let Some(&l) = self.nodes[i].link_to.get(&peer) else {
            self.obs.no_route += 1;
            return;
        };
        if !self.links[l].up {
            self.obs.no_route += 1;
            return;
        }
        let at = self.links[l].schedule(i, bytes.len(), self.now, &mut self.rng);
        let t = &mut self.nodes[i].traffic;
        t.bytes_sent += bytes.len() as u64;
        t.messages_sent += 1;
        let epoch = self.links[l].epoch;
        self.schedule(
            at,
            Ev::Deliver {
                link: l,
                from: i,
                epoch,
                bytes,
            },
        );
    }

    fn deliver(&mut self, l: usize, from: usize, epoch: u32, bytes: Vec<u8>) {
        let link = &mut self.links[l];
        if !link.up || link.epoch != epoch {
            self.obs.lost += 1;
            return;
        }
        link.inflight = link.inflight.saturating_sub(1);
        let to = link.other(from);
        let t = &mut self.nodes[to].traffic;
        t.bytes_received += bytes.len() as u64;
        t.messages_received += 1;
        let from_id = self.nodes[from].keys.id();
        // Peek at the frozen wire format (version, `Items` = variant 5, `DocId::Org` = 0) before
        // paying for a decode.
        let org_items = bytes.len() > 2 && bytes[1] == 5 && bytes[2] == 0;
        match org_items.then(|| Msg::decode(&bytes)) {
            Some(Ok(Msg::Items {
                doc: DocId::Org,
                items,
            })) => self.deliver_org_items(to, from_id, items),
            _ => {
                let now = self.now_ms();
                self.nodes[to].engine.handle_message(now, from_id, &bytes);
                self.drain(to);
            }
        }
        let link = &self.links[l];
        if link.kind == LinkKind::Bundle && link.up && link.inflight == 0 {
            // The bundle session ran to quiescence: close it.
            self.links[l].session = false;
            self.refresh(l);
        }
    }

    /// Organization entries for `to`: adopt the shared log that holds them (see the module doc).
    fn deliver_org_items(&mut self, to: usize, from: DeviceId, items: Vec<Vec<u8>>) {
        if !self.nodes[to].engine.peers().contains(&from) {
            return; // the engine ignores messages from peers it has no link with
        }
        let old = Arc::clone(&self.nodes[to].engine.replica().org);
        let mut ids: Vec<[u8; 32]> = items.iter().map(|b| *blake3::hash(b).as_bytes()).collect();
        ids.sort_unstable();
        ids.dedup();
        let key: MemoKey = (Arc::as_ptr(&old) as usize, ids);
        let new = match self.memo.get(&key) {
            Some((_, new)) => Arc::clone(new),
            None => {
                let all_held = key
                    .1
                    .iter()
                    .all(|id| old.contains(&EntryId(*id)) || old.is_held(&EntryId(*id)));
                let new = if all_held {
                    Arc::clone(&old)
                } else {
                    let mut log = (*old).clone();
                    let r = log.ingest(items);
                    for (_, why) in &r.rejected {
                        *self.obs.refusals.entry(why.label()).or_default() += 1;
                    }
                    self.obs.org_logs_built += 1;
                    Arc::new(log)
                };
                self.memo
                    .insert(key.clone(), (Arc::clone(&old), Arc::clone(&new)));
                new
            }
        };
        if Arc::ptr_eq(&new, &old) {
            return;
        }
        // Entries new to this device, parents first (as the engine's pass-on orders them).
        let mut fresh: Vec<(u64, [u8; 32])> = key
            .1
            .iter()
            .copied()
            .chain(old.held().map(|e| e.id().0))
            .filter(|id| !old.contains(&EntryId(*id)))
            .filter_map(|id| new.get(&EntryId(id)).map(|e| (e.body().time.0, id)))
            .collect();
        fresh.sort_unstable();
        fresh.dedup();
        let ids: Vec<[u8; 32]> = fresh.into_iter().map(|(_, id)| id).collect();
        // The engine offers the new entries on to its other peers itself.
        self.nodes[to].engine.adopt_org(new, Some(from), ids);
        self.drain(to);
        self.check_revocation(to);
    }

    /// Closes the connection between `i` and `peer` at an engine's request.
    fn close(&mut self, i: usize, peer: DeviceId) -> Option<usize> {
        let &l = self.nodes[i].link_to.get(&peer)?;
        let j = self.links[l].other(i);
        self.links[l].refused = true;
        if let Some((_, _, victim)) = self.obs.revocation
            && (i == victim || j == victim)
        {
            self.obs.last_cut_ms = Some(self.now_ms());
        }
        if self.links[l].up {
            self.links[l].down();
            let me = self.nodes[i].keys.id();
            self.nodes[j].engine.handle_disconnected(me);
            self.nodes[i].engine.handle_disconnected(peer);
        }
        Some(j)
    }

    fn site_of(&self, n: usize) -> Option<usize> {
        self.nodes[n].site
    }

    /// Whether link `l` should be up now.
    fn wanted(&self, l: usize) -> bool {
        let k = &self.links[l];
        let crosses = self
            .partitioned
            .is_some_and(|p| (self.site_of(k.a) == Some(p)) != (self.site_of(k.b) == Some(p)));
        self.nodes[k.a].online
            && self.nodes[k.b].online
            && !k.refused
            && !crosses
            && (k.kind != LinkKind::Bundle || k.session)
    }

    /// Brings link `l` up or down to match [`Simulator::wanted`].
    fn refresh(&mut self, l: usize) {
        let want = self.wanted(l);
        let (a, b) = (self.links[l].a, self.links[l].b);
        let (ida, idb) = (self.nodes[a].keys.id(), self.nodes[b].keys.id());
        let now = self.now_ms();
        if want && !self.links[l].up {
            self.links[l].up = true;
            self.nodes[a].engine.handle_connected(now, idb);
            self.nodes[b].engine.handle_connected(now, ida);
        } else if !want && self.links[l].up {
            self.links[l].down();
            self.nodes[a].engine.handle_disconnected(idb);
            self.nodes[b].engine.handle_disconnected(ida);
        } else {
            return;
        }
        self.drain(a);
        self.drain(b);
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::Write { node } => {
                self.write(node);
            }
            Action::Revoke { victim } => self.revoke(victim),
            Action::Grant { by, grantee } => self.grant(by, grantee),
            Action::Unshare { by, removed } => self.unshare(by, removed),
            Action::WriteInEpoch { node } => {
                let held = self.nodes[node].team.is_some_and(|t| {
                    let (ws, epoch, _) = self.teams[t];
                    self.holds(node, DocId::Workspace(ws), &epoch.0)
                });
                if held && self.write(node).is_some() {
                    self.obs.shares.later_writes.0 += 1;
                } else {
                    self.obs.shares.later_writes.1 += 1;
                }
            }
            Action::Offline { node } => {
                self.nodes[node].online = false;
                for l in self.nodes[node].links.clone() {
                    self.refresh(l);
                }
            }
            Action::Online { node } => {
                self.nodes[node].online = true;
                for l in self.nodes[node].links.clone() {
                    self.links[l].refused = false;
                    self.refresh(l);
                }
            }
            Action::PartitionStart { site } => {
                self.partitioned = Some(site);
                for l in 0..self.links.len() {
                    self.refresh(l);
                }
            }
            Action::PartitionEnd => {
                self.partitioned = None;
                for l in 0..self.links.len() {
                    self.refresh(l);
                }
            }
            Action::BundleOpen { link } => {
                let next = self.now + self.cfg.bundle_every_ms * 1000;
                self.schedule(next, Ev::Act(Action::BundleOpen { link }));
                self.links[link].session = true;
                self.refresh(link);
                if !self.links[link].up {
                    self.links[link].session = false;
                }
            }
        }
    }

    /// Node `i` writes a content envelope in its team's workspace; returns its id.
    pub fn write(&mut self, i: usize) -> Option<[u8; 32]> {
        let team = self.nodes[i].team?;
        let (ws, epoch, _) = self.teams[team];
        let mut payload = vec![0u8; self.cfg.payload];
        self.rng.fill_bytes(&mut payload);
        let now = self.now_ms();
        let node = &mut self.nodes[i];
        let r = node.engine.replica_mut();
        let log = r.workspaces.get_mut(&ws)?;
        let bytes = log
            .draft(
                &r.org,
                &node.keys,
                &mut node.clock,
                now,
                Kind::Content,
                Some(epoch),
                |_| payload,
            )
            .ok()?;
        let id = *blake3::hash(&bytes).as_bytes();
        self.obs.writes.push(WriteRec {
            id,
            at_ms: now,
            team,
            author: i,
        });
        self.obs.write_index.insert(id, self.obs.writes.len() - 1);
        self.obs.write_reached.push(0);
        self.nodes[i]
            .engine
            .handle_local(now, DocId::Workspace(ws), vec![bytes]);
        self.drain(i);
        Some(id)
    }

    /// The user of device `node`.
    fn user_of(&self, node: usize) -> Option<UserId> {
        let id = self.nodes[node].keys.id();
        let r = self.nodes[node].engine.replica();
        r.org.state().devices.get(&id).map(|d| d.user)
    }

    /// The devices of the user of device `node` (users have devices `2u` and `2u + 1`).
    fn devices_of_user(node: usize) -> Vec<usize> {
        vec![node & !1, node | 1]
    }

    /// Drafts one workspace envelope on `by`'s replica and hands it to its engine; its id.
    fn local_envelope(
        &mut self,
        by: usize,
        ws: WorkspaceId,
        kind: Kind,
        payload: Vec<u8>,
    ) -> Option<[u8; 32]> {
        let now = self.now_ms();
        let node = &mut self.nodes[by];
        let r = node.engine.replica_mut();
        let log = r.workspaces.get_mut(&ws)?;
        let bytes = log
            .draft(&r.org, &node.keys, &mut node.clock, now, kind, None, |_| {
                payload
            })
            .ok()?;
        let id = *blake3::hash(&bytes).as_bytes();
        self.nodes[by]
            .engine
            .handle_local(now, DocId::Workspace(ws), vec![bytes]);
        self.drain(by);
        self.holds(by, DocId::Workspace(ws), &id).then_some(id)
    }

    /// Device `by` grants its team's workspace to the user of `grantee` (CONTRIBUTOR), then
    /// connects to that user's devices it has no link with (the invitation).
    fn grant(&mut self, by: usize, grantee: usize) {
        let (Some(team), Some(user)) = (self.nodes[by].team, self.user_of(grantee)) else {
            return;
        };
        let ws = self.teams[team].0;
        let change = AccessChange::Grant {
            user,
            role: Role::Contributor,
        };
        if self
            .local_envelope(by, ws, Kind::Access, encode_payload(&change))
            .is_none()
        {
            return;
        }
        let need = self.nodes[by]
            .engine
            .replica()
            .items(DocId::Workspace(ws))
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let devices = Self::devices_of_user(grantee);
        let g = self.obs.shares.grants.len();
        self.obs.shares.pending += devices.len() as u64;
        for &d in &devices {
            self.obs.shares.grants_of.entry(d).or_default().push(g);
        }
        self.obs.shares.grants.push(GrantRec {
            at_ms: self.now_ms(),
            done_ms: vec![None; devices.len()],
            devices: devices.clone(),
            ws,
            need,
        });
        for d in devices {
            let id = self.nodes[d].keys.id();
            if self.nodes[by].link_to.contains_key(&id) {
                continue;
            }
            let kind = if self.nodes[by].site == self.nodes[d].site {
                LinkKind::Lan
            } else {
                LinkKind::Wan
            };
            let l = self.links.len();
            self.links.push(Link::new(by, d, kind, &mut self.rng));
            for (x, y) in [(by, d), (d, by)] {
                let id = self.nodes[y].keys.id();
                self.nodes[x].links.push(l);
                self.nodes[x].link_to.insert(id, l);
            }
            self.obs.shares.links_added += 1;
            self.refresh(l);
        }
    }

    /// Device `by` removes the user of `removed` from its team's workspace, then opens a new
    /// epoch sealed (opaque blobs) to the remaining members; later writes use that epoch.
    fn unshare(&mut self, by: usize, removed: usize) {
        let (Some(team), Some(user)) = (self.nodes[by].team, self.user_of(removed)) else {
            return;
        };
        let ws = self.teams[team].0;
        let doc = DocId::Workspace(ws);
        let before: BTreeSet<[u8; 32]> = self.nodes[by]
            .engine
            .replica()
            .items(doc)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let change = AccessChange::Remove { user };
        if self
            .local_envelope(by, ws, Kind::Access, encode_payload(&change))
            .is_none()
        {
            return;
        }
        let r = self.nodes[by].engine.replica();
        let Some(log) = r.workspaces.get(&ws) else {
            return;
        };
        let members: Vec<UserId> = log.state(&r.org).members.keys().copied().collect();
        let payload = crate::world::opaque_new_epoch(&members);
        // Drafted as the engine will see it, so that its own admission is recorded too.
        let now = self.now_ms();
        let node = &mut self.nodes[by];
        let r = node.engine.replica_mut();
        let Some(log) = r.workspaces.get_mut(&ws) else {
            return;
        };
        let bytes = log.draft(
            &r.org,
            &node.keys,
            &mut node.clock,
            now,
            Kind::Keys,
            None,
            |_| payload,
        );
        let Ok(bytes) = bytes else {
            return;
        };
        let id = *blake3::hash(&bytes).as_bytes();
        let member_set: BTreeSet<UserId> = members.into_iter().collect();
        let devices: Vec<usize> = (0..self.cfg.devices)
            .filter(|&d| self.user_of(d).is_some_and(|u| member_set.contains(&u)))
            .collect();
        let e = self.obs.shares.epochs.len();
        self.obs.shares.pending += devices.len() as u64;
        self.obs.shares.epoch_index.insert(id, e);
        self.obs.shares.epochs.push(EpochRec {
            team,
            at_ms: now,
            by,
            keys: id,
            got_ms: vec![None; devices.len()],
            devices,
            removed: Self::devices_of_user(removed),
            before,
        });
        self.teams[team].1 = EnvelopeId(id);
        self.nodes[by].engine.handle_local(now, doc, vec![bytes]);
        self.drain(by);
    }

    /// The admin revokes device `victim`.
    fn revoke(&mut self, victim: usize) {
        let now = self.now_ms();
        let device = self.nodes[victim].keys.id();
        let admin = &mut self.nodes[self.admin];
        let e = Writer {
            keys: &admin.keys,
            org_key: &self.org_key,
            clock: &mut admin.clock,
        }
        .draft(
            &admin.engine.replica().org,
            now,
            Certificate::DeviceRevoked { device },
        );
        let id = *blake3::hash(&e).as_bytes();
        self.obs.revocation = Some((id, now, victim));
        self.nodes[self.admin]
            .engine
            .handle_local(now, DocId::Org, vec![e]);
        self.drain(self.admin);
        self.check_revocation(self.admin);
    }

    /// Whether node `i` carries bundles to or from the air-gapped site (revoking it cuts that
    /// site off by construction).
    pub fn carries_bundles(&self, i: usize) -> bool {
        self.links
            .iter()
            .any(|l| l.kind == LinkKind::Bundle && (l.a == i || l.b == i))
    }

    /// Nodes currently linked (in their engines) with node `i`.
    pub fn linked_with(&self, i: usize) -> Vec<usize> {
        let id = self.nodes[i].keys.id();
        (0..self.nodes.len())
            .filter(|&j| j != i && self.nodes[j].engine.peers().contains(&id))
            .collect()
    }

    /// Whether node `i` holds item `id` of `doc`.
    pub fn holds(&self, i: usize, doc: DocId, id: &[u8; 32]) -> bool {
        self.nodes[i].engine.replica().knows(doc, id)
    }

    /// Whether node `i`'s state of workspace `ws` counts the content envelope `id`.
    pub fn counts(&self, i: usize, ws: WorkspaceId, id: &[u8; 32]) -> bool {
        let r = self.nodes[i].engine.replica();
        r.workspaces
            .get(&ws)
            .is_some_and(|log| log.state(&r.org).content.contains(&EnvelopeId(*id)))
    }

    /// Signs a content envelope as `author` (a revoked device, say) on top of `target`'s own
    /// workspace and organization heads, as if the author had learned the current heads, and
    /// hands it to `target` from one of its linked peers. Returns the envelope id and the refusal
    /// labels `target` reported, or `None` if `target` holds no such workspace or has no peer.
    pub fn forge_for(
        &mut self,
        author: usize,
        target: usize,
    ) -> Option<([u8; 32], Vec<&'static str>)> {
        let team = self.nodes[author].team?;
        let (ws, epoch, _) = self.teams[team];
        let (s, x) = self.nodes[author].keys.secrets();
        let keys = DeviceKeys::from_secrets(&s, &x);
        let mut clock = self.nodes[author].clock.clone();
        let now = self.now_ms();
        let payload = vec![7u8; self.cfg.payload];
        let r = self.nodes[target].engine.replica();
        let log = r.workspaces.get(&ws)?;
        let bytes = log.draft_unchecked(
            &r.org,
            &keys,
            &mut clock,
            now,
            Kind::Content,
            Some(epoch),
            |_| payload,
        );
        let id = *blake3::hash(&bytes).as_bytes();
        let via = self.nodes[target]
            .engine
            .peers()
            .iter()
            .find_map(|p| self.nodes[target].link_to.get(p))
            .map(|&l| self.links[l].other(target))?;
        let msg = Msg::Items {
            doc: DocId::Workspace(ws),
            items: vec![bytes],
        }
        .encode();
        let before = self.obs.refusals.clone();
        self.inject(target, via, &msg);
        let labels = self
            .obs
            .refusals
            .iter()
            .filter(|(k, v)| before.get(*k).copied().unwrap_or(0) < **v)
            .map(|(k, _)| *k)
            .collect();
        Some((id, labels))
    }

    /// Hands `bytes` to node `to` as if sent by `from` over their link (for tests of what an
    /// engine does with a message it should never get); false if they are not linked.
    pub fn inject(&mut self, to: usize, from: usize, bytes: &[u8]) -> bool {
        let id = self.nodes[from].keys.id();
        if !self.nodes[to].engine.peers().contains(&id) {
            return false;
        }
        let now = self.now_ms();
        self.nodes[to].engine.handle_message(now, id, bytes);
        self.drain(to);
        true
    }
}

impl Node {
    fn new(
        keys: DeviceKeys,
        engine: Engine,
        clock: Clock,
        site: Option<usize>,
        team: Option<usize>,
    ) -> Node {
        Node {
            keys,
            engine,
            clock,
            site,
            team,
            online: true,
            traffic: Traffic::default(),
            timer_at: None,
            links: Vec::new(),
            link_to: HashMap::new(),
        }
    }
}
