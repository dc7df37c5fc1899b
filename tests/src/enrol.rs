//! Driving `cloison greet` and `cloison join` as two people would: real processes whose codes
//! are read from their output and typed into their input (the enrolment tests).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Daemon, PASSPHRASE, TestHome, bin, team};

const WAIT: Duration = Duration::from_secs(60);

/// A `cloison` process driven through pipes.
pub struct Driven {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Driven {
    pub fn start(home: &TestHome, args: &[&str]) -> Driven {
        let mut child = Command::new(bin("cloison"))
            .args(args)
            .env("CLOISON_HOME", home.path())
            .env("CLOISON_PASSPHRASE", PASSPHRASE)
            .env("CLOISON_TEST_FAST_KDF", "1")
            .env("CLOISON_MDNS", "0")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run cloison: {e}"));
        let (tx, rx) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        Driven {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The next line that is a 6-digit code.
    pub fn code(&mut self) -> String {
        self.wait_for(|l| l.len() == 6 && l.chars().all(|c| c.is_ascii_digit()))
    }

    /// The next line that `want` accepts (bounded in time).
    pub fn wait_for(&mut self, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if want(&l) {
                        return l;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no such line; output so far:\n{}", self.seen.join("\n"));
    }

    pub fn type_line(&mut self, s: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{s}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the exit (bounded); returns success and everything printed.
    pub fn finish(mut self) -> (bool, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        (status.success(), self.seen.join("\n"))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates an invitation; returns (id, token).
pub fn invite(home: &TestHome, args: &[&str]) -> (String, String) {
    let mut a = vec!["invite"];
    a.extend_from_slice(args);
    a.push("--json");
    let v = home.run(&a).json();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

/// The organization log as the admin sees it: (entries, heads).
pub fn log_of(home: &TestHome) -> (u64, String) {
    let v = home.run(&["org", "show", "--json"]).json();
    (v["entries"].as_u64().unwrap(), v["heads"].to_string())
}

pub fn invitation_state(home: &TestHome, id: &str) -> String {
    let v = home.run(&["invitations", "--json"]).json();
    v["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .map(|i| i["state"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Runs both sides; `admin_types` / `claimer_types` map the code shown by the other side to
/// what is typed. Returns (greet ok, greet output, join ok, join output).
pub fn enrol(
    admin: &TestHome,
    id: &str,
    claimer: &TestHome,
    join_args: &[&str],
    admin_types: impl Fn(&str) -> String,
    claimer_types: impl Fn(&str) -> String,
) -> (bool, String, bool, String) {
    let mut g = Driven::start(admin, &["greet", id]);
    let mut j = Driven::start(claimer, join_args);
    let greeter_code = g.code();
    let claimer_code = j.code();
    g.type_line(&admin_types(&claimer_code));
    j.type_line(&claimer_types(&greeter_code));
    let (jok, jout) = j.finish();
    let (gok, gout) = g.finish();
    (gok, gout, jok, jout)
}

pub fn same(c: &str) -> String {
    c.to_owned()
}

pub fn wrong(c: &str) -> String {
    let d = (c.as_bytes()[0] - b'0' + 1) % 10;
    format!("{d}{}", &c[1..])
}

pub fn start_admin() -> (TestHome, Daemon) {
    let t = team(&["alice"]).into_iter().next().unwrap();
    let d = t.start(&[]);
    (t, d)
}
