//! Issue 14's attack 3 black-box (a revoked admin device revokes everyone on a stale copy):
//! real `cloison` daemons, a real `cloison-bootstrap` relay and real bundle files, every device in
//! its own home. The attacker's writes are delivered three ways: over a peer connection, through
//! the relay, in a bundle.
//!
//! The forged writes need no forging tool: they are what a stolen or partitioned laptop writes
//! with the shipped CLI on its stale copy while it is offline (every command works without a
//! daemon by opening the store). The organization has admins ann (the founding device) and mal
//! (the future attacker) and standard users ben and cat. mal is offline when ann revokes mal's
//! user; offline, mal's CLI, whose log does not know it, revokes ann's user and the others. Once
//! mal's entries reach an honest device that has the revocation, ann, ben and cat are active
//! there, mal is revoked, mal's entries are counted in `org show`'s `dropped`, and the honest
//! devices keep writing and converging.
//!
//! Each is also tried in the worst order: the forged entries reach a *stale* honest device (one
//! that has not yet heard of the revocation) first and the revocation after; the forged
//! revocations count there meanwhile (the inherent race), and must stop counting once the
//! revocation arrives.
//!
//! Over peer connections, a stale device that got a revoked admin's forged revocations first
//! believes its honest peers revoked: it keeps a *listening* link to them (it sends them nothing
//! and takes only the organization entries that make them count again,
//! `sync::engine::listen`), which is how the revocation that voids the forgeries reaches it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cloison_node::trust::Profile;
use cloison_tests::probe::*;
use cloison_tests::relay::Relay;
use cloison_tests::{TestHome, team_with, wait_until};

/// The attack-3 organization: ann (founding admin), mal (admin), ben and cat (standard), every
/// device holding the whole log. With `relay`, ann authorizes it first.
struct Org3 {
    ann: TestHome,
    mal: TestHome,
    ben: TestHome,
    cat: TestHome,
    ids: BTreeMap<String, String>,
}

impl Org3 {
    fn new(relay: Option<&str>) -> Org3 {
        let [ann, mal, ben, cat]: [TestHome; 4] = team_with(
            &[
                ("ann", Profile::Admin),
                ("mal", Profile::Admin),
                ("ben", Profile::Standard),
                ("cat", Profile::Standard),
            ],
            relay,
        )
        .try_into()
        .unwrap_or_else(|_| panic!("4 homes"));
        carry(&ann, &[&mal, &ben, &cat], "start");
        let ids = user_ids(&ann);
        assert_eq!(ids.len(), 4, "{ids:?}");
        for h in [&mal, &ben, &cat] {
            assert_eq!(entries(h), entries(&ann));
        }
        Org3 {
            ann,
            mal,
            ben,
            cat,
            ids,
        }
    }

    fn id(&self, name: &str) -> &str {
        self.ids.get(name).map_or("", String::as_str)
    }

    /// The organization (with `relay` authorized, if any) once ann has revoked mal's user and
    /// mal, offline, has revoked ann, ben and cat on its stale copy; with how many entries mal
    /// forged and how many ann's log then holds with them.
    fn revoked_and_forged(relay: Option<&str>) -> (Org3, u64, u64) {
        let o = Org3::new(relay);
        o.ann.run(&["revoke", "user", &email("mal")]).success();
        let forged = o.mal_forges(&["ann", "ben", "cat"]);
        let total = entries(&o.ann) + forged;
        (o, forged, total)
    }

    /// Offline, mal's CLI revokes each of `victims` on its stale copy; returns how many entries
    /// it wrote. Checks that mal's own view believes them.
    fn mal_forges(&self, victims: &[&str]) -> u64 {
        let before = entries(&self.mal);
        for v in victims {
            self.mal.run(&["revoke", "user", &email(v)]).success();
        }
        let view = revoked(&self.mal);
        for v in victims {
            assert_eq!(view.get(self.id(v)), Some(&true), "mal's view: {view:?}");
        }
        assert_eq!(view.get(self.id("mal")), Some(&false), "{view:?}");
        let forged = entries(&self.mal) - before;
        assert!(forged >= victims.len() as u64, "{forged}");
        forged
    }

