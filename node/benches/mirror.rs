//! Folder mirrors (`cloison sync`) between two real daemons on loopback, against `cp -r` + `sync`
//! of the same data in the same run. Run by hand, not by CI:
//!
//! ```text
//! cargo bench -p cloison-node --bench mirror            # 20 edits, 1 GiB, 20,000 files
//! CLOISON_BENCH_SCALE=0.1 cargo bench -p cloison-node --bench mirror   # a quick look
//! ```
//!
//! Figures (`key=value` lines):
//! - `latency_*`: 20 edits of one small file saved in A's folder, from the write until B's folder
//!   holds the new content (polled every millisecond); median and max;
//! - `big_*`: 1 GiB in 256 random files of 4 MiB moved into A's folder (one rename), until B's
//!   folder holds every file at its full size (contents checked afterwards);
//! - `small_*`: 20,000 files of 1 KiB, the same.
//!
//! Invariants: everything runs in a temporary directory on 127.0.0.1 with mDNS off; the daemons
//! are killed when the run ends, even on failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;
#[path = "common/daemon.rs"]
mod daemon;

use daemon::{floor, start};

fn run(home: &Path, args: &[&str]) -> bool {
    common::cloison(home)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
    t.elapsed()
}

/// Files under `dir` with their sizes.
fn sizes(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".cloison-") {
                continue;
            }
            if let Ok(m) = e.metadata()
                && m.is_file()
            {
                out.push((PathBuf::from(name), m.len()));
            }
        }
    }
    out.sort();
    out
}

fn scenario(name: &str, fa: &Path, fb: &Path, root: &Path, n: usize, size: usize) {
    let src = root.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).expect("mkdir");
    let mut buf = vec![0u8; size];
    for i in 0..n {
        rand::Rng::fill_bytes(&mut rand::rng(), &mut buf);
        std::fs::write(src.join(format!("f{i:05}.bin")), &buf).expect("write");
    }
    let _ = Command::new("sync").status();
    let cp = floor(&src, &root.join(format!("{name}-cp")));
    let want = sizes(&src);
    let t = Instant::now();
    std::fs::rename(&src, fa.join(name)).expect("move into A's folder");
    wait(name, Duration::from_secs(3600), || {
        sizes(&fb.join(name)) == want
    });
    let total = t.elapsed();
    for (p, _) in &want {
        let a = std::fs::read(fa.join(name).join(p)).expect("read A");
        let b = std::fs::read(fb.join(name).join(p)).expect("read B");
        assert!(a == b, "{} differs", p.display());
    }
    println!("{name}_files={n}");
    println!("{name}_bytes={}", n * size);
    println!("{name}_floor_cp_r_sync_s={:.3}", cp.as_secs_f64());
    println!("{name}_sync_total_s={:.3}", total.as_secs_f64());
    println!(
        "{name}_ratio_to_floor={:.2}",
        total.as_secs_f64() / cp.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let scale = common::scale();
    let root = tempfile::Builder::new()
        .prefix("cloison-bench-mirror-")
        .tempdir_in(std::env::var("CLOISON_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
        .expect("tempdir");
    let (ha, hb) = common::two_devices(root.path());
    let a = start(&ha, &[]);
    let _b = start(&hb, &[a.addr.as_str()]);
    assert!(run(&ha, &["workspace", "create", "Bench"]));
    assert!(run(
        &ha,
        &[
            "workspace",
            "share",
            "Bench",
            "ben@bench.example",
            "--role",
            "contributor"
        ]
    ));
    wait("B holds the workspace", Duration::from_secs(60), || {
        run(&hb, &["ls", "Bench"])
    });
    let (fa, fb) = (root.path().join("fa"), root.path().join("fb"));
    assert!(run(&ha, &["sync", "Bench", fa.to_str().expect("utf-8")]));
    assert!(run(&hb, &["sync", "Bench", fb.to_str().expect("utf-8")]));
    println!("scale={scale}");

    // Edit-to-appearance latency.
    let mut lat = Vec::new();
    for i in 0..20 {
        let body = format!("version {i} {}", "x".repeat(1000));
        let t = Instant::now();
        std::fs::write(fa.join("note.txt"), &body).expect("write");
        wait("the edit arrives", Duration::from_secs(60), || {
            std::fs::read(fb.join("note.txt")).is_ok_and(|b| b == body.as_bytes())
        });
        lat.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    lat.sort();
    println!("latency_edits={}", lat.len());
    println!(
        "latency_median_ms={:.1}",
        lat[lat.len() / 2].as_secs_f64() * 1e3
    );
    println!(
        "latency_max_ms={:.1}",
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );

    let big_n = ((256.0 * scale) as usize).max(1);
    scenario("big", &fa, &fb, root.path(), big_n, 4 << 20);
    let small_n = ((20_000.0 * scale) as usize).max(1);
    scenario("small", &fa, &fb, root.path(), small_n, 1024);
}
