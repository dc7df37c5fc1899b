//! Many engines in memory: convergence after partitions, bytes on the wire, catch-up without
//! duplicates, hostile messages; revoked peers and listening links in `listen`.

use std::collections::VecDeque;

use super::*;

mod held;
mod listen;
mod rate;
mod slots;
use crate::trust::author::Writer;
use crate::trust::{
    Certificate, Clock, DeviceId, DeviceKeys, EntryId, Hlc, OrgKey, Profile, UserId,
};
use crate::workspace::envelope::{self, encode_keys, encode_payload};
use crate::workspace::{
    AccessChange, EnvelopeId, EpochKeys, Header, Kind, Role, SealedKeys, WorkspaceId,
};

struct Dev {
    keys: DeviceKeys,
    user: UserId,
    clock: Clock,
    engine: Engine,
}

struct Sim {
    devs: Vec<Dev>,
    org_key: OrgKey,
    queue: VecDeque<(usize, usize, Vec<u8>)>,
    links: Vec<(usize, usize)>,
    cut: Vec<bool>,
    now: u64,
    ws: WorkspaceId,
}

impl Sim {
    /// An organization of `n` devices (device 0 is the admin), all knowing the whole log.
    fn new(n: usize, seed: u64) -> Sim {
        Sim::with_profiles(&vec![Profile::Standard; n - 1], seed)
    }

    /// An organization of the founding admin (device 0) and one user of each of `profiles`
    /// (devices 1, 2, ...), all knowing the whole log.
    fn with_profiles(profiles: &[Profile], seed: u64) -> Sim {
        let mut f = crate::testkit::Fixture::new(seed);
        for p in profiles {
            f.add_user(*p);
        }
        let n = profiles.len() + 1;
        let entries = f.entries();
        let org_id = f.org.org();
        let mut keys = vec![(f.admin.keys, f.admin.user)];
        keys.extend(f.members.into_iter().map(|m| (m.keys, m.user)));
        let org_key = f.org_key;
        let devs = keys
            .into_iter()
            .map(|(k, user)| {
                let mut r = Replica::new(org_id);
                assert!(
                    std::sync::Arc::make_mut(&mut r.org)
                        .ingest(entries.clone())
                        .is_clean()
                );
                let engine = Engine::new(Config::device(k.id()), r, 0);
                Dev {
                    keys: k,
                    user,
                    clock: Clock::default(),
                    engine,
                }
            })
            .collect();
        Sim {
            devs,
            org_key,
            queue: VecDeque::new(),
            links: Vec::new(),
            cut: vec![false; n],
            now: 10_000,
            ws: WorkspaceId([9; 16]),
        }
    }

    fn connect(&mut self, a: usize, b: usize) {
        self.links.push((a, b));
        let (ida, idb) = (self.devs[a].keys.id(), self.devs[b].keys.id());
        self.devs[a].engine.handle_connected(self.now, idb);
        self.devs[b].engine.handle_connected(self.now, ida);
        self.flush(a);
        self.flush(b);
    }

    fn connect_all(&mut self) {
        for a in 0..self.devs.len() {
            for b in a + 1..self.devs.len() {
                self.connect(a, b);
            }
        }
    }

    fn index_of(&self, id: &DeviceId) -> Option<usize> {
        self.devs.iter().position(|d| &d.keys.id() == id)
    }

    fn flush(&mut self, a: usize) {
        while let Some(t) = self.devs[a].engine.poll_transmit() {
            if let Some(b) = self.index_of(&t.peer) {
                self.queue.push_back((a, b, t.bytes));
            }
        }
    }

