//! End-to-end enrolment with real processes: an admin's daemon greets through `cloison greet`,
//! the new device runs `cloison join`, both driven through their stdin/stdout (codes on their
//! own lines). Happy paths (a user, then a second device of that user, which syncs and decrypts
//! the user's workspace) and every failure path, each checked to leave the organization log
//! unchanged; and a recording proxy that sees no plaintext names or e-mails.

use std::time::Duration;

use cloison_tests::enrol::*;
use cloison_tests::{Daemon, TestHome, team, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// Alice's daemon runs; she invites Bob, who joins with the right codes. Returns Alice's home
/// and daemon, the invitation id, Bob's home and what `greet` printed.
fn alice_enrols_bob() -> (TestHome, Daemon, String, TestHome, String) {
    let (alice, a) = start_admin();
    let (id, token) = invite(&alice, &["user", "bob@clinique.example"]);
    let bob = TestHome::new();
    let (gok, gout, jok, jout) = enrol(
        &alice,
        &id,
        &bob,
        &["join", &token, "--user", "Bob", "--device", "bob-laptop"],
        same,
        same,
    );
    assert!(gok && jok, "greet:\n{gout}\njoin:\n{jout}");
    (alice, a, id, bob, gout)
}

#[test]
fn a_user_then_a_second_device_enrol_and_sync_the_shared_workspace() {
    let (alice, a, id, bob, gout) = alice_enrols_bob();
    assert!(gout.contains("Bob") && gout.contains("enrolled"), "{gout}");
    assert_eq!(invitation_state(&alice, &id), "used");
    let users = alice.run(&["users", "--json"]).json();
    assert!(users.to_string().contains("bob@clinique.example"));

    // Bob's device syncs a workspace Alice shares with him.
    let b = bob.start(&[a.addr()]);
    alice.run(&["workspace", "create", "Ward"]).success();
    alice
        .run(&[
            "workspace",
            "share",
            "Ward",
            "bob@clinique.example",
            "--role",
            "contributor",
        ])
        .success();
    let src = alice.path().join("note.txt");
    std::fs::write(&src, "shared after enrolment").unwrap();
    alice
        .run(&["put", "Ward", src.to_str().unwrap(), "note.txt"])
        .success();
    let got = bob.path().join("got.txt");
    wait_until("Bob's device reads the shared file", WAIT, || {
        bob.run(&["get", "Ward", "note.txt", got.to_str().unwrap()])
            .ok
    });
    assert_eq!(
        std::fs::read_to_string(&got).unwrap(),
        "shared after enrolment"
    );

    // Bob invites a second device of his own; its new device decrypts his workspaces.
    let (id2, token2) = invite(&bob, &["device"]);
    let bob2 = TestHome::new();
    let (gok, gout, jok, jout) = enrol(
        &bob,
        &id2,
        &bob2,
        &["join", &token2, "--device", "bob-phone"],
        same,
        same,
    );
    assert!(gok && jok, "greet:\n{gout}\njoin:\n{jout}");
    let _b2 = bob2.start(&[b.addr()]);
    let got2 = bob2.path().join("got2.txt");
    wait_until("Bob's second device reads the shared file", WAIT, || {
        bob2.run(&["get", "Ward", "note.txt", got2.to_str().unwrap()])
            .ok
    });
    assert_eq!(
        std::fs::read_to_string(&got2).unwrap(),
        "shared after enrolment"
    );
    wait_until("Alice sees Bob's second device", WAIT, || {
        alice
            .run(&["devices", "--json"])
            .json()
            .to_string()
            .contains("bob-phone")
    });
}

#[test]
fn a_wrong_code_on_either_side_aborts_both_and_burns_the_invitation() {
    let (alice, _a) = start_admin();
    // A live invitation keeps the greeting listener up after the others burn.
    let _keeper = invite(&alice, &["device"]);
    for (admin_types, claimer_types) in [
        (wrong as fn(&str) -> String, same as fn(&str) -> String),
        (same, wrong),
    ] {
        // Creating an invitation records it in the log; the failed exchange adds nothing.
        let (id, token) = invite(&alice, &["user", "eve@clinique.example"]);
        let before = log_of(&alice);
        let eve = TestHome::new();
        let args = ["join", &token, "--user", "Eve", "--device", "eve-pc"];
        let (gok, gout, jok, jout) = enrol(&alice, &id, &eve, &args, admin_types, claimer_types);
        assert!(!gok && !jok, "greet:\n{gout}\njoin:\n{jout}");
        assert!(gout.contains("aborted"), "{gout}");
        assert!(
            jout.contains("abort") || jout.contains("wrong code"),
            "{jout}"
        );
        assert_eq!(invitation_state(&alice, &id), "burned");
        assert_eq!(log_of(&alice), before, "the organization log changed");
        assert!(!eve.path().join("keys.cloison").exists());
        // The burned token is refused with a clear message.
        let again = TestHome::new();
        let r = again.run(&["join", &token, "--user", "Eve", "--device", "eve-pc"]);
        let e = r.failure();
        assert!(e.contains("burned"), "{e}");
    }
}

#[test]
fn expired_cancelled_used_and_guessed_tokens_are_refused() {
    let (alice, _a) = start_admin();
    // A live invitation keeps the greeting listener up while the others are refused.
    let (keeper, _) = invite(&alice, &["device"]);
    let join =
        |token: &str| TestHome::new().run(&["join", token, "--user", "Mal", "--device", "mal-pc"]);
    // Expired (by time: nothing is written when it expires).
    let (_, token) = invite(&alice, &["user", "x@clinique.example", "--ttl", "1"]);
    let before = log_of(&alice);
    std::thread::sleep(Duration::from_millis(1200));
    let e = join(&token).failure();
    assert!(e.contains("expired"), "{e}");
    assert_eq!(log_of(&alice), before, "the organization log changed");
    // Cancelled: the cancellation is one entry in the log, the refused claim none.
    let (id, token) = invite(&alice, &["user", "y@clinique.example"]);
    let created = log_of(&alice);
    alice.run(&["invite", "cancel", &id]).success();
    assert_eq!(invitation_state(&alice, &id), "cancelled");
    let before = log_of(&alice);
    assert_eq!(before.0, created.0 + 1);
    let e = alice.run(&["greet", &id]).failure();
    assert!(e.contains("cancelled"), "{e}");
    let e = join(&token).failure();
    assert!(e.contains("cancelled"), "{e}");
    assert_eq!(log_of(&alice), before, "the organization log changed");
    // A third process with a guessed token (right greeter and address, random secret).
    let (guessed_id, real) = invite(&alice, &["user", "z@clinique.example"]);
    let before = log_of(&alice);
    let mut t = cloison_node::enroll::Token::decode(&real).unwrap();
    let mut secret = [0u8; 16];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut secret);
    t.secret = cloison_node::enroll::InvitationSecret::from_bytes(secret);
    let err = join(&t.encode().unwrap()).failure();
    assert!(err.contains("no such invitation"), "{err}");
    assert!(!err.contains("Clinique"), "{err}");
    assert_eq!(log_of(&alice), before, "the organization log changed");
    // Used.
    let (id, token) = invite(&alice, &["user", "w@clinique.example"]);
    let w = TestHome::new();
    let (gok, _, jok, _) = enrol(
        &alice,
        &id,
        &w,
        &["join", &token, "--user", "W", "--device", "w-pc"],
        same,
        same,
    );
    assert!(gok && jok);
    let after = log_of(&alice);
    let e = join(&token).failure();
    assert!(e.contains("already used"), "{e}");
    assert_eq!(log_of(&alice), after);
    // With no live invitation left, the greeting listener is gone: nobody can even connect.
    alice.run(&["invite", "cancel", &keeper]).success();
    alice.run(&["invite", "cancel", &guessed_id]).success();
    let e = join(&token).failure();
    assert!(e.contains("cannot reach the greeter"), "{e}");
}

