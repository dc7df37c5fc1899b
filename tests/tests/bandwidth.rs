//! Bandwidth limits (issue 19, item 7): two real `cloison run` daemons on 127.0.0.1 move a
//! 20 MiB file; with a send limit on the sender, or a receive limit on the receiver (the sender
//! unlimited), the transfer's measured rate is within 20 % of the limit, and `cloison status`
//! shows the limit and a current rate.
//!
//! The limit (2048 KiB/s) is far below what loopback carries, so the transfer takes about ten
//! seconds and its rate is the limit's doing. The rate is the receiver's bytes received (every
//! sync message, blocks almost all of it) over the time from the end of `cloison put` on the
//! sender to the moment the receiver holds every block.

use std::path::Path;
use std::time::{Duration, Instant};

use cloison_tests::{TestHome, connected, status, team, wait_until};

/// The limit both tests set, in KiB/s.
const LIMIT: u64 = 2048;
/// The file moved.
const SIZE: usize = 20 << 20;
const WAIT: Duration = Duration::from_secs(120);

fn random_file(path: &Path, len: usize) {
    let mut b = vec![0u8; len];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut b);
    std::fs::write(path, b).unwrap();
}

/// What one transfer showed.
struct Transfer {
    /// Bytes the receiver received over the transfer, per second, in KiB/s.
    kibps: f64,
    /// The transfer's duration.
    took: Duration,
    /// The highest current rate the limited side's status showed during the transfer, B/s.
    shown_rate: u64,
}

/// Moves a 20 MiB file from ann (started with `send_flags`) to ben (with `recv_flags`, and
/// `recv_file` as his config file), reading `limited`'s status (`send_bytes_per_s` or
/// `recv_bytes_per_s`) while it runs.
fn transfer(
    send_flags: &[&str],
    recv_flags: &[&str],
    recv_file: Option<&str>,
    rate_key: &str,
) -> (Transfer, Vec<TestHome>) {
    let t = team(&["ann", "ben"]);
    if let Some(text) = recv_file {
        std::fs::write(t[1].path().join("config.toml"), text).unwrap();
    }
    let a = t[0].start_with(&[], send_flags);
    let b = t[1].start_with(&[a.addr()], recv_flags);
    wait_until("A is linked to B", WAIT, || connected(&t[0]) == 1);
    t[0].run(&["workspace", "create", "Scans"]).success();
    t[0].run(&[
        "workspace",
        "share",
        "Scans",
        "ben@clinique.example",
        "--role",
        "reader",
    ])
    .success();
    wait_until("B holds the workspace", WAIT, || {
        t[1].run(&["ls", "Scans"]).ok
    });
    let src = t[0].path().join("scan.bin");
    random_file(&src, SIZE);
    let limited = if rate_key.starts_with("send") {
        &t[0]
    } else {
        &t[1]
    };
    let before = status(&t[1])["bytes_received"].as_u64().unwrap();
    t[0].run(&["put", "Scans", src.to_str().unwrap(), "scan.bin"])
        .success();
    let start = Instant::now();
    std::fs::remove_file(&src).unwrap();
    let total = status(&t[0])["blocks_stored"].as_u64().unwrap();
    assert!(total >= 5, "{total} blocks: too few to pace");
    let mut shown_rate = 0;
    wait_until("B holds every block", WAIT, || {
        let s = status(&t[1]);
        let done = s["blocks_stored"].as_u64() == Some(total) && s["blocks_pending"] == 0;
        if !done {
            let r = status(limited)["bandwidth"][rate_key].as_u64().unwrap_or(0);
            shown_rate = shown_rate.max(r);
        }
        done
    });
    let took = start.elapsed();
    let after = status(&t[1])["bytes_received"].as_u64().unwrap();
    let bytes = after - before;
    assert!(bytes >= SIZE as u64, "B received {bytes} bytes");
    drop((a, b));
    (
        Transfer {
            kibps: bytes as f64 / 1024.0 / took.as_secs_f64(),
            took,
            shown_rate,
        },
        t,
    )
}

fn within_20_percent(what: &str, x: &Transfer) {
    eprintln!(
        "{what}: {:.0} KiB/s over {:.1} s (limit {LIMIT} KiB/s; status showed up to {} KiB/s)",
        x.kibps,
        x.took.as_secs_f64(),
        x.shown_rate / 1024
    );
    let limit = LIMIT as f64;
    assert!(
        x.kibps >= 0.8 * limit && x.kibps <= 1.2 * limit,
        "{what}: {:.0} KiB/s is not within 20 % of {LIMIT} KiB/s",
        x.kibps
    );
    assert!(x.shown_rate > 0, "{what}: status showed no current rate");
}

#[test]
fn a_send_limit_holds_a_20_mib_transfer_within_20_percent() {
    let flag = LIMIT.to_string();
    let (x, t) = transfer(&["--max-send-kibps", &flag], &[], None, "send_bytes_per_s");
    within_20_percent("send limit", &x);
    // The limits are in the status, as JSON and as text (daemons stopped: none shown).
    let a = t[0].start_with(&[], &["--max-send-kibps", &flag]);
    let s = status(&t[0]);
    assert_eq!(s["bandwidth"]["max_send_kibps"], LIMIT, "{s}");
    assert_eq!(s["bandwidth"]["max_recv_kibps"], serde_json::Value::Null);
    let text = t[0].run(&["status"]).success();
    assert!(
        text.contains(&format!("max {LIMIT} KiB/s")) && text.contains("unlimited"),
        "{text}"
    );
    a.stop();
}

#[test]
fn a_receive_limit_holds_even_when_the_sender_has_none() {
    let file = format!("max_recv_kibps = {LIMIT}\n");
    let (x, t) = transfer(&[], &[], Some(&file), "recv_bytes_per_s");
    within_20_percent("receive limit", &x);
    let shown = t[1].run(&["config", "show"]).success();
    assert!(
        shown.contains(&format!("max_recv_kibps {LIMIT} KiB/s")),
        "{shown}"
    );
}