    /// Whether `home` sees ann, ben and cat active and mal revoked.
    fn honest_view(&self, home: &TestHome) -> bool {
        let v = revoked(home);
        v.get(self.id("mal")) == Some(&true)
            && ["ann", "ben", "cat"]
                .iter()
                .all(|n| v.get(self.id(n)) == Some(&false))
    }

    /// Asserts the honest view on `home`, with `dropped` counting at least `forged` entries.
    fn assert_honest(&self, who: &str, home: &TestHome, forged: u64) {
        let v = revoked(home);
        assert!(
            self.honest_view(home),
            "{who}: the victims must stay active and mal revoked; sees (user -> revoked) {v:?}; \
             ids {:?}",
            self.ids
        );
        let o = org(home);
        assert!(
            o["dropped"].as_u64().unwrap_or(0) >= forged,
            "{who}: mal's {forged} entries must be dropped: {o}"
        );
        assert_eq!(o["active_users"], 3, "{who}: {o}");
    }
}

/// Waits until `home` shows the honest view, printing what it sees when that changes.
fn wait_honest(o: &Org3, who: &str, home: &TestHome) -> Duration {
    let mut last = String::new();
    wait_until(&format!("{who} sees the honest state"), WAIT, || {
        let now = format!(
            "{:?} entries {} dropped {}",
            revoked(home),
            entries(home),
            org(home)["dropped"]
        );
        if now != last {
            eprintln!("{who}: {now}");
            last = now;
        }
        o.honest_view(home)
    })
}

/// Ann creates a workspace shared with ben and cat and puts a file: returns its hash.
fn ann_writes_after(o: &Org3) -> String {
    o.ann.run(&["workspace", "create", "After"]).success();
    for u in ["ben", "cat"] {
        o.ann
            .run(&["workspace", "share", "After", &email(u)])
            .success();
    }
    let f = o.ann.path().join("after.txt");
    std::fs::write(&f, "written by ann after the attack\n").unwrap_or_default();
    o.ann.run(&["put", "After", s(&f), "after.txt"]).success();
    let l = o.ann.ls("After", "/");
    l.get("after.txt").cloned().unwrap_or_default()
}

#[test]
fn attack_3_in_a_bundle_a_revoked_admins_revocations_are_dropped_everywhere() {
    let t0 = Instant::now();
    let o = Org3::new(None);
    // mal is offline; ann revokes mal's user.
    o.ann.run(&["revoke", "user", &email("mal")]).success();
    let informed = carry(&o.ann, &[&o.cat], "revocation");
    let forged = o.mal_forges(&["ann", "ben", "cat"]);
    let total = entries(&o.ann) + forged;
    let from_mal = carry(&o.mal, &[], "forged");
    // cat, which knew, imports mal's bundle: the entries are admitted, and count for nothing.
    let imp = json(&o.cat, &["bundle", "import", s(&from_mal)]);
    eprintln!("cat imports mal's bundle: {imp}");
    assert_eq!(entries(&o.cat), total, "delivered: {imp}");
    o.assert_honest("cat", &o.cat, forged);
    // ann, the victim, too.
    json(&o.ann, &["bundle", "import", s(&from_mal)]);
    assert_eq!(entries(&o.ann), total);
    o.assert_honest("ann", &o.ann, forged);
    // ben is stale: mal's bundle first (the inherent race: ben believes it meanwhile), then the
    // revocation, and mal's entries stop counting.
    json(&o.ben, &["bundle", "import", s(&from_mal)]);
    let meanwhile = revoked(&o.ben);
    eprintln!("ben before the revocation arrives: {meanwhile:?}");
    json(&o.ben, &["bundle", "import", s(&informed)]);
    assert_eq!(entries(&o.ben), total);
    o.assert_honest("ben", &o.ben, forged);
    // The honest devices keep writing.
    let hash = ann_writes_after(&o);
    assert!(!hash.is_empty());
    carry(&o.ann, &[&o.ben, &o.cat], "after");
    for (who, h) in [("ben", &o.ben), ("cat", &o.cat)] {
        assert_eq!(
            h.ls("After", "/").get("after.txt"),
            Some(&hash),
            "{who} reads ann's file"
        );
        o.assert_honest(who, h, forged);
    }
    // mal, given everything, learns it is revoked and its revocations count for nothing.
    json(&o.mal, &["bundle", "import", s(&informed)]);
    o.assert_honest("mal", &o.mal, forged);
    eprintln!("attack 3 by bundle: {:?}", t0.elapsed());
}

