//! Remembered addresses (issue 19, item 5): `cloison peers` lists, per device, the addresses its
//! daemon dials at start and how many starts in a row each one's device did not connect; an
//! address whose device stays away for `MAX_DIAL_FAILURES` starts is forgotten, and one whose
//! device connects is kept.

use std::time::Duration;

use cloison_node::store::MAX_DIAL_FAILURES;
use cloison_node::trust::DeviceId;
use cloison_tests::{TestHome, team, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn device_of(home: &TestHome) -> String {
    let v = home.run(&["org", "show", "--json"]).json();
    v["this_device"].as_str().unwrap().to_owned()
}

/// The `peers --json` row of `device`, if listed.
fn row(home: &TestHome, device: &str) -> Option<serde_json::Value> {
    let v = home.run(&["peers", "--json"]).json();
    v["peers"]
        .as_array()?
        .iter()
        .find(|p| p["device"] == device)
        .cloned()
}

#[test]
fn peers_lists_remembered_addresses_and_a_stale_one_is_forgotten_after_repeated_failures() {
    let t = team(&["ann", "ben", "cat"]);
    // Cat's daemon never runs: an address naming cat's device on a port nobody listens on.
    let cat = device_of(&t[2]);
    let cat_peer = cloison_node::net::peer_id(&DeviceId::from_hex(&cat).unwrap())
        .unwrap()
        .to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stale = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{cat_peer}");
    let a = t[0].start(&[]);
    let ann = device_of(&t[0]);
    // No daemon runs for ben: `connect` remembers both addresses for his next starts.
    t[1].run(&["connect", a.addr()]).success();
    t[1].run(&["connect", &stale]).success();
    for start in 1..=MAX_DIAL_FAILURES {
        let b = t[1].start(&[]);
        wait_until(
            "ben's daemon reaches ann from her remembered address",
            WAIT,
            || row(&t[1], &ann).is_some_and(|r| r["state"] == "connected"),
        );
        // Within the verdict time (10 s) cat's address counts one more failed start, or, at
        // the last one, is forgotten.
        wait_until("the verdict on cat's address", WAIT, || {
            match row(&t[1], &cat) {
                Some(r) => r["remembered"][0]["failures"] == start,
                None => start == MAX_DIAL_FAILURES,
            }
        });
        if let Some(r) = row(&t[1], &cat) {
            // Not connected: `remembered`, or `refused` when ben's log did not know cat's
            // device yet as the daemon dialled it (the gate refuses to dial a stranger).
            assert_ne!(r["state"], "connected", "{r}");
            assert_eq!(r["remembered"][0]["addr"], stale.as_str(), "{r}");
            let text = t[1].run(&["peers"]).success();
            assert!(
                text.contains(&format!(
                    "remembered: {stale} (not reached at the last {start}"
                )),
                "{text}"
            );
        }
        // Ann's address stays, with no failure.
        let r = row(&t[1], &ann).unwrap();
        assert_eq!(r["remembered"][0]["addr"], a.addr(), "{r}");
        assert_eq!(r["remembered"][0]["failures"], 0, "{r}");
        b.stop();
    }
    // Forgotten for good: the next start neither lists nor dials it.
    let _b = t[1].start(&[]);
    wait_until("ben reaches ann again", WAIT, || {
        row(&t[1], &ann).is_some_and(|r| r["state"] == "connected")
    });
    assert!(row(&t[1], &cat).is_none());
    assert!(!t[1].run(&["peers"]).success().contains(&stale));
}
