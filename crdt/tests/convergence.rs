//! Property: 3–5 replicas run random concurrent edits (creates, renames, moves into each other,
//! deletes, writes), exchange changes in random orders and batches, and end identical, with no
//! cycle, no orphan, no name clash, and every written version still in history. After every
//! local op and every remote batch, the view kept (patched in place or re-derived) equals a
//! fresh materialization.

mod common;
use std::collections::{BTreeMap, BTreeSet};

use cloison_crdt::{EntryId, Kind, LocalChange, RemoteChange, Tree, VersionId, check_name};
use common::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    CreateFile {
        parent: usize,
        name: usize,
    },
    CreateFolder {
        parent: usize,
        name: usize,
    },
    Rename {
        target: usize,
        name: usize,
    },
    Move {
        target: usize,
        dest: usize,
    },
    Delete {
        target: usize,
    },
    Write {
        target: usize,
        seed: u64,
    },
    /// Deliver some undelivered changes to the replica, shuffled, in batches.
    Receive {
        seed: u64,
    },
}

const NAMES: [&str; 5] = ["a", "b", "c.txt", "d.txt", "e"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<usize>(), 0..NAMES.len()).prop_map(|(parent, name)| Op::CreateFile { parent, name }),
        3 => (any::<usize>(), 0..NAMES.len()).prop_map(|(parent, name)| Op::CreateFolder { parent, name }),
        2 => (any::<usize>(), 0..NAMES.len()).prop_map(|(target, name)| Op::Rename { target, name }),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(target, dest)| Op::Move { target, dest }),
        1 => any::<usize>().prop_map(|target| Op::Delete { target }),
        3 => (any::<usize>(), any::<u64>()).prop_map(|(target, seed)| Op::Write { target, seed }),
        3 => any::<u64>().prop_map(|seed| Op::Receive { seed }),
    ]
}

struct Mix(u64);
impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Delivers the changes of `log` that `delivered` lacks to replica `r`: a random subset (all if
/// `all`), shuffled, in random batch sizes.
fn deliver(
    r: &mut Replica,
    log: &[LocalChange],
    delivered: &mut BTreeSet<usize>,
    mix: &mut Mix,
    all: bool,
) {
    let mut todo: Vec<usize> = (0..log.len()).filter(|i| !delivered.contains(i)).collect();
    if !all {
        todo.retain(|_| mix.below(2) == 0);
    }
    for i in (1..todo.len()).rev() {
        todo.swap(i, mix.below(i + 1));
    }
    while !todo.is_empty() {
        let n = 1 + mix.below(todo.len().min(6));
        let batch: Vec<usize> = todo.drain(..n).collect();
        // Keep a view, so the batch may patch it, then compare with a fresh materialization.
        r.ws.tree();
        r.ws.apply_remote(batch.iter().map(|&i| RemoteChange::from(log[i].clone())))
            .unwrap();
        delivered.extend(batch);
        let kept = r.ws.tree();
        assert!(r.ws.view_is_consistent());
        let fresh = r.ws.rematerialize();
        assert_eq!(
            *kept, *fresh,
            "the view kept across a remote batch is fresh"
        );
        assert_eq!(kept.canonical_bytes(), fresh.canonical_bytes());
    }
}

fn check_invariants(t: &Tree) {
    let mut seen = 0;
    for (path, n) in t.walk() {
        seen += 1;
        check_name(&n.name).unwrap();
        assert_eq!(
            t.resolve(&path).map(|x| x.id),
            Some(n.id),
            "path {path} resolves to its node"
        );
        assert_eq!(
            t.get(n.parent).map(|p| p.kind),
            Some(Kind::Folder),
            "parent of {path} is a folder"
        );
    }
    assert_eq!(
        seen + 1,
        t.len(),
        "every node is reachable from the root (no cycle, no orphan)"
    );
    for folder in t.walk().iter().map(|(_, n)| n.id).chain([EntryId::ROOT]) {
        let names: Vec<_> = t.children(folder).map(|n| n.name.clone()).collect();
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "no two entries share a name in a folder"
        );
    }
}