#[test]
fn attack_3_over_peer_connections_devices_that_know_refuse_the_revoked_admin() {
    let t0 = Instant::now();
    let o = Org3::new(None);
    // ann and ben online and connected; mal offline.
    let da = o.ann.start(&[]);
    let db = o.ben.start(&[da.addr()]);
    o.ann.run(&["revoke", "user", &email("mal")]).success();
    wait_honest(&o, "ben (online)", &o.ben);
    o.mal_forges(&["ann", "ben", "cat"]);
    let honest_entries = entries(&o.ann);
    // mal's daemon dials both: each side only listens to the other (ann and ben know mal is
    // revoked; mal believes them revoked), neither sends what it holds; nothing arrives,
    // however long it tries.
    let dm = o.mal.start(&[da.addr(), db.addr()]);
    let mal_dev = device_of(&o.mal);
    let dial = o.mal.run(&["connect", da.addr()]);
    eprintln!("mal connects to ann: ok={} {}", dial.ok, dial.stderr.trim());
    std::thread::sleep(Duration::from_secs(3));
    for (who, h) in [("ann", &o.ann), ("ben", &o.ben)] {
        assert!(!connected_to(h, &mal_dev), "{who} syncs with mal");
        assert_eq!(entries(h), honest_entries, "{who} got mal's entries");
        o.assert_honest(who, h, 0);
    }
    dm.stop();
    // The honest devices keep writing and converging.
    let hash = ann_writes_after(&o);
    wait_until("ben reads ann's file", WAIT, || {
        o.ben.ls("After", "/").get("after.txt") == Some(&hash)
    });
    db.stop();
    da.stop();
    eprintln!("attack 3, informed peers: {:?}", t0.elapsed());
}