#[test]
fn a_name_that_is_not_printable_is_refused_before_anything_is_sent() {
    let (alice, _a) = start_admin();
    let (id, token) = invite(&alice, &["user", "v@clinique.example"]);
    let before = log_of(&alice);
    let e = TestHome::new()
        .run(&["join", &token, "--user", "V\u{1b}[31m", "--device", "v-pc"])
        .failure();
    assert!(
        e.contains("the user name must be 1 to 256 bytes of printable text"),
        "{e}"
    );
    assert!(!e.contains('\u{1b}'), "the raw escape was printed: {e:?}");
    let e = TestHome::new()
        .run(&["join", &token, "--user", "V", "--device", "pc\nroot"])
        .failure();
    assert!(e.contains("the device label must be"), "{e}");
    // Nothing reached the greeter: the invitation is untouched and still usable.
    assert_eq!(log_of(&alice), before);
    assert_eq!(invitation_state(&alice, &id), "live");
}

#[test]
fn a_dropped_connection_leaves_no_half_enrolled_device() {
    let (alice, _a) = start_admin();
    // A live invitation keeps the greeting listener up, so the refusal below is said.
    let _keeper = invite(&alice, &["device"]);
    let (id, token) = invite(&alice, &["user", "d@clinique.example"]);
    let before = log_of(&alice);
    let d = TestHome::new();
    let mut g = Driven::start(&alice, &["greet", &id]);
    let mut j = Driven::start(&d, &["join", &token, "--user", "D", "--device", "d-pc"]);
    let _ = g.code();
    let _ = j.code();
    // The claimer dies before confirming; the admin then types the right code.
    j.kill();
    std::thread::sleep(Duration::from_millis(300));
    g.type_line("000000");
    let (gok, gout) = g.finish();
    assert!(!gok, "{gout}");
    assert_eq!(log_of(&alice), before, "the organization log changed");
    assert!(!d.path().join("keys.cloison").exists());
    assert!(!d.path().join("store.redb").exists());
    // The codes were shown, so the invitation is burned: a man in the middle holding the token
    // gets one try at the codes, not one per reconnection.
    wait_until("the invitation is burned", Duration::from_secs(30), || {
        invitation_state(&alice, &id) == "burned"
    });
    let e = TestHome::new()
        .run(&["join", &token, "--user", "D", "--device", "d-pc"])
        .failure();
    assert!(e.contains("burned"), "{e}");
    assert_eq!(log_of(&alice), before);
    // A new invitation goes through.
    let (id2, token2) = invite(&alice, &["user", "d@clinique.example"]);
    let d2 = TestHome::new();
    let (gok, gout, jok, jout) = enrol(
        &alice,
        &id2,
        &d2,
        &["join", &token2, "--user", "D", "--device", "d-pc"],
        same,
        same,
    );
    assert!(gok && jok, "greet:\n{gout}\njoin:\n{jout}");
}

