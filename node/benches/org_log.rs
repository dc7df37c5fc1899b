//! Cold start of a device joining a big organization: decode, batch-verify and admit an
//! organization log of N users with 2 devices each, then compute the effective state.
//!
//! `CLOISON_BENCH_USERS` sets N (default 20,000: 60,001 entries). In the same run it measures a
//! baseline: verifying the same signatures one by one with `verify_strict`, so the figure comes
//! with a ratio that does not depend on how busy the machine is.
//!
//! Run: `cargo bench -p cloison-node --bench org_log`.

use std::hint::black_box;
use std::time::Duration;

use cloison_node::testkit::Fixture;
use cloison_node::trust::{OrgLog, Profile};
use criterion::{Criterion, criterion_group, criterion_main};

fn build(users: usize) -> (cloison_node::trust::OrgId, Vec<Vec<u8>>) {
    let mut f = Fixture::new(42);
    for i in 0..users {
        let m = f.add_user_named(
            Profile::Standard,
            &format!("user {i}"),
            &format!("user{i}@example.org"),
        );
        // The second device is added by the user's first device.
        f.add_device(m);
    }
    (f.org.org(), f.entries())
}

fn bench(c: &mut Criterion) {
    let users: usize = std::env::var("CLOISON_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (org, entries) = build(users);
    let bytes: usize = entries.iter().map(Vec::len).sum();
    eprintln!(
        "org log: {} users, {} entries, {:.1} MB ({} B/entry)",
        users,
        entries.len(),
        bytes as f64 / 1e6,
        bytes / entries.len()
    );
    let mut g = c.benchmark_group("org_log_cold_start");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function(format!("ingest+state {} entries", entries.len()), |b| {
        b.iter(|| {
            let mut log = OrgLog::new(org);
            let r = log.ingest(entries.clone());
            assert_eq!(r.admitted.len(), entries.len());
            black_box(log.state().users.len())
        })
    });
    g.bench_function(
        format!("decode+verify_batch {} entries", entries.len()),
        |b| {
            b.iter(|| {
                let u: Vec<_> = entries
                    .iter()
                    .map(|e| cloison_node::trust::entry::decode(e.clone()).unwrap())
                    .collect();
                black_box(cloison_node::trust::entry::verify_batch(u).len())
            })
        },
    );
    // Baseline in the same run: one `verify_strict` per entry, nothing else.
    let parsed: Vec<(
        ed25519_dalek::VerifyingKey,
        ed25519_dalek::Signature,
        Vec<u8>,
    )> = entries
        .iter()
        .map(|e| {
            let body: cloison_node::trust::EntryBody =
                postcard::from_bytes(&e[1..e.len() - 64]).unwrap();
            let key = ed25519_dalek::VerifyingKey::from_bytes(&body.author.0).unwrap();
            let sig = ed25519_dalek::Signature::from_slice(&e[e.len() - 64..]).unwrap();
            let mut msg = cloison_node::trust::entry::ENTRY_DOMAIN.to_vec();
            msg.extend_from_slice(&e[..e.len() - 64]);
            (key, sig, msg)
        })
        .collect();
    g.bench_function(format!("baseline verify_strict x{}", entries.len()), |b| {
        b.iter(|| {
            for (k, s, m) in &parsed {
                k.verify_strict(m, s).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