fn run(n_replicas: usize, ops: Vec<(usize, Op)>, final_seed: u64) {
    let mut rs = Replica::cluster(n_replicas);
    let mut log: Vec<LocalChange> = Vec::new();
    let mut delivered: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n_replicas];
    let mut written: BTreeMap<VersionId, EntryId> = BTreeMap::new();
    for (step, (who, op)) in ops.into_iter().enumerate() {
        let who = who % n_replicas;
        // Clocks are skewed per replica, so local times disagree with arrival order.
        let now = T0 + step as i64 * 1000 + (who as i64 * 7919) % 5000;
        let r = &mut rs[who];
        let tree = r.tree();
        let all: Vec<_> = tree
            .walk()
            .into_iter()
            .map(|(_, n)| (n.id, n.kind))
            .collect();
        let folders: Vec<EntryId> = std::iter::once(EntryId::ROOT)
            .chain(all.iter().filter(|e| e.1 == Kind::Folder).map(|e| e.0))
            .collect();
        let pick = |k: usize| all.get(k % all.len().max(1)).map(|e| e.0);
        let folder = |k: usize| folders[k % folders.len()];
        match op {
            Op::CreateFile { parent, name } => {
                let _ =
                    r.ws.create_file(&mut r.ids, folder(parent), NAMES[name], now);
            }
            Op::CreateFolder { parent, name } => {
                let _ =
                    r.ws.create_folder(&mut r.ids, folder(parent), NAMES[name], now);
            }
            Op::Rename { target, name } => {
                if let Some(t) = pick(target) {
                    let _ = r.ws.rename(t, NAMES[name], now);
                }
            }
            Op::Move { target, dest } => {
                if let Some(t) = pick(target) {
                    let _ = r.ws.move_entry(t, folder(dest), now);
                }
            }
            Op::Delete { target } => {
                if let Some(t) = pick(target) {
                    let _ = r.ws.delete(t, now);
                }
            }
            Op::Write { target, seed } => {
                let files: Vec<EntryId> = all
                    .iter()
                    .filter(|e| e.1 == Kind::File)
                    .map(|e| e.0)
                    .collect();
                if let Some(&t) = files.get((target) % files.len().max(1)) {
                    let m = cloison_crdt::Manifest::synthetic(seed, &[1, 2, 3], now);
                    let author = r.author.clone();
                    if let Ok(v) = r.ws.write_content(&mut r.ids, t, m, &author, now) {
                        written.insert(v, t);
                    }
                }
            }
            Op::Receive { seed } => {
                let mut mix = Mix(seed);
                deliver(r, &log, &mut delivered[who], &mut mix, false);
            }
        }
        assert!(
            r.ws.view_is_consistent(),
            "a patched view differs from a fresh materialization"
        );
        // Each replica's own changes count as delivered to itself.
        let start = log.len();
        log.extend(r.commit());
        delivered[who].extend(start..log.len());
    }
    let mut mix = Mix(final_seed);
    for (r, d) in rs.iter_mut().zip(delivered.iter_mut()) {
        deliver(r, &log, d, &mut mix, true);
    }
    assert_converged(&mut rs);
    if std::env::var("CRDT_STATS").is_ok() {
        let t = rs[0].tree();
        let copies = t
            .walk()
            .iter()
            .filter(|(_, n)| n.conflict_of.is_some())
            .count();
        let suffixed = t
            .walk()
            .iter()
            .filter(|(_, n)| n.name.contains(" ("))
            .count();
        eprintln!(
            "STATS nodes={} copies={copies} suffixed={suffixed} log={}",
            t.len(),
            log.len()
        );
    }
    for r in rs.iter_mut() {
        check_invariants(&r.tree());
        assert!(r.ws.missing_deps().is_empty());
        for (v, e) in &written {
            let history = r.ws.versions(*e).unwrap();
            assert!(
                history.iter().any(|i| i.version.id == *v),
                "version {v:?} of {e:?} is reachable"
            );
        }
    }
    // A saved and reloaded replica agrees (the load path reads conflicts too).
    let saved = rs[1].ws.save();
    let mut reloaded = cloison_crdt::Workspace::load(b"reloaded", &saved).unwrap();
    assert_eq!(
        reloaded.tree().canonical_bytes(),
        rs[0].tree().canonical_bytes()
    );
    // A fresh replica fed everything in one batch agrees too.
    let mut fresh = cloison_crdt::Workspace::join(b"fresh", SHARDS).unwrap();
    fresh
        .apply_remote(log.iter().cloned().map(RemoteChange::from))
        .unwrap();
    assert_eq!(
        fresh.tree().canonical_bytes(),
        rs[0].tree().canonical_bytes()
    );
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge(
        n in 3usize..=5,
        ops in prop::collection::vec((0usize..5, op()), 1..80),
        final_seed in any::<u64>(),
    ) {
        run(n, ops, final_seed);
    }
}

/// A fixed, denser scenario: many moves into each other between syncs.
#[test]
fn dense_moves_converge() {
    let mut ops = Vec::new();
    let mut m = Mix(42);
    for i in 0..300 {
        let who = m.below(4);
        let op = match m.below(8) {
            0 | 1 => Op::CreateFolder {
                parent: m.below(64),
                name: m.below(NAMES.len()),
            },
            2 => Op::CreateFile {
                parent: m.below(64),
                name: m.below(NAMES.len()),
            },
            3 | 4 => Op::Move {
                target: m.below(64),
                dest: m.below(64),
            },
            5 => Op::Write {
                target: m.below(64),
                seed: i,
            },
            6 => Op::Rename {
                target: m.below(64),
                name: m.below(NAMES.len()),
            },
            _ => Op::Receive { seed: m.next() },
        };
        ops.push((who, op));
    }
    run(4, ops, 7);
}