/// Someone who knows an invitation's id but not its secret says hello (from several
/// identities) and never goes on: those half-open sessions prove nothing and block nobody, so
/// the real claimer enrols at once.
#[test]
fn bare_hellos_from_someone_who_knows_only_the_invitation_id_block_nobody() {
    use cloison_node::enroll::{Claimer, InvitationSecret, Packet, Token};
    use cloison_node::net::greet::GreetNet;
    use cloison_node::trust::DeviceKeys;
    let (alice, _a) = start_admin();
    let (id, token) = invite(&alice, &["user", "h@clinique.example"]);
    let real = Token::decode(&token).unwrap();
    let addrs: Vec<_> = real.addrs.iter().filter_map(|a| a.parse().ok()).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let mut squatters = Vec::new();
    for _ in 0..6 {
        let keys = DeviceKeys::generate(&mut rand::rng());
        let mut guessed = real.clone();
        guessed.secret = InvitationSecret::from_bytes(rand::random());
        let (_claimer, hello) = Claimer::start(&guessed, &keys, rand::random()).unwrap();
        let Ok(Packet::Hello { noise, .. }) = Packet::decode(&hello) else {
            panic!("not a hello")
        };
        let bare = Packet::Hello {
            id: real.secret.id(),
            noise,
        }
        .encode();
        let (net, events) = GreetNet::start(&keys, Vec::new()).unwrap();
        let reply = rt
            .block_on(net.call(real.greeter, addrs.clone(), bare))
            .unwrap();
        assert!(
            !matches!(Packet::decode(&reply), Ok(Packet::Refused(_))),
            "the greeter refused a hello outright; the test no longer squats"
        );
        // Kept open: the connection stays up for the rest of the test.
        squatters.push((net, events));
    }
    let c = TestHome::new();
    let (gok, gout, jok, jout) = enrol(
        &alice,
        &id,
        &c,
        &["join", &token, "--user", "H", "--device", "h-pc"],
        same,
        same,
    );
    assert!(gok && jok, "greet:\n{gout}\njoin:\n{jout}");
    assert!(!jout.contains("someone else is being greeted"), "{jout}");
}

