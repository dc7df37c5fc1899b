//! End-to-end runs of the simulator on a small organization (60 devices, 3 sites, a relay, one
//! air-gapped site): convergence, determinism, a healing partition, revocation cut-off, shares
//! (grants reach the new members, a removal is followed by a new epoch the others get).
//!
//! These assert on the report, as iroh-gossip's `tests/sim.rs` does; they stay small so that a
//! debug build runs them in seconds.

use cloison_sim::config::{Partition, Scenario, SimConfig};
use cloison_sim::report::Report;
use cloison_sim::scenario;

fn small(scenario: Scenario, seed: u64) -> SimConfig {
    let mut cfg = SimConfig::new(scenario, 60, 3);
    cfg.seed = seed;
    cfg.relay = true;
    cfg.airgapped = true;
    cfg
}

fn run(cfg: &SimConfig) -> Report {
    scenario::run(cfg).expect("the run starts")
}

fn int(r: &Report, name: &str) -> u64 {
    r.int(name)
        .unwrap_or_else(|| panic!("metric {name} missing from\n{}", r.csv()))
}

#[test]
fn every_member_device_gets_every_write() {
    let r = run(&small(Scenario::Writes, 7));
    assert_eq!(int(&r, "converged"), 1, "{}", r.csv());
    assert_eq!(int(&r, "pairs_delivered"), int(&r, "pairs_expected"));
    assert_eq!(int(&r, "pairs_expected"), 3 * 20 * 19);
    assert_eq!(int(&r, "devices_complete"), 60);
    assert_eq!(int(&r, "bad_messages"), 0);
    // Inside a site a write arrives within a few LAN hops.
    assert!(int(&r, "delivery_ms_max") < 1_000, "{}", r.csv());
}

#[test]
fn same_seed_same_report_other_seed_other_report() {
    let a = run(&small(Scenario::Writes, 3)).csv();
    let b = run(&small(Scenario::Writes, 3)).csv();
    assert_eq!(a, b, "same seed, different reports");
    let c = run(&small(Scenario::Writes, 4)).csv();
    assert_ne!(a, c, "the seed changes nothing");
    let d = run(&small(Scenario::Revocation, 3)).csv();
    let e = run(&small(Scenario::Revocation, 3)).csv();
    assert_eq!(d, e, "same seed, different revocation reports");
}

#[test]
fn a_partitioned_site_catches_up_after_the_partition_heals() {
    // Site 1 is cut off from the relay (its only way out) from the start for five minutes: the
    // revocation reaches it only after the partition heals, then everyone converges.
    let mut cfg = small(Scenario::Revocation, 5);
    cfg.partition = Some(Partition {
        site: 1,
        start_ms: 0,
        duration_ms: 300_000,
    });
    let r = run(&cfg);
    assert_eq!(int(&r, "converged"), 1, "{}", r.csv());
    assert_eq!(int(&r, "revocation_reached") + 1, int(&r, "nodes"));
    let healed_after = 300_000 - scenario::WARMUP_MS;
    assert!(
        int(&r, "revocation_ms_max") >= healed_after,
        "a partitioned device got the revocation during the partition:\n{}",
        r.csv()
    );
    // Without the partition the online sites have it within seconds.
    let r0 = run(&small(Scenario::Revocation, 5));
    assert!(int(&r0, "revocation_ms_p50") < 2_000, "{}", r0.csv());
}

#[test]
fn a_revoked_device_is_cut_off_everywhere_and_its_later_envelopes_count_nowhere() {
    for seed in [1, 2] {
        let r = run(&small(Scenario::Revocation, seed));
        let csv = r.csv();
        assert_eq!(int(&r, "converged"), 1, "{csv}");
        // Reconnecting gets it nowhere: every engine refuses the connection.
        assert_eq!(int(&r, "victim_links_after_reconnect"), 0, "{csv}");
        // What it writes afterwards (on its stale view) reaches no honest device.
        assert_eq!(int(&r, "victim_later_write_holders"), 0, "{csv}");
        // Signed on the current heads and handed to each member of its team: admitted (its
        // revocation in the past it cites may yet be voided) and counted by none.
        let tried = int(&r, "forged_tried");
        assert!(tried >= 18, "{csv}");
        assert_eq!(int(&r, "forged_refused"), 0, "{csv}");
        assert_eq!(int(&r, "forged_admitted"), tried, "{csv}");
        assert_eq!(int(&r, "forged_counted"), 0, "{csv}");
    }
}

#[test]
fn shares_reach_the_granted_users_and_the_new_epoch_the_remaining_members() {
    // Teams of 5 users: 6 teams, two per site, so every team grants to a user of its own site.
    let mut cfg = small(Scenario::Shares, 3);
    cfg.team_size = 5;
    let r = run(&cfg);
    let csv = r.csv();
    assert_eq!(int(&r, "converged"), 1, "{csv}");
    assert_eq!(int(&r, "grants"), 6, "{csv}");
    assert_eq!(int(&r, "grant_devices_complete"), 12, "{csv}");
    assert_eq!(int(&r, "removals"), 6, "{csv}");
    // Four remaining users per team, plus the users granted before the removal.
    assert!(int(&r, "epoch_devices") >= 48, "{csv}");
    assert_eq!(
        int(&r, "epoch_devices_reached"),
        int(&r, "epoch_devices"),
        "{csv}"
    );
    assert!(int(&r, "later_writes") > 0, "{csv}");
    assert_eq!(int(&r, "later_envelopes_at_removed_devices"), 0, "{csv}");
    assert_eq!(int(&r, "bad_messages"), 0, "{csv}");
    // Same seed, same report (the wall clock and RSS lines are added by the binary only).
    assert_eq!(csv, run(&cfg).csv(), "same seed, different shares reports");
    cfg.seed = 4;
    assert_ne!(csv, run(&cfg).csv(), "the seed changes nothing");
}
