//! The service files in `packaging/`: the systemd units verify (`systemd-analyze verify`), the
//! relay's system unit is hardened (`systemd-analyze security --offline`, exposure at most 2.0),
//! and the command lines the units and the container file run are accepted by the real
//! binaries (started with their listen addresses moved to 127.0.0.1 and their state to a
//! temporary directory, then stopped).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cloison_tests::bin;

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

/// `unit` with its binaries replaced by those built here, written to `dir`, after checking
/// that `systemd-analyze verify` finds nothing to say about it.
fn verified(unit: &str, dir: &Path) -> PathBuf {
    let path = with_built_binaries(unit, dir);
    let (ok, out) = analyze(&["verify", "--man=no"], &path);
    assert!(ok && out.trim().is_empty(), "{out}");
    path
}

/// `unit` with every `/usr/bin/NAME` replaced by the binary built here, written to `dir`.
fn with_built_binaries(unit: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(packaging().join("systemd").join(unit)).unwrap();
    let text = text
        .replace(
            "/usr/bin/cloison-bootstrap",
            &bin("cloison-bootstrap").to_string_lossy(),
        )
        .replace(
            "/usr/bin/cloison ",
            &format!("{} ", bin("cloison").to_string_lossy()),
        );
    let path = dir.join(unit);
    std::fs::write(&path, text).unwrap();
    path
}

fn analyze(args: &[&str], unit: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze (Debian package systemd) is needed: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The `ExecStart=` command line of a unit, split on spaces.
fn exec_start(unit: &str) -> Vec<String> {
    let text = std::fs::read_to_string(packaging().join("systemd").join(unit)).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{unit} has no ExecStart"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Runs `binary` with `args` (0.0.0.0 moved to 127.0.0.1 and port 4001 to 0) and waits for its
/// first line on stdout, which must start with `expect`; stops it.
fn starts(binary: &str, args: &[String], env: &[(&str, &Path)], expect: &str) {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("0.0.0.0", "127.0.0.1").replace("/4001", "/0"))
        .collect();
    let mut cmd = Command::new(bin(binary));
    cmd.args(&args)
        .env("CLOISON_MDNS", "0")
        .env("CLOISON_PASSPHRASE", cloison_tests::PASSPHRASE)
        .env("CLOISON_TEST_FAST_KDF", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for k in cloison_tests::CONFIG_VARS {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with(expect),
        "{binary} {args:?} printed {line:?}"
    );
}

/// The relay started with `args`, its state directory `state` moved to `to`.
fn relay_starts(args: &[String], state: &str, to: &Path) {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace(state, &to.to_string_lossy()))
        .collect();
    starts(
        "cloison-bootstrap",
        &args,
        &[],
        "listening on /ip4/127.0.0.1/",
    );
}

#[test]
fn the_relay_unit_verifies_is_hardened_and_its_command_runs() {
    let dir = tempfile::tempdir().unwrap();
    let unit = verified("cloison-bootstrap.service", dir.path());
    let (_, out) = analyze(&["security", "--offline=yes"], &unit);
    let exposure: f64 = out
        .lines()
        .find_map(|l| l.split("Overall exposure level for").nth(1))
        .and_then(|r| r.split(':').nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
    assert!(exposure <= 2.0, "exposure {exposure}:\n{out}");
    // Its ExecStart, with the state directory in a temporary one.
    relay_starts(
        &exec_start("cloison-bootstrap.service")[1..],
        "/var/lib/cloison-relay",
        &dir.path().join("state"),
    );
}

#[test]
fn the_device_user_unit_verifies_and_its_command_runs() {
    let dir = tempfile::tempdir().unwrap();
    verified("cloison.service", dir.path());
    // `cloison run` as the unit starts it: its settings from the home's config.toml.
    let home = cloison_tests::team(&["ann"]).into_iter().next().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "listen = [\"/ip4/127.0.0.1/tcp/0\"]\nmdns = false\n",
    )
    .unwrap();
    let args = exec_start("cloison.service")[1..].to_vec();
    starts(
        "cloison",
        &args,
        &[("CLOISON_HOME", home.path())],
        "listening /ip4/127.0.0.1/",
    );
}

#[test]
fn the_relay_container_runs_a_command_the_relay_accepts() {
    let text = std::fs::read_to_string(packaging().join("Containerfile.relay")).unwrap();
    let array = |key: &str| -> Vec<String> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key}"));
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{key} {line}: {e}"))
    };
    let mut cmd = array("ENTRYPOINT ");
    cmd.extend(array("CMD "));
    assert_eq!(cmd[0], "/usr/bin/cloison-bootstrap");
    let dir = tempfile::tempdir().unwrap();
    relay_starts(&cmd[1..], "/data", dir.path());
}