    /// Delivers messages until none is left (dropping those across a cut).
    fn run(&mut self) {
        let mut steps = 0;
        while let Some((a, b, bytes)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 1_000_000, "no quiescence");
            if self.cut[a] != self.cut[b] {
                continue;
            }
            let from = self.devs[a].keys.id();
            if std::env::var("SYNC_TRACE").is_ok() {
                let m = Msg::decode(&bytes).unwrap();
                let d = match &m {
                    Msg::Hello { docs } => format!(
                        "hello {:?}",
                        docs.iter()
                            .map(|d| (d.count, d.heads.len()))
                            .collect::<Vec<_>>()
                    ),
                    Msg::Reconcile { body, .. } => format!("reconcile {}", body.len()),
                    Msg::ReconcileReply { body, .. } => format!("reply {}", body.len()),
                    Msg::Want { ids, .. } => format!("want {}", ids.len()),
                    Msg::Offer { ids, .. } => format!("offer {}", ids.len()),
                    Msg::BlockWant { ids, .. } => format!("block-want {}", ids.len()),
                    Msg::Block { bytes, .. } => format!("block {}", bytes.len()),
                    Msg::Blocks { blocks, .. } => format!("blocks {}", blocks.len()),
                    Msg::BlockMissing { ids, .. } => format!("block-missing {}", ids.len()),
                    Msg::Items { items, .. } => format!("items {}", items.len()),
                };
                eprintln!("{a} -> {b}: {d}");
            }
            self.devs[b].engine.handle_message(self.now, from, &bytes);
            self.flush(b);
        }
    }

    /// Every device re-announces its heads (anti-entropy) and the messages run.
    fn anti_entropy(&mut self) {
        self.now += 60_000;
        for i in 0..self.devs.len() {
            let now = self.now;
            self.devs[i].engine.handle_timeout(now);
            self.flush(i);
        }
        self.run();
    }

    /// Device `i` writes an envelope of `kind` on its replica and pushes it.
    fn write(
        &mut self,
        i: usize,
        kind: Kind,
        epoch: Option<EnvelopeId>,
        payload: Vec<u8>,
    ) -> Vec<u8> {
        self.now += 10;
        let now = self.now;
        let ws = self.ws;
        let d = &mut self.devs[i];
        let r = d.engine.replica_mut();
        r.open_workspace(ws);
        let log = r.workspaces.get_mut(&ws).unwrap();
        let bytes = log
            .draft(&r.org, &d.keys, &mut d.clock, now, kind, epoch, |_| payload)
            .expect("the draft is admissible");
        d.engine
            .handle_local(now, DocId::Workspace(ws), vec![bytes.clone()]);
        self.flush(i);
        bytes
    }

    /// Device 0 creates the workspace, shares it with everybody as CONTRIBUTOR, opens an epoch.
    fn share_with_all(&mut self) -> EnvelopeId {
        self.write(0, Kind::Access, None, encode_payload(&AccessChange::Create));
        for i in 1..self.devs.len() {
            let user = self.devs[i].user;
            self.write(
                0,
                Kind::Access,
                None,
                encode_payload(&AccessChange::Grant {
                    user,
                    role: Role::Contributor,
                }),
            );
        }
        let sealed = self
            .devs
            .iter()
            .map(|d| SealedKeys {
                user: d.user,
                generation: 0,
                epochs: Vec::new(),
                blob: vec![0],
            })
            .collect::<Vec<_>>();
        let mut sealed = sealed;
        sealed.sort_by_key(|s| s.user);
        let e = self.write(
            0,
            Kind::Keys,
            None,
            encode_keys(&EpochKeys {
                commitment: Some([0; 32]),
                sealed,
            }),
        );
        EnvelopeId(*blake3::hash(&e).as_bytes())
    }

    /// Device `i` signs `cert` on its own log (whatever it believes) and pushes it.
    fn certify(&mut self, i: usize, cert: Certificate) -> Vec<u8> {
        self.now += 10;
        let now = self.now;
        let d = &mut self.devs[i];
        let e = Writer {
            keys: &d.keys,
            org_key: &self.org_key,
            clock: &mut d.clock,
        }
        .draft(&d.engine.replica().org, now, cert);
        d.engine.handle_local(now, DocId::Org, vec![e.clone()]);
        self.flush(i);
        e
    }

    /// The peers device `i`'s engine asked to cut off since last asked.
    fn cut_off(&mut self, i: usize) -> Vec<DeviceId> {
        let mut cut = Vec::new();
        while let Some(ev) = self.devs[i].engine.poll_event() {
            if let Event::Disconnect { peer } = ev {
                cut.push(peer);
            }
        }
        cut
    }

    /// Ends the link between `a` and `b` on both sides.
    fn disconnect(&mut self, a: usize, b: usize) {
        self.links.retain(|l| *l != (a, b) && *l != (b, a));
        let (ida, idb) = (self.devs[a].keys.id(), self.devs[b].keys.id());
        self.devs[a].engine.handle_disconnected(idb);
        self.devs[b].engine.handle_disconnected(ida);
    }

    fn heads(&self, i: usize) -> (Vec<[u8; 32]>, Vec<[u8; 32]>) {
        let r = self.devs[i].engine.replica();
        (
            r.heads(DocId::Org).unwrap(),
            r.heads(DocId::Workspace(self.ws)).unwrap_or_default(),
        )
    }
}

