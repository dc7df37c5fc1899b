//! The end-to-end test kit: real `cloison` binaries in separate processes, each device in its own
//! temporary home.
//!
//! [`TestHome`] is one device's home; [`TestHome::run`] runs the binary against it with the test
//! passphrase and returns a [`Run`] to assert on. The binary is the one cargo built for this
//! workspace (found next to the test executable), never a copy from elsewhere.
//!
//! [`TestHome::start`] runs a daemon (`cloison run`) on 127.0.0.1 with mDNS off
//! ([`TestHome::start_bare`]: with no flag, from the config file); the returned
//! [`Daemon`] knows its listen addresses and kills the process when dropped. Its log goes to
//! `daemon.log` in the home.
//!
//! Invariants: every process a test starts is waited for (or killed and reaped on drop); daemons
//! bind only 127.0.0.1 on ports the OS picks; every wait is bounded ([`wait_until`]).

pub mod enrol;
pub mod mirror;
pub mod probe;
pub mod relay;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The passphrase every test home uses.
pub const PASSPHRASE: &str = "test passphrase, not secret";

/// Path of a workspace binary (`cloison`, `cloison-bootstrap`, ...), built by cargo beside the
/// test executable (`target/<profile>/`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run the tests with `bash scripts/test.sh` (or `cargo build --workspace --bins` first)",
        p.display()
    );
    p
}

/// The configuration variables of `cloison run` (besides `CLOISON_MDNS` and `RUST_LOG`): every
/// command a test runs has them removed unless the test sets them, so a developer's own
/// settings do not reach the tests.
pub const CONFIG_VARS: [&str; 6] = [
    "CLOISON_CONFIG",
    "CLOISON_LISTEN",
    "CLOISON_PEERS",
    "CLOISON_LOG_FORMAT",
    "CLOISON_MAX_SEND_KIBPS",
    "CLOISON_MAX_RECV_KIBPS",
];

/// One device's home directory.
pub struct TestHome {
    dir: tempfile::TempDir,
}

/// The result of one command.
#[derive(Debug)]
pub struct Run {
    /// Exit status success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn success(self) -> String {
        assert!(
            self.ok,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Asserts failure and returns stderr.
    pub fn failure(self) -> String {
        assert!(
            !self.ok,
            "command succeeded unexpectedly\nstdout:\n{}",
            self.stdout
        );
        self.stderr
    }

    /// Asserts success and parses stdout as JSON.
    pub fn json(self) -> serde_json::Value {
        let out = self.success();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
    }
}

impl Default for TestHome {
    fn default() -> Self {
        TestHome::new()
    }
}

impl TestHome {
    /// A fresh, empty home.
    pub fn new() -> TestHome {
        TestHome {
            dir: tempfile::Builder::new()
                .prefix("cloison-test-")
                .tempdir()
                .unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `cloison ARGS` against this home with the test passphrase.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, PASSPHRASE)
    }

    /// Runs `cloison ARGS` with another passphrase.
    pub fn run_with(&self, args: &[&str], passphrase: &str) -> Run {
        self.run_env(args, passphrase, &[])
    }

    /// Runs `cloison ARGS` with `passphrase` and these environment variables set too.
    pub fn run_env(&self, args: &[&str], passphrase: &str, env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(bin("cloison"));
        for v in CONFIG_VARS {
            cmd.env_remove(v);
        }
        let out = cmd
            .args(args)
            .env("CLOISON_HOME", self.path())
            .env("CLOISON_PASSPHRASE", passphrase)
            .env("CLOISON_TEST_FAST_KDF", "1")
            .env("CLOISON_MDNS", "0")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("cannot run cloison: {e}"));
        Run::from(out)
    }
}

/// A running `cloison run`.
pub struct Daemon {
    child: Option<Child>,
    /// Its listen addresses, with `/p2p/<peer id>`.
    pub addrs: Vec<String>,
    home: PathBuf,
}

impl TestHome {
    /// Creates workspace `ws` and shares it with `email` as `role` (through the daemon if one
    /// runs).
    pub fn create_and_share(&self, ws: &str, email: &str, role: &str) {
        self.run(&["workspace", "create", ws]).success();
        self.run(&["workspace", "share", ws, email, "--role", role])
            .success();
    }

    /// Writes `bytes` to a local file `name` in the home and puts it at `/name` in `ws`;
    /// returns the local file.
    pub fn put_bytes(&self, ws: &str, name: &str, bytes: &[u8]) -> PathBuf {
        let local = self.path().join(name);
        std::fs::write(&local, bytes).unwrap_or_else(|e| panic!("{}: {e}", local.display()));
        self.run(&["put", ws, &local.to_string_lossy(), name])
            .success();
        local
    }

