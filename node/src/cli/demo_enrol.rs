//! The demo's enrolment: a real invitation from the admin's running daemon, then `cloison
//! greet` and `cloison join` as two processes whose codes are read from their stdout and typed
//! into the other's stdin, as two people would read them to each other.
//!
//! Invariant: both processes are waited for (or killed) before returning; every wait is bounded.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const WAIT: Duration = Duration::from_secs(60);

struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(home: &Path, pass: &str, args: &[&str]) -> Result<Proc> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .env("CLOISON_HOME", home)
            .env("CLOISON_PASSPHRASE", pass)
            .env("CLOISON_MDNS", "0")
            .env("CLOISON_TEST_FAST_KDF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().context("stdout")?;
        let err = child.stderr.take().context("stderr")?;
        for r in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        Ok(Proc {
            child,
            lines: rx,
            seen: Vec::new(),
        })
    }

    fn code(&mut self) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(l) = self.lines.recv_timeout(left) else {
                break;
            };
            self.seen.push(l.clone());
            if l.len() == 6 && l.chars().all(|c| c.is_ascii_digit()) {
                return Ok(l);
            }
        }
        bail!("no code came: {}", self.seen.join(" | "))
    }

    fn type_line(&mut self, s: &str) -> Result<()> {
        let stdin = self.child.stdin.as_mut().context("stdin")?;
        writeln!(stdin, "{s}")?;
        stdin.flush()?;
        Ok(())
    }

    fn finish(mut self) -> Result<String> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50));
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        if !status.success() {
            bail!("{}", self.seen.join(" | "));
        }
        Ok(self.seen.join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Who joins, and how.
pub struct Joiner<'a> {
    /// The new device's home.
    pub home: &'a Path,
    /// `Some(name)` for a new user, `None` for a new device of the greeter's user.
    pub name: Option<&'a str>,
    /// The invited e-mail (user invitations).
    pub email: &'a str,
    /// The new device's label.
    pub device: &'a str,
}

/// Invites on `greeter` (whose daemon runs), greets, and joins `j`; returns the codes shown.
pub fn enrol(greeter: &Path, pass: &str, j: &Joiner<'_>) -> Result<(String, String)> {
    let mut args = vec!["invite"];
    match j.name {
        Some(_) => args.extend(["user", j.email]),
        None => args.push("device"),
    }
    args.push("--json");
    let out = Command::new(std::env::current_exe()?)
        .args(&args)
        .env("CLOISON_HOME", greeter)
        .env("CLOISON_PASSPHRASE", pass)
        .output()?;
    if !out.status.success() {
        bail!("invite: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let id = v["id"].as_str().context("invitation id")?.to_owned();
    let token = v["token"].as_str().context("token")?.to_owned();
    let mut g = Proc::spawn(greeter, pass, &["greet", &id])?;
    let mut join_args = vec!["join", token.as_str(), "--device", j.device];
    if let Some(n) = j.name {
        join_args.extend(["--user", n]);
    }
    let mut c = Proc::spawn(j.home, pass, &join_args)?;
    let greeter_code = g.code()?;
    let claimer_code = c.code()?;
    g.type_line(&claimer_code)?;
    c.type_line(&greeter_code)?;
    c.finish().context("join")?;
    g.finish().context("greet")?;
    Ok((greeter_code, claimer_code))
}
