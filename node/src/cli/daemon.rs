//! `cloison run`: opens the node, starts the tokio runtime and the daemon, prints where it
//! listens (one `listening <multiaddr>` line each, then `ready`) so people and scripts can copy
//! the addresses. `cloison sync --foreground` is the same daemon with one unregistered mirror.
//! Both take their settings from `cli::config` (flags, environment, config file, defaults).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use cloison_node::daemon::{self, DaemonConfig};

use super::config::Config;
use super::run::open;

/// Runs the daemon until SIGTERM, SIGINT or `cloison stop`, with the merged configuration.
pub fn run(home: &Path, config: &Config) -> Result<()> {
    serve(home, config, None)
}

/// `cloison sync WS DIR --foreground`: a daemon that also mirrors `dir` to `ws` (not registered).
pub fn foreground_mirror(home: &Path, ws: &str, dir: &Path, config: &Config) -> Result<()> {
    let dir =
        std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    serve(home, config, Some((ws, dir)))
}

fn serve(home: &Path, config: &Config, mirror: Option<(&str, std::path::PathBuf)>) -> Result<()> {
    let mut node = open(home)?;
    let mut extra = Vec::new();
    if let Some((ws, dir)) = mirror {
        let w = node.find_workspace(ws)?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        extra.push((w, dir.canonicalize()?));
    }
    let cfg = DaemonConfig {
        listen: config.listen_addrs(),
        peers: config.peer_addrs(),
        mdns: config.mdns.value,
        bandwidth: config.bandwidth(),
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
