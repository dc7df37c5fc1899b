//! Two real daemons on loopback, measured against `cp -r` + `sync` of the same data in the same
//! run (the floor of `../shared/BENCHMARKS.md`). Run by hand, not by CI:
//!
//! ```text
//! cargo bench -p cloison-node --bench daemons            # 1 GiB, 20,000 files, 50 writes
//! CLOISON_BENCH_SCALE=0.1 cargo bench -p cloison-node --bench daemons   # a quick look
//! ```
//!
//! Figures (printed as `key=value` lines, like the Syncthing baseline script):
//! - `big_*`: 1 GiB in 256 random files of 4 MiB: `put` on A, then until B holds every block and
//!   lists every file (the whole time, A's sealing included, is the sync time);
//! - `small_*`: 20,000 files of 1 KiB, the same;
//! - `latency_*`: 50 writes of one small file: from the start of `put` on A until B lists the
//!   new content (polling B's control socket every millisecond); median and p99.
//!
//! Invariants: everything runs in a temporary directory on 127.0.0.1 with mDNS off; the daemons
//! are killed when the run ends, even on failure.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cloison_node::control::client::Client;
use cloison_node::control::{Request, Response};
#[path = "common/mod.rs"]
mod common;
#[path = "common/daemon.rs"]
mod daemon;

use daemon::{Daemon, floor, start};

fn call(d: &Daemon, req: Request) -> Response {
    Client::connect(&d.home)
        .expect("socket")
        .expect("daemon")
        .call(req, &mut |_| {})
        .unwrap_or_else(|e| panic!("request failed: {e}"))
}

fn try_call(d: &Daemon, req: Request) -> Option<Response> {
    Client::connect(&d.home).ok()??.call(req, &mut |_| {}).ok()
}

/// Waits until B lists `count` files under `folder` and wants no block.
fn wait_synced(b: &Daemon, folder: &str, count: usize, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let listed = match try_call(
            b,
            Request::Ls {
                ws: "Bench".into(),
                path: folder.into(),
                recursive: false,
            },
        ) {
            Some(Response::Entries(e)) => e.len(),
            _ => 0,
        };
        if listed == count
            && let Some(Response::Status(s)) = try_call(b, Request::Status)
            && s.blocks_pending == 0
            && s.workspaces.iter().all(|w| w.waiting == 0)
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "B did not sync {folder} in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn rss_kib(d: &Daemon) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", d.child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn write_random_files(dir: &Path, n: usize, size: usize) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut buf = vec![0u8; size];
    for i in 0..n {
        rand::Rng::fill_bytes(&mut rand::rng(), &mut buf);
        std::fs::write(dir.join(format!("f{i:05}.bin")), &buf).expect("write");
    }
}

fn scenario(name: &str, a: &Daemon, b: &Daemon, root: &Path, n: usize, size: usize) {
    let src = root.join(format!("{name}-src"));
    write_random_files(&src, n, size);
    let _ = Command::new("sync").status();
    let cp = floor(&src, &root.join(format!("{name}-cp")));
    let t = Instant::now();
    call(
        a,
        Request::Put {
            ws: "Bench".into(),
            local: src.clone(),
            remote: name.into(),
        },
    );
    let put = t.elapsed();
    wait_synced(b, name, n, Duration::from_secs(1800));
    let total = t.elapsed();
    let bytes = (n * size) as f64;
    println!("{name}_files={n}");
    println!("{name}_bytes={}", n * size);
    println!("{name}_floor_cp_r_sync_s={:.3}", cp.as_secs_f64());
    println!("{name}_put_on_a_s={:.3}", put.as_secs_f64());
    println!("{name}_sync_total_s={:.3}", total.as_secs_f64());
    println!(
        "{name}_throughput_mib_s={:.1}",
        bytes / total.as_secs_f64() / (1 << 20) as f64
    );
    println!(
        "{name}_ratio_to_floor={:.2}",
        total.as_secs_f64() / cp.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / test harness probes
    }
    let scale = common::scale();
    let root = tempfile::Builder::new()
        .prefix("cloison-bench-")
        .tempdir_in(std::env::var("CLOISON_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
        .expect("tempdir");
    let (ha, hb) = common::two_devices(root.path());
    let a = start(&ha, &[]);
    let b = start(&hb, &[a.addr.as_str()]);
    call(
        &a,
        Request::WorkspaceCreate {
            name: "Bench".into(),
        },
    );
    call(
        &a,
        Request::WorkspaceShare {
            ws: "Bench".into(),
            user: "ben@bench.example".into(),
            role: "contributor".into(),
        },
    );
    wait_synced(&b, "/", 0, Duration::from_secs(60));
    println!("scale={scale}");

    let big_n = ((256.0 * scale) as usize).max(1);
    scenario("big", &a, &b, root.path(), big_n, 4 << 20);
    let small_n = ((20_000.0 * scale) as usize).max(1);
    scenario("small", &a, &b, root.path(), small_n, 1024);

    // Put-to-visible latency over 50 small writes.
    let dir = root.path().join("latency");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut lat = Vec::new();
    for i in 0..50 {
        let f = dir.join("note.txt");
        std::fs::write(&f, format!("version {i} {}", "x".repeat(1000))).expect("write");
        let want = blake3::hash(&std::fs::read(&f).expect("read"))
            .to_hex()
            .to_string();
        let t = Instant::now();
        call(
            &a,
            Request::Put {
                ws: "Bench".into(),
                local: f.clone(),
                remote: "note.txt".into(),
            },
        );
        loop {
            if let Some(Response::Entries(e)) = try_call(
                &b,
                Request::Ls {
                    ws: "Bench".into(),
                    path: "note.txt".into(),
                    recursive: false,
                },
            ) && e.first().and_then(|x| x.hash.as_deref()) == Some(want.as_str())
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "write {i} never arrived"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    println!("latency_writes={}", lat.len());
    println!(
        "latency_median_ms={:.1}",
        lat[lat.len() / 2].as_secs_f64() * 1e3
    );
    println!(
        "latency_p99_ms={:.1}",
        lat[(lat.len() * 99 / 100).min(lat.len() - 1)].as_secs_f64() * 1e3
    );
    println!("peak_rss_a_mib={:.0}", rss_kib(&a) as f64 / 1024.0);
    println!("peak_rss_b_mib={:.0}", rss_kib(&b) as f64 / 1024.0);
}
