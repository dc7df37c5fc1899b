//! The config file (issue 19, item 3), with the real `cloison` binary: a daemon started with no
//! flag takes its listen address, its peer and mDNS off from `config.toml` in its home and
//! connects; `cloison config show --json` says where each value came from (file, env, flag,
//! default); a bad file (a wrong type, an unknown key) makes `cloison run` and
//! `cloison config show` fail with the file's line and the reason, and no daemon starts.
//!
//! Every daemon here listens on 127.0.0.1 only, with mDNS off (the file says so, and
//! `CLOISON_MDNS=0` says so again).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cloison_tests::probe::{connected_to, device_of};
use cloison_tests::{PASSPHRASE, TestHome, bin, team, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn write_config(h: &TestHome, text: &str) {
    let p = h.path().join("config.toml");
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
}

/// Runs `cloison run` (no flag) and waits at most 60 s for it to exit (a daemon that starts
/// does not exit: it is killed, and the test fails). Returns (stdout, stderr).
fn run_must_exit_with_failure(h: &TestHome) -> (String, String) {
    let mut child = Command::new(bin("cloison"))
        .arg("run")
        .env("CLOISON_HOME", h.path())
        .env("CLOISON_PASSPHRASE", PASSPHRASE)
        .env("CLOISON_TEST_FAST_KDF", "1")
        .env("CLOISON_MDNS", "0")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start cloison run: {e}"));
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cloison run did not exit: a daemon started despite the bad config file");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(!status.success(), "cloison run succeeded:\n{out}\n{err}");
    (out, err)
}

#[test]
fn a_daemon_started_without_flags_takes_its_address_peer_and_mdns_from_the_config_file() {
    let t = team(&["ann", "ben"]);
    let (ann, ben) = (&t[0], &t[1]);
    let a = ann.start(&[]);
    // `config path`: the file in the home, or the one CLOISON_CONFIG names.
    let path = ben.run(&["config", "path"]).success();
    assert_eq!(
        path.trim(),
        ben.path().join("config.toml").to_string_lossy()
    );
    let elsewhere = ben.path().join("elsewhere.toml");
    let elsewhere = elsewhere.to_string_lossy();
    let path = ben
        .run_env(
            &["config", "path"],
            PASSPHRASE,
            &[("CLOISON_CONFIG", &elsewhere)],
        )
        .success();
    assert_eq!(path.trim(), elsewhere);

    write_config(
        ben,
        &format!(
            "# ben's device\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nmdns = false\npeers = [\"{}\"]\nlog_format = \"text\"\n",
            a.addr()
        ),
    );
    // What the daemon will use, and where each value comes from. TestHome sets CLOISON_MDNS=0
    // (over the file's mdns), and CLOISON_LOG_FORMAT=json overrides the file's log_format.
    let env = [("CLOISON_LOG_FORMAT", "json")];
    let show = ben.run_env(&["config", "show", "--json"], PASSPHRASE, &env);
    let show = show.json();
    assert_eq!(show["file_read"], true, "{show}");
    assert_eq!(show["listen"]["value"][0], "/ip4/127.0.0.1/tcp/0", "{show}");
    assert_eq!(show["listen"]["source"], "file", "{show}");
    assert_eq!(show["peers"]["value"][0], a.addr(), "{show}");
    assert_eq!(show["peers"]["source"], "file", "{show}");
    assert_eq!(show["mdns"]["value"], false, "{show}");
    assert_eq!(show["mdns"]["source"], "env", "{show}");
    assert_eq!(show["mdns"]["name"], "CLOISON_MDNS", "{show}");
    assert_eq!(show["log_format"]["value"], "json", "{show}");
    assert_eq!(show["log_format"]["source"], "env", "{show}");
    assert_eq!(show["log"]["source"], "default", "{show}");
    // A flag wins over both.
    let show = ben
        .run_env(
            &[
                "config",
                "show",
                "--json",
                "--log-format",
                "text",
                "--no-mdns",
            ],
            PASSPHRASE,
            &env,
        )
        .json();
    assert_eq!(show["log_format"]["value"], "text", "{show}");
    assert_eq!(show["log_format"]["source"], "flag", "{show}");
    assert_eq!(show["mdns"]["source"], "flag", "{show}");
    // The text form says the same.
    let text = ben.run(&["config", "show"]).success();
    assert!(
        text.lines().any(|l| l.starts_with("listen")
            && l.contains("/ip4/127.0.0.1/tcp/0")
            && l.ends_with(" file")),
        "{text}"
    );

    // `cloison run` with no flag: one TCP address on 127.0.0.1 (no QUIC, no 0.0.0.0, as the
    // file says), and it dials ann from the file's peers.
    let b = ben.start_bare(&env);
    assert_eq!(b.addrs.len(), 1, "{:?}", b.addrs);
    assert!(b.addr().starts_with("/ip4/127.0.0.1/tcp/"), "{:?}", b.addrs);
    let (ann_dev, ben_dev) = (device_of(ann), device_of(ben));
    wait_until("ben connected to ann", WAIT, || connected_to(ben, &ann_dev));
    wait_until("ann connected to ben", WAIT, || connected_to(ann, &ben_dev));
    // The log format from the environment: one JSON object per line.
    let log = ben.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the daemon logged nothing");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
    b.stop();
    a.stop();
}

#[test]
fn a_bad_config_file_is_refused_with_its_line_and_reason_and_no_daemon_starts() {
    let t = team(&["ann"]);
    let h = &t[0];
    let file = h.path().join("config.toml");
    let file = file.to_string_lossy();
    // A wrong type.
    write_config(h, "listen = [\"/ip4/127.0.0.1/tcp/0\"]\nmdns = \"yes\"\n");
    let (out, err) = run_must_exit_with_failure(h);
    assert!(
        !out.contains("ready") && !out.contains("listening"),
        "{out}"
    );
    for want in [&*file, "line 2, column 8", "expected a boolean"] {
        assert!(err.contains(want), "{want:?} not in: {err}");
    }
    let err = h.run(&["config", "show"]).failure();
    assert!(
        err.contains("line 2, column 8") && err.contains("expected a boolean"),
        "{err}"
    );
    // A typo in a key.
    write_config(h, "listen = [\"/ip4/127.0.0.1/tcp/0\"]\n\nmsdn = false\n");
    let (out, err) = run_must_exit_with_failure(h);
    assert!(!out.contains("ready"), "{out}");
    assert!(
        err.contains("line 3, column 1") && err.contains("unknown field `msdn`"),
        "{err}"
    );
    let err = h.run(&["config", "show", "--json"]).failure();
    assert!(err.contains("unknown field `msdn`"), "{err}");
    // No daemon answers (the commands open the store themselves).
    let peers = h.run(&["peers", "--json"]);
    assert!(!peers.ok, "a daemon answered: {}", peers.stdout);
    // Fixed, it starts.
    write_config(h, "listen = [\"/ip4/127.0.0.1/tcp/0\"]\nmdns = false\n");
    let d = h.start_bare(&[]);
    assert!(d.addr().starts_with("/ip4/127.0.0.1/tcp/"), "{:?}", d.addrs);
    d.stop();
}
