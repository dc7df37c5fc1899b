//! End-to-end: invitations are recorded in the organization log, so every admin sees them.
//! Alice's daemon invites; Bob (an admin, on his own daemon, synced with Alice's) lists the
//! invitation with its e-mail and who recorded it, then sees it cancelled; and an invitation
//! Bob cancels is refused by Alice's greeter.

use std::time::Duration;

use cloison_node::node::Node;
use cloison_node::trust::{Certificate, Profile};
use cloison_tests::{PASSPHRASE, TestHome, team, wait_until};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn listed(home: &TestHome, id: &str) -> Option<Value> {
    let v = home.run(&["invitations", "--json"]).json();
    v["invitations"]
        .as_array()?
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
}

fn state_of(home: &TestHome, id: &str) -> String {
    listed(home, id)
        .and_then(|i| i["state"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn invite(home: &TestHome, email: &str) -> (String, String) {
    let v = home.run(&["invite", "user", email, "--json"]).json();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn every_admin_sees_the_invitations_recorded_in_the_log() {
    let t = team(&["alice", "bob"]);
    let (alice, bob) = (&t[0], &t[1]);
    // Bob becomes an admin (there is no profile command yet: through the library, before the
    // daemons start).
    {
        let bob_user = Node::open(bob.path(), PASSPHRASE.as_bytes())
            .unwrap()
            .user_id();
        let mut a = Node::open(alice.path(), PASSPHRASE.as_bytes()).unwrap();
        a.write(Certificate::ProfileChanged {
            user: bob_user,
            profile: Profile::Admin,
        })
        .unwrap();
    }
    let a = alice.start(&[]);
    let _b = bob.start(&[a.addr()]);

    let (id, _) = invite(alice, "carol@clinique.example");
    wait_until("bob lists alice's invitation", WAIT, || {
        state_of(bob, &id) == "live"
    });
    let seen = listed(bob, &id).unwrap();
    assert_eq!(seen["email"], "carol@clinique.example");
    assert_eq!(seen["profile"], "standard");
    assert_eq!(seen["recorded"], true);
    assert_eq!(seen["recorded_by_user"], "alice");
    assert!(seen["token"].is_null(), "{seen}");
    let text = bob.run(&["invitations"]).stdout;
    assert!(
        text.contains("carol@clinique.example") && text.contains("alice"),
        "{text}"
    );

    alice.run(&["invite", "cancel", &id]).success();
    wait_until("bob sees it cancelled", WAIT, || {
        state_of(bob, &id) == "cancelled"
    });

    // Bob cancels one of Alice's invitations: Alice's greeter refuses its token.
    let (id2, token2) = invite(alice, "dave@clinique.example");
    wait_until("bob lists the second invitation", WAIT, || {
        state_of(bob, &id2) == "live"
    });
    bob.run(&["invite", "cancel", &id2[..8]]).success();
    wait_until("alice sees it cancelled", WAIT, || {
        state_of(alice, &id2) == "cancelled"
    });
    let e = TestHome::new()
        .run(&["join", &token2, "--user", "Dave", "--device", "dave-pc"])
        .failure();
    assert!(e.contains("cancelled"), "{e}");
}
