//! The relay's metrics end to end: a real `cloison-bootstrap run --metrics 127.0.0.1:0` serves
//! Prometheus text on `GET /metrics` (read here over a plain TCP socket), whose counts follow
//! what the relay serves (an organization, a connected device, envelopes stored, a refusal,
//! the ingest histogram), as the device's `cloison status --json` does on its side; another
//! path gets 404, an oversized request 400, a fifth connection at once nothing; a non-loopback
//! address is refused at start.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use cloison_node::relay::wire::{Refusal, RelayMsg};
use cloison_node::trust::DeviceKeys;
use cloison_tests::relay::{Relay, introduce, org_log, org_with_relay};
use cloison_tests::{bin, wait_until};

const WAIT: Duration = Duration::from_secs(90);

/// `GET path` on `addr`: the answer's head and body.
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    match out.split_once("\r\n\r\n") {
        Some((h, b)) => (h.to_owned(), b.to_owned()),
        None => panic!("no head in {out:?}"),
    }
}

/// The value of the sample `line` (name and labels) in `body`.
fn sample(body: &str, line: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_serves_its_counts_as_prometheus_text() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let relay = Relay::start_on(
        data.path(),
        &logs.path().join("relay.log"),
        "/ip4/127.0.0.1/tcp/0",
        &["--metrics", "127.0.0.1:0", "--log-format", "json"],
    );
    let m = relay
        .metrics
        .clone()
        .expect("the relay printed its metrics address");
    let (head, body) = get(&m, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert_eq!(
        sample(&body, "cloison_relay_organizations"),
        Some(0.0),
        "{body}"
    );
    assert!(body.contains("# TYPE cloison_relay_ingest_seconds histogram\n"));
    let (head, body) = get(&m, "/other");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(!body.contains("cloison_relay"), "{body}");
    // 8 KiB without the end of a request head: 400, nothing more read (exactly 8 KiB, so
    // nothing is left unread and the answer is not lost to a reset).
    let mut s = TcpStream::connect(&m).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(&[b'a'; 8 * 1024]);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 400 "),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    // At most 4 connections at once: a fifth is closed unanswered; once they go, it answers.
    let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(&m).unwrap()).collect();
    let mut fifth = TcpStream::connect(&m).unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = fifth.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
    let mut out = Vec::new();
    let _ = fifth.read_to_end(&mut out);
    assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
    drop(idle);
    wait_until("the metrics answer again", WAIT, || {
        let mut s = TcpStream::connect(&m).unwrap();
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.starts_with("HTTP/1.1 200 OK")
    });

    // A member is welcomed (the organization is served), a stranger refused.
    let t = org_with_relay(&["ann"], &relay.addr);
    let (org, entries, keys) = org_log(&t[0]);
    let welcome = introduce(&keys, &relay.addr, org, entries.clone()).await.0;
    assert_eq!(welcome, RelayMsg::Welcome);
    let stranger = DeviceKeys::generate(&mut rand::rng());
    let refused = introduce(&stranger, &relay.addr, org, entries).await.0;
    assert_eq!(
        refused,
        RelayMsg::Refused {
            reason: Refusal::NotActive
        }
    );
    // Ann's daemon connects and writes: envelopes reach the relay.
    let a = t[0].start(&[]);
    wait_until("Ann is welcomed", WAIT, || relay.connected() == 1);
    t[0].run(&["workspace", "create", "ws"]).success();
    t[0].put_bytes("ws", "a.txt", b"hello");
    wait_until("the relay stores envelopes", WAIT, || relay.stored().0 > 0);
    let org = relay.org()["org"].as_str().unwrap_or_default().to_owned();
    assert_eq!(org.len(), 64);
    let mut body = String::new();
    wait_until("the metrics follow the status", WAIT, || {
        body = get(&m, "/metrics").1;
        let envs = relay.stored().0 as f64;
        sample(
            &body,
            &format!("cloison_relay_devices_connected{{org=\"{org}\"}}"),
        ) == Some(1.0)
            && sample(
                &body,
                &format!("cloison_relay_envelopes_stored{{org=\"{org}\"}}"),
            ) == Some(envs)
            && sample(&body, "cloison_relay_ingest_seconds_count").is_some_and(|n| n > 0.0)
    });
    eprintln!("{body}");
    assert_eq!(sample(&body, "cloison_relay_organizations"), Some(1.0));
    assert!(
        sample(
            &body,
            &format!("cloison_relay_bytes_stored{{org=\"{org}\"}}")
        )
        .is_some_and(|n| n > 0.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "cloison_relay_refusals_total{reason=\"device_not_active\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert!(
        sample(
            &body,
            "cloison_relay_introductions_total{outcome=\"log_asked\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "cloison_relay_ingest_seconds_bucket{le=\"+Inf\"}"),
        sample(&body, "cloison_relay_ingest_seconds_count")
    );
    // The daemon's side of the same counts: `cloison status --json`.
    let st = t[0].run(&["status", "--json"]).json();
    assert_eq!(st["peers"], 1, "{st}");
    assert!(st["envelopes"].as_u64().is_some_and(|n| n > 0), "{st}");
    assert!(st["refused"].is_object(), "{st}");
    a.stop();
    // `--log-format json`: every log line is one JSON object.
    let log = relay.log();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() > 3, "{log}");
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
        assert!(v["level"].is_string(), "{l}");
    }
}

#[test]
fn a_non_loopback_metrics_address_is_refused_unless_public() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(bin("cloison-bootstrap"))
        .args(["run", "--listen", "/ip4/127.0.0.1/tcp/0", "--data"])
        .arg(data.path().join("store"))
        .args(["--metrics", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(err.contains("--metrics-public"), "{err}");
    // Nothing was created or left behind.
    assert!(!data.path().join("store").exists());
    // `--metrics-public` needs `--metrics`.
    let out = Command::new(bin("cloison-bootstrap"))
        .args(["run", "--listen", "/ip4/127.0.0.1/tcp/0", "--data"])
        .arg(data.path().join("store"))
        .arg("--metrics-public")
        .output()
        .unwrap();
    assert!(!out.status.success());
}
