//! `cloison run`: opens the node, starts the tokio runtime and the daemon, prints where it
//! listens (one `listening <multiaddr>` line each, then `ready`) so people and scripts can copy
//! the addresses.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use cloison_node::daemon::{self, DaemonConfig};
use cloison_node::net::{Multiaddr, mdns_env_allows};

use super::run::open;

/// Runs the daemon until SIGTERM, SIGINT or `cloison stop`.
pub fn run(home: &Path, listen: &[String], peers: &[String], no_mdns: bool) -> Result<()> {
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
    let node = open(home)?;
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
    rt.block_on(daemon::run(node, cfg, |addrs| {
        let mut out = std::io::stdout().lock();
        for a in addrs {
            let _ = writeln!(out, "listening {a}");
        }
        let _ = writeln!(out, "ready");
        let _ = out.flush();
    }))?;
    Ok(())
}
