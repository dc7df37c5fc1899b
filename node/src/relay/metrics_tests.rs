//! The metrics text for a small snapshot (frozen), the histogram's buckets, and the answers to
//! requests.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::relay::status::OrgStatus;

fn snapshot() -> RelayStatus {
    let mut ingest = Histogram::default();
    ingest.observe(Duration::from_micros(800));
    ingest.observe(Duration::from_millis(3));
    ingest.observe(Duration::from_secs(20));
    RelayStatus {
        peer_id: "12D3KooWxyz".into(),
        listen: vec!["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWxyz".into()],
        connections: 3,
        organizations: vec![
            OrgStatus {
                org: "aa".repeat(32),
                devices_active: 4,
                devices_connected: 2,
                entries: 9,
                workspaces: 1,
                envelopes: 17,
                blocks: 5,
                bytes: 123_456,
                revoked: false,
            },
            OrgStatus {
                org: "bb".repeat(32),
                revoked: true,
                ..OrgStatus::default()
            },
        ],
        refused: BTreeMap::from([("device_not_active".into(), 2), ("no_intro".into(), 1)]),
        quota_refusals: 4,
        introductions: BTreeMap::from([("welcomed_at_once".into(), 6)]),
        bytes_stored: 123_456,
        ingest,
        items_refused: BTreeMap::from([("bad_signature".into(), 3)]),
    }
}

#[test]
fn the_text_format_of_a_small_snapshot_is_frozen() {
    let a = "aa".repeat(32);
    let b = "bb".repeat(32);
    let want = format!(
        "\
# HELP cloison_relay_organizations Organizations the relay stores (revoked ones included).
# TYPE cloison_relay_organizations gauge
cloison_relay_organizations 2
# HELP cloison_relay_connections Connections now, devices introduced or not.
# TYPE cloison_relay_connections gauge
cloison_relay_connections 3
# HELP cloison_relay_devices_connected Introduced devices connected now, per organization.
# TYPE cloison_relay_devices_connected gauge
cloison_relay_devices_connected{{org=\"{a}\"}} 2
cloison_relay_devices_connected{{org=\"{b}\"}} 0
# HELP cloison_relay_envelopes_stored Envelopes stored, per organization.
# TYPE cloison_relay_envelopes_stored gauge
cloison_relay_envelopes_stored{{org=\"{a}\"}} 17
cloison_relay_envelopes_stored{{org=\"{b}\"}} 0
# HELP cloison_relay_blocks_stored Blocks stored, per organization.
# TYPE cloison_relay_blocks_stored gauge
cloison_relay_blocks_stored{{org=\"{a}\"}} 5
cloison_relay_blocks_stored{{org=\"{b}\"}} 0
# HELP cloison_relay_bytes_stored Bytes stored (envelopes and blocks), per organization.
# TYPE cloison_relay_bytes_stored gauge
cloison_relay_bytes_stored{{org=\"{a}\"}} 123456
cloison_relay_bytes_stored{{org=\"{b}\"}} 0
# HELP cloison_relay_refusals_total Refusals since start, by reason (quota: items or offers over a quota).
# TYPE cloison_relay_refusals_total counter
cloison_relay_refusals_total{{reason=\"device_not_active\"}} 2
cloison_relay_refusals_total{{reason=\"no_intro\"}} 1
cloison_relay_refusals_total{{reason=\"quota\"}} 4
# HELP cloison_relay_items_refused_total Items from devices that admission refused since start, by reason.
# TYPE cloison_relay_items_refused_total counter
cloison_relay_items_refused_total{{reason=\"bad_signature\"}} 3
# HELP cloison_relay_introductions_total Introductions since start, by outcome.
# TYPE cloison_relay_introductions_total counter
cloison_relay_introductions_total{{outcome=\"welcomed_at_once\"}} 6
# HELP cloison_relay_ingest_seconds Time from a batch's arrival to its items persisted.
# TYPE cloison_relay_ingest_seconds histogram
cloison_relay_ingest_seconds_bucket{{le=\"0.001\"}} 1
cloison_relay_ingest_seconds_bucket{{le=\"0.0025\"}} 1
cloison_relay_ingest_seconds_bucket{{le=\"0.005\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"0.01\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"0.025\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"0.05\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"0.1\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"0.25\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"0.5\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"1\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"2.5\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"5\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"10\"}} 2
cloison_relay_ingest_seconds_bucket{{le=\"+Inf\"}} 3
cloison_relay_ingest_seconds_sum 20.0038
cloison_relay_ingest_seconds_count 3
"
    );
    assert_eq!(render(&snapshot()), want);
}

#[test]
fn an_empty_snapshot_still_declares_every_family() {
    let t = render(&RelayStatus::default());
    for name in [
        "organizations",
        "devices_connected",
        "envelopes_stored",
        "bytes_stored",
        "refusals_total",
        "items_refused_total",
        "introductions_total",
        "ingest_seconds",
    ] {
        assert!(
            t.contains(&format!("# TYPE cloison_relay_{name} ")),
            "{name}: {t}"
        );
    }
    assert!(t.contains("cloison_relay_ingest_seconds_bucket{le=\"+Inf\"} 0\n"));
    assert!(t.contains("cloison_relay_ingest_seconds_count 0\n"));
}

#[test]
fn label_values_are_escaped() {
    let mut s = RelayStatus::default();
    s.refused.insert("a\"b\\c\nd".into(), 1);
    assert!(
        render(&s).contains("cloison_relay_refusals_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n"),
        "{}",
        render(&s)
    );
}

fn answer(req: &str) -> String {
    let head = req.strip_suffix("\r\n\r\n");
    String::from_utf8(response(head.map(str::as_bytes), || "m 1\n".into())).unwrap()
}

#[test]
fn only_get_metrics_gets_the_metrics() {
    let ok = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains(&format!("\r\nContent-Type: {CONTENT_TYPE}\r\n")));
    assert!(ok.contains("\r\nContent-Length: 4\r\n"));
    assert!(ok.ends_with("\r\n\r\nm 1\n"));
    let q = answer("GET /metrics?x=1 HTTP/1.0\r\n\r\n");
    assert!(q.starts_with("HTTP/1.1 200 OK\r\n"), "{q}");
    let other = answer("GET /other HTTP/1.1\r\n\r\n");
    assert!(other.starts_with("HTTP/1.1 404 Not Found\r\n"), "{other}");
    assert!(!other.contains("m 1"));
    let post = answer("POST /metrics HTTP/1.1\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    for bad in [
        "garbage\r\n\r\n",
        "GET /metrics\r\n\r\n",
        "GET /metrics SPDY/3\r\n\r\n",
    ] {
        assert!(answer(bad).starts_with("HTTP/1.1 400 "), "{bad:?}");
    }
    // Too large or cut short: no head.
    let none = String::from_utf8(response(None, || "m 1\n".into())).unwrap();
    assert!(none.starts_with("HTTP/1.1 400 "), "{none}");
}

#[test]
fn the_histogram_puts_each_observation_in_its_bucket() {
    let mut h = Histogram::default();
    h.observe(Duration::from_micros(1_000));
    h.observe(Duration::from_micros(1_001));
    h.observe(Duration::from_secs(11));
    assert_eq!(h.count, 3);
    assert_eq!(h.counts.len(), BUCKETS_US.len() + 1);
    assert_eq!(h.counts[0], 1, "the bound is inclusive");
    assert_eq!(h.counts[1], 1);
    assert_eq!(h.counts[BUCKETS_US.len()], 1, "above the last bound");
    assert_eq!(h.sum_us, 11_002_001);
}