#[test]
fn an_entry_dated_ahead_of_the_clock_waits_then_arrives_when_the_clock_does() {
    use crate::trust::ids::MAX_CLOCK_SKEW_MS;
    let mut s = Sim::new(3, 77);
    s.connect_all();
    s.run();
    // Device 1, a member, records a device invitation dated a minute past the allowed skew.
    let due = s.now + MAX_CLOCK_SKEW_MS + 60_000;
    let org = s.devs[1].engine.replica().org.org();
    let user = s.devs[1].user;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    let w = Writer {
        keys: &s.devs[1].keys,
        org_key: &s.org_key,
        clock: &mut Clock::default(),
    };
    let cert = w
        .invitation_recorded(
            &mut rng,
            &org,
            [3; 16],
            crate::trust::entry::Invited::Device { user },
            due + 1_000,
            None,
        )
        .unwrap();
    let mut w = w;
    let e = w.draft(&s.devs[1].engine.replica().org, due, cert);
    let id = EntryId(*blake3::hash(&e).as_bytes());
    let from = s.devs[1].keys.id();
    let items = Msg::Items {
        doc: DocId::Org,
        items: vec![e],
    }
    .encode();
    s.devs[0].engine.handle_message(s.now, from, &items);
    let org0 = &s.devs[0].engine.replica().org;
    assert!(
        !org0.contains(&id) && org0.is_held(&id),
        "held, not admitted"
    );
    assert_eq!(org0.future_len(), 1);
    let wake = due - MAX_CLOCK_SKEW_MS;
    assert!(
        s.devs[0].engine.poll_timeout() <= Some(wake),
        "the timer wakes for it"
    );
    // The wall clock gets there: device 0 admits it and offers it on.
    s.now = wake;
    s.devs[0].engine.handle_timeout(wake);
    assert!(s.devs[0].engine.replica().org.contains(&id));
    s.flush(0);
    s.run();
    assert!(s.devs[2].engine.replica().org.contains(&id), "passed on");
}

#[test]
fn devices_converge_after_a_partition_heals() {
    let mut s = Sim::new(5, 1);
    s.connect_all();
    s.run();
    let epoch = s.share_with_all();
    s.run();
    // Split {0,1} | {2,3,4}; both sides write.
    s.cut = vec![false, false, true, true, true];
    for round in 0..4 {
        for i in 0..5 {
            s.write(
                i,
                Kind::Content,
                Some(epoch),
                format!("w{i}-{round}").into_bytes(),
            );
        }
        s.run();
    }
    let (_, a) = s.heads(0);
    let (_, b) = s.heads(2);
    assert_ne!(a, b, "partitioned sides diverged");
    // Heal: one anti-entropy round brings everyone together.
    s.cut = vec![false; 5];
    s.anti_entropy();
    let h0 = s.heads(0);
    for i in 1..5 {
        assert_eq!(s.heads(i), h0, "device {i} differs");
    }
    let total = s.devs[0].engine.replica().count(DocId::Workspace(s.ws));
    assert_eq!(total, 1 + 4 + 1 + 20);
    for d in &s.devs {
        assert_eq!(
            d.engine.stats().duplicates_received,
            0,
            "an item crossed twice"
        );
    }
}

