//! Devices talking: real `cloison run` daemons on 127.0.0.1, driven with the `cloison` command
//! (which goes through each daemon's control socket). Writes on one device appear,
//! byte-identical, on the others; a stopped or killed device catches up; strangers, revoked
//! devices and garbage are refused without stopping anything.

use std::path::Path;
use std::time::Duration;

use cloison_node::keystore::Keystore;
use cloison_node::net::{Net, NetConfig, NetEvent};
use cloison_node::node::Node;
use cloison_node::trust::DeviceId;
use cloison_tests::{PASSPHRASE, TestHome, connected, status, team, wait_until};

const WAIT: Duration = Duration::from_secs(120);

/// A home's device keys (for a raw libp2p peer with that identity).
fn keys_of(home: &TestHome) -> cloison_node::trust::DeviceKeys {
    Keystore::open(&home.path().join("keys.cloison"), PASSPHRASE.as_bytes())
        .unwrap()
        .device()
}

/// A home's device id, as its daemon reports it.
fn device_of(home: &TestHome) -> DeviceId {
    let v = home.run(&["org", "show", "--json"]).json();
    DeviceId::from_hex(v["this_device"].as_str().unwrap()).unwrap()
}

fn random_file(path: &Path, len: usize, seed: u8) {
    let mut b = vec![0u8; len];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut b);
    b[0] = seed;
    std::fs::write(path, b).unwrap();
}

fn share(admin: &TestHome, ws: &str, users: &[&str]) {
    admin.run(&["workspace", "create", ws]).success();
    for u in users {
        admin
            .run(&[
                "workspace",
                "share",
                ws,
                &format!("{u}@clinique.example"),
                "--role",
                "contributor",
            ])
            .success();
    }
}

#[test]
fn a_file_put_on_a_is_listed_and_identical_on_b_and_c() {
    let t = team(&["ann", "ben", "cat"]);
    let a = t[0].start(&[]);
    let _b = t[1].start(&[a.addr()]);
    let _c = t[2].start(&[a.addr()]);
    wait_until("A is linked to B and C", WAIT, || connected(&t[0]) == 2);
    share(&t[0], "Docs", &["ben", "cat"]);
    let src = t[0].path().join("scan.bin");
    random_file(&src, 3 << 20, 1);
    t[0].run(&["put", "Docs", src.to_str().unwrap(), "imaging/scan.bin"])
        .success();
    let want = t[0].ls("Docs", "imaging");
    assert_eq!(want.len(), 1);
    for h in &t[1..] {
        wait_until("the file is listed", WAIT, || {
            h.ls("Docs", "imaging") == want
        });
        // Right after the listing: `get` waits for blocks still on their way.
        let out = h.path().join("got.bin");
        h.run(&[
            "get",
            "Docs",
            "imaging/scan.bin",
            out.to_str().unwrap(),
            "--wait",
            "120",
        ])
        .success();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());
    }
    let s = status(&t[0]);
    assert_eq!(s["daemon"], true);
    assert_eq!(s["workspaces"][0]["peers"], 2, "{s}");
    assert!(s["workspaces"][0]["last_sync_ms"].is_u64(), "{s}");
}

#[test]
fn a_stopped_device_catches_up_on_200_files() {
    let t = team(&["ann", "ben"]);
    let a = t[0].start(&[]);
    let b = t[1].start(&[a.addr()]);
    wait_until("A is linked to B", WAIT, || connected(&t[0]) == 1);
    share(&t[0], "Notes", &["ben"]);
    wait_until("B holds the workspace", WAIT, || {
        t[1].run(&["ls", "Notes"]).ok
    });
    b.stop();
    let dir = t[0].path().join("notes");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..200 {
        std::fs::write(dir.join(format!("n{i:03}.txt")), format!("note {i}\n")).unwrap();
    }
    t[0].run(&["put", "Notes", dir.to_str().unwrap(), "notes"])
        .success();
    let want = t[0].ls("Notes", "notes");
    assert_eq!(want.len(), 200);
    let _b = t[1].start(&[a.addr()]);
    wait_until("B lists the 200 notes", WAIT, || {
        t[1].ls("Notes", "notes") == want
    });
    let out = t[1].path().join("out");
    wait_until("B has every block", WAIT, || {
        t[1].run(&["get", "Notes", "notes", out.to_str().unwrap()])
            .ok
    });
    for i in [0, 57, 199] {
        let name = format!("n{i:03}.txt");
        assert_eq!(
            std::fs::read_to_string(out.join(&name)).unwrap(),
            format!("note {i}\n")
        );
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 200);
}

