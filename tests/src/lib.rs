//! The end-to-end test kit: real `cloison` binaries in separate processes, each device in its own
//! temporary home.
//!
//! [`TestHome`] is one device's home; [`TestHome::run`] runs the binary against it with the test
//! passphrase and returns a [`Run`] to assert on. The binary is the one cargo built for this
//! workspace (found next to the test executable), never a copy from elsewhere.
//!
//! Invariant: every process a test starts is waited for before the call returns; nothing binds a
//! network port yet (later tests that do bind only to 127.0.0.1 and clean up).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The passphrase every test home uses.
pub const PASSPHRASE: &str = "test passphrase, not secret";

/// Path of a workspace binary (`cloison`, `cloison-bootstrap`, ...), built by cargo beside the
/// test executable (`target/<profile>/`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run the tests with `cargo nextest run --workspace` (or `cargo build --workspace` first)",
        p.display()
    );
    p
}

/// One device's home directory.
pub struct TestHome {
    dir: tempfile::TempDir,
}

/// The result of one command.
#[derive(Debug)]
pub struct Run {
    /// Exit status success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn success(self) -> String {
        assert!(
            self.ok,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Asserts failure and returns stderr.
    pub fn failure(self) -> String {
        assert!(
            !self.ok,
            "command succeeded unexpectedly\nstdout:\n{}",
            self.stdout
        );
        self.stderr
    }

    /// Asserts success and parses stdout as JSON.
    pub fn json(self) -> serde_json::Value {
        let out = self.success();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
    }
}

impl Default for TestHome {
    fn default() -> Self {
        TestHome::new()
    }
}

impl TestHome {
    /// A fresh, empty home.
    pub fn new() -> TestHome {
        TestHome {
            dir: tempfile::Builder::new()
                .prefix("cloison-test-")
                .tempdir()
                .unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `cloison ARGS` against this home with the test passphrase.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, PASSPHRASE)
    }

    /// Runs `cloison ARGS` with another passphrase.
    pub fn run_with(&self, args: &[&str], passphrase: &str) -> Run {
        let out = Command::new(bin("cloison"))
            .args(args)
            .env("CLOISON_HOME", self.path())
            .env("CLOISON_PASSPHRASE", passphrase)
            .env("CLOISON_TEST_FAST_KDF", "1")
            .env("CLOISON_MDNS", "0")
            .env_remove("RUST_LOG")
            .output()
            .unwrap_or_else(|e| panic!("cannot run cloison: {e}"));
        Run::from(out)
    }
}
