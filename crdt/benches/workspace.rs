//! Benchmarks of the workspace document at scale: build, save, load, apply remote changes,
//! materialize, resolve a path.
//!
//! Knobs: `CRDT_BENCH_SHARDS` (default `DEFAULT_SHARDS`) and `CRDT_BENCH_ENTRIES` (default
//! 100,000 under `cargo bench`, 2,000 otherwise, so `cargo test --benches` stays a fast smoke
//! run). A tenth of the entries are folders. One-shot
//! figures (build, save size, apply throughput) print as `figure: key=value` lines; criterion
//! measures load, materialize, resolve and batched apply.

use std::hint::black_box;
use std::time::Instant;

use cloison_crdt::{Author, EntryId, LocalChange, Manifest, RemoteChange, SeededIds, Workspace};
use criterion::{BatchSize, Criterion};

const T0: i64 = 1_700_000_000_000;

fn entries() -> usize {
    let full = std::env::args().any(|a| a == "--bench");
    std::env::var("CRDT_BENCH_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 100_000 } else { 2_000 })
}

fn author() -> Author {
    Author {
        device: [1; 32],
        user_name: "ann".into(),
        device_label: "laptop".into(),
    }
}

struct Built {
    ws: Workspace,
    files: Vec<EntryId>,
    folders: Vec<EntryId>,
    deep_path: String,
}

/// `n` entries: n/10 folders (sqrt-ish fan-out, two levels), the rest files with one version.
fn build(n: usize) -> Built {
    let mut ids = SeededIds::new(1);
    let shards = std::env::var("CRDT_BENCH_SHARDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cloison_crdt::DEFAULT_SHARDS);
    let mut ws = Workspace::create(b"bench-a", shards, T0).unwrap();
    let n_folders = (n / 10).max(2);
    let top = (n_folders as f64).sqrt().ceil() as usize;
    let mut folders = Vec::with_capacity(n_folders);
    let mut tops = Vec::new();
    for i in 0..top {
        let f = ws
            .create_folder(&mut ids, EntryId::ROOT, &format!("dir{i:04}"), T0)
            .unwrap();
        tops.push(f);
        folders.push(f);
    }
    let mut i = 0;
    while folders.len() < n_folders {
        let parent = tops[i % top];
        let f = ws
            .create_folder(&mut ids, parent, &format!("sub{i:05}"), T0)
            .unwrap();
        folders.push(f);
        i += 1;
    }
    let author = author();
    let mut files = Vec::with_capacity(n - n_folders);
    for j in 0..n - n_folders {
        let parent = folders[top + j % (n_folders - top).max(1)];
        let f = ws
            .create_file(&mut ids, parent, &format!("file{j:06}.txt"), T0 + j as i64)
            .unwrap();
        ws.write_content(
            &mut ids,
            f,
            Manifest::synthetic(j as u64, &[4096], T0 + j as i64),
            &author,
            T0 + j as i64,
        )
        .unwrap();
        files.push(f);
        if j % 1000 == 0 {
            ws.commit_local();
        }
    }
    ws.commit_local();
    let tree = ws.tree();
    let deep_path = tree.path_of(*files.last().unwrap()).unwrap();
    Built {
        ws,
        files,
        folders,
        deep_path,
    }
}

/// `count` single-op changes made by another device (renames, moves, content writes).
fn remote_changes(saved: &[u8], b: &Built, count: usize) -> Vec<LocalChange> {
    let mut ws = Workspace::load(b"bench-b", saved).unwrap();
    let mut ids = SeededIds::new(2);
    let author = Author {
        device: [2; 32],
        user_name: "bob".into(),
        device_label: "desktop".into(),
    };
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let f = b.files[(i * 7919) % b.files.len()];
        let t = T0 + 10_000_000 + i as i64;
        let r = match i % 3 {
            0 => ws.rename(f, &format!("renamed{i:06}.txt"), t).map(|_| ()),
            1 => ws
                .move_entry(f, b.folders[(i * 31) % b.folders.len()], t)
                .map(|_| ()),
            _ => ws
                .write_content(
                    &mut ids,
                    f,
                    Manifest::synthetic(i as u64, &[100], t),
                    &author,
                    t,
                )
                .map(|_| ()),
        };
        if r.is_ok() {
            out.extend(ws.commit_local());
        }
    }
    out
}

fn main() {
    let n = entries();
    let mut c = Criterion::default().sample_size(10).configure_from_args();

    let t = Instant::now();
    let mut b = build(n);
    let build_s = t.elapsed().as_secs_f64();
    println!(
        "figure: entries={n} folders={} build_s={build_s:.2} build_entries_per_s={:.0}",
        b.folders.len(),
        n as f64 / build_s
    );

    let t = Instant::now();
    let saved = b.ws.save();
    println!(
        "figure: save_s={:.3} saved_bytes={} bytes_per_entry={:.1}",
        t.elapsed().as_secs_f64(),
        saved.len(),
        saved.len() as f64 / n as f64
    );

    let t = Instant::now();
    let mut loaded = Workspace::load(b"bench-c", &saved).unwrap();
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let tree = loaded.tree();
    println!(
        "figure: load_s={load_s:.3} first_materialize_s={:.3} nodes={}",
        t.elapsed().as_secs_f64(),
        tree.len()
    );
    assert_eq!(tree.digest(), b.ws.tree().digest());
    drop(tree);

    let n_changes = (n / 10).max(100);
    let changes = remote_changes(&saved, &b, n_changes);
    let bytes: usize = changes.iter().map(|c| c.bytes.len()).sum();
    println!(
        "figure: remote_changes={} avg_change_bytes={:.0}",
        changes.len(),
        bytes as f64 / changes.len() as f64
    );
    let batch: Vec<RemoteChange> = changes.iter().cloned().map(RemoteChange::from).collect();
    let t = Instant::now();
    loaded.apply_remote(batch.clone()).unwrap();
    let apply_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let tree = loaded.tree();
    let materialize_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let digest = tree.digest();
    println!(
        "figure: apply_batch_s={apply_s:.3} apply_changes_per_s={:.0} materialize_after_s={materialize_s:.3} canonical_digest_s={:.3}",
        changes.len() as f64 / apply_s,
        t.elapsed().as_secs_f64()
    );
    drop(tree);
    let mut one_by_one = Workspace::load(b"bench-d", &saved).unwrap();
    let k = changes.len().min(2000);
    let t = Instant::now();
    for ch in batch.iter().take(k) {
        one_by_one.apply_remote([ch.clone()]).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "figure: apply_one_by_one_changes={k} s={s:.3} changes_per_s={:.0}",
        k as f64 / s
    );
    black_box(digest);

    c.bench_function("load", |bch| {
        bch.iter(|| black_box(Workspace::load(b"bench-c", &saved).unwrap()))
    });
    c.bench_function("materialize", |bch| {
        bch.iter(|| black_box(loaded.rematerialize()))
    });
    let path = b.deep_path.clone();
    let tree = b.ws.tree();
    c.bench_function("resolve_path", |bch| {
        bch.iter(|| black_box(tree.resolve(black_box(&path))))
    });
    c.bench_function("apply_remote_batch", |bch| {
        bch.iter_batched(
            || Workspace::load(b"bench-e", &saved).unwrap(),
            |mut ws| {
                ws.apply_remote(batch.clone()).unwrap();
                ws
            },
            BatchSize::PerIteration,
        )
    });
    c.final_summary();
}