#[test]
fn attack_3_over_peer_connections_a_stale_device_given_the_forgeries_first_recovers() {
    let t0 = Instant::now();
    let o = Org3::new(None);
    // ann and ben online and connected; cat offline, so stale; mal offline.
    let da = o.ann.start(&[]);
    let db = o.ben.start(&[da.addr()]);
    o.ann.run(&["revoke", "user", &email("mal")]).success();
    wait_honest(&o, "ben (online)", &o.ben);
    let honest_entries = entries(&o.ann);
    // mal spares cat, the device it means to reach, and revokes the others.
    let forged = o.mal_forges(&["ann", "ben"]);
    // mal reaches cat, which has not heard of mal's revocation: cat takes the entries (the
    // inherent race: cat believes them until the revocation arrives).
    let before_cat = entries(&o.cat);
    let dc = o.cat.start(&[]);
    let dm = o.mal.start(&[dc.addr()]);
    wait_until("cat has mal's entries", WAIT, || {
        entries(&o.cat) == before_cat + forged
    });
    eprintln!("cat after mal: {:?}", revoked(&o.cat));
    dm.stop();
    // cat meets the honest devices, both ways: the revocation of mal must reach cat, mal's
    // entries stop counting there, and ann and ben get mal's entries, which count for nothing.
    for (who, from, to) in [
        ("cat dials ann", &o.cat, da.addr()),
        ("ann dials cat", &o.ann, dc.addr()),
        ("ben dials cat", &o.ben, dc.addr()),
    ] {
        let r = from.run(&["connect", to]);
        eprintln!("{who}: ok={} {}", r.ok, r.stderr.trim());
    }
    let healed = std::panic::catch_unwind(|| wait_honest(&o, "cat", &o.cat));
    if healed.is_err() {
        let log = o.cat.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("refus") || l.contains("denied") || l.contains("allow"))
            .take(20)
            .collect();
        eprintln!("cat's log (refusals):\n{}", lines.join("\n"));
        eprintln!("cat's peers: {}", json(&o.cat, &["peers"]));
        eprintln!("ann's peers: {}", json(&o.ann, &["peers"]));
        panic!("cat, given mal's forged revocations first, never recovers over peer connections");
    }
    wait_until("ann and ben have mal's entries", WAIT, || {
        entries(&o.ann) == honest_entries + forged && entries(&o.ben) == honest_entries + forged
    });
    for (who, h) in [("ann", &o.ann), ("ben", &o.ben), ("cat", &o.cat)] {
        o.assert_honest(who, h, forged);
    }
    let hash = ann_writes_after(&o);
    wait_until("ben and cat read ann's file", WAIT, || {
        o.ben.ls("After", "/").get("after.txt") == Some(&hash)
            && o.cat.ls("After", "/").get("after.txt") == Some(&hash)
    });
    dc.stop();
    db.stop();
    da.stop();
    eprintln!("attack 3, stale peer: {:?}", t0.elapsed());
}

#[test]
fn attack_3_through_the_relay_a_revoked_admins_revocations_are_dropped_everywhere() {
    let t0 = Instant::now();
    let relay = Relay::start_temp();
    // Everyone offline; ann revokes mal, mal forges.
    let (o, forged, total) = Org3::revoked_and_forged(Some(&relay.addr));
    // The worst order: mal reaches the relay first, which has heard of nothing else.
    let dm = o.mal.start(&[]);
    wait_until("the relay stores mal's log", WAIT, || {
        relay.org()["entries"].as_u64() == Some(entries(&o.mal))
    });
    eprintln!("relay after mal: {}", relay.org());
    dm.stop();
    wait_until("mal left the relay", WAIT, || relay.connected() == 0);
    // ann comes online through the relay alone: it gets mal's entries, which count for nothing,
    // and the relay gets the revocation.
    let da = o.ann.start(&[]);
    wait_until("ann has mal's entries from the relay", WAIT, || {
        entries(&o.ann) == total
    });
    o.assert_honest("ann", &o.ann, forged);
    // ben and cat, stale, come online through the relay (no peer addresses).
    let db = o.ben.start(&[]);
    let dc = o.cat.start(&[]);
    for (who, h) in [("ben", &o.ben), ("cat", &o.cat)] {
        wait_until(&format!("{who} has every entry"), WAIT, || {
            entries(h) == total
        });
        wait_honest(&o, who, h);
        o.assert_honest(who, h, forged);
    }
    // The honest devices keep writing and converging.
    let hash = ann_writes_after(&o);
    wait_until("ben and cat read ann's file", WAIT, || {
        o.ben.ls("After", "/").get("after.txt") == Some(&hash)
            && o.cat.ls("After", "/").get("after.txt") == Some(&hash)
    });
    // mal comes back: refused by the relay now.
    let refused = relay.refused_inactive();
    let dm = o.mal.start(&[]);
    wait_until("the relay refuses mal", WAIT, || {
        relay.refused_inactive() > refused
    });
    dm.stop();
    for (who, h) in [("ann", &o.ann), ("ben", &o.ben), ("cat", &o.cat)] {
        o.assert_honest(who, h, forged);
    }
    dc.stop();
    db.stop();
    da.stop();
    eprintln!("attack 3 through the relay: {:?}", t0.elapsed());
}