/// `kill -9` of the receiving device in the middle of a 500 MiB workspace; after a restart it
/// completes, every file's hash matches, and nothing is stored twice.
#[test]
fn a_device_killed_mid_transfer_completes_after_restart() {
    const FILES: usize = 50;
    const SIZE: usize = 10 << 20;
    let t = team(&["ann", "ben"]);
    let a = t[0].start(&[]);
    let mut b = t[1].start(&[a.addr()]);
    wait_until("A is linked to B", WAIT, || connected(&t[0]) == 1);
    share(&t[0], "Imaging", &["ben"]);
    let dir = t[0].path().join("big");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..FILES {
        random_file(&dir.join(format!("scan-{i:02}.bin")), SIZE, i as u8);
    }
    t[0].run(&["put", "Imaging", dir.to_str().unwrap(), "scans"])
        .success();
    let want = t[0].ls("Imaging", "scans");
    assert_eq!(want.len(), FILES);
    let total = status(&t[0])["blocks_stored"].as_u64().unwrap();
    // Kill B once it holds some of the blocks but not all.
    wait_until("B has received part of the workspace", WAIT, || {
        let s = status(&t[1]);
        let got = s["blocks_stored"].as_u64().unwrap_or(0);
        got >= total / 10
    });
    let before = status(&t[1])["blocks_stored"].as_u64().unwrap();
    b.kill();
    assert!(
        before < total,
        "B finished before the kill: make the transfer larger"
    );
    let _b = t[1].start(&[a.addr()]);
    wait_until("B lists every file", WAIT, || {
        t[1].ls("Imaging", "scans") == want
    });
    wait_until("B holds every block", Duration::from_secs(300), || {
        let s = status(&t[1]);
        s["blocks_pending"] == 0 && s["blocks_stored"].as_u64() == Some(total)
    });
    let out = t[1].path().join("out");
    t[1].run(&["get", "Imaging", "scans", out.to_str().unwrap()])
        .success();
    for i in 0..FILES {
        let name = format!("scan-{i:02}.bin");
        let got = blake3::hash(&std::fs::read(out.join(&name)).unwrap());
        let src = blake3::hash(&std::fs::read(dir.join(&name)).unwrap());
        assert_eq!(got, src, "{name}");
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), FILES);
}

