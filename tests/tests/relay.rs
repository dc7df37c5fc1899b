//! The blind relay end to end: a real `cloison-bootstrap run` and real `cloison run` daemons on
//! 127.0.0.1. Devices that are never online together sync through the relay alone,
//! byte-identical, both ways; the relay's data directory and log hold none of the plaintext;
//! non-members, revoked devices and devices of organizations that did not authorize the relay
//! are refused; a `kill -9` of the relay mid-upload loses nothing it had stored; two devices
//! that only know the relay's address connect through circuit relay v2 and sync live (a relay
//! the organization revokes: `relay_revoked.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloison_node::relay::wire::{Refusal, RelayMsg};
use cloison_node::trust::{Certificate, DeviceId, DeviceKeys};
use cloison_tests::probe::{connected_to, device_of};
use cloison_tests::relay::{ORG, Relay, introduce, org_log, org_with_relay, signed_on};
use cloison_tests::{TestHome, wait_until};

const WAIT: Duration = Duration::from_secs(90);
const WS: &str = "Dossiers-canary-ws";

/// `(envelopes, blocks)` a device holds.
fn held(home: &TestHome) -> (u64, u64) {
    let s = home.run(&["status", "--json"]).json();
    let envs = s["workspaces"].as_array().map_or(0, |a| {
        a.iter().filter_map(|w| w["envelopes"].as_u64()).sum()
    });
    (envs, s["blocks_stored"].as_u64().unwrap_or(0))
}

/// `n` files with canary names and contents under `dir`.
fn canary_files(dir: &Path, prefix: &str, n: usize) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut canaries = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}-canary-file-{i:03}.txt");
        let text = format!("{prefix} secret canary content number {i:03} ");
        let mut body = text.repeat(1 + i * 37 % 300).into_bytes();
        let mut noise = vec![0u8; 512 + i * 97];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut noise);
        body.extend(noise);
        std::fs::write(dir.join(&name), body).unwrap();
        canaries.push(name);
        canaries.push(text.trim().to_owned());
    }
    canaries
}

/// Whether the trees under `a` and `b` hold the same files with the same bytes.
fn same_tree(a: &Path, b: &Path) {
    let rel = |root: &Path| {
        let mut files = Vec::new();
        files_under(root, &mut files);
        let mut r: Vec<PathBuf> = files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap().to_owned())
            .collect();
        r.sort();
        r
    };
    let names = rel(a);
    assert!(!names.is_empty());
    assert_eq!(names, rel(b));
    for n in names {
        assert_eq!(
            std::fs::read(a.join(&n)).unwrap(),
            std::fs::read(b.join(&n)).unwrap(),
            "{n:?} differs"
        );
    }
}

/// Every file under `dir`.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A writes, stops; B starts and reads: through the relay alone.
fn hand_over(
    relay: &Relay,
    from: &TestHome,
    to: &TestHome,
    prefix: &str,
    first: bool,
) -> Vec<String> {
    let a = from.start(&[]);
    wait_until("the writer is welcomed by the relay", WAIT, || {
        relay.connected() == 1
    });
    if first {
        from.create_and_share(WS, "bertrand-canary@clinique.example", "contributor");
    }
    let src = from.path().join(format!("{prefix}-src"));
    let canaries = canary_files(&src, prefix, 50);
    from.run(&["put", WS, src.to_str().unwrap(), prefix])
        .success();
    let want = from.ls(WS, prefix);
    assert_eq!(want.len(), 50);
    let mine = held(from);
    wait_until("the relay holds everything the writer holds", WAIT, || {
        relay.stored() == mine
    });
    a.stop();
    wait_until("the writer left the relay", WAIT, || relay.connected() == 0);
    let b = to.start(&[]);
    wait_until("the reader lists every file", WAIT, || {
        to.ls(WS, prefix) == want
    });
    let out = to.path().join(format!("{prefix}-got"));
    to.run(&["get", WS, prefix, out.to_str().unwrap(), "--wait", "60"])
        .success();
    same_tree(&src, &out);
    b.stop();
    wait_until("the reader left the relay", WAIT, || relay.connected() == 0);
    canaries
}

