//! Issue 14's attack 6a black-box (a removed contributor keeps writing under the old epoch):
//! real `cloison` daemons, a real `cloison-bootstrap` relay and real bundle files, every device in
//! its own home. The attacker's writes are delivered three ways: over a peer connection, through
//! the relay, in a bundle.
//!
//! The forged writes are what a partitioned laptop writes with the shipped CLI on its stale copy
//! while offline. ann shares "Plans" with the contributors ben and cat; cat is offline when ann
//! removes cat (ann's device rotates the key at the removal); offline, cat's CLI overwrites
//! `note.txt` and adds `cat.txt` on its stale copy. Once cat's envelopes reach ann and ben, the
//! tree and `note.txt`'s history there are as if cat had written nothing, and ann and ben still
//! converge on their own writes. The worst order is tried too: cat's envelopes reach a *stale*
//! ben first (they show there meanwhile, the inherent race) and the removal after.

use std::time::{Duration, Instant};

use cloison_node::trust::Profile;
use cloison_tests::probe::*;
use cloison_tests::relay::Relay;
use cloison_tests::{TestHome, team_with, wait_until};

const WS: &str = "Plans";

/// The attack-6a setup: ann owns "Plans" (with `note.txt`), ben and cat are contributors, every
/// device holds everything. With `relay`, ann authorizes it first.
struct Ws6 {
    ann: TestHome,
    ben: TestHome,
    cat: TestHome,
    /// `note.txt`'s hash before the removal.
    note: String,
}

impl Ws6 {
    fn new(relay: Option<&str>) -> Ws6 {
        let [ann, ben, cat]: [TestHome; 3] = team_with(
            &[
                ("ann", Profile::Admin),
                ("ben", Profile::Standard),
                ("cat", Profile::Standard),
            ],
            relay,
        )
        .try_into()
        .unwrap_or_else(|_| panic!("3 homes"));
        ann.run(&["workspace", "create", WS]).success();
        for u in ["ben", "cat"] {
            ann.run(&["workspace", "share", WS, &email(u)]).success();
        }
        let f = ann.path().join("note.txt");
        std::fs::write(&f, "ann's note, before the removal\n").unwrap_or_default();
        ann.run(&["put", WS, s(&f), "note.txt"]).success();
        carry(&ann, &[&ben, &cat], "start");
        let note = ann.ls(WS, "/").get("note.txt").cloned().unwrap_or_default();
        assert!(!note.is_empty());
        for h in [&ben, &cat] {
            assert_eq!(h.ls(WS, "/"), ann.ls(WS, "/"));
        }
        Ws6 {
            ann,
            ben,
            cat,
            note,
        }
    }

    /// Offline, cat overwrites `note.txt` and adds `cat.txt` on its stale copy; returns how
    /// many envelopes it wrote and the hashes it wrote.
    fn cat_writes(&self) -> (u64, Vec<String>) {
        let before = envelopes(&self.cat);
        let f = self.cat.path().join("mine.txt");
        std::fs::write(&f, "cat overwrote this after its removal\n").unwrap_or_default();
        self.cat.run(&["put", WS, s(&f), "note.txt"]).success();
        std::fs::write(&f, "cat's file, written after its removal\n").unwrap_or_default();
        self.cat.run(&["put", WS, s(&f), "cat.txt"]).success();
        let l = self.cat.ls(WS, "/");
        assert!(l.contains_key("cat.txt"), "{l:?}");
        assert_ne!(l.get("note.txt"), Some(&self.note), "cat's own view");
        let hashes = l.values().filter(|h| **h != self.note).cloned().collect();
        (envelopes(&self.cat) - before, hashes)
    }

    /// Whether `home` shows none of cat's writes.
    fn clean(&self, home: &TestHome) -> bool {
        let l = home.ls(WS, "/");
        l.get("note.txt") == Some(&self.note) && !l.contains_key("cat.txt")
    }

