//! What the end-to-end benchmarks share: a two-device organization in a temporary directory
//! (the admin's home and one provisioned member's), the scale knob, and the `cloison` command
//! bound to a home.

use std::path::{Path, PathBuf};
use std::process::Command;

use cloison_node::keystore::KdfParams;
use cloison_node::node::{InitParams, Node};
use cloison_node::trust::Profile;

/// The passphrase of every benchmark home.
pub const PASS: &str = "bench passphrase";

/// `CLOISON_BENCH_SCALE` (default 1): the fraction of the full dataset to use.
pub fn scale() -> f64 {
    std::env::var("CLOISON_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// An organization "Bench": Ann's home `root/a` (admin) and Ben's `root/b`
/// (ben@bench.example), cheap key-file parameters.
pub fn two_devices(root: &Path) -> (PathBuf, PathBuf) {
    let (ha, hb) = (root.join("a"), root.join("b"));
    let kdf = KdfParams::TEST_ONLY;
    let mut admin = Node::init(
        &ha,
        PASS.as_bytes(),
        kdf,
        &InitParams {
            org_name: "Bench",
            user_name: "Ann",
            email: "ann@bench.example",
            device_label: "a",
        },
    )
    .expect("init");
    admin
        .provision_user(
            &hb,
            PASS.as_bytes(),
            kdf,
            "Ben",
            "ben@bench.example",
            "b",
            Profile::Standard,
        )
        .expect("provision");
    (ha, hb)
}

/// The release `cloison` command on `home` (loopback only, mDNS off).
pub fn cloison(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cloison"));
    c.env("CLOISON_HOME", home)
        .env("CLOISON_PASSPHRASE", PASS)
        .env("CLOISON_MDNS", "0");
    c
}