/// Every byte between the claimer and the greeter goes through a recording proxy: the names,
/// e-mail, labels and organization name never cross in clear.
#[test]
fn greeting_traffic_carries_no_plaintext_names() {
    let (alice, _a) = start_admin();
    let (id, token) = invite(&alice, &["user", "canary-mail@clinique.example"]);
    let mut t = cloison_node::enroll::Token::decode(&token).unwrap();
    let greet_port: u16 = t.addrs[0].split('/').nth(4).unwrap().parse().unwrap();
    let (proxy_port, wire) = cloison_tests::recording_proxy(greet_port);
    t.addrs = vec![format!("/ip4/127.0.0.1/tcp/{proxy_port}")];
    let via_proxy = t.encode().unwrap();
    let c = TestHome::new();
    let (gok, gout, jok, jout) = enrol(
        &alice,
        &id,
        &c,
        &[
            "join",
            &via_proxy,
            "--user",
            "Canary-Person-Name",
            "--device",
            "canary-device-label",
        ],
        same,
        same,
    );
    assert!(gok && jok, "greet:\n{gout}\njoin:\n{jout}");
    let wire = wire.lock().unwrap().clone();
    assert!(wire.len() > 1_000, "the proxy carried the greeting");
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&wire, b"/noise"), "the recording sees clear bytes");
    for canary in [
        &b"Canary-Person-Name"[..],
        b"canary-device-label",
        b"canary-mail@clinique.example",
        b"Clinique",
        b"alice",
    ] {
        assert!(
            !contains(&wire, canary),
            "{:?} crossed the wire in clear",
            String::from_utf8_lossy(canary)
        );
    }
}

#[test]
fn an_invitation_survives_a_daemon_restart() {
    let (alice, a) = start_admin();
    let (id, token) = invite(
        &alice,
        &["user", "r@clinique.example", "--profile", "outsider"],
    );
    a.stop();
    let _a = alice.start(&[]);
    let r = TestHome::new();
    let (gok, gout, jok, jout) = enrol(
        &alice,
        &id,
        &r,
        &["join", &token, "--user", "Rita", "--device", "rita-pc"],
        same,
        same,
    );
    assert!(gok && jok, "greet:\n{gout}\njoin:\n{jout}");
    let users = alice.run(&["users", "--json"]).json().to_string();
    assert!(
        users.contains("r@clinique.example") && users.contains("outsider"),
        "{users}"
    );
}

/// The air-gapped exchange up to the answer: `join --offline` writes the request and waits for
/// the admin's challenge; `greet --request` shows the challenge (drawn after it read the
/// request), the claimer types it and reads back its code, and the admin types what
/// `admin_types` makes of it. Returns the greeter's success and output.
fn offline_codes(
    claimer: &TestHome,
    join: &[&str],
    admin: &TestHome,
    greet: &[&str],
    admin_types: fn(&str) -> String,
) -> (bool, String) {
    let mut j = Driven::start(claimer, join);
    j.wait_for(|l| l.starts_with("When the admin reads you their code"));
    let mut g = Driven::start(admin, greet);
    let challenge = g.code();
    j.type_line(&challenge);
    let code = j.code();
    let (ok, jout) = j.finish();
    assert!(ok, "{jout}");
    g.type_line(&admin_types(&code));
    g.finish()
}

/// The air-gapped enrolment: a request file and an answer file; the admin's challenge, the
/// claimer's code and the greeter's code said out of band.
#[test]
fn offline_enrolment_through_a_request_and_an_answer_file() {
    let (alice, a) = start_admin();
    let olga = TestHome::new();
    let req = olga.path().join("request.file");
    let ans = olga.path().join("answer.file");
    let (r, s) = (req.to_str().unwrap(), ans.to_str().unwrap());
    let code_in = |out: &str| {
        out.lines()
            .rev()
            .find(|l| l.len() == 6 && l.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no code in:\n{out}"))
            .to_owned()
    };
    // One attempt on the invitation (id, token): the admin types the claimer's code as
    // `admin_types` makes it; if the greeter answers, the claimer types the greeter's code as
    // `claimer_types` makes it. Returns greet's success and `join --answer`'s.
    let run_once = |(id, token): &(String, String),
                    admin_types: fn(&str) -> String,
                    claimer_types: fn(&str) -> String|
     -> (bool, Option<(bool, String)>) {
        let _ = std::fs::remove_file(&ans);
        let join = [
            "join",
            token,
            "--offline",
            "--out",
            r,
            "--user",
            "Olga",
            "--device",
            "olga-pc",
        ];
        let greet = ["greet", id, "--request", r, "--out", s];
        let (ok, gout) = offline_codes(&olga, &join, &alice, &greet, admin_types);
        if !ok {
            return (false, None);
        }
        let greeter_code = code_in(&gout);
        let mut j = Driven::start(&olga, &["join", "--answer", s]);
        j.type_line(&claimer_types(&greeter_code));
        (true, Some(j.finish()))
    };

    // A wrong claimer code first: burned, no answer, the log unchanged.
    let inv = invite(&alice, &["user", "olga-burned@clinique.example"]);
    let before = log_of(&alice);
    let (ok, _) = run_once(&inv, wrong, same);
    assert!(!ok);
    assert!(!ans.exists());
    assert_eq!(invitation_state(&alice, &inv.0), "burned");
    assert_eq!(log_of(&alice), before);

    // The right code at the greeter; then a wrong greeter code at the claimer stores nothing,
    // and a fresh request goes through.
    // (Offline, the greeter certifies before the claimer checks its code: the first attempt
    // leaves a certified device without keys anywhere, under another e-mail here.)
    let (ok, j) = run_once(
        &invite(&alice, &["user", "olga-first@clinique.example"]),
        same,
        wrong,
    );
    let (jok, jout) = j.unwrap();
    assert!(ok && !jok && jout.contains("wrong code"), "{jout}");
    assert!(!olga.path().join("keys.cloison").exists());
    let (ok, j) = run_once(
        &invite(&alice, &["user", "olga@clinique.example"]),
        same,
        same,
    );
    let (jok, jout) = j.unwrap();
    assert!(ok && jok, "{jout}");

    // The new device is a member: it syncs a workspace shared with Olga.
    let _o = olga.start(&[a.addr()]);
    alice.run(&["workspace", "create", "Air"]).success();
    alice
        .run(&[
            "workspace",
            "share",
            "Air",
            "olga@clinique.example",
            "--role",
            "reader",
        ])
        .success();
    let src = alice.path().join("air.txt");
    std::fs::write(&src, "carried on a stick").unwrap();
    alice
        .run(&["put", "Air", src.to_str().unwrap(), "air.txt"])
        .success();
    let got = olga.path().join("got.txt");
    wait_until("Olga reads the shared file", WAIT, || {
        olga.run(&["get", "Air", "air.txt", got.to_str().unwrap()])
            .ok
    });
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "carried on a stick");
}