#[test]
fn an_item_asked_of_a_peer_whose_link_dropped_is_asked_again_on_the_next_link() {
    let mut s = Sim::new(2, 3);
    s.connect_all();
    s.run();
    let epoch = s.share_with_all();
    s.run();
    // Device 1 is away while device 0 writes.
    s.cut = vec![false, true];
    let item = s.write(
        0,
        Kind::Content,
        Some(epoch),
        b"written while 1 was away".to_vec(),
    );
    s.run();
    s.cut = vec![false; 2];
    // Anti-entropy: device 1 learns of the item and asks for it; the link drops with the `Want`
    // in flight (as when a relay cuts a device off and serves it again).
    s.now += 60_000;
    for i in 0..2 {
        let now = s.now;
        s.devs[i].engine.handle_timeout(now);
        s.flush(i);
    }
    let mut dropped = false;
    while let Some((a, b, bytes)) = s.queue.pop_front() {
        if a == 1 && matches!(Msg::decode(&bytes), Ok(Msg::Want { .. })) {
            dropped = true;
            break;
        }
        let from = s.devs[a].keys.id();
        s.devs[b].engine.handle_message(s.now, from, &bytes);
        s.flush(b);
    }
    assert!(dropped, "device 1 asked for the item");
    s.queue.clear();
    let (id0, id1) = (s.devs[0].keys.id(), s.devs[1].keys.id());
    s.devs[0].engine.handle_disconnected(id1);
    s.devs[1].engine.handle_disconnected(id0);
    // The next link, well within the 60 s after which an unanswered ask expires.
    s.now += 1_000;
    s.connect(0, 1);
    s.run();
    let id = *blake3::hash(&item).as_bytes();
    assert!(
        s.devs[1]
            .engine
            .replica()
            .holds(DocId::Workspace(s.ws), &id),
        "the item was asked for again on the new link"
    );
}

/// Builds `n` content envelopes on a chain, signed by device `by`, without going through
/// `draft` (which recomputes the state per envelope).
fn bulk_chain(s: &mut Sim, by: usize, epoch: EnvelopeId, n: usize) -> Vec<Vec<u8>> {
    let author = s.devs[by].keys.id();
    let ws = s.ws;
    let (org, org_heads, mut parents, mut time) = {
        let r = s.devs[by].engine.replica_mut();
        let org_heads: Vec<EntryId> = r.org.state().heads.clone();
        let log = r.workspaces.get(&ws).unwrap();
        let time = log
            .envelopes()
            .iter()
            .map(|e| e.header().time)
            .max()
            .unwrap();
        (r.org.org(), org_heads, log.heads(), time)
    };
    let keys = &s.devs[by].keys;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        time = Hlc(time.0 + 1);
        let h = Header {
            org,
            workspace: ws,
            author,
            parents: parents.clone(),
            org_heads: org_heads.clone(),
            time,
            epoch: Some(epoch),
            kind: Kind::Content,
        };
        let b = envelope::sign(keys, &h, b"x");
        parents = vec![EnvelopeId(*blake3::hash(&b).as_bytes())];
        out.push(b);
    }
    out
}

