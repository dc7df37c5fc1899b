//! Bundle export and import of a 1 GiB workspace with the release `cloison` binary, each a
//! separate process whose peak memory is sampled; run by hand:
//!
//! ```text
//! cargo bench -p cloison-node --bench bundle                       # 1 GiB (256 × 4 MiB)
//! CLOISON_BENCH_SCALE=0.25 cargo bench -p cloison-node --bench bundle
//! ```
//!
//! Prints `key=value` lines: export and import seconds and MB/s (of the bundle's bytes), each
//! process's peak RSS, and the floor: `cp` of the bundle file + `sync` in the same run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;

/// Runs `cloison ARGS` on `home`; returns (seconds, peak RSS in MiB).
fn timed(home: &Path, args: &[&str]) -> (f64, f64) {
    let t = Instant::now();
    let mut child = common::cloison(home)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cloison");
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            for l in s.lines().filter(|l| l.starts_with("VmHWM:")) {
                if let Some(v) = l.split_whitespace().nth(1).and_then(|v| v.parse().ok()) {
                    peak = peak.max(v);
                }
            }
        }
        if let Some(st) = child.try_wait().expect("wait") {
            assert!(st.success(), "cloison {} failed", args.join(" "));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (t.elapsed().as_secs_f64(), peak as f64 / 1024.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let scale = common::scale();
    let root = tempfile::Builder::new()
        .prefix("cloison-bundle-bench-")
        .tempdir()
        .expect("tempdir");
    let (ha, hc) = common::two_devices(root.path());
    let run = |home: &Path, args: &[&str]| {
        let ok = common::cloison(home)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("cloison");
        assert!(ok.success(), "cloison {}", args.join(" "));
    };
    run(&ha, &["workspace", "create", "Bench"]);
    run(&ha, &["workspace", "share", "Bench", "ben@bench.example"]);
    let src = root.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let n = ((256.0 * scale) as usize).max(1);
    let mut buf = vec![0u8; 4 << 20];
    for i in 0..n {
        rand::Rng::fill_bytes(&mut rand::rng(), &mut buf);
        std::fs::write(src.join(format!("f{i:04}.bin")), &buf).expect("write");
    }
    run(&ha, &["put", "Bench", src.to_str().expect("path"), "data"]);
    let bundle = root.path().join("full.bundle");
    let (export_s, export_rss) = timed(
        &ha,
        &["bundle", "export", "--out", bundle.to_str().expect("path")],
    );
    let size = std::fs::metadata(&bundle).expect("bundle").len();
    let t = Instant::now();
    let copy = root.path().join("copy.bundle");
    assert!(
        Command::new("cp")
            .arg(&bundle)
            .arg(&copy)
            .status()
            .expect("cp")
            .success()
    );
    assert!(Command::new("sync").status().expect("sync").success());
    let floor = t.elapsed().as_secs_f64();
    let (import_s, import_rss) = timed(&hc, &["bundle", "import", bundle.to_str().expect("path")]);
    let mb = size as f64 / 1e6;
    println!("files={n}");
    println!("bundle_bytes={size}");
    println!("export_s={export_s:.3}");
    println!("export_mb_s={:.0}", mb / export_s);
    println!("export_peak_rss_mib={export_rss:.0}");
    println!("import_s={import_s:.3}");
    println!("import_mb_s={:.0}", mb / import_s);
    println!("import_peak_rss_mib={import_rss:.0}");
    println!("floor_cp_sync_s={floor:.3}");
}
