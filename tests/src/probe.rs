//! Reading a device's view through its own CLI (`--json`), for the end-to-end attack tests:
//! users and their revocations, entry counts, connected peers, and carrying bundles between
//! homes. Every helper runs the real `cloison` binary against a [`TestHome`].
//!
//! Invariant: a helper never panics on a field it cannot read; it reports the field as absent
//! (empty, zero, false), so the caller's bounded wait decides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{TestHome, wait_until};

/// How long an attack test waits for a view to settle.
pub const WAIT: Duration = Duration::from_secs(60);

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

pub fn json(home: &TestHome, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    home.run(&a).json()
}

pub fn email(name: &str) -> String {
    format!("{name}@clinique.example")
}

/// `org show --json`.
pub fn org(home: &TestHome) -> serde_json::Value {
    json(home, &["org", "show"])
}

pub fn entries(home: &TestHome) -> u64 {
    org(home)["entries"].as_u64().unwrap_or(0)
}

/// `key → value` for each user of `users --json`, as this device sees it.
fn users_map<V>(
    home: &TestHome,
    key: &str,
    value: impl Fn(&serde_json::Value) -> V,
) -> BTreeMap<String, V> {
    let v = json(home, &["users"]);
    v["users"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| (u[key].as_str().unwrap_or_default().to_owned(), value(u)))
                .collect()
        })
        .unwrap_or_default()
}

/// User id → revoked, as this device sees it.
pub fn revoked(home: &TestHome) -> BTreeMap<String, bool> {
    users_map(home, "id", |u| u["revoked"].as_bool().unwrap_or(false))
}

/// Name → user id, from `home`'s view.
pub fn user_ids(home: &TestHome) -> BTreeMap<String, String> {
    users_map(home, "name", |u| {
        u["id"].as_str().unwrap_or_default().to_owned()
    })
}

/// [`wait_until`], printing `explain()` before the timeout's panic goes on.
pub fn wait_or_explain(what: &str, f: impl FnMut() -> bool, explain: impl FnOnce() -> String) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wait_until(what, WAIT, f)));
    if let Err(p) = r {
        eprintln!("{}", explain());
        std::panic::resume_unwind(p);
    }
}

/// Lines of `log` with any of `words`, without colour codes.
pub fn lines_with(log: &str, words: &[&str]) -> String {
    log.lines()
        .filter(|l| words.iter().any(|w| l.contains(w)))
        .map(|l| {
            let mut out = String::new();
            let mut esc = false;
            for c in l.chars() {
                match (esc, c) {
                    (_, '\u{1b}') => esc = true,
                    (true, 'm') => esc = false,
                    (true, _) => {}
                    (false, c) => out.push(c),
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `from` exports a full bundle; each of `to` imports it. Returns the bundle's path.
pub fn carry(from: &TestHome, to: &[&TestHome], name: &str) -> PathBuf {
    let file = from.path().join(format!("{name}.bundle"));
    json(from, &["bundle", "export", "--out", s(&file)]);
    for t in to {
        json(t, &["bundle", "import", s(&file)]);
    }
    file
}

// ---------------------------------------------------------------------------------------------
// Attack 3
// ---------------------------------------------------------------------------------------------

pub fn device_of(home: &TestHome) -> String {
    org(home)["this_device"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Whether `home` syncs with `device` (a full link, not a listening one).
pub fn connected_to(home: &TestHome, device: &str) -> bool {
    peer_state(home, device).as_deref() == Some("connected")
}

/// The state `peers` shows for `device` on `home` ("connected", "listening", "refused",
/// "remembered"), if listed.
pub fn peer_state(home: &TestHome, device: &str) -> Option<String> {
    let peers = json(home, &["peers"]);
    peers["peers"].as_array().and_then(|a| {
        a.iter()
            .find(|p| p["device"] == device)
            .and_then(|p| p["state"].as_str().map(str::to_owned))
    })
}
