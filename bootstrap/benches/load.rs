//! Load on one relay: a real `cloison-bootstrap run` process on 127.0.0.1 and N light libp2p
//! clients in this process (the `node::net` shell with a device key each, no engine), every one
//! a contributor of one workspace, pushing signed content envelopes for a bounded time.
//!
//! Each client keeps at most `WINDOW` of its envelopes unconfirmed and sends them `BATCH` per
//! `Items` message. An envelope counts as ingested when the relay offers it on to another client
//! (it persists before it transmits), which gives the ingest latency (send to first offer seen,
//! same clock). At the end the relay's own count of stored envelopes is checked against what was
//! sent. Prints envelopes/s ingested, p50/p99 latency, the relay's peak RSS (VmHWM).
//!
//! Not run in CI. Run: `cargo bench -p cloison-bootstrap --bench load` (env:
//! `CLOISON_BENCH_CLIENTS`, default 200; `CLOISON_BENCH_SECS`, default 60).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloison_node::net::{Multiaddr, Net, NetConfig, NetEvent, addr_peer};
use cloison_node::relay::wire::{RelayMsg, log_parts};
use cloison_node::sync::{DocId, Msg};
use cloison_node::testkit::Fixture;
use cloison_node::trust::author::{Writer, relay_authorized};
use cloison_node::trust::{DeviceKeys, Hlc, Profile};
use cloison_node::workspace::envelope::{self, Header, Kind};
use cloison_node::workspace::keyring::{self, Actor};
use cloison_node::workspace::{EnvelopeId, Role, WorkspaceId};

const BATCH: usize = 4;
const WINDOW: usize = 16;

struct Shared {
    /// Envelope id → (sent at, client).
    sent: Mutex<HashMap<[u8; 32], (Instant, usize)>>,
    /// Latency of each envelope, when first offered on.
    seen: Mutex<HashMap<[u8; 32], Duration>>,
    /// Confirmed envelopes per client.
    confirmed: Vec<AtomicUsize>,
    /// One-way messages the clients saw unacknowledged (the relay's queue was full, or a
    /// timeout): a light client does not resend, so their envelopes are not stored.
    send_failed: AtomicUsize,
    stop: std::sync::atomic::AtomicBool,
}