    /// `cloison ls WS PATH --json` as name → content hash (empty when the listing fails, e.g.
    /// while the workspace has not arrived yet).
    pub fn ls(&self, ws: &str, path: &str) -> std::collections::BTreeMap<String, String> {
        let r = self.run(&["ls", ws, path, "--json"]);
        if !r.ok {
            return Default::default();
        }
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_default();
        v["entries"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["name"].as_str().unwrap_or_default().to_owned(),
                            e["hash"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Starts the daemon on 127.0.0.1 (TCP, ephemeral port), dialling `peers`; returns once its
    /// control socket accepts requests.
    pub fn start(&self, peers: &[&str]) -> Daemon {
        self.start_with(peers, &[])
    }

    /// [`TestHome::start`] with more `cloison run` flags.
    pub fn start_with(&self, peers: &[&str], flags: &[&str]) -> Daemon {
        let mut cmd = Command::new(bin("cloison"));
        cmd.args(["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
        for p in peers {
            cmd.args(["--peer", p]);
        }
        cmd.args(flags);
        cmd.env("CLOISON_MDNS", "0");
        self.spawn(cmd)
    }

    /// Starts the daemon as `cloison run` alone, with no flag: it takes its addresses and peers
    /// from the config file and `env` (mDNS stays off: `CLOISON_MDNS=0`). The config file must
    /// listen on 127.0.0.1 only; a daemon listening elsewhere is killed, and the test fails.
    pub fn start_bare(&self, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(bin("cloison"));
        cmd.arg("run")
            .env("CLOISON_MDNS", "0")
            .envs(env.iter().copied());
        let mut d = self.spawn(cmd);
        if let Some(a) = d.addrs.iter().find(|a| !a.starts_with("/ip4/127.0.0.1/")) {
            let a = a.clone();
            d.kill();
            panic!("the daemon listens on {a}, not on 127.0.0.1 only");
        }
        d
    }

    /// Starts the daemon inside the network namespace `ns` (see [`Lan`]) with its defaults:
    /// TCP and QUIC on every interface of the namespace, and mDNS on.
    pub fn start_in(&self, ns: &str) -> Daemon {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(bin("cloison"))
            .arg("run")
            .env_remove("CLOISON_MDNS");
        self.spawn(cmd)
    }

    fn spawn(&self, mut cmd: Command) -> Daemon {
        for v in CONFIG_VARS {
            if cmd.get_envs().all(|(k, _)| k != v) {
                cmd.env_remove(v);
            }
        }
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.path().join("daemon.log"))
            .unwrap_or_else(|e| panic!("daemon.log: {e}"));
        let mut child = cmd
            .env("CLOISON_HOME", self.path())
            .env("CLOISON_PASSPHRASE", PASSPHRASE)
            .env("CLOISON_TEST_FAST_KDF", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start cloison run: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut addrs = Vec::new();
        let mut ready = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(a) = line.strip_prefix("listening ") {
                addrs.push(a.to_owned());
            }
            if line == "ready" {
                ready = true;
                break;
            }
        }
        let mut d = Daemon {
            child: Some(child),
            addrs,
            home: self.path().to_owned(),
        };
        if !ready {
            d.kill();
            panic!(
                "the daemon did not start; its log:\n{}",
                std::fs::read_to_string(self.path().join("daemon.log")).unwrap_or_default()
            );
        }
        d
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("daemon.log")).unwrap_or_default()
    }
}

impl Daemon {
    /// Its first listen address.
    pub fn addr(&self) -> &str {
        self.addrs.first().map_or("", String::as_str)
    }

    /// Stops it with `cloison stop` and waits (killing it after 20 s).
    pub fn stop(mut self) {
        let _ = Command::new(bin("cloison"))
            .arg("stop")
            .env("CLOISON_HOME", &self.home)
            .env("CLOISON_PASSPHRASE", PASSPHRASE)
            .output();
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("the daemon did not stop within 20 s");
        }
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit; returns whether it
    /// exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(c) = self.child.as_mut() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = c.try_wait() {
                self.child = None;
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` every 50 ms until it returns true; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A two-device LAN of network namespaces: `cloison-<pid>-a` and `cloison-<pid>-b` joined by one
/// veth pair (10.77.0.1/24 and 10.77.0.2/24, with a multicast route), so mDNS works between
/// them and nothing reaches the machine's real network. Removed on drop.
pub struct Lan {
    /// The namespaces' names.
    pub names: [String; 2],
}

impl Lan {
    /// Creates the namespaces, or returns why it cannot (not root, no `ip`).
    pub fn new() -> Result<Lan, String> {
        let prefix = format!("cloison-{}", std::process::id());
        let a = format!("{prefix}-a");
        let b = format!("{prefix}-b");
        let va = format!("cl{}a", std::process::id() % 100_000);
        let vb = format!("cl{}b", std::process::id() % 100_000);
        let lan = Lan {
            names: [a.clone(), b.clone()],
        };
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &a],
            vec!["netns", "add", &b],
            vec!["link", "add", &va, "type", "veth", "peer", "name", &vb],
            vec!["link", "set", &va, "netns", &a],
            vec!["link", "set", &vb, "netns", &b],
            vec!["-n", &a, "addr", "add", "10.77.0.1/24", "dev", &va],
            vec!["-n", &b, "addr", "add", "10.77.0.2/24", "dev", &vb],
            vec!["-n", &a, "link", "set", &va, "up"],
            vec!["-n", &b, "link", "set", &vb, "up"],
            vec!["-n", &a, "link", "set", "lo", "up"],
            vec!["-n", &b, "link", "set", "lo", "up"],
            vec!["-n", &a, "route", "add", "224.0.0.0/4", "dev", &va],
            vec!["-n", &b, "route", "add", "224.0.0.0/4", "dev", &vb],
        ];
        for args in steps {
            let out = Command::new("ip")
                .args(&args)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// An organization: the first home is its admin (created with `cloison init`), the others are
/// users provisioned by the admin's device through the library.
pub fn team(names: &[&str]) -> Vec<TestHome> {
    let members: Vec<(&str, cloison_node::trust::Profile)> = names
        .iter()
        .map(|n| (*n, cloison_node::trust::Profile::Standard))
        .collect();
    team_with(&members, None)
}

/// [`team`] with a profile for each member after the first (the founding admin), and with
/// `relay` authorized by the admin before anyone is provisioned (so every member's log has it).
pub fn team_with(
    members: &[(&str, cloison_node::trust::Profile)],
    relay: Option<&str>,
) -> Vec<TestHome> {
    team_named("Clinique", members, relay)
}

/// [`team_with`] for an organization named `org`.
pub fn team_named(
    org: &str,
    members: &[(&str, cloison_node::trust::Profile)],
    relay: Option<&str>,
) -> Vec<TestHome> {
    let homes: Vec<TestHome> = members.iter().map(|_| TestHome::new()).collect();
    let ((first, _), rest) = members
        .split_first()
        .unwrap_or_else(|| panic!("at least one member"));
    homes[0]
        .run(&[
            "init",
            "--org",
            org,
            "--user",
            first,
            "--email",
            &format!("{first}@clinique.example"),
            "--device",
            &format!("{first}-dev"),
        ])
        .success();
    if let Some(r) = relay {
        homes[0].run(&["relay", "add", r]).success();
    }
    let mut admin = cloison_node::node::Node::open(homes[0].path(), PASSPHRASE.as_bytes())
        .unwrap_or_else(|e| panic!("open the admin: {e}"));
    for (i, (n, profile)) in rest.iter().enumerate() {
        admin
            .provision_user(
                homes[i + 1].path(),
                PASSPHRASE.as_bytes(),
                cloison_node::keystore::KdfParams::TEST_ONLY,
                n,
                &format!("{n}@clinique.example"),
                &format!("{n}-dev"),
                *profile,
            )
            .unwrap_or_else(|e| panic!("provision {n}: {e}"));
    }
    homes
}

/// A TCP proxy on 127.0.0.1 that forwards every connection to `127.0.0.1:target` and records
/// both directions, for canary scans of what crosses the wire. Returns its port and the
/// recording. Its threads end with the test process.
pub fn recording_proxy(target: u16) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listener");
    let port = listener.local_addr().expect("proxy port").port();
    let wire: Arc<Mutex<Vec<u8>>> = Arc::default();
    let rec = Arc::clone(&wire);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                return;
            };
            for (mut from, mut to) in [(c2, s2), (server, client)] {
                let rec = Arc::clone(&rec);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if let Ok(mut r) = rec.lock() {
                            r.extend_from_slice(&buf[..n]);
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    (port, wire)
}

/// `cloison status --json` of `home`.
pub fn status(home: &TestHome) -> serde_json::Value {
    home.run(&["status", "--json"]).json()
}

/// Linked peers of `home`.
pub fn connected(home: &TestHome) -> usize {
    let v = home.run(&["peers", "--json"]).json();
    v["peers"].as_array().map_or(0, |a| {
        a.iter().filter(|p| p["state"] == "connected").count()
    })
}
