//! Held items against a member's hostile peer (issue 15, item 2): megabytes of signed orphans
//! (organization entries, its own and under fresh keys, and envelopes whose parents never come) and a `Hello` naming 10,000
//! random workspaces. The victim's holding areas stay within their bounds (the attacker takes at
//! most its quarter of each), the orphans expire with the wall clock and leave the
//! reconciliation set, and a real share still arrives in full.

use super::*;
use crate::dag::MAX_HELD_AGE_MS;
use crate::sync::msg::Heads;
use crate::sync::replica::MAX_TENTATIVE;
use crate::trust::EntryBody;
use crate::trust::entry;
use crate::workspace::envelope;

/// A pseudo-random 32-byte id.
fn id32(tag: &str, i: u32) -> [u8; 32] {
    *blake3::hash(format!("{tag}{i}").as_bytes()).as_bytes()
}

/// Bytes held for their parents (or organization heads) on device `i`: (organization,
/// every workspace).
fn held_bytes(s: &Sim, i: usize) -> (usize, usize) {
    let r = s.devs[i].engine.replica();
    let ws = r.workspaces.values().map(|l| l.holding().bytes()).sum();
    (r.org.holding().bytes(), ws)
}

#[test]
fn a_members_orphans_stay_within_the_held_bounds_and_a_real_share_arrives() {
    let mut s = Sim::new(3, 23);
    s.connect_all();
    s.run();
    let (attacker, victim) = (s.devs[1].keys.id(), 2);
    let org = s.devs[1].engine.replica().org.clone();
    let now = s.now;
    let send = |s: &mut Sim, msg: Msg| {
        s.devs[victim]
            .engine
            .handle_message(now, attacker, &msg.encode());
    };
    // A Hello naming 10,000 random workspaces.
    let docs = (0..10_000)
        .map(|i| Heads {
            doc: DocId::Workspace(WorkspaceId(*id32("ws", i).first_chunk().unwrap())),
            count: 5,
            heads: vec![id32("head", i)],
        })
        .collect();
    send(&mut s, Msg::Hello { docs });
    let mut sent = 0usize;
    // 1,000 organization entries of 64 parents that never come: about 2.2 MiB.
    let mut entries = Vec::new();
    for i in 0..1_000u32 {
        let mut parents: Vec<EntryId> = (0..64).map(|p| EntryId(id32("ep", i * 64 + p))).collect();
        parents.sort_unstable();
        let body = EntryBody {
            org: org.org(),
            parents,
            author: attacker,
            time: Hlc(now << 16),
            cert: Certificate::DeviceRevoked {
                device: DeviceId(id32("dev", i)),
            },
        };
        entries.push(entry::sign(&s.devs[1].keys, &body));
    }
    // And 1,000 more, each signed by a fresh key (an author id is a self-made key).
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    let mut strangers = Vec::new();
    for i in 1_000..2_000u32 {
        let keys = DeviceKeys::generate(&mut rng);
        let mut parents: Vec<EntryId> = (0..64).map(|p| EntryId(id32("ep", i * 64 + p))).collect();
        parents.sort_unstable();
        let body = EntryBody {
            org: org.org(),
            parents,
            author: keys.id(),
            time: Hlc(now << 16),
            cert: Certificate::DeviceRevoked {
                device: DeviceId(id32("dev", i)),
            },
        };
        strangers.push(entry::sign(&keys, &body));
    }
    entries.extend(strangers);
    sent += entries.iter().map(Vec::len).sum::<usize>();
    for chunk in entries.chunks(100) {
        let items = chunk.to_vec();
        send(
            &mut s,
            Msg::Items {
                doc: DocId::Org,
                items,
            },
        );
    }
    // Envelopes of 4 KiB on missing parents for 1,000 random workspaces, then 40 of 64 KiB
    // (2.5 MiB) in the workspace about to be shared.
    let orphan = |s: &Sim, ws: WorkspaceId, i: u32, size: usize| {
        let header = Header {
            org: org.org(),
            workspace: ws,
            author: attacker,
            parents: vec![EnvelopeId(id32("pp", i))],
            org_heads: org.heads(),
            time: Hlc((now + 1) << 16),
            epoch: Some(EnvelopeId(id32("epoch", i))),
            kind: Kind::Content,
        };
        envelope::sign(&s.devs[1].keys, &header, &vec![0x5a; size])
    };
    for i in 0..1_000u32 {
        let ws = WorkspaceId(*id32("junk", i).first_chunk().unwrap());
        let e = orphan(&s, ws, i, 4 << 10);
        sent += e.len();
        send(
            &mut s,
            Msg::Items {
                doc: DocId::Workspace(ws),
                items: vec![e],
            },
        );
    }
    let ws = s.ws;
    for i in 0..40u32 {
        let e = orphan(&s, ws, 10_000 + i, 64 << 10);
        sent += e.len();
        send(
            &mut s,
            Msg::Items {
                doc: DocId::Workspace(ws),
                items: vec![e],
            },
        );
    }
    s.queue.clear();
    let (org_held, ws_held) = held_bytes(&s, victim);
    let r = s.devs[victim].engine.replica();
    let share = crate::trust::log::HELD_LIMITS.owner_bytes();
    let ws_share = crate::workspace::log::HELD_LIMITS.owner_bytes();
    eprintln!(
        "orphans sent: {sent} bytes; held by the victim: organization {org_held} bytes \
         ({} entries, bound {share} per author and for all strangers), workspaces {ws_held} bytes in {} logs (bound {ws_share} \
         each), {} bytes in all",
        r.org.holding().len(),
        r.workspaces.len(),
        org_held + ws_held,
    );
    assert!(sent > 8 << 20, "{sent} bytes sent");
    let (mine, theirs) = (
        r.org.holding().owner_usage(&Some(attacker)).1,
        r.org.holding().owner_usage(&None).1,
    );
    assert!(mine > 0 && mine <= share, "{mine}");
    assert!(
        theirs > 0 && theirs <= share,
        "strangers share one account: {theirs}"
    );
    assert_eq!(mine + theirs, org_held);
    assert!(r.workspaces.len() <= MAX_TENTATIVE);
    for l in r.workspaces.values() {
        assert!(l.holding().bytes() <= ws_share);
    }
    let in_ws = r.workspaces.get(&ws).map_or(0, |l| l.holding().bytes());
    assert!(in_ws > 0 && in_ws <= ws_share, "{in_ws}");
    assert!(org_held + ws_held <= 2 * share + MAX_TENTATIVE * ws_share);
    // The real share arrives in full, next to the attacker's orphans in the same workspace.
    let epoch = s.share_with_all();
    s.run();
    let content = s.write(0, Kind::Content, Some(epoch), b"real".to_vec());
    s.run();
    let r = s.devs[victim].engine.replica();
    assert!(r.knows(DocId::Workspace(ws), blake3::hash(&content).as_bytes()));
    assert_eq!(s.heads(victim), s.heads(0));
    assert!(r.workspaces.get(&ws).unwrap().holding().bytes() > 0);
    // The wall clock passes the age bound: the orphans are dropped, counted, and no longer part
    // of the reconciliation set (a peer would be asked for them again).
    let orphan_id = blake3::hash(&entries[0]).as_bytes().to_owned();
    assert!(r.holds(DocId::Org, &orphan_id));
    s.now += MAX_HELD_AGE_MS;
    let later = s.now;
    s.devs[victim].engine.handle_timeout(later);
    s.queue.clear();
    let r = s.devs[victim].engine.replica();
    assert_eq!(held_bytes(&s, victim), (0, 0));
    assert!(r.org.holding().expired() > 0);
    assert!(!r.holds(DocId::Org, &orphan_id));
    assert!(
        !r.reconcile_set(DocId::Org)
            .iter()
            .any(|(_, id)| *id == orphan_id)
    );
    assert_eq!(s.heads(victim), s.heads(0));
}

