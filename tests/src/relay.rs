//! A real relay for end-to-end tests: `cloison-bootstrap run` on 127.0.0.1 (a port the OS
//! picks), its log at debug level in a file, killed and reaped when dropped.
//!
//! Invariants: the relay binds only 127.0.0.1; [`Relay::start`] returns only once the relay has
//! printed its address (or panics, the process killed); `status` reads the relay's own store
//! with `cloison-bootstrap status --json`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::bin;

/// A running relay.
pub struct Relay {
    child: Option<Child>,
    /// Its listen address, `/ip4/127.0.0.1/tcp/PORT/p2p/ID`.
    pub addr: String,
    data: PathBuf,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Relay {
    /// Starts the relay on `data`, its log appended to `log`.
    pub fn start(data: &Path, log: &Path) -> Relay {
        Relay::start_on(data, log, "/ip4/127.0.0.1/tcp/0", &[])
    }

    /// Starts a relay whose store and log live in a temporary directory it owns.
    pub fn start_temp() -> Relay {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut r = Relay::start(&dir.path().join("store"), &dir.path().join("relay.log"));
        r._dir = Some(dir);
        r
    }

    /// Starts the relay again on the store and TCP port `self` used.
    pub fn restart(&self, log: &Path) -> Relay {
        let port = self.addr.split('/').nth(4).unwrap_or("0");
        Relay::start_on(&self.data, log, &format!("/ip4/127.0.0.1/tcp/{port}"), &[])
    }

    /// Starts the relay on `data` listening on `listen`, with `extra` arguments.
    pub fn start_on(data: &Path, log: &Path, listen: &str, extra: &[&str]) -> Relay {
        let logf = std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let mut child = Command::new(bin("cloison-bootstrap"))
            .args(["run", "--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the relay: {e}"));
        let mut addr = String::new();
        if let Some(out) = child.stdout.take()
            && let Some(Ok(line)) = BufReader::new(out).lines().next()
            && let Some(a) = line.strip_prefix("listening on ")
        {
            addr = a.to_owned();
        }
        let mut r = Relay {
            child: Some(child),
            addr,
            data: data.to_owned(),
            log: log.to_owned(),
            _dir: None,
        };
        if !r.addr.contains("/p2p/") {
            r.kill();
            panic!("the relay did not print its address");
        }
        r
    }

    /// `cloison-bootstrap status --json` (null if it cannot be read).
    pub fn status(&self) -> serde_json::Value {
        Command::new(bin("cloison-bootstrap"))
            .args(["status", "--json", "--data"])
            .arg(&self.data)
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice(&o.stdout).ok())
            .unwrap_or_default()
    }

    /// The first organization's status.
    pub fn org(&self) -> serde_json::Value {
        self.status()["organizations"][0].clone()
    }

    /// `(envelopes, blocks)` stored for the first organization.
    pub fn stored(&self) -> (u64, u64) {
        let o = self.org();
        (
            o["envelopes"].as_u64().unwrap_or(0),
            o["blocks"].as_u64().unwrap_or(0),
        )
    }

    /// Devices of the first organization connected now.
    pub fn connected(&self) -> u64 {
        self.org()["devices_connected"].as_u64().unwrap_or(0)
    }

    /// Introductions refused because the device is not active.
    pub fn refused_inactive(&self) -> u64 {
        self.status()["refused"]["device_not_active"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The relay's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the relay and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A raw client's `Intro` for a device holding `entries`: it names (the last 1,024 of) their
/// ids as heads, so a relay that lacks any of them asks for the log (a hint, as a device's).
pub fn intro(org: [u8; 32], entries: &[Vec<u8>]) -> cloison_node::relay::wire::RelayMsg {
    let max = cloison_node::relay::wire::MAX_WANTED_HEADS;
    cloison_node::relay::wire::RelayMsg::Intro {
        org,
        heads: entries[entries.len().saturating_sub(max)..]
            .iter()
            .map(|e| *blake3::hash(e).as_bytes())
            .collect(),
    }
}
