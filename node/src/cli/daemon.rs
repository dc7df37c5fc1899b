//! `cloison run`: opens the node, starts the tokio runtime and the daemon, prints where it
//! listens (one `listening <multiaddr>` line each, then `ready`) so people and scripts can copy
//! the addresses. `cloison sync --foreground` is the same daemon with one unregistered mirror.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use cloison_node::daemon::{self, DaemonConfig};
use cloison_node::net::{Multiaddr, mdns_env_allows};

use super::run::open;

/// Runs the daemon until SIGTERM, SIGINT or `cloison stop`.
pub fn run(home: &Path, listen: &[String], peers: &[String], no_mdns: bool) -> Result<()> {
    serve(home, listen, peers, no_mdns, None)
}

/// `cloison sync WS DIR --foreground`: a daemon that also mirrors `dir` to `ws` (not registered).
pub fn foreground_mirror(
    home: &Path,
    ws: &str,
    dir: &Path,
    listen: &[String],
    peers: &[String],
    no_mdns: bool,
) -> Result<()> {
    let dir =
        std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    serve(home, listen, peers, no_mdns, Some((ws, dir)))
}

fn serve(
    home: &Path,
    listen: &[String],
    peers: &[String],
    no_mdns: bool,
    mirror: Option<(&str, std::path::PathBuf)>,
) -> Result<()> {
    let parse = |v: &[String]| -> Result<Vec<Multiaddr>> {
        v.iter()
            .map(|a| {
                a.parse()
                    .with_context(|| format!("{a:?} is not a multiaddress"))
            })
            .collect()
    };
    let mut listen = parse(listen)?;
    if listen.is_empty() {
        listen = vec![
            "/ip4/0.0.0.0/tcp/0".parse()?,
            "/ip4/0.0.0.0/udp/0/quic-v1".parse()?,
        ];
    }
    let peers = parse(peers)?;
    let mut node = open(home)?;
    let mut extra = Vec::new();
    if let Some((ws, dir)) = mirror {
        let w = node.find_workspace(ws)?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        extra.push((w, dir.canonicalize()?));
    }
    let cfg = DaemonConfig {
        listen,
        peers,
        mdns: !no_mdns && mdns_env_allows(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(daemon::run_mirroring(node, cfg, extra, |addrs| {
        let mut out = std::io::stdout().lock();
        for a in addrs {
            let _ = writeln!(out, "listening {a}");
        }
        let _ = writeln!(out, "ready");
        let _ = out.flush();
    }))?;
    Ok(())
}
