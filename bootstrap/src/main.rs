//! `cloison-bootstrap`: the always-on blind relay.
//!
//! `run` serves organizations whose logs authorize this relay (store-and-forward of ciphertext,
//! circuit-relay v2 for their devices); `status` asks a running relay what it serves. The logic
//! lives in `cloison_node::relay` (libp2p stays inside `node::net`); this binary parses
//! arguments, sets up logging and prints.
//!
//! Invariant: the relay has its own Ed25519 identity in its data directory and no other key;
//! nothing it prints or logs is content (ids, counts and addresses only).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use cloison_node::logs::LogFormat;
use cloison_node::net::Multiaddr;
use cloison_node::relay::{self, RelayConfig, RelayStatus};

/// The blind relay of Cloison.
#[derive(Debug, Parser)]
#[command(name = "cloison-bootstrap", version, about)]
struct Cli {
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log lines on stderr as text or JSON (one object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay; prints each listen address with `/p2p/<PeerId>` (give one to `cloison
    /// relay add`).
    Run {
        /// Address to listen on (repeatable), e.g. /ip4/0.0.0.0/tcp/4001.
        #[arg(long = "listen", value_name = "MULTIADDR", required = true)]
        listen: Vec<String>,
        /// Data directory (identity, one store per organization).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Bytes stored per organization, at most.
        #[arg(long, value_name = "N")]
        quota_bytes: Option<u64>,
        /// Envelopes stored per organization, at most.
        #[arg(long, value_name = "N")]
        quota_envelopes: Option<u64>,
        /// Serve Prometheus metrics on http://ADDR/metrics (counts and organization ids only),
        /// e.g. 127.0.0.1:9100; prints `metrics on ADDR`. Only a loopback address is accepted
        /// unless --metrics-public is given.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
        /// Allow a non-loopback --metrics address (anyone who reaches it sees the counts and
        /// organization ids; put it behind a firewall).
        #[arg(long, requires = "metrics")]
        metrics_public: bool,
    },
    /// What a running relay serves.
    Status {
        /// Its data directory.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// `completions SHELL` and `man [--out DIR]`.
    #[command(flatten)]
    Doc(cloison_node::manual::DocCommand),
}

fn init_tracing(verbose: u8, format: LogFormat) {
    cloison_node::logs::init(
        match verbose {
            0 => "info",
            1 => "info,cloison_node=debug",
            _ => "debug",
        },
        format,
    );
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.log_format);
    match cli.command {
        Command::Doc(doc) => Ok(cloison_node::manual::run(
            doc,
            Cli::command(),
            &mut std::io::stdout().lock(),
        )?),
        Command::Run {
            listen,
            data,
            quota_bytes,
            quota_envelopes,
            metrics,
            metrics_public,
        } => {
            let listen: Vec<Multiaddr> = listen
                .iter()
                .map(|a| {
                    a.parse()
                        .with_context(|| format!("{a:?} is not a multiaddress"))
                })
                .collect::<Result<_>>()?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(relay::run(
                RelayConfig {
                    data,
                    listen,
                    quota_bytes,
                    quota_envelopes,
                    metrics,
                    metrics_public,
                },
                |addrs, metrics| {
                    // Metrics first, so a reader can stop at the first listen line.
                    // Write errors are ignored: whoever started the relay may close stdout.
                    let mut out = std::io::stdout().lock();
                    if let Some(m) = metrics {
                        let _ = writeln!(out, "metrics on {m}");
                    }
                    for a in addrs {
                        let _ = writeln!(out, "listening on {a}");
                    }
                    let _ = out.flush();
                },
            ))?;
            Ok(())
        }
        Command::Status { data, json } => {
            let s = relay::query(&data)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", text(&s));
            }
            Ok(())
        }
    }
}

fn text(s: &RelayStatus) -> String {
    let mut t = format!(
        "relay {}\nconnections {}\nbytes stored {}\norganizations {}\n",
        s.peer_id,
        s.connections,
        s.bytes_stored,
        s.organizations.len()
    );
    for a in &s.listen {
        t += &format!("  listen {a}\n");
    }
    for o in &s.organizations {
        if o.revoked {
            t += &format!(
                "  org {}: REVOKED this relay: not served (devices refused; {} envelopes, {} blocks, {} bytes kept)\n",
                &o.org[..12.min(o.org.len())],
                o.envelopes,
                o.blocks,
                o.bytes
            );
            continue;
        }
        t += &format!(
            "  org {}: {} device(s) connected of {} active, {} entries, {} workspace(s), {} envelopes, {} blocks, {} bytes\n",
            &o.org[..12.min(o.org.len())],
            o.devices_connected,
            o.devices_active,
            o.entries,
            o.workspaces,
            o.envelopes,
            o.blocks,
            o.bytes
        );
    }
    for (why, n) in &s.refused {
        t += &format!("  refused {why}: {n}\n");
    }
    for (why, n) in &s.items_refused {
        t += &format!("  items refused {why}: {n}\n");
    }
    for (what, n) in &s.introductions {
        t += &format!("  introductions {what}: {n}\n");
    }
    if s.quota_refusals > 0 {
        t += &format!("  quota refusals: {}\n", s.quota_refusals);
    }
    if s.ingest.count > 0 {
        t += &format!(
            "  ingest: {} batch(es) stored, {:.1} ms on average from arrival\n",
            s.ingest.count,
            s.ingest.sum_us as f64 / s.ingest.count as f64 / 1000.0
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli() {
        Cli::command().debug_assert();
    }
}
