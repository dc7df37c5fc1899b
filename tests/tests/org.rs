//! The organization from the command line: init, listings, revocations, wrong passphrase, with
//! real `cloison` processes on real homes.

use cloison_node::keystore::KdfParams;
use cloison_node::node::Node;
use cloison_node::trust::Profile;
use cloison_tests::{PASSPHRASE, TestHome};

fn init(home: &TestHome) {
    let out = home
        .run(&[
            "init",
            "--org",
            "Saint-Luc Hospital",
            "--user",
            "Ada Lovelace",
            "--email",
            "ada@example.org",
            "--device",
            "ada-laptop",
        ])
        .success();
    assert!(
        out.contains("created organization \"Saint-Luc Hospital\""),
        "{out}"
    );
}

#[test]
fn init_then_users_json_lists_the_admin() {
    let home = TestHome::new();
    init(&home);
    let v = home.run(&["users", "--json"]).json();
    let users = v["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["name"], "Ada Lovelace");
    assert_eq!(users[0]["email"], "ada@example.org");
    assert_eq!(users[0]["profile"], "admin");
    assert_eq!(users[0]["revoked"], false);
    let d = home.run(&["devices", "--json"]).json();
    assert_eq!(d["devices"][0]["label"], "ada-laptop");
    assert_eq!(d["devices"][0]["this_device"], true);
    let table = home.run(&["users"]).success();
    assert!(
        table.contains("Ada Lovelace") && table.contains("admin"),
        "{table}"
    );
    let org = home.run(&["org", "show", "--json"]).json();
    assert_eq!(org["name"], "Saint-Luc Hospital");
    assert_eq!(org["entries"], 1);
}

#[test]
fn init_twice_and_commands_without_init_fail_clearly() {
    let home = TestHome::new();
    let err = home.run(&["users"]).failure();
    assert!(err.contains("cloison init"), "{err}");
    init(&home);
    let err = home
        .run(&[
            "init", "--org", "X", "--user", "U", "--email", "e@x", "--device", "d",
        ])
        .failure();
    assert!(err.contains("already holds a device"), "{err}");
}

#[test]
fn wrong_passphrase_fails_with_a_message_that_says_so() {
    let home = TestHome::new();
    init(&home);
    let err = home
        .run_with(&["users", "--json"], "not the passphrase")
        .failure();
    assert!(err.contains("wrong passphrase"), "{err}");
    let err = home.run_with(&["users"], "").failure();
    assert!(err.contains("empty passphrase"), "{err}");
}

#[test]
fn revocations_from_the_cli_are_seen_by_the_revoked_users_and_refuse_their_writes() {
    let admin = TestHome::new();
    init(&admin);
    // Provision two users through the library (interactive enrolment comes later); their
    // certificates go through admission like any entry.
    let bob_home = TestHome::new();
    let carol_home = TestHome::new();
    {
        let mut node = Node::open(admin.path(), PASSPHRASE.as_bytes()).unwrap();
        node.provision_user(
            bob_home.path(),
            PASSPHRASE.as_bytes(),
            KdfParams::TEST_ONLY,
            "Bob",
            "bob@example.org",
            "bob-laptop",
            Profile::Admin,
        )
        .unwrap();
        node.provision_user(
            carol_home.path(),
            PASSPHRASE.as_bytes(),
            KdfParams::TEST_ONLY,
            "Carol",
            "carol@example.org",
            "carol-laptop",
            Profile::Standard,
        )
        .unwrap();
    }
    let users = admin.run(&["users", "--json"]).json();
    assert_eq!(users["users"].as_array().unwrap().len(), 3);
    // Provisioning into a home that already holds a device fails before anything is certified.
    {
        let mut node = Node::open(admin.path(), PASSPHRASE.as_bytes()).unwrap();
        let again = node.provision_user(
            bob_home.path(),
            PASSPHRASE.as_bytes(),
            KdfParams::TEST_ONLY,
            "Bob again",
            "bob2@example.org",
            "bob-laptop-2",
            Profile::Standard,
        );
        assert!(again.is_err());
    }
    let users = admin.run(&["users", "--json"]).json();
    assert_eq!(
        users["users"].as_array().unwrap().len(),
        3,
        "nothing certified"
    );

    // By label, then by e-mail.
    admin.run(&["revoke", "device", "bob-laptop"]).success();
    admin
        .run(&["revoke", "user", "carol@example.org"])
        .success();
    let d = admin.run(&["devices", "--json"]).json();
    let revoked: Vec<&str> = d["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["revoked"] == true)
        .map(|d| d["label"].as_str().unwrap())
        .collect();
    assert_eq!(revoked, vec!["bob-laptop", "carol-laptop"]);
    let u = admin.run(&["users", "--json"]).json();
    let carol = u["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "Carol")
        .unwrap();
    assert_eq!(carol["revoked"], true);

    // Bob's device learns of its revocation (carried by the library until the network exists)
    // and can no longer write: its attempt is refused and nothing is stored.
    let entries: Vec<Vec<u8>> = {
        let node = Node::open(admin.path(), PASSPHRASE.as_bytes()).unwrap();
        node.log().entries().map(|e| e.bytes().to_vec()).collect()
    };
    {
        let mut bob = Node::open(bob_home.path(), PASSPHRASE.as_bytes()).unwrap();
        assert!(bob.ingest_log(entries).unwrap().refused.is_empty());
    }
    let before = bob_home.run(&["org", "show", "--json"]).json()["entries"].clone();
    let err = bob_home
        .run(&["revoke", "user", "ada@example.org"])
        .failure();
    assert!(err.contains("revoked"), "{err}");
    let after = bob_home.run(&["org", "show", "--json"]).json()["entries"].clone();
    assert_eq!(before, after);

    // Unknown and ambiguous references are clear errors.
    let err = admin
        .run(&["revoke", "user", "nobody@example.org"])
        .failure();
    assert!(err.contains("no user matches"), "{err}");
}
