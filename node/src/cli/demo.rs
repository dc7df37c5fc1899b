//! `cloison demo`: a whole team on this machine, with real daemons on loopback, every step
//! narrated and checked; exits non-zero if any check fails.
//!
//! Story: Alice (admin) forms "Hôpital Nord"; Bob works at the Paris site with her, Carol and
//! Dan at the Lyon site. Alice's daemon invites
//! each of them (`cloison invite`, then `cloison greet` and `cloison join` as two processes
//! whose short codes are read and typed both ways, `cli::demo_enrol`). Alice shares a
//! workspace with roles; files
//! written in Paris are read in Lyon; Bob goes offline and catches up; Carol is removed from
//! the workspace (new key epoch: she cannot read what follows, and her device stops carrying the
//! workspace); Dan's device is revoked and cut off. Each joined device dials, besides the peer
//! it is given, the greeter whose address its enrolment gave it (Alice).
//!
//! Invariants: everything runs in one temporary directory (removed unless `--keep`), listens
//! only on 127.0.0.1, with mDNS off; every daemon started is stopped, even on failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cloison_node::keystore::KdfParams;
use cloison_node::node::{InitParams, Node};

const PASS: &str = "demo passphrase (not secret)";
const WAIT: Duration = Duration::from_secs(60);

/// One device of the demo: its home and, while it runs, its daemon.
struct Device {
    name: &'static str,
    home: PathBuf,
    daemon: Option<Child>,
    addr: Option<String>,
}

impl Device {
    fn cmd(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(std::env::current_exe()?)
            .args(args)
            .env("CLOISON_HOME", &self.home)
            .env("CLOISON_PASSPHRASE", PASS)
            .env("CLOISON_MDNS", "0")
            .env("CLOISON_TEST_FAST_KDF", "1")
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "{}: cloison {} failed: {}",
                self.name,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = args.to_vec();
        a.push("--json");
        Ok(serde_json::from_str(&self.cmd(&a)?)?)
    }

