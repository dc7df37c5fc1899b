//! Reconciliation cost between two sync engines in memory: two up-to-date peers reconnecting, and
//! a peer catching up on the last 1% of a workspace.
//!
//! `CLOISON_BENCH_ENVELOPES` sets the workspace size (default 100,000 envelopes). Bytes on the
//! wire are printed beside the times. Run: `cargo bench -p cloison-node --bench sync`.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use cloison_node::sync::{Config, DocId, Engine, Replica};
use cloison_node::testkit::Fixture;
use cloison_node::trust::{DeviceKeys, Hlc, OrgLog, Profile};
use cloison_node::workspace::envelope::{self, Header, Kind};
use cloison_node::workspace::keyring::{self, Actor};
use cloison_node::workspace::{EnvelopeId, Role, WorkspaceId};
use criterion::{Criterion, criterion_group, criterion_main};

struct Setup {
    org: Arc<OrgLog>,
    keys: [DeviceKeys; 2],
    ws: WorkspaceId,
    envelopes: Vec<Vec<u8>>,
}

fn setup(n: usize) -> Setup {
    let mut f = Fixture::new(9);
    let m = f.add_user(Profile::Standard);
    let (user, other) = (f.members[m].user, f.members.remove(m).keys);
    let o = f.admin;
    let org = f.org;
    let mut rng = f.rng;
    let mut clock = f.clock;
    let ws = WorkspaceId([3; 16]);
    let mut me = Actor {
        keys: &o.keys,
        clock: &mut clock,
    };
    let (mut log, mut envelopes) =
        keyring::create(&mut rng, &org, &mut me, o.user, 10_000, ws).unwrap();
    let ring = keyring::Keyring::open(&log, &org, o.user, |g| (g == 0).then(|| o.secret.clone()));
    envelopes.extend(
        keyring::share(
            &mut rng,
            &mut log,
            &org,
            &mut me,
            10_010,
            &ring,
            user,
            Role::Contributor,
        )
        .unwrap(),
    );
    let epoch = log.state(&org).current_epoch().map(|e| e.id);
    let mut parents = log.heads();
    let mut time = log
        .envelopes()
        .iter()
        .map(|e| e.header().time)
        .max()
        .unwrap();
    for _ in 0..n {
        time = Hlc(time.0 + 1);
        let h = Header {
            org: org.org(),
            workspace: ws,
            author: o.keys.id(),
            parents,
            org_heads: org.state().heads.clone(),
            time,
            epoch,
            kind: Kind::Content,
        };
        let b = envelope::sign(&o.keys, &h, &[7u8; 64]);
        parents = vec![EnvelopeId(*blake3::hash(&b).as_bytes())];
        envelopes.push(b);
    }
    Setup {
        org: Arc::new(org),
        keys: [o.keys, other],
        ws,
        envelopes,
    }
}

fn engine(s: &Setup, i: usize, upto: usize) -> Engine {
    let mut r = Replica::new(s.org.org());
    r.org = Arc::clone(&s.org);
    let rep = r.ingest(DocId::Workspace(s.ws), s.envelopes[..upto].to_vec());
    assert_eq!(rep.admitted.len(), upto);
    Engine::new(Config::device(s.keys[i].id()), r, 0)
}

/// Connects two engines and runs messages until none is left; returns the bytes exchanged.
fn sync(a: &mut Engine, b: &mut Engine) -> u64 {
    let (ida, idb) = (a.stats(), b.stats());
    let (id_a, id_b) = (a.me(), b.me());
    a.handle_connected(1, id_b);
    b.handle_connected(1, id_a);
    let mut q: VecDeque<(bool, Vec<u8>)> = VecDeque::new();
    loop {
        while let Some(t) = a.poll_transmit() {
            q.push_back((true, t.bytes));
        }
        while let Some(t) = b.poll_transmit() {
            q.push_back((false, t.bytes));
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        let Some((from_a, bytes)) = q.pop_front() else {
            break;
        };
        if from_a {
            b.handle_message(2, id_a, &bytes);
        } else {
            a.handle_message(2, id_b, &bytes);
        }
    }
    a.handle_disconnected(id_b);
    b.handle_disconnected(id_a);
    (a.stats().bytes_sent - ida.bytes_sent) + (b.stats().bytes_sent - idb.bytes_sent)
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("CLOISON_BENCH_ENVELOPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let s = setup(n);
    let total = s.envelopes.len();
    let missing = (n / 100).max(1);
    let mut g = c.benchmark_group("reconcile");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let mut a = engine(&s, 0, total);
    let mut b = engine(&s, 1, total);
    let bytes = sync(&mut a, &mut b);
    eprintln!("up to date, {total} envelopes each: {bytes} bytes");
    g.bench_function(format!("up_to_date {total}"), |bch| {
        bch.iter(|| black_box(sync(&mut a, &mut b)))
    });
    let mut late = engine(&s, 1, total - missing);
    let bytes = sync(&mut a, &mut late);
    eprintln!("catch up {missing} of {total}: {bytes} bytes");
    g.bench_function(format!("catch_up {missing} of {total}"), |bch| {
        bch.iter_batched(
            || engine(&s, 1, total - missing),
            |mut late| black_box(sync(&mut a, &mut late)),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();

    // Envelopes: seal (payload) + sign one, and decode + batch-verify many.
    let mut g = c.benchmark_group("envelope");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let keys = &s.keys[0];
    let ek = cloison_node::seal::EpochKey::from_bytes(&[5; 32]);
    let header = Header {
        org: s.org.org(),
        workspace: s.ws,
        author: keys.id(),
        parents: vec![EnvelopeId([1; 32])],
        org_heads: s.org.state().heads.clone(),
        time: Hlc(1 << 40),
        epoch: Some(EnvelopeId([2; 32])),
        kind: Kind::Content,
    };
    let plain = vec![0x42u8; 1024];
    let mut rng = rand::rng();
    g.throughput(criterion::Throughput::Bytes(1024));
    g.bench_function("seal+sign 1 KiB", |b| {
        b.iter(|| {
            let aad = envelope::header_bytes(&header);
            let p = cloison_node::seal::seal_payload(&ek, &s.ws.0, &aad, &plain, &mut rng).unwrap();
            black_box(envelope::sign(keys, &header, &p))
        })
    });
    let batch: Vec<Vec<u8>> = s.envelopes.iter().take(10_000).cloned().collect();
    g.throughput(criterion::Throughput::Elements(batch.len() as u64));
    g.bench_function(format!("decode+verify {} envelopes", batch.len()), |b| {
        b.iter(|| {
            let mut cache = cloison_node::trust::entry::KeyCache::default();
            let u: Vec<_> = batch
                .iter()
                .map(|e| {
                    envelope::decode(e.clone(), &mut cache)
                        .map_err(|_| ())
                        .unwrap()
                })
                .collect();
            black_box(envelope::verify_batch(u).len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