#[test]
fn strangers_are_refused_at_connection_and_revoked_devices_only_listened_to_then_cut_off() {
    let t = team(&["ann", "ben"]);
    let other = team(&["xavier"]);
    let a = t[0].start(&[]);
    let _b = t[1].start(&[a.addr()]);
    wait_until("A is linked to B", WAIT, || connected(&t[0]) == 1);
    // A device of another organization dials A (as a raw libp2p peer that allows A: our own
    // daemon would not even dial a stranger).
    let x_keys = keys_of(&other[0]);
    let a_dev = device_of(&t[0]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let x = rt.block_on(async {
        let (net, _events) = Net::start(&x_keys, NetConfig::loopback()).unwrap();
        net.set_allowed([a_dev].into_iter().collect())
            .await
            .unwrap();
        net.dial(a.addr().parse().unwrap()).await.unwrap();
        net
    });
    let peers = |h: &TestHome| h.run(&["peers", "--json"]).json()["peers"].clone();
    wait_until("A lists the stranger as refused", WAIT, || {
        peers(&t[0]).as_array().is_some_and(|a| {
            a.iter().any(|p| {
                p["state"] == "refused" && p["reason"] == "not a device of this organization"
            })
        })
    });
    rt.block_on(x.shutdown()).unwrap();
    assert_eq!(connected(&t[0]), 1, "the stranger is not linked");
    // B is revoked while connected: A only listens to it (sends it nothing, takes from it only
    // what would make it count again), then cuts it off when that link ends.
    t[0].run(&["revoke", "device", "ben-dev"]).success();
    wait_until("A lists B as listening", WAIT, || {
        peers(&t[0]).as_array().is_some_and(|a| {
            a.iter()
                .any(|p| p["label"] == "ben-dev" && p["state"] == "listening")
        })
    });
    assert_eq!(connected(&t[0]), 0, "A syncs with nobody");
    wait_until("A lists B as refused and revoked", WAIT, || {
        peers(&t[0]).as_array().is_some_and(|a| {
            a.iter().any(|p| {
                p["label"] == "ben-dev"
                    && p["state"] == "refused"
                    && p["reason"] == "revoked device"
            })
        })
    });
    assert_eq!(connected(&t[0]), 0);
    let log = t[0].log();
    assert!(log.contains("connection refused"), "{log}");
}

#[test]
fn corrupted_messages_from_a_member_device_do_not_stop_the_daemon() {
    let t = team(&["ann", "ben", "mallory"]);
    let mut a = t[0].start(&[]);
    let _b = t[1].start(&[a.addr()]);
    wait_until("A is linked to B", WAIT, || connected(&t[0]) == 1);
    share(&t[0], "Docs", &["ben"]);
    // Mallory's device is a real member of the organization, driven as a raw libp2p peer that
    // sends garbage instead of sync messages.
    let keys = keys_of(&t[2]);
    let held = Node::open(t[1].path(), PASSPHRASE.as_bytes()).err();
    assert!(held.is_some(), "B's store is held by its daemon");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (net, mut events) = Net::start(&keys, NetConfig::loopback()).unwrap();
        let a_dev = device_of(&t[0]);
        net.set_allowed([a_dev].into_iter().collect())
            .await
            .unwrap();
        net.dial(a.addr().parse().unwrap()).await.unwrap();
        tokio::time::timeout(WAIT, async {
            while let Some(ev) = events.recv().await {
                if ev == NetEvent::Connected(a_dev) {
                    break;
                }
            }
        })
        .await
        .unwrap();
        let mut valid_prefix = vec![1u8, 0, 1];
        valid_prefix.extend_from_slice(&[0xff; 40]);
        for bytes in [
            vec![],
            vec![0x00],
            vec![0xff; 1000],
            valid_prefix,
            (0..=255u8).cycle().take(100_000).collect(),
        ] {
            net.send(a_dev, bytes).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        net.shutdown().await.unwrap();
    });
    assert!(a.is_running(), "the daemon survived");
    // And it still syncs.
    let src = t[0].path().join("after.txt");
    std::fs::write(&src, "still here\n").unwrap();
    t[0].run(&["put", "Docs", src.to_str().unwrap(), "after.txt"])
        .success();
    wait_until("B gets the file written after the garbage", WAIT, || {
        t[1].ls("Docs", "/").contains_key("after.txt")
    });
    let log = t[0].log();
    assert!(log.contains("undecodable"), "{log}");
}

#[test]
fn sigterm_stops_the_daemon_cleanly_and_commands_then_open_the_store() {
    let t = team(&["ann"]);
    let mut a = t[0].start(&[]);
    t[0].run(&["workspace", "create", "Docs"]).success();
    let sock = t[0].path().join("control.sock");
    assert!(sock.exists());
    assert!(
        a.terminate(Duration::from_secs(20)),
        "exit status 0 after SIGTERM"
    );
    assert!(!sock.exists(), "the socket is removed");
    // Without a daemon the command opens the store itself: what the daemon wrote is there.
    let v = t[0].run(&["workspace", "list", "--json"]).json();
    assert_eq!(v["workspaces"][0]["name"], "Docs");
    assert!(t[0].run(&["peers"]).failure().contains("no daemon"));
}