    fn start(&mut self, peers: &[String]) -> Result<()> {
        let mut args = vec![
            "run".to_owned(),
            "--no-mdns".into(),
            "--listen".into(),
            "/ip4/127.0.0.1/tcp/0".into(),
        ];
        for p in peers {
            args.push("--peer".into());
            args.push(p.clone());
        }
        let mut cmd = Command::new(std::env::current_exe()?);
        // The demo's daemons take only their flags, not the user's config file or settings.
        for v in super::config::ENV_VARS {
            cmd.env_remove(v);
        }
        let mut child = cmd
            .args(&args)
            .env("CLOISON_HOME", &self.home)
            .env("CLOISON_PASSPHRASE", PASS)
            .env("CLOISON_MDNS", "0")
            .env("CLOISON_TEST_FAST_KDF", "1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("daemon stdout")?;
        self.daemon = Some(child);
        let mut addr = None;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if let Some(a) = line.strip_prefix("listening ") {
                addr.get_or_insert_with(|| a.to_owned());
            }
            if line == "ready" {
                break;
            }
        }
        self.addr = Some(addr.with_context(|| format!("{}: daemon did not listen", self.name))?);
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.daemon.take() {
            let _ = self.cmd(&["stop"]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait()?.is_some() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Story {
    checks: usize,
    failed: usize,
    step: usize,
}

impl Story {
    fn step(&mut self, what: &str) {
        self.step += 1;
        println!("\n== {}. {what}", self.step);
    }

    fn check(&mut self, ok: bool, what: &str) {
        self.checks += 1;
        if ok {
            println!("   ok    {what}");
        } else {
            self.failed += 1;
            println!("   FAIL  {what}");
        }
    }

    /// Polls `f` until it is true or [`WAIT`] passes; checks the result.
    fn eventually(&mut self, what: &str, mut f: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if f() {
                self.check(
                    true,
                    &format!("{what} ({} ms)", start.elapsed().as_millis()),
                );
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.check(
            false,
            &format!("{what} (gave up after {} s)", WAIT.as_secs()),
        );
        false
    }
}

fn names(d: &Device, ws: &str, path: &str) -> Vec<String> {
    d.json(&["ls", ws, path])
        .ok()
        .and_then(|v| {
            v["entries"].as_array().map(|a| {
                a.iter()
                    .filter_map(|e| e["name"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn same_file(d: &Device, ws: &str, remote: &str, local: &Path, scratch: &Path) -> bool {
    let out = scratch.join(format!("{}-{}", d.name, remote.replace('/', "_")));
    d.cmd(&["get", ws, remote, &out.to_string_lossy()]).is_ok()
        && std::fs::read(&out).ok() == std::fs::read(local).ok()
}

/// Runs the demo.
pub fn run(keep: bool) -> Result<()> {
    let root = tempfile::Builder::new()
        .prefix("cloison-demo-")
        .tempdir()
        .context("temporary directory")?;
    let result = story(root.path());
    if keep {
        let p = root.keep();
        println!("\nthe demo's directory is kept: {}", p.display());
    }
    result
}

fn story(root: &Path) -> Result<()> {
    let mut s = Story {
        checks: 0,
        failed: 0,
        step: 0,
    };
    let started = Instant::now();
    let dev = |name: &'static str| Device {
        name,
        home: root.join(name),
        daemon: None,
        addr: None,
    };
    let (mut alice, mut bob, mut carol, mut dan) = (
        dev("alice-laptop"),
        dev("bob-desktop"),
        dev("carol-laptop"),
        dev("dan-pc"),
    );
    let files = root.join("files");
    std::fs::create_dir_all(&files)?;

    s.step("Alice forms the organization \"Hôpital Nord\" on her laptop (Paris site)");
    let kdf = KdfParams::TEST_ONLY;
    let admin = Node::init(
        &alice.home,
        PASS.as_bytes(),
        kdf,
        &InitParams {
            org_name: "Hôpital Nord",
            user_name: "Alice Martin",
            email: "alice@hopital-nord.example",
            device_label: "alice-laptop",
        },
    )?;
    println!("   organization {}", admin.org_id());

    drop(admin);
    alice.start(&[])?;
    let a = alice.addr.clone().unwrap_or_default();
    println!("   alice's daemon listens on {a}");

    s.step("she invites Bob (Paris), Carol and Dan (Lyon): token, then short codes both ways");
    for (d, name, email) in [
        (&bob, "Bob Durand", "bob@hopital-nord.example"),
        (&carol, "Carol Petit", "carol@hopital-nord.example"),
        (&dan, "Dan Moreau", "dan@hopital-nord.example"),
    ] {
        let r = super::demo_enrol::enrol(
            &alice.home,
            PASS,
            &super::demo_enrol::Joiner {
                home: &d.home,
                name: Some(name),
                email,
                device: d.name,
            },
        );
        match r {
            Ok((g, c)) => println!("   {name}: Alice read {g}, {name} read {c}; both typed"),
            Err(e) => println!("   {name}: enrolment failed: {e:#}"),
        }
    }
    let users = alice.json(&["users"])?;
    s.check(
        users["users"].as_array().map_or(0, Vec::len) == 4,
        "four users in the organization log",
    );

    s.step(
        "their daemons start on loopback: Bob dials Alice, Carol links Lyon to Paris, Dan dials Carol (and each dials Alice, whose address their enrolment gave them)",
    );
    bob.start(std::slice::from_ref(&a))?;
    carol.start(std::slice::from_ref(&a))?;
    let c = carol.addr.clone().unwrap_or_default();
    dan.start(std::slice::from_ref(&c))?;
    let peers_of = |d: &Device| {
        d.json(&["peers"])
            .ok()
            .and_then(|v| {
                v["peers"]
                    .as_array()
                    .map(|a| a.iter().filter(|p| p["state"] == "connected").count())
            })
            .unwrap_or(0)
    };
    s.eventually("Alice is connected to Bob, Carol and Dan", || {
        peers_of(&alice) == 3
    });
    s.eventually("Carol is connected to Alice and Dan", || {
        peers_of(&carol) == 2
    });

    s.step("Alice creates the workspace \"Cardiology\" and shares it with roles");
    alice.cmd(&["workspace", "create", "Cardiology"])?;
    alice.cmd(&[
        "workspace",
        "share",
        "Cardiology",
        "bob@hopital-nord.example",
        "--role",
        "contributor",
    ])?;
    alice.cmd(&[
        "workspace",
        "share",
        "Cardiology",
        "Carol Petit",
        "--role",
        "reader",
    ])?;
    alice.cmd(&[
        "workspace",
        "share",
        "Cardiology",
        "dan@hopital-nord.example",
        "--role",
        "contributor",
    ])?;
    print!("{}", alice.cmd(&["workspace", "members", "Cardiology"])?);
    s.eventually("Dan (Lyon) sees the workspace by name", || {
        dan.json(&["workspace", "list"]).is_ok_and(|v| {
            v["workspaces"]
                .as_array()
                .is_some_and(|a| a.iter().any(|w| w["name"] == "Cardiology"))
        })
    });

    s.step("Alice writes files in Paris; Carol and Dan read them in Lyon");
    let report = files.join("report.md");
    std::fs::write(&report, "# Weekly report\nAll patients stable.\n")?;
    let scan = files.join("scan.bin");
    let mut bytes = vec![0u8; 8 << 20];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    std::fs::write(&scan, &bytes)?;
    alice.cmd(&[
        "put",
        "Cardiology",
        &report.to_string_lossy(),
        "reports/week-48.md",
    ])?;
    alice.cmd(&[
        "put",
        "Cardiology",
        &scan.to_string_lossy(),
        "imaging/scan-0001.bin",
    ])?;
    s.eventually("Carol lists reports/week-48.md", || {
        names(&carol, "Cardiology", "reports").contains(&"week-48.md".to_owned())
    });
    s.eventually("Carol's copy of the report is byte-identical", || {
        same_file(&carol, "Cardiology", "reports/week-48.md", &report, &files)
    });
    s.eventually("Dan's copy of the 8 MiB scan is byte-identical", || {
        same_file(&dan, "Cardiology", "imaging/scan-0001.bin", &scan, &files)
    });
    let readers_write = carol.cmd(&[
        "put",
        "Cardiology",
        &report.to_string_lossy(),
        "reports/carol.md",
    ]);
    s.check(readers_write.is_err(), "Carol, a reader, cannot write");

    s.step(
        "Bob adds his phone with a device invitation; it gets his user key and reads the report",
    );
    let mut phone = dev("bob-phone");
    let r = super::demo_enrol::enrol(
        &bob.home,
        PASS,
        &super::demo_enrol::Joiner {
            home: &phone.home,
            name: None,
            email: "",
            device: phone.name,
        },
    );
    s.check(
        r.is_ok(),
        "Bob's daemon greeted his phone, codes typed both ways",
    );
    if let Err(e) = &r {
        println!("   {e:#}");
    }
    if r.is_ok() {
        phone.start(&[bob.addr.clone().unwrap_or_default()])?;
        s.eventually("Bob's phone reads the report with his user key", || {
            same_file(&phone, "Cardiology", "reports/week-48.md", &report, &files)
        });
        phone.stop()?;
    }

    s.step("Bob goes offline; Alice writes 20 notes; Bob comes back and catches up");
    bob.stop()?;
    let notes = files.join("notes");
    std::fs::create_dir_all(&notes)?;
    for i in 0..20 {
        std::fs::write(
            notes.join(format!("note-{i:02}.txt")),
            format!("note {i}\n"),
        )?;
    }
    alice.cmd(&["put", "Cardiology", &notes.to_string_lossy(), "notes"])?;
    bob.start(std::slice::from_ref(&a))?;
    s.eventually("Bob lists the 20 notes written while he was away", || {
        names(&bob, "Cardiology", "notes").len() == 20
    });
    s.eventually("Bob's note-07.txt is byte-identical", || {
        same_file(
            &bob,
            "Cardiology",
            "notes/note-07.txt",
            &notes.join("note-07.txt"),
            &files,
        )
    });

    s.step("Alice removes Carol from the workspace: a new key epoch she does not get");
    let epochs = |d: &Device| {
        d.json(&["workspace", "list"])
            .ok()
            .and_then(|v| v["workspaces"][0]["epochs"].as_u64())
            .unwrap_or(0)
    };
    let before = epochs(&alice);
    alice.cmd(&[
        "workspace",
        "unshare",
        "Cardiology",
        "carol@hopital-nord.example",
    ])?;
    s.check(
        epochs(&alice) == before + 1,
        "the unshare opened a new epoch",
    );
    let secret = files.join("after-unshare.md");
    std::fs::write(&secret, "Carol must not read this.\n")?;
    alice.cmd(&[
        "put",
        "Cardiology",
        &secret.to_string_lossy(),
        "reports/after-unshare.md",
    ])?;
    s.eventually("Bob reads the file written after the unshare", || {
        same_file(
            &bob,
            "Cardiology",
            "reports/after-unshare.md",
            &secret,
            &files,
        )
    });
    // Carol's device no longer carries the workspace at all (devices sync a workspace only
    // with its members' devices): Dan gets it from Alice, whom he dials since his enrolment.
    s.eventually(
        "Dan, linked to Alice since his enrolment, reads it too",
        || {
            same_file(
                &dan,
                "Cardiology",
                "reports/after-unshare.md",
                &secret,
                &files,
            )
        },
    );
    s.check(
        !names(&carol, "Cardiology", "reports").contains(&"after-unshare.md".to_owned()),
        "Carol does not see it",
    );
    let on_disk = std::fs::read(carol.home.join("store.redb"))?;
    s.check(
        !contains(&on_disk, b"Carol must not read this") && !contains(&on_disk, b"after-unshare"),
        "neither its name nor its content is in Carol's store",
    );

    s.step("Alice revokes Dan's device: it is cut off and what it writes goes nowhere");
    alice.cmd(&["revoke", "device", "dan-pc"])?;
    s.eventually("Carol stops syncing with Dan's revoked device", || {
        carol.json(&["peers"]).is_ok_and(|v| {
            v["peers"].as_array().is_some_and(|a| {
                a.iter().any(|p| {
                    p["label"] == "dan-pc" && (p["state"] == "refused" || p["state"] == "listening")
                })
            })
        })
    });
    let late = files.join("late.md");
    std::fs::write(&late, "written by a revoked device\n")?;
    let _ = dan.cmd(&[
        "put",
        "Cardiology",
        &late.to_string_lossy(),
        "reports/late.md",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    s.check(
        !names(&alice, "Cardiology", "reports").contains(&"late.md".to_owned()),
        "Alice never gets the revoked device's file",
    );

    s.step("no name, e-mail or file content in clear in any store");
    let mut clean = true;
    for d in [&alice, &bob, &carol, &dan] {
        let db = std::fs::read(d.home.join("store.redb"))?;
        for needle in [
            &b"Bob Durand"[..],
            b"hopital-nord.example",
            b"Cardiology",
            b"week-48",
            b"All patients stable",
        ] {
            if contains(&db, needle) {
                clean = false;
                println!(
                    "   {} holds {:?} in clear",
                    d.name,
                    String::from_utf8_lossy(needle)
                );
            }
        }
    }
    s.check(clean, "the four stores hold only ciphertext and ids");

    for d in [&mut alice, &mut bob, &mut carol, &mut dan] {
        d.stop()?;
    }
    println!(
        "\n{} checks, {} failed, {:.1} s",
        s.checks,
        s.failed,
        started.elapsed().as_secs_f64()
    );
    if s.failed > 0 {
        bail!("{} check(s) failed", s.failed);
    }
    println!("demo passed");
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
