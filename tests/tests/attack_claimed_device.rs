//! Issue 14's attack 1 black-box (a member claims an admin's device key, then revokes it):
//! real `cloison` daemons, a real `cloison-bootstrap` relay and real bundle files, every device in
//! its own home. The attacker's writes are delivered three ways: over a peer connection, through
//! the relay, in a bundle.
//!
//! The forged entries are ones the CLI never writes. A test-only forger here
//! ([`forge_claim_and_revoke`]) loads the standard member mal's own device key from mal's home
//! with the test passphrase and signs, with the `cloison-node` library, a `DeviceAdded` claiming
//! admin ben's device key (ben's certificate copied, proof of possession included) on a past from
//! before ben existed with a small time, then `DeviceRevoked` of ben's device. They go out in a
//! bundle signed by mal's (active) device, pushed by a raw libp2p client holding mal's key to
//! ann's daemon (`Items` of the sync protocol) and to the relay (its `Intro`, then `Items`).
//! Every honest device refuses the claim (`bad_proof_of_possession`), keeps ben's device
//! active, and ben still writes. Nothing of this is in the shipped binaries.

use std::time::{Duration, Instant};

use cloison_node::node::Node;
use cloison_node::trust::Profile;
use cloison_tests::probe::*;
use cloison_tests::relay::Relay;
use cloison_tests::{PASSPHRASE, TestHome, team_with, wait_until};

/// The attack-1 organization: ann (founding admin), mal (standard, added first), ben (admin,
/// added after mal), every device holding the whole log. With `relay`, ann authorizes it.
struct Org1 {
    ann: TestHome,
    mal: TestHome,
    ben: TestHome,
}

impl Org1 {
    fn new(relay: Option<&str>) -> Org1 {
        let [ann, mal, ben]: [TestHome; 3] = team_with(
            &[
                ("ann", Profile::Admin),
                ("mal", Profile::Standard),
                ("ben", Profile::Admin),
            ],
            relay,
        )
        .try_into()
        .unwrap_or_else(|_| panic!("3 homes"));
        carry(&ann, &[&mal, &ben], "start");
        Org1 { ann, mal, ben }
    }

    /// Whether `home` sees ben's device active.
    fn ben_active(&self, home: &TestHome) -> bool {
        let d = json(home, &["devices"]);
        d["devices"].as_array().is_some_and(|a| {
            a.iter()
                .any(|d| d["label"] == "ben-dev" && d["revoked"] == false)
        }) && !revoked(home).values().any(|r| *r)
    }

    fn assert_ben_active(&self, who: &str, home: &TestHome, honest_entries: u64) {
        assert!(
            self.ben_active(home),
            "{who}: ben's device must stay active: {}",
            json(home, &["devices"])
        );
        assert_eq!(
            entries(home),
            honest_entries,
            "{who}: a forged entry was admitted"
        );
    }
}

/// What mal's test-only forger writes (never the shipped binary): with mal's own device key,
/// loaded from mal's home with the test passphrase, a `DeviceAdded` that claims ben's device key
/// for mal's user (ben's certificate copied, proof of possession included) on a past from
/// before ben was added, with a small time; then `DeviceRevoked` of ben's device, citing the
/// claim. Returns mal's key, the organization id, mal's whole log and the two forged entries;
/// checks with the library that a log refuses the claim for its proof of possession.
fn forge_claim_and_revoke(
    mal: &TestHome,
) -> (
    cloison_node::trust::DeviceKeys,
    cloison_node::trust::OrgId,
    Vec<Vec<u8>>,
    Vec<Vec<u8>>,
) {
    use cloison_node::trust::entry::{self, DeviceAdded};
    use cloison_node::trust::{Certificate, EntryBody, EntryId, Hlc, OrgLog, Rejection};
    let keys = cloison_node::keystore::Keystore::open(
        &mal.path().join("keys.cloison"),
        PASSPHRASE.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("mal's key file: {e}"))
    .device();
    let node =
        Node::open(mal.path(), PASSPHRASE.as_bytes()).unwrap_or_else(|e| panic!("open mal: {e}"));
    let org = node.org_id();
    let me = node.user_id();
    let first_device = |label_is_mine: bool| {
        node.log().entries().find_map(|e| match &e.body().cert {
            Certificate::UserAdded(u) if (u.device.device == keys.id()) == label_is_mine => {
                Some((e.id(), e.body().time, u.device.clone()))
            }
            _ => None,
        })
    };
    // mal's own certificate: the stale past (ben did not exist yet).
    let (mine, my_time, _) = first_device(true).unwrap_or_else(|| panic!("mal's certificate"));
    // ben's: the last user added (ann's is the genesis, not a `UserAdded`).
    let ben_cert = node
        .log()
        .entries()
        .filter_map(|e| match &e.body().cert {
            Certificate::UserAdded(u) if u.device.device != keys.id() => Some(u.device.clone()),
            _ => None,
        })
        .last()
        .unwrap_or_else(|| panic!("ben's certificate"));
    let victim = ben_cert.device;
    let claim = entry::sign(
        &keys,
        &EntryBody {
            org,
            parents: vec![mine],
            author: keys.id(),
            time: Hlc(my_time.0 + 1),
            cert: Certificate::DeviceAdded(DeviceAdded {
                user: me,
                ..ben_cert
            }),
        },
    );
    let revoke = entry::sign(
        &keys,
        &EntryBody {
            org,
            parents: vec![EntryId(*blake3::hash(&claim).as_bytes())],
            author: keys.id(),
            time: Hlc(my_time.0 + 2),
            cert: Certificate::DeviceRevoked { device: victim },
        },
    );
    let log = node.log_entry_bytes();
    let mut copy = OrgLog::new(org);
    assert!(copy.ingest(log.clone()).is_clean());
    let r = copy.ingest(vec![claim.clone(), revoke.clone()]);
    assert_eq!(
        r.rejected.first().map(|(_, why)| why.clone()),
        Some(Rejection::BadProofOfPossession),
        "{r:?}"
    );
    (keys, org, log, vec![claim, revoke])
}

