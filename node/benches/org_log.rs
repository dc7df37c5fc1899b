//! Cold start of a device joining a big organization: decode, batch-verify and admit an
//! organization log of N users with 2 devices each, then compute the effective state.
//!
//! `CLOISON_BENCH_USERS` sets N (default 20,000: 40,001 entries, since a `UserAdded` carries the
//! user's first device, and 80,001 signatures, since every device certificate carries the new
//! device's proof of possession). In the same run it measures a baseline: verifying the same
//! signatures (entries and proofs) one by one with `verify_strict`, so the figure comes with a
//! ratio that does not depend on how busy the machine is. A third figure is the same cold start
//! once one user in 20 had a device revoked (the revocations last), where every entry's
//! verdict is computed (`trust::verdicts`) instead of the shortcut for a log without removals.
//! A second group measures a hostile admin's log (`hostile_settings`): many concurrent profile
//! settings of one user, read by every admin-only entry of that user.
//!
//! Run: `cargo bench -p cloison-node --bench org_log`.

use std::hint::black_box;
use std::time::Duration;

use cloison_node::testkit::Fixture;
use cloison_node::trust::{OrgLog, Profile};
use criterion::{Criterion, criterion_group, criterion_main};

/// The organization, and the same one after the admin revoked the second device of one user in
/// `revoke_every` (the revocations come last).
fn build(
    users: usize,
    revoke_every: usize,
) -> (cloison_node::trust::OrgId, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut f = Fixture::new(42);
    let mut phones = Vec::new();
    for i in 0..users {
        let m = f.add_user_named(
            Profile::Standard,
            &format!("user {i}"),
            &format!("user{i}@example.org"),
        );
        // The second device is added by the user's first device.
        let phone = f.add_device(m);
        if i % revoke_every == 0 {
            phones.push(phone.id());
        }
    }
    let plain = f.entries();
    f.revoke_devices(&phones);
    (f.org.org(), plain, f.entries())
}

/// A hostile admin's log: it sets one admin user's profile `k` times to STANDARD, each
/// followed by a promotion back to ADMIN, all `k` pairs concurrent; the user then writes `k`
/// admin-only entries, each on the previous one and up to 63 more promotions. Every such entry
/// reads up to 2k settings: the cost of judging the admin profile on the kept past.
fn hostile_settings(k: usize) -> (cloison_node::trust::OrgId, Vec<Vec<u8>>) {
    use cloison_node::trust::{Certificate, EntryBody, EntryId, Hlc, author, entry};
    let mut f = Fixture::new(43);
    let u = f.add_user(Profile::Admin);
    let org = f.org.org();
    let heads = f.org.heads();
    let t = f.org.max_time(&heads).0;
    let id = |b: &[u8]| EntryId(*blake3::hash(b).as_bytes());
    let sign =
        |keys: &cloison_node::trust::DeviceKeys, mut parents: Vec<EntryId>, time: u64, cert| {
            parents.sort_unstable();
            let body = EntryBody {
                org,
                parents,
                author: keys.id(),
                time: Hlc(time),
                cert,
            };
            entry::sign(keys, &body)
        };
    let user = f.members[u].user;
    let mut out = f.entries();
    let mut promotions = Vec::new();
    for i in 0..k as u64 {
        let set = |profile| Certificate::ProfileChanged { user, profile };
        let d = sign(
            &f.admin.keys,
            heads.clone(),
            t + 1 + 2 * i,
            set(Profile::Standard),
        );
        let p = sign(
            &f.admin.keys,
            vec![id(&d)],
            t + 2 + 2 * i,
            set(Profile::Admin),
        );
        promotions.push(id(&p));
        out.extend([d, p]);
    }
    let (mut prev, mut next, mut time) = (None, 0, t + 2 * k as u64 + 10);
    for _ in 0..k {
        let mut parents: Vec<EntryId> = prev.into_iter().collect();
        while parents.len() < 64 && next < promotions.len() {
            parents.push(promotions[next]);
            next += 1;
        }
        time += 1;
        let relay = cloison_node::trust::DeviceKeys::generate(&mut f.rng).id();
        let cert = author::relay_authorized(relay, vec!["/ip4/127.0.0.1/tcp/1".into()]);
        let e = sign(&f.members[u].keys, parents, time, cert);
        prev = Some(id(&e));
        out.push(e);
    }
    (org, out)
}

fn bench(c: &mut Criterion) {
    let users: usize = std::env::var("CLOISON_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (org, entries, with_revocations) = build(users, 20);
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
    // The same with one user in 20 having had a device revoked: removal wins and the rights
    // on the kept past are then computed for every entry (`trust::verdicts`).
    let revocations = with_revocations.len() - entries.len();
    g.bench_function(
        format!(
            "ingest+state {} entries, {revocations} revocations",
            with_revocations.len()
        ),
        |b| {
            b.iter(|| {
                let mut log = OrgLog::new(org);
                let r = log.ingest(with_revocations.clone());
                assert_eq!(r.admitted.len(), with_revocations.len());
                black_box(log.state().devices.len())
            })
        },
    );
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
    // Baseline in the same run: one `verify_strict` per signature (entries and proofs of
    // possession), nothing else.
    let parsed: Vec<(
        ed25519_dalek::VerifyingKey,
        ed25519_dalek::Signature,
        Vec<u8>,
    )> = entries.iter().flat_map(|e| baseline_items(e)).collect();
    g.bench_function(format!("baseline verify_strict x{}", parsed.len()), |b| {
        b.iter(|| {
            for (k, s, m) in &parsed {
                k.verify_strict(m, s).unwrap();
            }
        })
    });
    g.finish();
    let mut g = c.benchmark_group("org_log_hostile_settings");
    g.sample_size(10);
    for k in [800, 1600] {
        let (org, entries) = hostile_settings(k);
        g.bench_function(
            format!("ingest+state, {k} concurrent demotion/promotion pairs"),
            |b| {
                b.iter(|| {
                    let mut log = OrgLog::new(org);
                    let r = log.ingest(entries.clone());
                    assert!(r.is_clean());
                    black_box(log.state().dropped.len())
                })
            },
        );
    }
    g.finish();
}

/// The signatures of one entry, each as (key, signature, domain-prefixed message): the entry's
/// own, and its device's proof of possession if it certifies a device.
fn baseline_items(
    e: &[u8],
) -> Vec<(
    ed25519_dalek::VerifyingKey,
    ed25519_dalek::Signature,
    Vec<u8>,
)> {
    use cloison_node::trust::pop::{POP_DOMAIN, PopFor, pop_message};
    let body: cloison_node::trust::EntryBody = postcard::from_bytes(&e[1..e.len() - 64]).unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&body.author.0).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&e[e.len() - 64..]).unwrap();
    let mut msg = cloison_node::trust::entry::ENTRY_DOMAIN.to_vec();
    msg.extend_from_slice(&e[..e.len() - 64]);
    let mut out = vec![(key, sig, msg)];
    if let Some((d, first)) = body.cert.device_added() {
        let for_ = match first {
            Some(user_key) => PopFor::First {
                user: &d.user,
                user_key,
            },
            None => PopFor::By {
                certifier: &body.author,
            },
        };
        let mut msg = POP_DOMAIN.to_vec();
        msg.extend_from_slice(&pop_message(&body.org, &d.device, &d.exchange_key, for_));
        out.push((
            ed25519_dalek::VerifyingKey::from_bytes(&d.device.0).unwrap(),
            ed25519_dalek::Signature::from_slice(&d.pop).unwrap(),
            msg,
        ));
    }
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