#[test]
fn devices_never_online_together_sync_through_the_relay_which_learns_nothing() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("relay.log");
    let relay = Relay::start(data.path(), &log);
    let t = org_with_relay(&["annabelle-canary", "bertrand-canary"], &relay.addr);
    let mut canaries = hand_over(&relay, &t[0], &t[1], "forth", true);
    canaries.extend(hand_over(&relay, &t[1], &t[0], "back", false));
    let s = relay.status();
    assert_eq!(s["organizations"].as_array().map(Vec::len), Some(1), "{s}");
    // Nothing to read: names, e-mails, the organization's and the workspace's names, file
    // names and contents appear nowhere in the relay's files or its log.
    canaries.extend(
        [
            ORG,
            WS,
            "annabelle-canary",
            "bertrand-canary",
            "clinique.example",
        ]
        .map(String::from),
    );
    let mut files = vec![log];
    files_under(data.path(), &mut files);
    assert!(files.len() > 3, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        for c in &canaries {
            assert!(
                !contains(&bytes, c.as_bytes()),
                "{c:?} found in {}",
                f.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_revoked_devices_and_other_organizations_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let relay = Relay::start(data.path(), &logs.path().join("relay.log"));
    let t = org_with_relay(&["ann", "ben"], &relay.addr);
    let (org, entries, ann_keys) = org_log(&t[0]);
    let (_, _, ben_keys) = org_log(&t[1]);
    // A member is welcomed; the organization is now served.
    assert_eq!(
        introduce(&ann_keys, &relay.addr, org, entries.clone())
            .await
            .0,
        RelayMsg::Welcome
    );
    // A stranger with the organization's (public) log.
    let stranger = DeviceKeys::generate(&mut rand::rng());
    assert_eq!(
        introduce(&stranger, &relay.addr, org, entries.clone())
            .await
            .0,
        RelayMsg::Refused {
            reason: Refusal::NotActive
        }
    );
    // Ann and Ben are connected to the relay; Ann revokes Ben: the relay cuts him off.
    let a = t[0].start(&[]);
    let b = t[1].start(&[]);
    wait_until("both devices are welcomed", WAIT, || relay.connected() == 2);
    let ben: DeviceId = ben_keys.id();
    t[0].run(&["revoke", "device", &ben.to_string()]).success();
    wait_until("the relay has cut Ben off", WAIT, || relay.connected() == 1);
    b.stop();
    // Ben introduces himself with the log he had before his revocation: refused.
    assert_eq!(
        introduce(&ben_keys, &relay.addr, org, entries.clone())
            .await
            .0,
        RelayMsg::Refused {
            reason: Refusal::NotActive
        }
    );
    // He tries again with an entry of his own, admissible (a revocation of his own device, on
    // his heads): refused, and the relay neither stores it nor passes it on to Ann.
    let (_, ben_entries, _) = org_log(&t[1]);
    let stored = relay.org()["entries"].as_u64();
    let own = signed_on(
        &ben_keys,
        org,
        &ben_entries,
        Certificate::DeviceRevoked { device: ben },
    );
    let mut with_own = ben_entries.clone();
    with_own.push(own.clone());
    assert_eq!(
        introduce(&ben_keys, &relay.addr, org, with_own).await.0,
        RelayMsg::Refused {
            reason: Refusal::NotActive
        }
    );
    assert_eq!(
        relay.org()["entries"].as_u64(),
        stored,
        "the relay stored it"
    );
    a.stop();
    let (_, ann_entries, _) = org_log(&t[0]);
    assert!(!ann_entries.contains(&own), "the relay passed it on to Ann");
    // An organization that never authorized this relay.
    let other = TestHome::new();
    other
        .run(&[
            "init",
            "--org",
            "Other",
            "--user",
            "zed",
            "--email",
            "z@o.example",
            "--device",
            "z",
        ])
        .success();
    let (org2, entries2, zed_keys) = org_log(&other);
    assert_eq!(
        introduce(&zed_keys, &relay.addr, org2, entries2).await.0,
        RelayMsg::Refused {
            reason: Refusal::NotAuthorized
        }
    );
    let s = relay.status();
    // The stranger, Ben's raw client, and Ben's daemon each time it came back.
    assert!(s["refused"]["device_not_active"].as_u64() >= Some(2), "{s}");
    assert_eq!(s["refused"]["relay_not_authorized"], 1, "{s}");
    assert_eq!(s["organizations"].as_array().map(Vec::len), Some(1), "{s}");
    // Nothing was stored for the organization that did not authorize the relay.
    let dirs = std::fs::read_dir(data.path().join("orgs")).unwrap().count();
    assert_eq!(dirs, 1);
}

/// How many times `introductions[what]` was counted by the relay since it started.
fn introductions(relay: &Relay, what: &str) -> u64 {
    relay.status()["introductions"][what].as_u64().unwrap_or(0)
}

#[test]
fn a_relay_killed_mid_upload_keeps_what_it_stored_and_completes_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("relay.log");
    let mut relay = Relay::start(data.path(), &log);
    let t = org_with_relay(&["ann", "ben"], &relay.addr);
    let a = t[0].start(&[]);
    wait_until("A is welcomed", WAIT, || relay.connected() == 1);
    // A new relay does not serve the organization yet: it asked A for the whole log.
    assert_eq!(introductions(&relay, "log_asked"), 1);
    t[0].create_and_share(WS, "ben@clinique.example", "reader");
    let src = t[0].path().join("big");
    // Several rounds: each uploads a new folder and kills the relay once it has stored part of
    // it; nothing the relay had stored is ever lost, and the upload completes after the restart.
    for round in 0..3 {
        let dir = src.join(format!("r{round}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..12 {
            let mut b = vec![0u8; 2 << 20];
            rand::Rng::fill_bytes(&mut rand::rng(), &mut b);
            std::fs::write(dir.join(format!("f{i:02}.bin")), b).unwrap();
        }
        let start = relay.stored();
        t[0].run(&["put", WS, dir.to_str().unwrap(), &format!("big/r{round}")])
            .success();
        let mine = held(&t[0]);
        wait_until("the relay stored part of the upload", WAIT, || {
            relay.stored().1 > start.1
        });
        let before = relay.stored();
        relay.kill();
        eprintln!("round {round}: relay killed holding {before:?} of {mine:?} (envelopes, blocks)");
        assert!(before.1 < mine.1 || before == mine);
        relay = relay.restart(&log);
        let after = relay.stored();
        assert!(
            after.0 >= before.0 && after.1 >= before.1,
            "round {round} lost: {before:?} -> {after:?}"
        );
        wait_until("A is back with the relay", WAIT, || relay.connected() == 1);
        // The relay knows the organization from its store and counts A: welcomed on a bare
        // introduction, no log sent (the engine reconciles the log).
        assert_eq!(introductions(&relay, "log_asked"), 0, "round {round}");
        assert!(
            introductions(&relay, "welcomed_at_once") >= 1,
            "round {round}"
        );
        wait_until("the relay completes the upload", WAIT, || {
            relay.stored() == mine
        });
    }
    a.stop();
    let b = t[1].start(&[]);
    let out = t[1].path().join("got");
    wait_until("B lists the files", WAIT, || {
        (0..3).all(|r| t[1].ls(WS, &format!("big/r{r}")).len() == 12)
    });
    t[1].run(&["get", WS, "big", out.to_str().unwrap(), "--wait", "60"])
        .success();
    same_tree(&src, &out);
    b.stop();
}

#[test]
fn devices_that_only_know_the_relay_connect_through_it_and_sync_live() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let relay_log = logs.path().join("relay.log");
    let relay = Relay::start(data.path(), &relay_log);
    let t = org_with_relay(&["ann", "ben"], &relay.addr);
    let (da, db) = (device_of(&t[0]), device_of(&t[1]));
    // Neither daemon is given the other's address; each only learns the relay from its log.
    // B starts once A has its reservation, so B's dial through the relay (at its welcome) finds
    // A there; a dial to a peer without a reservation fails, and the direct connection that
    // rendezvous gives them would then be the only one.
    let a = t[0].start(&[]);
    wait_until("A listens through the relay", WAIT, || {
        t[0].log().contains("listening through the relay")
            && std::fs::read_to_string(&relay_log)
                .unwrap_or_default()
                .contains("relay: reservation accepted")
    });
    let b = t[1].start(&[]);
    wait_until("A and B are connected to each other", WAIT, || {
        connected_to(&t[0], &db) && connected_to(&t[1], &da)
    });
    t[0].create_and_share(WS, "ben@clinique.example", "reader");
    t[0].put_bytes(WS, "live.txt", b"written while both are online");
    wait_until("B lists the file", WAIT, || {
        t[1].ls(WS, "").contains_key("live.txt")
    });
    let out = t[1].path().join("live.got");
    t[1].run(&["get", WS, "live.txt", out.to_str().unwrap(), "--wait", "60"])
        .success();
    assert_eq!(
        std::fs::read(out).unwrap(),
        b"written while both are online"
    );
    let log = t[0].log();
    assert!(log.contains("listening through the relay"), "{log}");
    // The devices' connection is a circuit through the relay (relay v2).
    wait_until("the relay opened a circuit between them", WAIT, || {
        std::fs::read_to_string(&relay_log)
            .unwrap_or_default()
            .contains("relay: circuit opened")
    });
    a.stop();
    b.stop();
}

#[test]
fn a_full_quota_is_a_typed_error_and_nothing_accepted_is_dropped() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("relay.log");
    let relay = Relay::start_on(
        data.path(),
        &log,
        "/ip4/127.0.0.1/tcp/0",
        &["--quota-envelopes", "3"],
    );
    let t = org_with_relay(&["ann"], &relay.addr);
    let a = t[0].start(&[]);
    wait_until("A is welcomed", WAIT, || relay.connected() == 1);
    t[0].run(&["workspace", "create", WS]).success();
    for i in 0..4 {
        let f = t[0].path().join(format!("n{i}.txt"));
        std::fs::write(&f, format!("note {i}")).unwrap();
        t[0].run(&["put", WS, f.to_str().unwrap(), &format!("n{i}.txt")])
            .success();
    }
    wait_until("the relay refuses past its quota", WAIT, || {
        relay.status()["quota_refusals"].as_u64().unwrap_or(0) > 0
    });
    // The device is told, with the quota's name and figures.
    wait_until("A shows the relay's quota error", WAIT, || {
        let v = t[0].run(&["peers", "--json"]).json();
        v["peers"].as_array().is_some_and(|a| {
            a.iter().any(|p| {
                p["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("quota reached (Envelopes"))
            })
        })
    });
    let (kept, _) = relay.stored();
    assert!(kept >= 3, "{kept}");
    a.stop();
    // What was accepted is still there after a restart.
    drop(relay);
    let relay = Relay::start_on(data.path(), &log, "/ip4/127.0.0.1/tcp/0", &[]);
    assert_eq!(relay.stored().0, kept);
}

#[test]
fn devices_that_only_know_the_relay_find_each_other_through_rendezvous_and_connect_directly() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let relay = Relay::start(data.path(), &logs.path().join("relay.log"));
    let t = org_with_relay(&["ann", "ben"], &relay.addr);
    let (da, db) = (device_of(&t[0]), device_of(&t[1]));
    // No --peer: each daemon learns only the relay's address, from its log; both listen on
    // 127.0.0.1, which they register at the relay's rendezvous.
    let a = t[0].start(&[]);
    let b = t[1].start(&[]);
    wait_until(
        "a device dials the other directly after a rendezvous discovery",
        WAIT,
        || {
            [&t[0], &t[1]].iter().any(|h| {
                h.log()
                    .contains("direct connection to a device found through rendezvous")
            })
        },
    );
    wait_until("A and B are connected to each other", WAIT, || {
        connected_to(&t[0], &db) && connected_to(&t[1], &da)
    });
    t[0].create_and_share(WS, "ben@clinique.example", "reader");
    t[0].put_bytes(WS, "direct.txt", b"found through rendezvous");
    let out = t[1].path().join("direct.got");
    wait_until("B lists the file", WAIT, || {
        t[1].ls(WS, "").contains_key("direct.txt")
    });
    t[1].run(&[
        "get",
        WS,
        "direct.txt",
        out.to_str().unwrap(),
        "--wait",
        "60",
    ])
    .success();
    assert_eq!(std::fs::read(out).unwrap(), b"found through rendezvous");
    a.stop();
    b.stop();
}

#[test]
fn an_old_version_is_restored_from_the_relay_alone() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let relay = Relay::start(data.path(), &logs.path().join("relay.log"));
    let t = org_with_relay(&["ann", "ben"], &relay.addr);
    let a = t[0].start(&[]);
    wait_until("A is welcomed by the relay", WAIT, || {
        relay.connected() == 1
    });
    t[0].create_and_share(WS, "ben@clinique.example", "contributor");
    let src = t[0].put_bytes(
        WS,
        "note.txt",
        b"the first version, overwritten while B is down",
    );
    std::fs::write(&src, b"the second version").unwrap();
    t[0].run(&["put", WS, src.to_str().unwrap(), "note.txt"])
        .success();
    let mine = held(&t[0]);
    // Every block A holds reaches the relay, those of the overwritten version included.
    wait_until("the relay holds everything A holds", WAIT, || {
        relay.stored() == mine
    });
    a.stop();
    wait_until("A left the relay", WAIT, || relay.connected() == 0);
    let b = t[1].start(&[]);
    wait_until("B lists the file", WAIT, || {
        t[1].ls(WS, "").contains_key("note.txt")
    });
    t[1].run(&["restore", WS, "note.txt"]).success();
    let out = t[1].path().join("note.got");
    t[1].run(&["get", WS, "note.txt", out.to_str().unwrap(), "--wait", "60"])
        .success();
    assert_eq!(
        std::fs::read(out).unwrap(),
        b"the first version, overwritten while B is down"
    );
    b.stop();
}
