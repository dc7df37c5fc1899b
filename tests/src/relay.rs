//! A real relay for end-to-end tests: `cloison-bootstrap run` on 127.0.0.1 (a port the OS
//! picks), its log at debug level in a file, killed and reaped when dropped.
//!
//! Invariants: the relay binds only 127.0.0.1; [`Relay::start`] returns only once the relay has
//! printed its address (or panics, the process killed); `status` reads the relay's own store
//! with `cloison-bootstrap status --json`. Beside it: an organization that authorizes a relay
//! ([`org_with_relay`]) and a raw client that introduces itself as any device would
//! ([`introduce`]), with what it needs to forge entries ([`signed_on`], [`org_log`]).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::Duration;

use cloison_node::keystore::Keystore;
use cloison_node::net::{Net, NetConfig, NetEvent, addr_peer};
use cloison_node::relay::wire::{RelayMsg, log_parts};
use cloison_node::trust::{Certificate, DeviceKeys, EntryBody, Hlc, OrgId, OrgLog, entry};

use crate::{PASSPHRASE, TestHome, bin};

/// A running relay.
pub struct Relay {
    child: Option<Child>,
    /// Its listen address, `/ip4/127.0.0.1/tcp/PORT/p2p/ID`.
    pub addr: String,
    /// Its metrics address (`--metrics`), `127.0.0.1:PORT`, if it serves metrics.
    pub metrics: Option<String>,
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
        // `metrics on ADDR` (with `--metrics`), then `listening on ADDR` lines.
        let mut addr = String::new();
        let mut metrics = None;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines().take(2) {
                let Ok(line) = line else { break };
                if let Some(m) = line.strip_prefix("metrics on ") {
                    metrics = Some(m.to_owned());
                } else {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        addr = a.to_owned();
                    }
                    break;
                }
            }
        }
        let mut r = Relay {
            child: Some(child),
            addr,
            metrics,
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

/// The organization name of [`org_with_relay`] (a canary: it must never appear in clear).
pub const ORG: &str = "Clinique-canary-org";

/// An organization named [`ORG`] that authorizes `relay`: the admin (`cloison init`,
/// `cloison relay add`) then standard users provisioned by the admin's device (so they know the
/// relay from their log).
pub fn org_with_relay(names: &[&str], relay: &str) -> Vec<TestHome> {
    let members: Vec<(&str, cloison_node::trust::Profile)> = names
        .iter()
        .map(|n| (*n, cloison_node::trust::Profile::Standard))
        .collect();
    let homes = crate::team_named(ORG, &members, Some(relay));
    let list = homes[0].run(&["relay", "list", "--json"]).json();
    assert_eq!(list["relays"].as_array().map(Vec::len), Some(1), "{list}");
    homes
}

/// A raw libp2p client with `keys` introduces itself to the relay at `relay` as a device
/// holding `entries` ([`intro`]), sends them when the relay asks for its log, and returns the
/// relay's verdict and how many parts it sent.
pub async fn introduce(
    keys: &DeviceKeys,
    relay: &str,
    org: [u8; 32],
    entries: impl AsRef<[Vec<u8>]>,
) -> (RelayMsg, usize) {
    let entries = entries.as_ref();
    let relay_id = addr_peer(&relay.parse().unwrap()).unwrap();
    let (h, mut rx) = Net::start(keys, NetConfig::loopback()).unwrap();
    h.set_allowed([relay_id].into()).await.unwrap();
    h.dial(relay.parse().unwrap()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut parts = 0;
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("the relay answers in time")
            .expect("the network runs");
        match ev {
            NetEvent::Connected(p) if p == relay_id => {
                h.send(relay_id, intro(org, entries).encode())
                    .await
                    .unwrap();
            }
            NetEvent::Message { from, bytes } if from == relay_id => match RelayMsg::decode(&bytes)
            {
                Ok(RelayMsg::LogWanted { .. }) => {
                    for m in log_parts(entries.iter().map(Vec::as_slice)) {
                        h.send(relay_id, m.encode()).await.unwrap();
                        parts += 1;
                    }
                }
                Ok(m) => {
                    let _ = h.shutdown().await;
                    return (m, parts);
                }
                Err(_) => {}
            },
            _ => {}
        }
    }
}

/// `cert` signed by `keys` on the heads of `entries` (what any certified device can sign).
pub fn signed_on(
    keys: &DeviceKeys,
    org: [u8; 32],
    entries: &[Vec<u8>],
    cert: Certificate,
) -> Vec<u8> {
    let mut log = OrgLog::new(OrgId(org));
    log.ingest(entries.to_vec());
    let parents = log.heads();
    let body = EntryBody {
        org: OrgId(org),
        time: Hlc(log.max_time(&parents).0 + 1),
        parents,
        author: keys.id(),
        cert,
    };
    entry::sign(keys, &body)
}

/// A home's organization id, log entries and device keys (its daemon stopped).
pub fn org_log(home: &TestHome) -> ([u8; 32], Vec<Vec<u8>>, DeviceKeys) {
    let n = cloison_node::node::Node::open(home.path(), PASSPHRASE.as_bytes()).unwrap();
    let keys = Keystore::open(&home.path().join("keys.cloison"), PASSPHRASE.as_bytes())
        .unwrap()
        .device();
    (n.state().org.0, n.log_entry_bytes(), keys)
}