    /// ann and ben each write a file after the removal and both see both files, with none of
    /// cat's writes (`cat_hashes`).
    fn ann_and_ben_converge(&self, cat_hashes: &[String]) {
        let a = write(&self.ann, "from-ann.txt", "ann after the removal\n");
        let b = write(&self.ben, "from-ben.txt", "ben after the removal\n");
        wait_until("ann and ben see both files", WAIT, || {
            [&self.ann, &self.ben].iter().all(|h| {
                let l = h.ls(WS, "/");
                l.get("from-ann.txt") == Some(&a) && l.get("from-ben.txt") == Some(&b)
            })
        });
        for (who, h) in [("ann", &self.ann), ("ben", &self.ben)] {
            self.assert_clean(who, h, cat_hashes);
        }
    }

    /// Asserts that `home` shows none of cat's writes, in the tree or in `note.txt`'s history.
    fn assert_clean(&self, who: &str, home: &TestHome, cat_hashes: &[String]) {
        let l = home.ls(WS, "/");
        assert_eq!(l.get("note.txt"), Some(&self.note), "{who}: {l:?}");
        assert!(!l.contains_key("cat.txt"), "{who}: {l:?}");
        let h = json(home, &["history", WS, "note.txt"]);
        let versions = h["versions"].as_array().cloned().unwrap_or_default();
        for v in &versions {
            assert_ne!(v["user"], "cat", "{who}: a version by cat: {h}");
            let hash = v["hash"].as_str().unwrap_or_default();
            assert!(
                !cat_hashes.iter().any(|c| c == hash),
                "{who}: cat's content in the history: {h}"
            );
        }
    }
}

/// Envelopes of "Plans" this device holds.
fn envelopes(home: &TestHome) -> u64 {
    let v = json(home, &["status"]);
    v["workspaces"].as_array().map_or(0, |a| {
        a.iter()
            .filter(|w| w["name"] == WS)
            .filter_map(|w| w["envelopes"].as_u64())
            .sum()
    })
}

/// `who` writes `name` into Plans; returns its hash.
fn write(home: &TestHome, name: &str, text: &str) -> String {
    let f = home.path().join(name);
    std::fs::write(&f, text).unwrap_or_default();
    home.run(&["put", WS, s(&f), name]).success();
    home.ls(WS, "/").get(name).cloned().unwrap_or_default()
}

#[test]
fn attack_6a_in_a_bundle_a_removed_contributors_writes_are_dropped() {
    let t0 = Instant::now();
    let w = Ws6::new(None);
    // cat is offline; ann removes cat (and rotates).
    w.ann
        .run(&["workspace", "unshare", WS, &email("cat")])
        .success();
    let removal = carry(&w.ann, &[], "removal");
    let (written, hashes) = w.cat_writes();
    assert!(written >= 2, "{written}");
    let from_cat = carry(&w.cat, &[], "forged");
    // ann, who knows, imports cat's bundle: nothing shows.
    let before = envelopes(&w.ann);
    let imp = json(&w.ann, &["bundle", "import", s(&from_cat)]);
    eprintln!("ann imports cat's bundle: {imp}");
    assert_eq!(envelopes(&w.ann), before + written, "delivered: {imp}");
    w.assert_clean("ann", &w.ann, &hashes);
    // ben is stale: cat's bundle first (the race: it shows meanwhile), then the removal.
    json(&w.ben, &["bundle", "import", s(&from_cat)]);
    eprintln!("ben before the removal arrives: {:?}", w.ben.ls(WS, "/"));
    json(&w.ben, &["bundle", "import", s(&removal)]);
    w.assert_clean("ben", &w.ben, &hashes);
    // ann and ben converge on their own writes.
    let a = write(&w.ann, "from-ann.txt", "ann after the removal\n");
    let b = write(&w.ben, "from-ben.txt", "ben after the removal\n");
    carry(&w.ann, &[&w.ben], "ann-after");
    carry(&w.ben, &[&w.ann], "ben-after");
    for (who, h) in [("ann", &w.ann), ("ben", &w.ben)] {
        let l = h.ls(WS, "/");
        assert_eq!(l.get("from-ann.txt"), Some(&a), "{who}: {l:?}");
        assert_eq!(l.get("from-ben.txt"), Some(&b), "{who}: {l:?}");
        w.assert_clean(who, h, &hashes);
    }
    assert_eq!(w.ann.ls(WS, "/"), w.ben.ls(WS, "/"));
    eprintln!("attack 6a by bundle: {:?}", t0.elapsed());
}