#[test]
fn attack_3_through_the_relay_a_stale_device_online_when_the_forgeries_arrive_recovers() {
    let t0 = Instant::now();
    let relay = Relay::start_temp();
    let o = Org3::new(Some(&relay.addr));
    o.ann.run(&["revoke", "user", &email("mal")]).success();
    let forged = o.mal_forges(&["ann", "ben"]);
    // cat, stale, is online with the relay when mal arrives: the relay, which has heard of
    // nothing else, takes mal's entries and passes them on to cat.
    let before_cat = entries(&o.cat);
    let dc = o.cat.start(&[]);
    wait_until("the relay serves cat", WAIT, || relay.connected() == 1);
    let dm = o.mal.start(&[]);
    wait_until("cat has mal's entries from the relay", WAIT, || {
        entries(&o.cat) == before_cat + forged
    });
    // mal, still online, revokes cat too: the relay cuts cat off.
    // (The revocation, and the organization-key rotation mal's device writes after it.)
    let before_mal = entries(&o.mal);
    o.mal.run(&["revoke", "user", &email("cat")]).success();
    let forged = forged + (entries(&o.mal) - before_mal);
    wait_until("the relay cut cat off", WAIT, || {
        relay.org()["entries"].as_u64() == Some(entries(&o.mal)) && relay.connected() == 1
    });
    let total = entries(&o.ann) + forged;
    eprintln!(
        "cat after mal reached the relay: {:?} ({} entries, {before_cat} before); relay: {}",
        revoked(&o.cat),
        entries(&o.cat),
        relay.org()
    );
    dm.stop();
    // ann comes online through the relay: the relay gets the revocation; cat must get it too.
    let da = o.ann.start(&[]);
    wait_until("ann has mal's entries from the relay", WAIT, || {
        entries(&o.ann) == total
    });
    o.assert_honest("ann", &o.ann, forged);
    wait_or_explain(
        "cat has every entry",
        || entries(&o.cat) == total,
        || {
            format!(
                "cat: {:?}, org {}, status {}\ncat's daemon:\n{}\nthe relay:\n{}\nrelay status: {}",
                revoked(&o.cat),
                org(&o.cat),
                json(&o.cat, &["status"]),
                lines_with(&o.cat.log(), &["relay", "refused"]),
                lines_with(
                    &relay.log(),
                    &["refused", "welcome", "cut", "allow", "disconnect"]
                ),
                relay.status()
            )
        },
    );
    wait_honest(&o, "cat", &o.cat);
    o.assert_honest("cat", &o.cat, forged);
    let db = o.ben.start(&[]);
    wait_until("ben has every entry", WAIT, || entries(&o.ben) == total);
    o.assert_honest("ben", &o.ben, forged);
    let hash = ann_writes_after(&o);
    wait_until("ben and cat read ann's file", WAIT, || {
        o.ben.ls("After", "/").get("after.txt") == Some(&hash)
            && o.cat.ls("After", "/").get("after.txt") == Some(&hash)
    });
    db.stop();
    dc.stop();
    da.stop();
    eprintln!(
        "attack 3 through the relay, stale device online: {:?}",
        t0.elapsed()
    );
}

