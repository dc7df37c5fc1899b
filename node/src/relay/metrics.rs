//! `cloison-bootstrap run --metrics ADDR`: the relay's counts as Prometheus text (exposition
//! format 0.0.4) on `GET /metrics`, built from the status snapshot the loop refreshes every turn
//! ([`RelayStatus`]: one home for the counts, shared with `cloison-bootstrap status`), and the
//! ingest latency histogram the loop keeps in that snapshot ([`Histogram`], [`IngestTimer`]).
//!
//! Why by hand rather than the `prometheus-client` crate: the counts already live in the
//! snapshot, so a registry would be a second copy to keep in step with it; the text format for
//! a handful of gauges, counters and one histogram is a few lines ([`render`]), frozen by a
//! test, and needs no dependency. The HTTP side is as small: read the request head up to
//! [`MAX_REQUEST`] bytes, answer, close; [`CONNECTION_TIMEOUT`] per connection, at most
//! [`MAX_CONNECTIONS`] at once (more are closed unanswered).
//!
//! Invariants: only counts, reason and outcome labels the relay chose, and organization ids
//! (public keys, which the relay knows anyway) are exported, never a value a device wrote; the
//! endpoint binds a loopback address unless the operator makes it public on purpose
//! ([`bind`]); nothing a client sends is echoed back.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::server::RelayError;
use super::status::{RelayStatus, Shared};
use crate::trust::OrgId;

/// The largest request head read (request line and headers).
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long one connection may take, request and answer.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections answered at once.
pub const MAX_CONNECTIONS: usize = 4;
/// The content type of the answer (Prometheus text, version 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Upper bounds of the ingest histogram's buckets, in microseconds (1 ms to 10 s).
pub const BUCKETS_US: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// A latency histogram with the fixed buckets [`BUCKETS_US`] (integers, so the snapshot stays
/// `Eq`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Observations per bucket, not cumulative: `counts[i]` fell in `(BUCKETS_US[i-1],
    /// BUCKETS_US[i]]`; one more entry for those above the last bound.
    pub counts: Vec<u64>,
    /// The sum of all observations, in microseconds.
    pub sum_us: u64,
    /// Observations.
    pub count: u64,
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if self.counts.len() != BUCKETS_US.len() + 1 {
            self.counts = vec![0; BUCKETS_US.len() + 1];
        }
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.counts[i] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.count += 1;
    }
}

/// How long an admitted batch took from arrival to persisted: the loop notes when it passes the
/// first sync message of a turn to an organization's engine ([`IngestTimer::arrived`]) and, once
/// the turn has persisted that engine's events, observes the time elapsed if anything was
/// stored ([`IngestTimer::settled`]).
#[derive(Debug, Default)]
pub(super) struct IngestTimer {
    arrived: HashMap<OrgId, Instant>,
    /// The latencies seen.
    pub(super) histogram: Histogram,
}

impl IngestTimer {
    /// A sync message for `org` went to its engine.
    pub(super) fn arrived(&mut self, org: OrgId) {
        self.arrived.entry(org).or_insert_with(Instant::now);
    }

    /// `org`'s events were persisted (`stored` items written), or could not be (`None`).
    pub(super) fn settled(&mut self, org: &OrgId, stored: Option<usize>) {
        if let Some(t) = self.arrived.remove(org)
            && stored.is_some_and(|n| n > 0)
        {
            self.histogram.observe(t.elapsed());
        }
    }
}

/// Binds the metrics listener; a non-loopback address is refused unless `public`.
pub(super) async fn bind(addr: SocketAddr, public: bool) -> Result<TcpListener, RelayError> {
    if !addr.ip().is_loopback() && !public {
        return Err(RelayError::MetricsNotLoopback(addr));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|err| RelayError::Metrics { addr, err })
}

