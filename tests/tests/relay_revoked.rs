//! A relay the organization revokes, end to end (a real `cloison-bootstrap` and real daemons,
//! or raw clients): it serves the organization no more and stores nothing more for it, until a
//! revocation that voids the revoker brings it back.

use std::time::Duration;

use cloison_node::keystore::KdfParams;
use cloison_node::net::addr_peer;
use cloison_node::node::Node;
use cloison_node::relay::wire::{Refusal, RelayMsg};
use cloison_node::trust::{Certificate, Profile};
use cloison_tests::probe::connected_to;
use cloison_tests::relay::{Relay, introduce, org_log, org_with_relay, signed_on};
use cloison_tests::{PASSPHRASE, TestHome, wait_until};

const WAIT: Duration = Duration::from_secs(90);
const WS: &str = "Dossiers-canary-ws";

/// Issue 15 item 4: an admin revokes the relay (`cloison relay revoke`). The relay, once it holds
/// the revocation (the admin's daemon brings it), serves the organization no more: it refuses
/// every `Intro` with `RelayRevoked` (a stale device's too), cuts the organization's devices off
/// and stores nothing more for it; devices list it as revoked and never use it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_relay_refuses_the_organization_and_stores_nothing_more() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let relay = Relay::start(data.path(), &logs.path().join("relay.log"));
    let t = org_with_relay(&["ann", "ben"], &relay.addr);
    let (org, _, ben_keys) = org_log(&t[1]);
    let refused_revoked = || {
        relay.status()["refused"]["relay_revoked"]
            .as_u64()
            .unwrap_or(0)
    };
    // Both sync through the relay.
    let a = t[0].start(&[]);
    let b = t[1].start(&[]);
    wait_until("both devices are welcomed", WAIT, || relay.connected() == 2);
    t[0].create_and_share(WS, "ben@clinique.example", "contributor");
    t[0].put_bytes(WS, "before.txt", b"written before the revocation");
    wait_until("B lists the file", WAIT, || {
        t[1].ls(WS, "").contains_key("before.txt")
    });
    wait_until(
        "the relay stored the workspace and the file's block",
        WAIT,
        || {
            let (envelopes, blocks) = relay.stored();
            envelopes > 0 && blocks > 0
        },
    );
    // Ben goes offline: his copy of the log will not hold the revocation.
    b.stop();
    let (_, stale_entries, _) = org_log(&t[1]);
    // Ann revokes the relay through her daemon (by a prefix of its PeerId).
    let pid = relay.addr.rsplit('/').next().unwrap();
    let out = t[0].run(&["relay", "revoke", &pid[..16]]).success();
    assert!(out.contains("revoked"), "{out}");
    wait_until(
        "the relay holds the revocation and serves nobody",
        WAIT,
        || {
            let o = relay.org();
            o["revoked"] == true && o["devices_connected"] == 0
        },
    );
    assert!(refused_revoked() >= 1, "{}", relay.status());
    let list = t[0].run(&["relay", "list", "--json"]).json();
    assert_eq!(list["relays"][0]["status"], "revoked", "{list}");
    assert!(list["relays"][0]["revoked_by"].is_string(), "{list}");
    let text = t[0].run(&["relay", "list"]).success();
    assert!(text.contains("revoked"), "{text}");
    // Ann's daemon closed its connection to the relay and dials it no more.
    let relay_id = addr_peer(&relay.addr.parse().unwrap()).unwrap().to_string();
    wait_until("Ann is no longer connected to the relay", WAIT, || {
        !connected_to(&t[0], &relay_id)
    });
    // She told it once (her farewell `Intro`), and was refused once.
    assert_eq!(refused_revoked(), 1, "{}", relay.status());
    let log = t[0].log();
    assert_eq!(log.matches("relay revoked: telling it").count(), 1, "{log}");
    // Ben, offline and stale, writes; then his daemon comes back and introduces itself with a
    // log that still authorizes the relay: refused, and nothing of his reaches the relay.
    let stored = relay.stored();
    let entries = relay.org()["entries"].as_u64();
    t[1].put_bytes(WS, "after.txt", b"written after the revocation");
    let seen = refused_revoked();
    let b = t[1].start(&[]);
    wait_until("the relay refused Ben's daemon", WAIT, || {
        refused_revoked() > seen
    });
    let peers = t[1].run(&["peers", "--json"]).json();
    assert!(peers.to_string().contains("relay_revoked"), "{peers}");
    b.stop();
    // A raw client with Ben's key and his stale log: the typed refusal.
    assert_eq!(
        introduce(&ben_keys, &relay.addr, org, stale_entries)
            .await
            .0,
        RelayMsg::Refused {
            reason: Refusal::RelayRevoked
        }
    );
    assert_eq!(relay.stored(), stored, "the relay stored something after");
    assert_eq!(relay.org()["entries"].as_u64(), entries);
    assert_eq!(relay.connected(), 0);
    a.stop();
    // What was stored is kept (sealed; the operator may delete it).
    let s = relay.status();
    assert_eq!(s["organizations"][0]["revoked"], true, "{s}");
    let org_hex: String = org.iter().map(|b| format!("{b:02x}")).collect();
    assert!(data.path().join("orgs").join(org_hex).exists());
}