/// Without any daemon: the invitation names no address, and the air-gapped files still work
/// (the admin's command opens the store itself). The claimer leaves `join --offline` before the
/// admin calls, and answers the challenge with `join --code`. A version 1 request is refused as
/// such.
#[test]
fn offline_enrolment_works_without_a_daemon() {
    let alice = team(&["alice"]).into_iter().next().unwrap();
    let (id, token) = invite(&alice, &["device"]);
    let t = cloison_node::enroll::Token::decode(&token).unwrap();
    assert!(t.addrs.is_empty());
    let phone = TestHome::new();
    let req = phone.path().join("req");
    let ans = phone.path().join("ans");
    let (r, s) = (req.to_str().unwrap(), ans.to_str().unwrap());
    // stdin closed at once: the request is written, the code is left for `join --code`.
    let out = phone
        .run(&[
            "join",
            &token,
            "--offline",
            "--out",
            r,
            "--device",
            "alice-phone",
        ])
        .success();
    assert!(out.contains("cloison join --code"), "{out}");

    let v1 = phone.path().join("req-v1");
    let mut bytes = std::fs::read(&req).unwrap();
    bytes[8] = 1;
    std::fs::write(&v1, &bytes).unwrap();
    let mut g = Driven::start(
        &alice,
        &["greet", &id, "--request", v1.to_str().unwrap(), "--out", s],
    );
    g.type_line("000000");
    let (ok, gout) = g.finish();
    assert!(!ok && gout.contains("older cloison"), "{gout}");
    assert_eq!(invitation_state(&alice, &id), "live");

    let (ok, gout) = offline_codes(
        &phone,
        &["join", "--code"],
        &alice,
        &["greet", &id, "--request", r, "--out", s],
        same,
    );
    assert!(ok, "{gout}");
    let code = gout
        .lines()
        .rev()
        .find(|l| l.len() == 6 && l.chars().all(|c| c.is_ascii_digit()))
        .unwrap()
        .to_owned();
    let mut j = Driven::start(&phone, &["join", "--answer", s]);
    j.type_line(&code);
    let (ok, jout) = j.finish();
    assert!(ok, "{jout}");
    let devices = alice.run(&["devices", "--json"]).json().to_string();
    assert!(devices.contains("alice-phone"), "{devices}");
    assert!(!phone.path().join("join-pending.cloison").exists());
}

#[test]
fn a_joined_device_finds_its_greeter_with_mdns_off_and_no_peer_given() {
    use cloison_tests::probe::{connected_to, device_of};
    let (alice, a, _, bob, _) = alice_enrols_bob();
    // Bob's daemon starts with mDNS off and no `--peer`: it dials the addresses of Alice's
    // daemon that the welcome carried, which Bob's home remembers.
    let b = bob.start(&[]);
    let (da, db) = (device_of(&alice), device_of(&bob));
    wait_until("bob and alice are connected", WAIT, || {
        connected_to(&bob, &da) && connected_to(&alice, &db)
    });
    b.stop();
    a.stop();
}