fn copy(k: &DeviceKeys) -> DeviceKeys {
    let (s, x) = k.secrets();
    DeviceKeys::from_secrets(&s, &x)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status(data: &std::path::Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cloison-bootstrap"))
        .args(["status", "--json", "--data"])
        .arg(data)
        .output()
        .expect("status");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn vm_hwm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .to_owned()
}

#[allow(clippy::too_many_lines)]
fn main() {
    let clients = env("CLOISON_BENCH_CLIENTS", 200) as usize;
    let secs = env("CLOISON_BENCH_SECS", 60);
    let data = tempfile::tempdir().expect("tempdir");
    let relay_keys = cloison_node::relay::identity(data.path()).expect("identity");

    // The organization: an admin, `clients` users, the relay authorized, one workspace shared
    // with every user as contributor.
    let t0 = Instant::now();
    let mut f = Fixture::new(7);
    for _ in 0..clients {
        f.add_user(Profile::Standard);
    }
    {
        let mut w = Writer {
            keys: &f.admin.keys,
            org_key: &f.org_key,
            clock: &mut f.clock,
        };
        let e = w.draft(
            &f.org,
            900_000,
            relay_authorized(relay_keys.id(), vec!["/ip4/127.0.0.1/tcp/1".into()]),
        );
        assert!(f.org.ingest(vec![e]).is_clean());
    }
    let ws = WorkspaceId([9; 16]);
    let mut rng = rand::rng();
    let mut clock = f.clock.clone();
    let mut me = Actor {
        keys: &f.admin.keys,
        clock: &mut clock,
    };
    let (mut log, mut setup) =
        keyring::create(&mut rng, &f.org, &mut me, f.admin.user, 1_000_000, ws).expect("create");
    let admin_secret = f.admin.secret.clone();
    let ring = keyring::Keyring::open(&log, &f.org, f.admin.user, |g| {
        (g == 0).then(|| admin_secret.clone())
    });
    for (i, m) in f.members.iter().enumerate() {
        setup.extend(
            keyring::share(
                &mut rng,
                &mut log,
                &f.org,
                &mut me,
                1_000_010 + 10 * i as u64,
                &ring,
                m.user,
                Role::Contributor,
            )
            .expect("share"),
        );
    }
    let epoch = log.state(&f.org).current_epoch().map(|e| e.id);
    let heads = log.heads();
    let start_time = log
        .envelopes()
        .iter()
        .map(|e| e.header().time.0)
        .max()
        .unwrap_or(0);
    let org_heads = f.org.state().heads.clone();
    let org_id = f.org.org();
    let entries = f.entries();
    eprintln!(
        "setup: {} users, {} entries, {} setup envelopes in {:.1?}",
        clients,
        entries.len(),
        setup.len(),
        t0.elapsed()
    );

    let mut relay = Command::new(env!("CARGO_BIN_EXE_cloison-bootstrap"))
        .args(["run", "--listen", "/ip4/127.0.0.1/tcp/0", "--data"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("relay");
    let pid = relay.id();
    let line = BufReader::new(relay.stdout.take().expect("stdout"))
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    let addr: Multiaddr = line
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .expect("relay address");
    let relay_id = addr_peer(&addr).expect("relay id");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let shared = Arc::new(Shared {
        sent: Mutex::new(HashMap::new()),
        seen: Mutex::new(HashMap::new()),
        confirmed: (0..clients).map(|_| AtomicUsize::new(0)).collect(),
        send_failed: AtomicUsize::new(0),
        stop: false.into(),
    });
    let member_keys: Vec<DeviceKeys> = f.members.iter().map(|m| copy(&m.keys)).collect();
    let admin_keys = copy(&f.admin.keys);
    let report = rt.block_on(async {
        // The admin brings the workspace's setup envelopes.
        let (h, mut rx) = Net::start(
            &admin_keys,
            NetConfig {
                listen: vec![],
                ..NetConfig::loopback()
            },
        )
        .expect("net");
        h.set_allowed([relay_id].into()).await.expect("allow");
        h.dial(addr.clone()).await.expect("dial");
        loop {
            match rx.recv().await {
                Some(NetEvent::Connected(_)) => {
                    let m = RelayMsg::Intro {
                        org: org_id.0,
                        heads: vec![],
                    };
                    h.send(relay_id, m.encode()).await.expect("intro");
                }
                Some(NetEvent::Message { bytes, .. }) => match RelayMsg::decode(&bytes) {
                    Ok(RelayMsg::Welcome) => break,
                    Ok(RelayMsg::LogWanted { .. }) => {
                        for m in log_parts(entries.iter().map(Vec::as_slice)) {
                            h.send(relay_id, m.encode()).await.expect("log");
                        }
                    }
                    _ => {}
                },
                Some(_) => {}
                None => panic!("admin network stopped"),
            }
        }
        for chunk in setup.chunks(64) {
            let m = Msg::Items {
                doc: DocId::Workspace(ws),
                items: chunk.to_vec(),
            };
            h.send(relay_id, m.encode()).await.expect("setup");
        }
        let want = setup.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        while status(data.path())["organizations"][0]["envelopes"].as_u64() != Some(want) {
            assert!(
                Instant::now() < deadline,
                "setup envelopes did not reach the relay"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = h.shutdown().await;
        eprintln!("relay holds the setup; starting {clients} clients");

        let mut tasks = Vec::new();
        for (i, keys) in member_keys.into_iter().enumerate() {
            let shared = shared.clone();
            let entries = entries.clone();
            let addr = addr.clone();
            let heads = heads.clone();
            let org_heads = org_heads.clone();
            tasks.push(tokio::spawn(async move {
                let (h, mut rx) = Net::start(
                    &keys,
                    NetConfig {
                        listen: vec![],
                        ..NetConfig::loopback()
                    },
                )
                .expect("net");
                h.set_allowed([relay_id].into()).await.expect("allow");
                h.dial(addr).await.expect("dial");
                let mut welcomed = false;
                let mut parents = heads;
                let mut time = start_time + 1_000 + i as u64;
                let mut mine = 0usize;
                let mut sent_count = 0usize;
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                loop {
                    tokio::select! {
                        ev = rx.recv() => match ev {
                            Some(NetEvent::Connected(_)) => {
                                let m = RelayMsg::Intro { org: org_id.0, heads: vec![] };
                                let _ = h.send(relay_id, m.encode()).await;
                            }
                            Some(NetEvent::Message { bytes, .. }) => {
                                let relay_msg = RelayMsg::decode(&bytes);
                                if relay_msg == Ok(RelayMsg::Welcome) {
                                    welcomed = true;
                                } else if let Ok(RelayMsg::LogWanted { .. }) = relay_msg {
                                    for m in log_parts(entries.iter().map(Vec::as_slice)) {
                                        let _ = h.send(relay_id, m.encode()).await;
                                    }
                                } else if let Ok(Msg::Offer { ids, .. }) = Msg::decode(&bytes) {
                                    let now = Instant::now();
                                    let sent = shared.sent.lock().expect("lock");
                                    let mut seen = shared.seen.lock().expect("lock");
                                    for id in ids {
                                        if let Some((at, who)) = sent.get(&id)
                                            && !seen.contains_key(&id)
                                        {
                                            seen.insert(id, now - *at);
                                            shared.confirmed[*who].fetch_add(1, Ordering::Relaxed);
                                        }
                                    }
                                }
                            }
                            Some(NetEvent::SendFailed { .. }) => {
                                shared.send_failed.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(_) => {}
                            None => break,
                        },
                        _ = tick.tick() => {
                            if shared.stop.load(Ordering::Relaxed) {
                                break;
                            }
                            let confirmed = shared.confirmed[i].load(Ordering::Relaxed);
                            if !welcomed || mine - confirmed.min(mine) + BATCH > WINDOW {
                                continue;
                            }
                            let mut items = Vec::with_capacity(BATCH);
                            let mut ids = Vec::with_capacity(BATCH);
                            for _ in 0..BATCH {
                                time += 1;
                                let hd = Header {
                                    org: org_id,
                                    workspace: ws,
                                    author: keys.id(),
                                    parents: parents.clone(),
                                    org_heads: org_heads.clone(),
                                    time: Hlc(time),
                                    epoch,
                                    kind: Kind::Content,
                                };
                                let b = envelope::sign(&keys, &hd, &[0x5a; 256]);
                                let id = *blake3::hash(&b).as_bytes();
                                parents = vec![EnvelopeId(id)];
                                ids.push(id);
                                items.push(b);
                            }
                            {
                                let now = Instant::now();
                                let mut sent = shared.sent.lock().expect("lock");
                                for id in &ids {
                                    sent.insert(*id, (now, i));
                                }
                            }
                            mine += BATCH;
                            sent_count += BATCH;
                            let m = Msg::Items { doc: DocId::Workspace(ws), items };
                            let _ = h.send(relay_id, m.encode()).await;
                        }
                    }
                }
                let _ = h.shutdown().await;
                sent_count
            }));
        }
        let t = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let sent_at_stop = shared.sent.lock().expect("lock").len();
        let seen_at_stop = shared.seen.lock().expect("lock").len();
        let elapsed = t.elapsed();
        let hwm = vm_hwm(pid);
        shared.stop.store(true, Ordering::Relaxed);
        let mut sent_total = 0;
        for task in tasks {
            sent_total += task.await.unwrap_or(0);
        }
        // Let the relay finish what is in flight, then compare counts.
        let want = (setup.len() + sent_total) as u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut stored = 0;
        while Instant::now() < deadline {
            stored = status(data.path())["organizations"][0]["envelopes"]
                .as_u64()
                .unwrap_or(0);
            if stored >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        (
            sent_at_stop,
            seen_at_stop,
            elapsed,
            hwm,
            sent_total,
            stored,
            want,
        )
    });
    let (sent_at_stop, seen_at_stop, elapsed, hwm, sent_total, stored, want) = report;
    let mut lat: Vec<Duration> = shared
        .seen
        .lock()
        .expect("lock")
        .values()
        .copied()
        .collect();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!("clients {clients}, {secs} s, batch {BATCH}, window {WINDOW} per client");
    println!(
        "ingested (offered on) during the run: {seen_at_stop} of {sent_at_stop} sent: {:.0} envelopes/s",
        seen_at_stop as f64 / elapsed.as_secs_f64()
    );
    println!(
        "ingest latency (send to first offer seen): p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        pct(0.50),
        pct(0.99),
        lat.last().copied().unwrap_or_default()
    );
    println!("relay peak memory: {hwm}");
    println!(
        "counts: sent {sent_total} + {} setup = {want}; relay stores {stored}: {}",
        want - sent_total as u64,
        if stored == want { "match" } else { "MISMATCH" }
    );
    println!(
        "messages the clients saw unacknowledged: {} (a light client does not resend)",
        shared.send_failed.load(Ordering::Relaxed)
    );
    let _ = relay.kill();
    let _ = relay.wait();
}