#[test]
fn attack_6a_over_peer_connections_a_removed_contributors_writes_are_dropped() {
    let t0 = Instant::now();
    let w = Ws6::new(None);
    // Everyone offline; ann removes cat; cat writes on its stale copy.
    w.ann
        .run(&["workspace", "unshare", WS, &email("cat")])
        .success();
    let (written, hashes) = w.cat_writes();
    // 1. cat dials ann, who knows: ann gets nothing of it that shows.
    let da = w.ann.start(&[]);
    let dc = w.cat.start(&[da.addr()]);
    std::thread::sleep(Duration::from_secs(3));
    w.assert_clean("ann", &w.ann, &hashes);
    dc.stop();
    // 2. cat reaches ben, stale (it has not heard of the removal): cat's writes show on ben
    // meanwhile.
    let db = w.ben.start(&[]);
    let before = envelopes(&w.ben);
    let dc = w.cat.start(&[db.addr()]);
    wait_until("ben has cat's envelopes", WAIT, || {
        envelopes(&w.ben) >= before + written
    });
    eprintln!("ben before the removal arrives: {:?}", w.ben.ls(WS, "/"));
    dc.stop();
    // 3. ben meets ann: the removal arrives, cat's writes disappear on ben and never show on
    // ann, who gets them from ben.
    w.ben.run(&["connect", da.addr()]).success();
    wait_until("ben no longer shows cat's writes", WAIT, || w.clean(&w.ben));
    wait_until("ann and ben hold the same envelopes", WAIT, || {
        envelopes(&w.ann) == envelopes(&w.ben)
    });
    for (who, h) in [("ann", &w.ann), ("ben", &w.ben)] {
        w.assert_clean(who, h, &hashes);
    }
    w.ann_and_ben_converge(&hashes);
    db.stop();
    da.stop();
    eprintln!("attack 6a over peer connections: {:?}", t0.elapsed());
}

#[test]
fn attack_6a_through_the_relay_a_removed_contributors_writes_are_dropped() {
    let t0 = Instant::now();
    let relay = Relay::start_temp();
    let w = Ws6::new(Some(&relay.addr));
    w.ann
        .run(&["workspace", "unshare", WS, &email("cat")])
        .success();
    let (written, hashes) = w.cat_writes();
    // The worst order: cat reaches the relay first, which has heard of nothing else.
    let cat_total = envelopes(&w.cat);
    let dc = w.cat.start(&[]);
    wait_until("the relay stores cat's envelopes", WAIT, || {
        relay.org()["envelopes"].as_u64() >= Some(cat_total)
    });
    eprintln!("relay after cat: {}", relay.org());
    dc.stop();
    wait_until("cat left the relay", WAIT, || relay.connected() == 0);
    // ann comes online through the relay alone: it gets cat's envelopes; nothing shows.
    let before = envelopes(&w.ann);
    let da = w.ann.start(&[]);
    wait_until("ann has cat's envelopes from the relay", WAIT, || {
        envelopes(&w.ann) >= before + written
    });
    w.assert_clean("ann", &w.ann, &hashes);
    // ben, stale, comes online through the relay (no peer address).
    let db = w.ben.start(&[]);
    wait_until("ben holds what ann holds", WAIT, || {
        envelopes(&w.ben) == envelopes(&w.ann)
    });
    wait_until("ben shows none of cat's writes", WAIT, || w.clean(&w.ben));
    for (who, h) in [("ann", &w.ann), ("ben", &w.ben)] {
        w.assert_clean(who, h, &hashes);
    }
    w.ann_and_ben_converge(&hashes);
    db.stop();
    da.stop();
    eprintln!("attack 6a through the relay: {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Attack 1
// ---------------------------------------------------------------------------------------------
