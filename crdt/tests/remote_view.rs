//! The view kept across remote changes: a remote content write patches it in place, anything
//! else re-derives it; either way it equals a fresh materialization and the sender's tree.

mod common;
use std::time::Instant;

use cloison_crdt::{EntryId, Manifest, RemoteChange, SeededIds, Workspace, shard_of};
use common::*;

/// Replica 0 holds `n` files in a few folders, replica 1 received them all and has a view.
fn two_replicas(n: usize) -> (Vec<Replica>, Vec<EntryId>) {
    let mut rs = Replica::cluster(2);
    let dirs: Vec<EntryId> = (0..4)
        .map(|i| rs[0].folder(EntryId::ROOT, &format!("dir{i}"), T0))
        .collect();
    let files: Vec<EntryId> = (0..n)
        .map(|i| {
            let f = rs[0].file(dirs[i % dirs.len()], &format!("f{i:05}.txt"), T0 + 1);
            rs[0].write(f, i as u64, T0 + 2);
            f
        })
        .collect();
    sync_all(&mut rs);
    rs[1].tree();
    (rs, files)
}

fn assert_view_fresh(r: &mut Replica) {
    let kept = r.tree();
    assert!(r.ws.view_is_consistent());
    let fresh = r.ws.rematerialize();
    assert_eq!(*kept, *fresh, "kept view equals a fresh materialization");
    assert_eq!(kept.canonical_bytes(), fresh.canonical_bytes());
}

#[test]
fn remote_content_write_patches_the_view() {
    let (mut rs, files) = two_replicas(60);
    for (round, &f) in files.iter().step_by(7).enumerate() {
        let v = rs[0].write(f, 1000 + round as u64, T0 + 100 + round as i64);
        let before = rs[1].tree();
        drop(before);
        send(&mut rs, 0, 1);
        assert_eq!(
            rs[1].ws.stat(f).and_then(|n| n.current).map(|c| c.id),
            Some(v)
        );
        assert_view_fresh(&mut rs[1]);
        assert_eq!(rs[0].tree().digest(), rs[1].tree().digest());
    }
    // Several writes of several files in one batch, one of them written twice in a row.
    rs[0].write(files[1], 7001, T0 + 500);
    rs[0].write(files[2], 7002, T0 + 501);
    rs[0].write(files[1], 7003, T0 + 502);
    rs[1].tree();
    send(&mut rs, 0, 1);
    assert_view_fresh(&mut rs[1]);
    assert_eq!(rs[0].tree().digest(), rs[1].tree().digest());
}

#[test]
fn remote_write_while_the_tree_is_held() {
    let (mut rs, files) = two_replicas(10);
    let held = rs[1].tree();
    rs[0].write(files[3], 99, T0 + 100);
    send(&mut rs, 0, 1);
    // The held tree is a snapshot: it still shows the old version.
    assert_ne!(
        held.get(files[3]).and_then(|n| n.current.clone()),
        rs[1].ws.stat(files[3]).and_then(|n| n.current)
    );
    assert_view_fresh(&mut rs[1]);
    assert_eq!(rs[0].tree().digest(), rs[1].tree().digest());
}

#[test]
fn concurrent_writes_fall_back_and_show_the_copy() {
    let (mut rs, files) = two_replicas(10);
    let f = files[4];
    rs[0].tree();
    rs[0].write(f, 501, T0 + 100);
    rs[1].write(f, 502, T0 + 101);
    rs[0].tree();
    rs[1].tree();
    sync_all(&mut rs);
    for r in rs.iter_mut() {
        assert_view_fresh(r);
        let copies = r
            .tree()
            .nodes()
            .filter(|n| n.conflict_of == Some(f) && n.is_virtual)
            .count();
        assert_eq!(copies, 1, "one conflict copy");
    }
    assert_converged(&mut rs);
    // Resolving the conflict remotely (a write superseding both heads) removes the copy.
    rs[1].write(f, 503, T0 + 200);
    rs[0].tree();
    send(&mut rs, 1, 0);
    assert_view_fresh(&mut rs[0]);
    assert_converged(&mut rs);
}

#[test]
fn remote_delete_rename_move_and_resurrection_re_derive() {
    let (mut rs, files) = two_replicas(12);
    let dir = rs[0].tree().get(files[0]).unwrap().parent;
    let other = rs[0].tree().get(files[1]).unwrap().parent;
    // Delete.
    rs[0].ws.delete(files[0], T0 + 100).unwrap();
    rs[1].tree();
    send(&mut rs, 0, 1);
    assert!(rs[1].ws.stat(files[0]).is_none());
    assert_view_fresh(&mut rs[1]);
    // Edit beats a concurrent delete: the deleted file comes back with a remote write.
    rs[1].ws.delete(files[2], T0 + 110).unwrap();
    rs[0].write(files[2], 77, T0 + 111);
    rs[1].tree();
    send(&mut rs, 0, 1);
    assert!(rs[1].ws.stat(files[2]).is_some());
    assert_view_fresh(&mut rs[1]);
    // Rename and move.
    rs[0].ws.rename(files[3], "renamed.txt", T0 + 120).unwrap();
    rs[0].ws.move_entry(files[5], other, T0 + 121).unwrap();
    rs[1].tree();
    send(&mut rs, 0, 1);
    assert_view_fresh(&mut rs[1]);
    // A remote delete of a whole folder.
    rs[0].ws.delete(dir, T0 + 130).unwrap();
    rs[1].tree();
    send(&mut rs, 0, 1);
    assert_view_fresh(&mut rs[1]);
    sync_all(&mut rs);
    assert_converged(&mut rs);
}