/// Every byte between two daemons goes through a recording proxy; a file with known plaintext
/// (its content, its name, the workspace's name, the users' names) syncs, and none of it appears
/// on the wire or in either store.
#[test]
fn plaintext_canaries_never_cross_the_wire_or_reach_the_stores() {
    let t = team(&["ann", "ben"]);
    let a = t[0].start(&[]);
    // A proxy on 127.0.0.1 that forwards to A and records both directions.
    let a_port: u16 = a.addr().split('/').nth(4).unwrap().parse().unwrap();
    let peer = a.addr().split("/p2p/").nth(1).unwrap().to_owned();
    let (proxy_port, wire) = cloison_tests::recording_proxy(a_port);
    let via_proxy = format!("/ip4/127.0.0.1/tcp/{proxy_port}/p2p/{peer}");
    let _b = t[1].start(&[&via_proxy]);
    wait_until("A is linked to B through the proxy", WAIT, || {
        connected(&t[0]) == 1
    });
    let ws = "Workspace-Canary-Name";
    share(&t[0], ws, &["ben"]);
    let content = "CANARY-CONTENT-d41d8cd98f00b204e980 patient record";
    let name = "canary-file-name-7f3a.txt";
    let src = t[0].path().join(name);
    std::fs::write(&src, content.repeat(100)).unwrap();
    t[0].run(&["put", ws, src.to_str().unwrap(), name])
        .success();
    let out = t[1].path().join("got.txt");
    wait_until("B reads the file", WAIT, || {
        t[1].run(&["get", ws, name, out.to_str().unwrap()]).ok
    });
    assert_eq!(std::fs::read_to_string(&out).unwrap(), content.repeat(100));
    let wire = wire.lock().unwrap().clone();
    assert!(wire.len() > 10_000, "the proxy carried the sync");
    // The search finds what is in clear: multistream-select negotiates Noise in clear text.
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&wire, b"/noise"), "the recording sees clear bytes");
    let canaries = [
        content.as_bytes(),
        name.as_bytes(),
        ws.as_bytes(),
        b"ben@clinique.example",
        b"Clinique",
    ];
    for c in canaries {
        assert!(
            !contains(&wire, c),
            "{:?} crossed the wire in clear",
            String::from_utf8_lossy(c)
        );
        for h in &t {
            let db = std::fs::read(h.path().join("store.redb")).unwrap();
            assert!(
                !contains(&db, c),
                "{:?} is in a store",
                String::from_utf8_lossy(c)
            );
            for e in std::fs::read_dir(h.path().join("blocks")).unwrap() {
                let pack = std::fs::read(e.unwrap().path()).unwrap();
                assert!(
                    !contains(&pack, c),
                    "{:?} is in a block pack",
                    String::from_utf8_lossy(c)
                );
            }
        }
    }
}

/// LAN discovery: two daemons in their own network namespaces joined by a veth pair, started
/// with their defaults (every interface, mDNS on) and no address of each other, find each other
/// and sync. Needs root for `ip netns`; says so and passes trivially without it.
#[test]
fn devices_on_a_lan_find_each_other_by_mdns() {
    let lan = match cloison_tests::Lan::new() {
        Ok(l) => l,
        Err(why) => {
            eprintln!("skipped: cannot create network namespaces ({why})");
            return;
        }
    };
    let t = team(&["ann", "ben"]);
    // Shared while offline: each command opens its store itself.
    share(&t[0], "Lan", &["ben"]);
    let mut a = t[0].start_in(&lan.names[0]);
    let mut b = t[1].start_in(&lan.names[1]);
    wait_until("A and B found each other by mDNS", WAIT, || {
        connected(&t[0]) == 1
    });
    let src = t[0].path().join("lan.txt");
    std::fs::write(&src, "found on the LAN\n").unwrap();
    t[0].run(&["put", "Lan", src.to_str().unwrap(), "lan.txt"])
        .success();
    let out = t[1].path().join("lan.txt");
    wait_until("B reads the file", WAIT, || {
        t[1].run(&["get", "Lan", "lan.txt", out.to_str().unwrap()])
            .ok
    });
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "found on the LAN\n");
    a.kill();
    b.kill();
}