#[test]
fn up_to_date_peers_exchange_o_heads_bytes_and_a_late_peer_gets_each_item_once() {
    let mut s = Sim::new(2, 2);
    s.connect(0, 1);
    s.run();
    let epoch = s.share_with_all();
    s.run();
    let n: usize = std::env::var("CLOISON_TEST_ENVELOPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let chain = bulk_chain(&mut s, 0, epoch, n);
    // Device 1 gets all but the last 1,000 directly (as if it had been online), device 0 all.
    let ws = DocId::Workspace(s.ws);
    let r0 = s.devs[0].engine.replica_mut().ingest(ws, chain.clone());
    assert_eq!(r0.admitted.len(), n);
    let r1 = s.devs[1]
        .engine
        .replica_mut()
        .ingest(ws, chain[..n - 1_000].to_vec());
    assert_eq!(r1.admitted.len(), n - 1_000);
    // Reconnect: device 1 catches up, receiving each missing item once.
    let (id0, id1) = (s.devs[0].keys.id(), s.devs[1].keys.id());
    s.devs[0].engine.handle_disconnected(id1);
    s.devs[1].engine.handle_disconnected(id0);
    let before = (s.devs[0].engine.stats(), s.devs[1].engine.stats());
    s.connect(0, 1);
    s.run();
    assert_eq!(s.heads(0), s.heads(1));
    let sent = s.devs[0].engine.stats().items_sent - before.0.items_sent;
    assert_eq!(sent, 1_000, "exactly the missing items cross");
    assert_eq!(s.devs[1].engine.stats().duplicates_received, 0);
    // Now both are up to date: a reconnection costs only the heads.
    let before = (s.devs[0].engine.stats(), s.devs[1].engine.stats());
    let (id0, id1) = (s.devs[0].keys.id(), s.devs[1].keys.id());
    s.devs[0].engine.handle_disconnected(id1);
    s.devs[1].engine.handle_disconnected(id0);
    s.connect(0, 1);
    s.run();
    let bytes = s.devs[0].engine.stats().bytes_sent - before.0.bytes_sent
        + s.devs[1].engine.stats().bytes_sent
        - before.1.bytes_sent;
    eprintln!("two up-to-date peers with {n} envelopes each: {bytes} bytes in all");
    assert!(
        bytes < 2048,
        "{bytes} bytes for two up-to-date peers with {n} envelopes each"
    );
}

#[test]
fn hostile_messages_are_reported_and_sync_goes_on() {
    let mut s = Sim::new(2, 4);
    s.connect(0, 1);
    s.run();
    let from = s.devs[0].keys.id();
    s.devs[1].engine.handle_message(s.now, from, b"\x01garbage");
    s.devs[1].engine.handle_message(s.now, from, &[9, 9, 9]);
    let bad = std::iter::from_fn(|| s.devs[1].engine.poll_event())
        .filter(|e| matches!(e, Event::BadMessage { .. }))
        .count();
    assert_eq!(bad, 2);
    // A tampered item inside a valid message is refused with its reason; the rest goes in.
    let epoch = s.share_with_all();
    s.run();
    let mut bytes = s.write(0, Kind::Content, Some(epoch), b"ok".to_vec());
    s.run();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    let msg = Msg::Items {
        doc: DocId::Workspace(s.ws),
        items: vec![bytes],
    }
    .encode();
    s.devs[1].engine.handle_message(s.now, from, &msg);
    // Drained, refusals are counted by reason (what `cloison status` shows).
    let d = s.devs[1].engine.drain().expect("events");
    assert_eq!(
        d.refused,
        std::collections::BTreeMap::from([("bad_signature", 1)])
    );
    assert_eq!(s.heads(0), s.heads(1));
}

/// Runs the queue, answering block requests from each device's `blocks` store.
fn run_with_blocks(
    s: &mut Sim,
    stores: &[std::collections::HashMap<[u8; 32], Vec<u8>>],
) -> Vec<(usize, Event)> {
    let mut events = Vec::new();
    loop {
        s.run();
        let mut answered = false;
        for (i, store) in stores.iter().enumerate() {
            while let Some(ev) = s.devs[i].engine.poll_event() {
                if let Event::BlockRequested { peer, doc, ids } = &ev {
                    let found = ids
                        .iter()
                        .filter_map(|id| store.get(id).map(|b| (*id, b.clone())))
                        .collect();
                    let missing = ids
                        .iter()
                        .filter(|id| !store.contains_key(*id))
                        .copied()
                        .collect();
                    s.devs[i].engine.provide_blocks(*peer, *doc, found, missing);
                    answered = true;
                }
                events.push((i, ev));
            }
            s.flush(i);
        }
        if !answered && s.queue.is_empty() {
            return events;
        }
    }
}

#[test]
fn blocks_are_fetched_in_parallel_verified_and_retried_elsewhere() {
    let mut s = Sim::new(4, 5);
    s.connect_all();
    s.run();
    s.share_with_all();
    s.run();
    let blocks: Vec<Vec<u8>> = (0..24u8).map(|i| vec![i; 1000 + i as usize]).collect();
    let id = |b: &Vec<u8>| *blake3::hash(b).as_bytes();
    let mut stores = vec![std::collections::HashMap::new(); 4];
    for b in &blocks {
        stores[1].insert(id(b), b.clone());
        stores[2].insert(id(b), b.clone());
    }
    // Device 3 holds a corrupted copy of every block, and none of the last four.
    for b in &blocks[..20] {
        stores[3].insert(id(b), vec![0xee; 10]);
    }
    let doc = DocId::Workspace(s.ws);
    s.devs[0].engine.fetch_blocks(doc, blocks.iter().map(id));
    s.flush(0);
    let events = run_with_blocks(&mut s, &stores);
    let received: std::collections::BTreeSet<[u8; 32]> = events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::BlockReceived { id, bytes, .. } if *i == 0 => {
                assert_eq!(blake3::hash(bytes).as_bytes(), id);
                Some(*id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(received.len(), 24, "every block arrived, verified");
    assert_eq!(s.devs[0].engine.blocks_pending(), 0);
    let served_by: std::collections::BTreeSet<usize> = events
        .iter()
        .filter_map(|(i, e)| matches!(e, Event::BlockRequested { .. }).then_some(*i))
        .collect();
    assert_eq!(
        served_by,
        [1, 2, 3].into_iter().collect(),
        "requests spread over every peer"
    );
    let mismatches = events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::Refused {
                    reason: "block_id_mismatch",
                    ..
                }
            )
        })
        .count();
    assert!(mismatches > 0, "device 3's corrupted blocks were caught");
}