/// ben (the victim device) still writes: it creates a workspace shared with ann and puts a
/// file. Returns its hash.
fn victim_writes(o: &Org1) -> String {
    o.ben.run(&["workspace", "create", "After"]).success();
    o.ben
        .run(&["workspace", "share", "After", &email("ann")])
        .success();
    let f = o.ben.path().join("b.txt");
    std::fs::write(&f, "ben, whose device mal tried to revoke\n").unwrap_or_default();
    o.ben.run(&["put", "After", s(&f), "b.txt"]).success();
    let b = o
        .ben
        .ls("After", "/")
        .get("b.txt")
        .cloned()
        .unwrap_or_default();
    assert!(!b.is_empty());
    b
}

#[test]
fn attack_1_in_a_bundle_a_claimed_admin_device_is_not_revoked() {
    let t0 = Instant::now();
    let o = Org1::new(None);
    let honest = entries(&o.ann);
    let (keys, org, log, forged) = forge_claim_and_revoke(&o.mal);
    // A bundle signed by mal's (active) device: its whole log, then the forged pair.
    let file = o.mal.path().join("forged.bundle");
    {
        let out = std::fs::File::create(&file).unwrap_or_else(|e| panic!("{e}"));
        let header = cloison_node::bundle::Header {
            org,
            creator: keys.id(),
            created_ms: 1,
            for_receipt: None,
            known_heads: Vec::new(),
        };
        let mut w = cloison_node::bundle::BundleWriter::new(std::io::BufWriter::new(out), &header)
            .unwrap_or_else(|e| panic!("{e}"));
        for e in log.iter().chain(&forged) {
            w.item(&cloison_node::bundle::Item::Entry(e.clone()))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        w.finish(&keys).unwrap_or_else(|e| panic!("{e}"));
    }
    for (who, h) in [("ann", &o.ann), ("ben", &o.ben)] {
        let imp = json(h, &["bundle", "import", s(&file)]);
        eprintln!("{who} imports mal's forged bundle: {imp}");
        assert!(imp["refused"].as_u64() >= Some(1), "{who}: {imp}");
        o.assert_ben_active(who, h, honest);
        // The revocation waits for the claim it cites, which never comes.
        eprintln!(
            "{who}: org entries waiting for parents: {}",
            json(h, &["status"])["org_waiting"]
        );
    }
    // The victim device still writes; ann reads it.
    let b = victim_writes(&o);
    carry(&o.ben, &[&o.ann], "after");
    assert_eq!(o.ann.ls("After", "/").get("b.txt"), Some(&b));
    eprintln!("attack 1 by bundle: {:?}", t0.elapsed());
}

/// A raw libp2p client with `keys`: dials `addr`, sends `first` (if any) once connected,
/// answers a relay's `LogWanted` with `log`, and sends `then` once the peer has said anything
/// else; returns that first other message.
async fn raw_session(
    keys: &cloison_node::trust::DeviceKeys,
    addr: &str,
    first: Option<Vec<u8>>,
    log: &[Vec<u8>],
    then: Vec<Vec<u8>>,
) -> Vec<u8> {
    use cloison_node::net::{Net, NetConfig, NetEvent, addr_peer};
    use cloison_node::relay::wire::{RelayMsg, log_parts};
    let to: cloison_node::net::Multiaddr = addr.parse().unwrap_or_else(|e| panic!("{e}"));
    let peer = addr_peer(&to).unwrap_or_else(|| panic!("no peer id in {addr}"));
    let (h, mut rx) =
        Net::start(keys, NetConfig::loopback()).unwrap_or_else(|e| panic!("net: {e}"));
    h.set_allowed([peer].into())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    h.dial(to).await.unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no answer from {addr}"))
            .unwrap_or_else(|| panic!("the network stopped"));
        match ev {
            NetEvent::Connected(p) if p == peer => {
                if let Some(m) = &first {
                    h.send(peer, m.clone())
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            }
            NetEvent::Message { from, bytes } if from == peer => {
                if let Ok(RelayMsg::LogWanted { .. }) = RelayMsg::decode(&bytes) {
                    for m in log_parts(log.iter().map(Vec::as_slice)) {
                        h.send(peer, m.encode())
                            .await
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                    continue;
                }
                for m in then {
                    h.send(peer, m).await.unwrap_or_else(|e| panic!("{e}"));
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                let _ = h.shutdown().await;
                return bytes;
            }
            _ => {}
        }
    }
}

fn org_items(items: &[Vec<u8>]) -> Vec<u8> {
    cloison_node::sync::Msg::Items {
        doc: cloison_node::sync::DocId::Org,
        items: items.to_vec(),
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_1_over_a_peer_connection_a_claimed_admin_device_is_not_revoked() {
    let t0 = Instant::now();
    let o = Org1::new(None);
    let honest = entries(&o.ann);
    let (keys, _, _, forged) = forge_claim_and_revoke(&o.mal);
    let da = o.ann.start(&[]);
    let db = o.ben.start(&[da.addr()]);
    // mal is an active member: ann's daemon lets it in, and gets the forged pair pushed.
    raw_session(&keys, da.addr(), None, &[], vec![org_items(&forged)]).await;
    wait_until("ann refuses mal's claim", WAIT, || {
        o.ann.log().contains("bad_proof_of_possession")
    });
    let refusals: Vec<String> = o
        .ann
        .log()
        .lines()
        .filter(|l| l.contains("item from peer refused"))
        .map(String::from)
        .collect();
    eprintln!("ann's daemon: {refusals:?}");
    for (who, h) in [("ann", &o.ann), ("ben", &o.ben)] {
        o.assert_ben_active(who, h, honest);
    }
    // The victim device still writes; ann reads it.
    let b = victim_writes(&o);
    wait_until("ann reads ben's file", WAIT, || {
        o.ann.ls("After", "/").get("b.txt") == Some(&b)
    });
    db.stop();
    da.stop();
    eprintln!("attack 1 over a peer connection: {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_1_through_the_relay_a_claimed_admin_device_is_not_revoked() {
    use cloison_node::relay::wire::RelayMsg;
    let t0 = Instant::now();
    let relay = Relay::start_temp();
    let o = Org1::new(Some(&relay.addr));
    let honest = entries(&o.ann);
    let (keys, org, log, forged) = forge_claim_and_revoke(&o.mal);
    // mal introduces itself, sends its log and the forged pair when the relay asks for the
    // log, then pushes the pair again.
    let sent: Vec<Vec<u8>> = log.iter().chain(&forged).cloned().collect();
    let intro = cloison_tests::relay::intro(org.0, &sent);
    let answer = raw_session(
        &keys,
        &relay.addr,
        Some(intro.encode()),
        &sent,
        vec![org_items(&forged)],
    )
    .await;
    assert_eq!(RelayMsg::decode(&answer), Ok(RelayMsg::Welcome));
    // The relay's engine refuses the pushed claim (the introduction's copy is dropped without
    // a word).
    wait_until("the relay refuses mal's claim", WAIT, || {
        relay.log().contains("bad_proof_of_possession")
    });
    wait_until("the relay holds mal's honest log", WAIT, || {
        relay.org()["entries"].as_u64() == Some(honest)
    });
    // ann and ben come online through the relay alone.
    let da = o.ann.start(&[]);
    let db = o.ben.start(&[]);
    wait_until("ann and ben are served by the relay", WAIT, || {
        relay.connected() == 2
    });
    // The victim device still writes; ann reads it (through the relay).
    let b = victim_writes(&o);
    wait_until("ann reads ben's file", WAIT, || {
        o.ann.ls("After", "/").get("b.txt") == Some(&b)
    });
    for (who, h) in [("ann", &o.ann), ("ben", &o.ben)] {
        o.assert_ben_active(who, h, honest);
    }
    assert_eq!(
        relay.org()["entries"].as_u64(),
        Some(honest),
        "{}",
        relay.org()
    );
    db.stop();
    da.stop();
    eprintln!("attack 1 through the relay: {:?}", t0.elapsed());
}
