//! What the daemon benchmarks (`daemons`, `mirror`) share: a real `cloison run` on 127.0.0.1
//! (killed on drop) and the `cp -r` + `sync` floor every figure is a ratio to.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running daemon, killed on drop.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Its home (the `daemons` bench calls its control socket; `mirror` does not).
    #[allow(dead_code)]
    pub home: PathBuf,
    /// Its listen address, with `/p2p/<peer id>`.
    pub addr: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cloison run` on `home`, dialing `peers`, and waits for `ready`.
pub fn start(home: &Path, peers: &[&str]) -> Daemon {
    use std::io::BufRead;
    let mut cmd = crate::common::cloison(home);
    cmd.args(["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    for p in peers {
        cmd.args(["--peer", p]);
    }
    let mut child = cmd
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cloison run");
    let out = child.stdout.take().expect("stdout");
    let mut addr = String::new();
    for line in std::io::BufReader::new(out).lines() {
        let line = line.expect("line");
        if let Some(a) = line.strip_prefix("listening ") {
            addr = a.to_owned();
        }
        if line == "ready" {
            break;
        }
    }
    Daemon {
        child,
        home: home.to_owned(),
        addr,
    }
}

/// The floor: `cp -r src dst` then `sync`.
pub fn floor(src: &Path, dst: &Path) -> Duration {
    let t = Instant::now();
    let ok = Command::new("cp")
        .arg("-r")
        .arg(src)
        .arg(dst)
        .status()
        .expect("cp");
    assert!(ok.success());
    let ok = Command::new("sync").status().expect("sync");
    assert!(ok.success());
    t.elapsed()
}