#[test]
fn attack_3_a_running_stale_device_that_took_its_own_forged_revocation_recovers_through_the_relay()
{
    let t0 = Instant::now();
    let relay = Relay::start_temp();
    let (o, forged, total) = Org3::revoked_and_forged(Some(&relay.addr));
    let from_mal = carry(&o.mal, &[], "forged");
    // cat, stale, runs and is served by the relay; mal's bundle reaches cat while its daemon
    // runs: cat believes itself revoked, passes the entries on to the relay, which cuts it off.
    let dc = o.cat.start(&[]);
    wait_until("the relay serves cat", WAIT, || relay.connected() == 1);
    json(&o.cat, &["bundle", "import", s(&from_mal)]);
    wait_until("the relay has mal's entries and cut cat off", WAIT, || {
        relay.org()["entries"].as_u64() == Some(entries(&o.mal)) && relay.connected() == 0
    });
    eprintln!("cat after mal's bundle: {:?}", revoked(&o.cat));
    // ann comes online through the relay: the relay gets the revocation, serves cat again, and
    // cat must get the revocation.
    let da = o.ann.start(&[]);
    wait_until("ann has mal's entries from the relay", WAIT, || {
        entries(&o.ann) == total
    });
    wait_until("the relay serves cat again", WAIT, || {
        relay.connected() == 2
    });
    wait_or_explain(
        "cat has every entry",
        || entries(&o.cat) == total,
        || {
            format!(
                "cat: {:?}, org {}, status {}\ncat's daemon:\n{}\nrelay status: {}",
                revoked(&o.cat),
                org(&o.cat),
                json(&o.cat, &["status"]),
                lines_with(&o.cat.log(), &["relay"]),
                relay.status()
            )
        },
    );
    o.assert_honest("cat", &o.cat, forged);
    dc.stop();
    da.stop();
    eprintln!(
        "attack 3, running stale device through the relay: {:?}",
        t0.elapsed()
    );
}

/// The race of the test above left to chance: mal revokes cat too, so the relay, as it takes
/// mal's entries, both passes them on to cat and cuts cat off (cat's daemon had two connections
/// to the relay: the second's introduction is refused). Once ann's revocation reaches the
/// relay, cat is served again and must then get that revocation at once. (It did not, in most
/// runs, until the engine forgot what it had asked of a peer whose link dropped: the `Want` lost
/// in the cut-off blocked the ask for 60 s.)
#[test]
fn attack_3_through_the_relay_a_stale_device_served_when_its_own_forged_revocation_arrives_recovers()
 {
    let t0 = Instant::now();
    let relay = Relay::start_temp();
    let (o, forged, total) = Org3::revoked_and_forged(Some(&relay.addr));
    let before_cat = entries(&o.cat);
    let dc = o.cat.start(&[]);
    let cat_dev = device_of(&o.cat);
    wait_until("the relay serves cat", WAIT, || relay.connected() == 1);
    let dm = o.mal.start(&[]);
    wait_until("the relay stores mal's log", WAIT, || {
        relay.org()["entries"].as_u64() == Some(entries(&o.mal))
    });
    wait_until("the relay cut cat off", WAIT, || relay.connected() == 1);
    dm.stop();
    let got = entries(&o.cat);
    eprintln!(
        "cat when the relay cut it off: {got} entries ({before_cat} before, {} with mal's: \
         {}), {:?}",
        before_cat + forged,
        if got == before_cat + forged {
            "got them"
        } else {
            "did not get them"
        },
        revoked(&o.cat)
    );
    let da = o.ann.start(&[]);
    wait_until("ann has mal's entries from the relay", WAIT, || {
        entries(&o.ann) == total
    });
    wait_or_explain(
        "cat has every entry",
        || entries(&o.cat) == total,
        || {
            format!(
                "cat: {:?}, org {}, status {}\ncat's daemon:\n{}\nthe relay about cat:\n{}\n\
                 relay status: {}",
                revoked(&o.cat),
                org(&o.cat),
                json(&o.cat, &["status"]),
                lines_with(&o.cat.log(), &["relay", "item", "admitted", "held"]),
                lines_with(&relay.log(), &[&cat_dev[..12]]),
                relay.status()
            )
        },
    );
    wait_honest(&o, "cat", &o.cat);
    o.assert_honest("cat", &o.cat, forged);
    dc.stop();
    da.stop();
    eprintln!("attack 3 through the relay, the race: {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Attack 6a
// ---------------------------------------------------------------------------------------------
