//! `cloison-sim`: runs one scenario of the simulator and writes its CSV and SVG plots.
//!
//! Usage: `cloison-sim [writes|revocation|shares] --devices N --sites S [--relay] [--airgapped]
//! [--partition SITE:START_S:DURATION_S] [--churn F] [--out DIR]`; `SEED` (or `--seed`) picks
//! the seed. The CSV goes to stdout and to `DIR/<scenario>-<devices>-<seed>.csv`; the last two
//! lines (wall-clock seconds, peak RSS) are measurements of this process, not of the simulation,
//! and are the only lines that differ between two runs with the same seed.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use cloison_sim::config::{Partition, Scenario, SimConfig};
use cloison_sim::{plot, scenario};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Which {
    Writes,
    Revocation,
    Shares,
}

/// Deterministic simulation of many Cloison sync engines.
#[derive(Debug, Parser)]
#[command(name = "cloison-sim")]
struct Args {
    /// Scenario to run.
    #[arg(value_enum, default_value = "writes")]
    scenario: Which,
    /// Seed of the run.
    #[arg(long, env = "SEED", default_value_t = 1)]
    seed: u64,
    /// Devices (two per user).
    #[arg(long, default_value_t = 60)]
    devices: usize,
    /// Sites (with --airgapped the last one is air-gapped).
    #[arg(long, default_value_t = 3)]
    sites: usize,
    /// Add a relay, reached over WAN links from the online sites.
    #[arg(long)]
    relay: bool,
    /// Devices per online site linked to the relay (0: every device).
    #[arg(long, default_value_t = 8)]
    relay_per_site: usize,
    /// Make the last site air-gapped (reached only by bundle sessions).
    #[arg(long)]
    airgapped: bool,
    /// Minutes between bundle sessions.
    #[arg(long, default_value_t = 10)]
    bundle_every_min: u64,
    /// Direct WAN links per device to devices of other online sites.
    #[arg(long, default_value_t = 0)]
    wan_links: usize,
    /// LAN overlay degree.
    #[arg(long, default_value_t = 6)]
    k: usize,
    /// Users per team (one workspace per team).
    #[arg(long, default_value_t = 10)]
    team_size: usize,
    /// Content payload size in bytes.
    #[arg(long, default_value_t = 512)]
    payload: usize,
    /// Seconds over which the writes are spread.
    #[arg(long, default_value_t = 60)]
    window_s: u64,
    /// Fraction of devices going offline once for 1 to 10 minutes.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Cut a site off: SITE:START_S:DURATION_S (seconds after the scenario starts).
    #[arg(long)]
    partition: Option<String>,
    /// Give up after this many simulated minutes.
    #[arg(long, default_value_t = 240)]
    horizon_min: u64,
    /// Output directory.
    #[arg(long, default_value = "target/sim")]
    out: PathBuf,
    /// Skip the plots.
    #[arg(long)]
    no_plots: bool,
    /// Print progress to stderr.
    #[arg(long)]
    progress: bool,
}

fn parse_partition(s: &str) -> Result<Partition> {
    let parts: Vec<&str> = s.split(':').collect();
    let [site, start, dur] = parts.as_slice() else {
        bail!("--partition takes SITE:START_S:DURATION_S, got {s:?}");
    };
    Ok(Partition {
        site: site.parse().context("partition site")?,
        start_ms: start.parse::<u64>().context("partition start")? * 1000,
        duration_ms: dur.parse::<u64>().context("partition duration")? * 1000,
    })
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<()> {
    let a = Args::parse();
    let which = match a.scenario {
        Which::Writes => Scenario::Writes,
        Which::Revocation => Scenario::Revocation,
        Which::Shares => Scenario::Shares,
    };
    let mut cfg = SimConfig::new(which, a.devices, a.sites);
    cfg.seed = a.seed;
    cfg.relay = a.relay;
    cfg.relay_per_site = (a.relay_per_site > 0).then_some(a.relay_per_site);
    cfg.airgapped = a.airgapped;
    cfg.bundle_every_ms = a.bundle_every_min * 60_000;
    cfg.wan_links = a.wan_links;
    cfg.lan_k = a.k;
    cfg.team_size = a.team_size;
    cfg.payload = a.payload;
    cfg.write_window_ms = a.window_s * 1000;
    cfg.churn = a.churn;
    cfg.partition = a.partition.as_deref().map(parse_partition).transpose()?;
    cfg.horizon_ms = a.horizon_min * 60_000;
    cfg.progress = a.progress;
    let started = Instant::now();
    let mut report = scenario::run(&cfg)?;
    report.metric_text(
        "wall_clock_s",
        format!("{:.2}", started.elapsed().as_secs_f64()),
    );
    report.metric("peak_rss_kib", peak_rss_kib().unwrap_or(0));
    let csv = report.csv();
    print!("{csv}");
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let stem = format!("{}-{}-{}", report.scenario, cfg.devices, cfg.seed);
    let path = a.out.join(format!("{stem}.csv"));
    std::fs::write(&path, &csv).with_context(|| format!("writing {}", path.display()))?;
    if !a.no_plots {
        let (title, samples) = &report.cdf;
        plot::cdf(&a.out.join(format!("{stem}-cdf.svg")), title, samples)?;
        for (suffix, title, samples) in &report.extra_cdfs {
            plot::cdf(&a.out.join(format!("{stem}-{suffix}.svg")), title, samples)?;
        }
        plot::histogram(
            &a.out.join(format!("{stem}-bytes.svg")),
            "bytes per device",
            &report.bytes,
        )?;
    }
    eprintln!(
        "wrote {} and plots under {}",
        path.display(),
        a.out.display()
    );
    Ok(())
}