/// Timing, not a test: `cargo test -p cloison-crdt --release --test remote_view -- --ignored
/// --nocapture`. Receiving device with `CRDT_TIMING_FILES` (default 20,000) files: one remote
/// content write applied, then `tree()`.
#[test]
#[ignore]
fn timing_remote_write_then_tree() {
    let n: usize = std::env::var("CRDT_TIMING_FILES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let mut ids = SeededIds::new(9);
    let mut a = Workspace::create(b"timing-a", cloison_crdt::DEFAULT_SHARDS, T0).unwrap();
    let ann = author("ann", "laptop", 1);
    let dirs: Vec<EntryId> = (0..100)
        .map(|i| {
            a.create_folder(&mut ids, EntryId::ROOT, &format!("dir{i:03}"), T0)
                .unwrap()
        })
        .collect();
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let f = a
            .create_file(&mut ids, dirs[i % dirs.len()], &format!("f{i:06}.txt"), T0)
            .unwrap();
        a.write_content(
            &mut ids,
            f,
            Manifest::synthetic(i as u64, &[4096], T0),
            &ann,
            T0,
        )
        .unwrap();
        files.push(f);
    }
    a.commit_local();
    let mut b = Workspace::load(b"timing-b", &a.save()).unwrap();
    b.tree();
    let rounds = 200;
    for held in [false, true] {
        let mut apply_ns = Vec::with_capacity(rounds);
        let mut total_ns = Vec::with_capacity(rounds);
        for r in 0..rounds {
            let f = files[(r * 7919) % n];
            let t = T0 + 1000 + r as i64;
            a.write_content(
                &mut ids,
                f,
                Manifest::synthetic(r as u64, &[100], t),
                &ann,
                t,
            )
            .unwrap();
            let changes: Vec<RemoteChange> = a
                .commit_local()
                .into_iter()
                .map(RemoteChange::from)
                .collect();
            let keep = held.then(|| b.tree());
            let t0 = Instant::now();
            b.apply_remote(changes).unwrap();
            let t1 = Instant::now();
            let tree = b.tree();
            let t2 = Instant::now();
            assert!(tree.get(f).is_some());
            drop(keep);
            apply_ns.push((t1 - t0).as_nanos());
            total_ns.push((t2 - t0).as_nanos());
        }
        apply_ns.sort_unstable();
        total_ns.sort_unstable();
        let ms = |v: &[u128], q: usize| v[v.len() * q / 100] as f64 / 1e6;
        println!(
            "timing: files={n} tree_held_by_caller={held} apply_remote median={:.3} ms; \
             apply_remote+tree median={:.3} ms p90={:.3} ms",
            ms(&apply_ns, 50),
            ms(&total_ns, 50),
            ms(&total_ns, 90)
        );
    }
    assert_eq!(a.tree().digest(), b.tree().digest());
}

#[test]
fn remote_resolution_of_a_conflict_arriving_before_the_promoted_copy() {
    // A remote write resolving a conflict promotes the copy (a real entry, maybe in another
    // shard) and writes a version superseding both heads. If the version arrives alone, the
    // entry has one head again but the view still shows its virtual copy: no patch.
    let (mut rs, files) = two_replicas(16);
    let mut exercised = false;
    for (i, &f) in files.iter().enumerate() {
        rs[0].write(f, 600 + i as u64, T0 + 100);
        rs[1].write(f, 700 + i as u64, T0 + 101);
        sync_all(&mut rs);
        let copy = rs[1]
            .tree()
            .nodes()
            .find(|n| n.conflict_of == Some(f) && n.is_virtual)
            .map(|n| n.id)
            .unwrap();
        if shard_of(copy, SHARDS) == shard_of(f, SHARDS) {
            continue;
        }
        rs[0].write(f, 800 + i as u64, T0 + 200);
        let changes = rs[0].commit();
        let (first, rest): (Vec<_>, Vec<_>) = changes
            .into_iter()
            .partition(|c| c.shard == shard_of(f, SHARDS));
        rs[1].tree();
        rs[1]
            .ws
            .apply_remote(first.into_iter().map(RemoteChange::from))
            .unwrap();
        assert_view_fresh(&mut rs[1]);
        rs[1]
            .ws
            .apply_remote(rest.into_iter().map(RemoteChange::from))
            .unwrap();
        assert_view_fresh(&mut rs[1]);
        assert_converged(&mut rs);
        exercised = true;
        break;
    }
    assert!(exercised, "some copy lives in another shard than its entry");
}