/// Answers connections on `listener` from the snapshot in `shared`.
pub(super) async fn serve(listener: TcpListener, shared: Shared) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::debug!("metrics: too many connections; one closed");
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    if tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, &shared))
                        .await
                        .is_err()
                    {
                        tracing::debug!("metrics: connection timed out");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!("metrics accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, shared: &Shared) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break buf.get(..end);
        }
        let room = MAX_REQUEST.saturating_sub(buf.len()).min(chunk.len());
        if room == 0 {
            break None;
        }
        match stream.read(&mut chunk[..room]).await {
            Ok(0) | Err(_) => break None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let out = response(head, || {
        shared.lock().map(|s| render(&s)).unwrap_or_default()
    });
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

/// The whole answer to a request head (`None`: too large or cut short): 200 with the metrics
/// for `GET /metrics`, 404 for another path, 405 for another method, 400 otherwise.
pub fn response(head: Option<&[u8]>, metrics: impl FnOnce() -> String) -> Vec<u8> {
    let line = head
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.lines().next());
    let parts: Option<Vec<&str>> = line.map(|l| l.split(' ').collect());
    let (code, body, ctype) = match parts.as_deref() {
        Some([method, target, version]) if version.starts_with("HTTP/1.") => {
            let path = target.split('?').next().unwrap_or_default();
            match (*method, path) {
                ("GET", "/metrics") => ("200 OK", metrics(), CONTENT_TYPE),
                ("GET", _) => ("404 Not Found", "not found\n".into(), "text/plain"),
                _ => ("405 Method Not Allowed", "GET only\n".into(), "text/plain"),
            }
        }
        _ => ("400 Bad Request", "bad request\n".into(), "text/plain"),
    };
    let mut out = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    out.push_str(&body);
    out.into_bytes()
}

/// The snapshot as Prometheus text (exposition format 0.0.4).
pub fn render(s: &RelayStatus) -> String {
    let mut t = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(t, "# HELP cloison_relay_{name} {help}");
        let _ = writeln!(t, "# TYPE cloison_relay_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(t, "cloison_relay_{name}{labels} {v}");
        }
    };
    let one = |v: u64| vec![(String::new(), v.to_string())];
    let by = |key: &str, rows: Vec<(&str, u64)>| -> Vec<(String, String)> {
        rows.into_iter()
            .map(|(l, v)| (format!("{{{key}=\"{}\"}}", label(l)), v.to_string()))
            .collect()
    };
    let orgs = &s.organizations;
    let per_org = |f: fn(&super::status::OrgStatus) -> u64| {
        by("org", orgs.iter().map(|o| (o.org.as_str(), f(o))).collect())
    };
    family(
        "organizations",
        "gauge",
        "Organizations the relay stores (revoked ones included).",
        &one(orgs.len() as u64),
    );
    family(
        "connections",
        "gauge",
        "Connections now, devices introduced or not.",
        &one(s.connections as u64),
    );
    family(
        "devices_connected",
        "gauge",
        "Introduced devices connected now, per organization.",
        &per_org(|o| o.devices_connected as u64),
    );
    family(
        "envelopes_stored",
        "gauge",
        "Envelopes stored, per organization.",
        &per_org(|o| o.envelopes),
    );
    family(
        "blocks_stored",
        "gauge",
        "Blocks stored, per organization.",
        &per_org(|o| o.blocks),
    );
    family(
        "bytes_stored",
        "gauge",
        "Bytes stored (envelopes and blocks), per organization.",
        &per_org(|o| o.bytes),
    );
    let mut refusals: Vec<(&str, u64)> = s.refused.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    if s.quota_refusals > 0 {
        refusals.push(("quota", s.quota_refusals));
    }
    family(
        "refusals_total",
        "counter",
        "Refusals since start, by reason (quota: items or offers over a quota).",
        &by("reason", refusals),
    );
    family(
        "items_refused_total",
        "counter",
        "Items from devices that admission refused since start, by reason.",
        &by(
            "reason",
            s.items_refused
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect(),
        ),
    );
    family(
        "introductions_total",
        "counter",
        "Introductions since start, by outcome.",
        &by(
            "outcome",
            s.introductions
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect(),
        ),
    );
    let h = &s.ingest;
    let mut rows = Vec::new();
    let mut cumulative = 0;
    for (i, b) in BUCKETS_US.iter().enumerate() {
        cumulative += h.counts.get(i).copied().unwrap_or(0);
        rows.push((
            format!("_bucket{{le=\"{}\"}}", seconds(*b)),
            cumulative.to_string(),
        ));
    }
    rows.push(("_bucket{le=\"+Inf\"}".into(), h.count.to_string()));
    rows.push(("_sum".into(), seconds(h.sum_us)));
    rows.push(("_count".into(), h.count.to_string()));
    family(
        "ingest_seconds",
        "histogram",
        "Time from a batch's arrival to its items persisted.",
        &rows,
    );
    t
}

/// Microseconds as seconds, in the shortest decimal form (`0.0025`, `1`).
fn seconds(us: u64) -> String {
    (us as f64 / 1e6).to_string()
}

/// A label value, escaped as the text format wants (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