/// A revocation that counts on the relay's stale copy can be voided later: a revoked admin's
/// `RelayRevoked` reaches the relay first (it stops serving the organization), then an `Intro`
/// brings the founder's concurrent revocation of that admin; judged on a copy, it makes the relay
/// authorized again, so it is taken and the organization is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_admins_relay_revocation_stops_the_relay_until_it_is_voided() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let relay = Relay::start(data.path(), &logs.path().join("relay.log"));
    let t = org_with_relay(&["ann"], &relay.addr);
    let mal_home = TestHome::new();
    Node::open(t[0].path(), PASSPHRASE.as_bytes())
        .unwrap()
        .provision_user(
            mal_home.path(),
            PASSPHRASE.as_bytes(),
            KdfParams::TEST_ONLY,
            "mal",
            "mal@clinique.example",
            "mal-dev",
            Profile::Admin,
        )
        .unwrap();
    let (org, base, ann_keys) = org_log(&t[0]);
    let (_, _, mal_keys) = org_log(&mal_home);
    let relay_id = addr_peer(&relay.addr.parse().unwrap()).unwrap();
    // Concurrent, on the same heads: Mal revokes the relay, Ann revokes Mal's device.
    let forged = signed_on(
        &mal_keys,
        org,
        &base,
        Certificate::RelayRevoked { relay: relay_id },
    );
    let voiding = signed_on(
        &ann_keys,
        org,
        &base,
        Certificate::DeviceRevoked {
            device: mal_keys.id(),
        },
    );
    let with = |extra: &[&Vec<u8>]| {
        let mut v = base.clone();
        v.extend(extra.iter().map(|e| (*e).clone()));
        v
    };
    assert_eq!(
        introduce(&ann_keys, &relay.addr, org, base.clone()).await.0,
        RelayMsg::Welcome
    );
    // The forgery arrives first: the relay's copy counts it and stops serving.
    assert_eq!(
        introduce(&ann_keys, &relay.addr, org, with(&[&forged]))
            .await
            .0,
        RelayMsg::Refused {
            reason: Refusal::RelayRevoked
        }
    );
    wait_until("the relay lists the organization as revoked", WAIT, || {
        relay.org()["revoked"] == true
    });
    // Without the voiding entry, nothing is taken.
    let entries = relay.org()["entries"].as_u64();
    assert_eq!(
        introduce(&ann_keys, &relay.addr, org, base.clone()).await.0,
        RelayMsg::Refused {
            reason: Refusal::RelayRevoked
        }
    );
    assert_eq!(relay.org()["entries"].as_u64(), entries);
    // Ann's revocation of Mal voids it: taken, and served again.
    assert_eq!(
        introduce(&ann_keys, &relay.addr, org, with(&[&forged, &voiding]))
            .await
            .0,
        RelayMsg::Welcome
    );
    wait_until("the relay serves the organization again", WAIT, || {
        relay.org()["revoked"] == false
    });
}
