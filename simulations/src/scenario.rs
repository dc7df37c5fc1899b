//! Scenarios: what happens during a run, when it is over, and what is measured.
//!
//! `writes`: every device writes one content envelope at a uniform random time in the write
//! window; the run ends when every member device of each team holds every write of its team
//! (or at the horizon). `revocation`: the admin revokes one random device; the run ends when
//! every other node holds the revocation entry; then the revoked device reconnects and writes
//! (nobody must take it), and an envelope signed by it on the current heads is handed to each
//! member of its team (each must refuse it). `shares`: in each team the device that created the
//! workspace (its OWNER) grants it, at a random time in the write window, to a user of another
//! team of the same site (another online site if its site has one team) and removes, at another
//! random time, a random other member (`Remove`, then a new epoch sealed to the remaining
//! members); after the removal the remaining devices write under the new epoch. The run ends when
//! every granted device holds the whole workspace and every remaining member device the new
//! epoch; then the envelopes written after each removal that reached a removed device are
//! counted.
//!
//! Both: optional churn (devices offline once, 1 to 10 minutes) and partition (one site cut off
//! from the others and the relay for a while). Invariant: every draw from the RNG happens in a
//! fixed order, so the run is a function of the settings.

use std::collections::BTreeSet;

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
        Scenario::Shares => shares(&mut sim, &mut report),
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
    // Neither the admin (who revokes) nor a bundle carrier (the only way to the air-gapped
    // site, which the revocation must reach).
    let victim = loop {
        let v = sim.rng().random_range(0..cfg.devices);
        if v != sim.admin && !sim.carries_bundles(v) {
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
    // Admission takes it (a revocation in the organization past it cites may yet be voided);
    // the member's state, which reads the organization's current revocations, must not count it.
    let (mut tried, mut refused, mut admitted, mut counted) = (0u64, 0u64, 0u64, 0u64);
    for m in members.into_iter().filter(|&m| m != victim) {
        if let Some((id, labels)) = sim.forge_for(victim, m) {
            tried += 1;
            refused += u64::from(!labels.is_empty());
            admitted += u64::from(sim.holds(m, DocId::Workspace(ws), &id));
            counted += u64::from(sim.counts(m, ws, &id));
        }
    }
    report.metric("forged_tried", tried);
    report.metric("forged_refused", refused);
    report.metric("forged_admitted", admitted);
    report.metric("forged_counted", counted);
}

fn shares(sim: &mut Simulator, report: &mut Report) {
    let cfg = sim.cfg.clone();
    let window = cfg.write_window_ms.max(1);
    let n_teams = sim.teams.len();
    let site_of = |sim: &Simulator, t: usize| sim.nodes[sim.teams[t].2[0]].site.unwrap_or(0);
    let mut settle = 0;
    for t in 0..n_teams {
        let owner = sim.teams[t].2[0];
        let site = site_of(sim, t);
        let mut others: Vec<usize> = (0..n_teams)
            .filter(|&o| o != t && site_of(sim, o) == site)
            .collect();
        if others.is_empty() && !cfg.is_airgapped(site) {
            others = (0..n_teams)
                .filter(|&o| o != t && !cfg.is_airgapped(site_of(sim, o)))
                .collect();
        }
        let grant_at = WARMUP_MS + sim.rng().random_range(0..window);
        if !others.is_empty() {
            let o = others[sim.rng().random_range(0..others.len())];
            let len = sim.teams[o].2.len();
            let k = sim.rng().random_range(0..len);
            let grantee = sim.teams[o].2[k];
            sim.at(grant_at, Action::Grant { by: owner, grantee });
            settle = settle.max(grant_at);
        }
        let devs = sim.teams[t].2.clone();
        if devs.len() < 4 {
            continue;
        }
        // Devices 0 and 1 are the owner's; anyone else may be removed.
        let removed = devs[sim.rng().random_range(2..devs.len())];
        let remove_at = WARMUP_MS + sim.rng().random_range(0..window);
        sim.at(remove_at, Action::Unshare { by: owner, removed });
        // The remaining devices write under the new epoch (if they hold it by then).
        for &d in &devs {
            if d | 1 == removed | 1 {
                continue;
            }
            let at = remove_at + sim.rng().random_range(1_000..=30_000);
            sim.at(at, Action::WriteInEpoch { node: d });
            settle = settle.max(at);
        }
    }
    // Time for the last writes to travel before the end may be declared.
    let settle = settle + 60_000;
    while !(sim.obs.shares.pending == 0 && sim.elapsed_ms() >= settle)
        && sim.elapsed_ms() <= cfg.horizon_ms
        && sim.step()
    {}
    let sh = &sim.obs.shares;
    let grant_ms: Vec<u64> = sh
        .grants
        .iter()
        .flat_map(|g| g.done_ms.iter().flatten().map(move |t| t - g.at_ms))
        .collect();
    let grant_devices: usize = sh.grants.iter().map(|g| g.devices.len()).sum();
    let epoch_ms: Vec<u64> = sh
        .epochs
        .iter()
        .flat_map(|e| e.got_ms.iter().flatten().map(move |t| t - e.at_ms))
        .collect();
    let epoch_devices: usize = sh.epochs.iter().map(|e| e.devices.len()).sum();
    report.metric("grants", sh.grants.len() as u64);
    report.metric("grant_devices", grant_devices as u64);
    report.metric("grant_devices_complete", grant_ms.len() as u64);
    report.metric("grant_links_added", sh.links_added);
    report.distribution("grant_complete_ms", &grant_ms);
    report.metric("removals", sh.epochs.len() as u64);
    report.metric("epoch_devices", epoch_devices as u64);
    report.metric("epoch_devices_reached", epoch_ms.len() as u64);
    report.distribution("epoch_keys_ms", &epoch_ms);
    report.metric(
        "converged",
        u64::from(grant_ms.len() == grant_devices && epoch_ms.len() == epoch_devices),
    );
    // Envelopes of each workspace written after its removal (the removal, the new epoch, the
    // later writes: what the remover holds now and did not before), and how many of them reached
    // (admitted or waiting for parents) a device of the removed user.
    let (mut later, mut at_removed, mut removed_devices) = (0u64, 0u64, 0u64);
    for e in &sh.epochs {
        let ws = sim.teams[e.team].0;
        let doc = DocId::Workspace(ws);
        let now: BTreeSet<[u8; 32]> = sim.nodes[e.by]
            .engine
            .replica()
            .items(doc)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let after: Vec<&[u8; 32]> = now.difference(&e.before).collect();
        later += after.len() as u64;
        removed_devices += e.removed.len() as u64;
        for &d in &e.removed {
            let r = sim.nodes[d].engine.replica();
            at_removed += after.iter().filter(|id| r.holds(doc, id)).count() as u64;
        }
    }
    report.metric("removed_devices", removed_devices);
    report.metric("later_envelopes", later);
    report.metric("later_envelopes_at_removed_devices", at_removed);
    report.metric("later_writes", sh.later_writes.0);
    report.metric("later_writes_skipped_no_epoch", sh.later_writes.1);
    report.extra_cdfs.push((
        "epoch-cdf",
        "removal to the new epoch's keys admitted by a remaining member device (ms)",
        epoch_ms,
    ));
    report.cdf = (
        "grant to the whole workspace held by a granted device (ms)",
        grant_ms,
    );
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
