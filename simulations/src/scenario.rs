//! Scenarios: what happens during a run, when it is over, and what is measured.
//!
//! `writes`: every device writes one content envelope at a uniform random time in the write
//! window; the run ends when every member device of each team holds every write of its team
//! (or at the horizon). `revocation`: the admin revokes one random device; the run ends when
//! every other node holds the revocation entry; then the revoked device reconnects and writes
//! (nobody must take it), and an envelope signed by it on the current heads is handed to each
//! member of its team (each must refuse it).
//!
//! Both: optional churn (devices offline once, 1 to 10 minutes) and partition (one site cut off
//! from the others and the relay for a while). Invariant: every draw from the RNG happens in a
//! fixed order, so the run is a function of the settings.

use cloison_node::sync::DocId;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::config::{ConfigError, Scenario, SimConfig};
use crate::report::{Report, percentile};
use crate::sim::{Action, Simulator};
use crate::world::{World, WorldError};

/// Connections come up at time zero; scenario actions start after this warm-up (ms).
pub const WARMUP_MS: u64 = 5_000;

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The world did not build.
    #[error(transparent)]
    World(#[from] WorldError),
}

/// Builds the world and the simulator for `cfg` (nothing has run yet).
pub fn setup(cfg: &SimConfig) -> Result<Simulator, RunError> {
    cfg.validate()?;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let world = World::build(cfg, &mut rng)?;
    let topo = crate::net::build(cfg, &world, &mut rng);
    let mut sim = Simulator::new(cfg.clone(), world, topo, rng)?;
    if cfg.progress {
        eprintln!(
            "cloison-sim: world built: {} nodes, {} links",
            sim.nodes.len(),
            sim.links.len()
        );
    }
    let devices = cfg.devices;
    if cfg.churn > 0.0 {
        for node in 0..devices {
            if node == sim.admin || !sim.rng().random_bool(cfg.churn) {
                continue;
            }
            let off = WARMUP_MS + sim.rng().random_range(0..cfg.write_window_ms.max(1));
            let back = off + sim.rng().random_range(60_000..=600_000);
            sim.at(off, Action::Offline { node });
            sim.at(back, Action::Online { node });
        }
    }
    if let Some(p) = cfg.partition {
        sim.at(p.start_ms, Action::PartitionStart { site: p.site });
        sim.at(p.start_ms + p.duration_ms, Action::PartitionEnd);
    }
    Ok(sim)
}

/// Plays the scenario of `cfg` and measures it.
pub fn run(cfg: &SimConfig) -> Result<Report, RunError> {
    let mut sim = setup(cfg)?;
    let mut report = Report::new(cfg);
    match cfg.scenario {
        Scenario::Writes => writes(&mut sim, &mut report),
        Scenario::Revocation => revocation(&mut sim, &mut report),
    }
    traffic(&sim, &mut report);
    Ok(report)
}

fn writes(sim: &mut Simulator, report: &mut Report) {
    let cfg = sim.cfg.clone();
    for node in 0..cfg.devices {
        let t = WARMUP_MS + sim.rng().random_range(0..cfg.write_window_ms.max(1));
        sim.at(t, Action::Write { node });
    }
    let expected: u64 = sim
        .teams
        .iter()
        .map(|(_, _, d)| (d.len() * (d.len() - 1)) as u64)
        .sum();
    while sim.obs.delivery_ms.len() as u64 != expected
        && sim.elapsed_ms() <= cfg.horizon_ms
        && sim.step()
    {}
    let o = &sim.obs;
    let delivered = o.delivery_ms.len() as u64;
    report.metric("writes", o.writes.len() as u64);
    report.metric("pairs_expected", expected);
    report.metric("pairs_delivered", delivered);
    report.metric("converged", u64::from(delivered == expected));
    let first = o.writes.iter().map(|w| w.at_ms).min().unwrap_or(0);
    let last = o.writes.iter().map(|w| w.at_ms).max().unwrap_or(0);
    report.metric("write_window_ms", last - first);
    report.distribution("delivery_ms", &o.delivery_ms);
    // Per device: when it held every write of its team, counted from the first write.
    let mut device_ms = Vec::new();
    for (_, _, devs) in &sim.teams {
        for &d in devs {
            let (got, at) = o.received[d];
            if got as usize == devs.len() - 1 {
                device_ms.push(at - first);
            }
        }
    }
    report.metric("devices_complete", device_ms.len() as u64);
    report.distribution("device_complete_ms", &device_ms);
    report.metric(
        "all_complete_ms",
        o.received.iter().map(|r| r.1).max().unwrap_or(first) - first,
    );
    report.cdf = (
        "write to admission on another member device (ms)",
        o.delivery_ms.clone(),
    );
}