#[test]
fn a_block_assigned_to_a_peer_that_leaves_is_fetched_from_another() {
    let mut s = Sim::new(3, 6);
    s.connect_all();
    s.run();
    s.share_with_all();
    s.run();
    let b = vec![7u8; 5000];
    let bid = *blake3::hash(&b).as_bytes();
    let doc = DocId::Workspace(s.ws);
    s.devs[0].engine.fetch_blocks(doc, [bid]);
    s.flush(0);
    // Whoever got the request disconnects before answering.
    let (_, to, _) = s.queue.pop_back().unwrap();
    let gone = s.devs[to].keys.id();
    s.queue.clear();
    s.devs[0].engine.handle_disconnected(gone);
    s.flush(0);
    let other = 3 - to;
    let mut stores = vec![std::collections::HashMap::new(); 3];
    stores[other].insert(bid, b.clone());
    let events = run_with_blocks(&mut s, &stores);
    assert!(
        events
            .iter()
            .any(|(i, e)| *i == 0 && matches!(e, Event::BlockReceived { id, .. } if *id == bid))
    );
}

mod partitions {
    //! Property: whatever the partitions and the writes during them, one anti-entropy round after
    //! healing brings every device to the same heads, with every write.
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Write(usize),
        Cut(Vec<bool>),
        Heal,
        AntiEntropy,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0..4usize).prop_map(Op::Write),
            1 => proptest::collection::vec(any::<bool>(), 4).prop_map(Op::Cut),
            1 => Just(Op::Heal),
            1 => Just(Op::AntiEntropy),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn devices_converge_after_random_partitions(seed in 0u64..1000, ops in proptest::collection::vec(op(), 1..40)) {
            let mut s = Sim::new(4, seed);
            s.connect_all();
            s.run();
            let epoch = s.share_with_all();
            s.run();
            let mut written = 0;
            for o in &ops {
                match o {
                    Op::Write(i) => {
                        s.write(*i, Kind::Content, Some(epoch), vec![*i as u8; 16]);
                        written += 1;
                    }
                    Op::Cut(mask) => s.cut = mask.clone(),
                    Op::Heal => s.cut = vec![false; 4],
                    Op::AntiEntropy => s.anti_entropy(),
                }
                s.run();
            }
            s.cut = vec![false; 4];
            s.anti_entropy();
            let h0 = s.heads(0);
            for i in 1..4 {
                prop_assert_eq!(&s.heads(i), &h0);
            }
            let count = s.devs[0].engine.replica().count(DocId::Workspace(s.ws));
            prop_assert_eq!(count, 1 + 3 + 1 + written);
        }
    }
}