#[test]
fn a_peer_past_its_budget_of_held_bytes_has_its_orphans_taken_out_in_every_log() {
    let mut s = Sim::new(3, 24);
    let (attacker, victim) = (s.devs[1].keys.id(), 2);
    // The victim's engine with a budget of 512 KiB per peer.
    let budget = 512 << 10;
    let org = s.devs[0].engine.replica().org.clone();
    let mut r = Replica::new(org.org());
    let entries: Vec<Vec<u8>> = org.entries().map(|e| e.bytes().to_vec()).collect();
    assert!(
        std::sync::Arc::make_mut(&mut r.org)
            .ingest(entries)
            .is_clean()
    );
    let cfg = Config {
        held_per_peer: budget,
        ..Config::device(s.devs[victim].keys.id())
    };
    s.devs[victim].engine = Engine::new(cfg, r, 0);
    s.connect_all();
    s.run();
    let now = s.now;
    let orphan = |s: &Sim, ws: WorkspaceId, i: u32| {
        let header = Header {
            org: org.org(),
            workspace: ws,
            author: attacker,
            parents: vec![EnvelopeId(id32("pp", i))],
            org_heads: org.heads(),
            time: Hlc((now + 1) << 16),
            epoch: Some(EnvelopeId(id32("epoch", i))),
            kind: Kind::Content,
        };
        envelope::sign(&s.devs[1].keys, &header, &vec![0x5a; 16 << 10])
    };
    // 16 KiB orphans, 8 in each of 20 workspaces: 2.5 MiB, within every log's bounds.
    let mut sent = 0;
    for w in 0..20u32 {
        let ws = WorkspaceId(*id32("budget", w).first_chunk().unwrap());
        let items: Vec<Vec<u8>> = (0..8).map(|i| orphan(&s, ws, w * 8 + i)).collect();
        sent += items.iter().map(Vec::len).sum::<usize>();
        let msg = Msg::Items {
            doc: DocId::Workspace(ws),
            items,
        };
        s.devs[victim]
            .engine
            .handle_message(now, attacker, &msg.encode());
    }
    s.queue.clear();
    let (org_held, ws_held) = held_bytes(&s, victim);
    let e = &s.devs[victim].engine;
    eprintln!(
        "orphans sent: {sent} bytes; held: {ws_held} bytes (budget {budget}), {} items taken out",
        e.stats().held_over_budget
    );
    assert_eq!(org_held, 0);
    assert!(ws_held > 0 && ws_held <= budget, "{ws_held}");
    assert_eq!(e.held_charged(&attacker), ws_held);
    assert!(e.stats().held_over_budget > 0);
    // What was taken out is not reported held: it would be asked for again.
    let last = WorkspaceId(*id32("budget", 19).first_chunk().unwrap());
    let dropped = blake3::hash(&orphan(&s, last, 19 * 8))
        .as_bytes()
        .to_owned();
    assert!(!e.replica().holds(DocId::Workspace(last), &dropped));
    // A real share still arrives; the window ends with the age bound.
    let epoch = s.share_with_all();
    s.run();
    let content = s.write(0, Kind::Content, Some(epoch), b"real".to_vec());
    s.run();
    let r = s.devs[victim].engine.replica();
    assert!(r.knows(DocId::Workspace(s.ws), blake3::hash(&content).as_bytes()));
    s.now += MAX_HELD_AGE_MS;
    let later = s.now;
    s.devs[victim].engine.handle_timeout(later);
    assert_eq!(s.devs[victim].engine.held_charged(&attacker), 0);
}