fn revocation(sim: &mut Simulator, report: &mut Report) {
    let cfg = sim.cfg.clone();
    let victim = loop {
        let v = sim.rng().random_range(0..cfg.devices);
        if v != sim.admin {
            break v;
        }
    };
    sim.at(WARMUP_MS, Action::Revoke { victim });
    let nodes = sim.nodes.len();
    while sim.obs.revoked_count + 1 != nodes && sim.elapsed_ms() <= cfg.horizon_ms && sim.step() {}
    let converged = sim.obs.revoked_count + 1 == nodes;
    let (_, rev_ms, _) = sim.obs.revocation.unwrap_or_default();
    let delays: Vec<u64> = sim
        .obs
        .revoked_at
        .iter()
        .flatten()
        .map(|t| t - rev_ms)
        .collect();
    report.metric("nodes", nodes as u64);
    report.metric("revocation_reached", sim.obs.revoked_count as u64);
    report.metric("converged", u64::from(converged));
    report.distribution("revocation_ms", &delays);
    report.metric(
        "cutoff_ms",
        sim.obs.last_cut_ms.map_or(0, |t| t.saturating_sub(rev_ms)),
    );
    report.cdf = ("revocation written to admitted (ms)", delays);
    // The revoked device comes back, tries every connection, and writes.
    let t = sim.elapsed_ms();
    sim.at(t + 1_000, Action::Offline { node: victim });
    sim.at(t + 1_500, Action::Online { node: victim });
    sim.run_until(t + 2_000);
    let linked = sim.linked_with(victim).len();
    let team = sim.nodes[victim].team.unwrap_or_default();
    let (ws, _, members) = sim.teams[team].clone();
    let later = sim.write(victim);
    sim.run_until(t + 2_000 + 120_000);
    let holders = later.map_or(0, |id| {
        (0..nodes)
            .filter(|&i| i != victim && sim.holds(i, DocId::Workspace(ws), &id))
            .count()
    });
    report.metric("victim_links_after_reconnect", linked as u64);
    report.metric("victim_later_write_holders", holders as u64);
    // An envelope of the revoked device on the current heads, handed to each team member.
    let (mut tried, mut refused, mut admitted) = (0u64, 0u64, 0u64);
    for m in members.into_iter().filter(|&m| m != victim) {
        if let Some((id, labels)) = sim.forge_for(victim, m) {
            tried += 1;
            refused += u64::from(labels.contains(&"author_not_active"));
            admitted += u64::from(sim.holds(m, DocId::Workspace(ws), &id));
        }
    }
    report.metric("forged_tried", tried);
    report.metric("forged_refused_author_not_active", refused);
    report.metric("forged_admitted", admitted);
}

fn traffic(sim: &Simulator, report: &mut Report) {
    let devices = sim.cfg.devices;
    let bytes: Vec<u64> = sim.nodes[..devices]
        .iter()
        .map(|n| n.traffic.bytes_sent + n.traffic.bytes_received)
        .collect();
    let msgs: Vec<u64> = sim.nodes[..devices]
        .iter()
        .map(|n| n.traffic.messages_sent + n.traffic.messages_received)
        .collect();
    report.mean_distribution("bytes_per_device", &bytes);
    report.mean_distribution("messages_per_device", &msgs);
    if let Some(relay) = sim.nodes.get(devices) {
        let t = relay.traffic;
        report.metric("relay_bytes", t.bytes_sent + t.bytes_received);
        report.metric("relay_messages", t.messages_sent + t.messages_received);
    }
    let o = &sim.obs;
    report.metric("sim_time_ms", sim.elapsed_ms());
    report.metric("events", o.events);
    report.metric("messages_lost_with_connection", o.lost);
    report.metric("messages_without_connection", o.no_route);
    report.metric("bad_messages", o.bad_messages);
    report.metric("org_logs_built", o.org_logs_built);
    for (label, n) in &o.refusals {
        report.metric(&format!("refused_{label}"), *n);
    }
    report.bytes = bytes;
    let _ = percentile;
}
