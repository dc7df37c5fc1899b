//! `cloison-tui` end to end: a real `cloison run` daemon, the real TUI in a tmux pane of 80×24
//! (a private tmux server, killed at the end), driven with `send-keys` and read with
//! `capture-pane`: the overview, creating a workspace and seeing it listed, sharing it with
//! another user and seeing them as a member, and seeing that user's device as a connected peer;
//! and an invitation created in the TUI, greeted in the TUI with the code exchange against a
//! real `cloison join` process driven through its stdin and stdout, the new user then listed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cloison_tests::{PASSPHRASE, TestHome, bin, team, wait_until};

const WAIT: Duration = Duration::from_secs(30);

/// A private tmux server with one 80×24 session; killed on drop.
struct Tmux {
    socket: String,
    /// The server's socket file (tmux leaves it behind after `kill-server`).
    path: String,
    /// Where the pane's shell writes the TUI's exit status.
    status: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    fn start(name: &str, program: &Path, home: &Path) -> Tmux {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut t = Tmux {
            socket: format!("cloison-tui-{name}-{}", std::process::id()),
            path: String::new(),
            status: dir.path().join("status"),
            _dir: dir,
        };
        // The pane runs a shell that records the TUI's exit status in a file: tmux itself
        // sometimes leaves the exited program unreaped (a zombie) and never reports a status.
        let status = t.status.display().to_string();
        let (program, home) = (program.display().to_string(), home.display().to_string());
        let out = t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "tui",
            "-x",
            "80",
            "-y",
            "24",
            "sh",
            "-c",
            r#""$0" --home "$1"; echo $? > "$2""#,
            &program,
            &home,
            &status,
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.tmux(&["set-option", "-t", "tui", "remain-on-exit", "on"]);
        t.path = t.pane("#{socket_path}");
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux: {e}"))
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "tui"]).stdout)
            .into_owned()
    }

    /// Sends tmux key names (`Enter`, `Escape`, `Down`, or single characters).
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", "tui", k]);
        }
    }

    /// Types literal text.
    fn text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "tui", "-l", text]);
    }

    /// Waits until the screen shows `text`; returns the screen.
    fn wait_for(&self, text: &str) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(&format!("the TUI shows {text:?}"), WAIT, || {
                last = self.screen();
                last.contains(text)
            })
        }));
        assert!(
            found.is_ok(),
            "the TUI never showed {text:?}; last screen:\n{last}"
        );
        last
    }

    /// Waits until the program in the pane has exited, and checks it exited with status 0.
    fn exits_cleanly(&self) {
        let mut status = String::new();
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until("the TUI exits", WAIT, || {
                status = std::fs::read_to_string(&self.status).unwrap_or_default();
                status.ends_with('\n')
            })
        }));
        assert!(
            done.is_ok() && status.trim() == "0",
            "the TUI did not exit cleanly (status {status:?}); screen:\n{}",
            self.screen()
        );
    }

    fn pane(&self, what: &str) -> String {
        let out = self.tmux(&["display", "-p", "-t", "tui", what]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
        if !self.path.is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes a screen to `$CLOISON_TUI_CAPTURES/NAME.txt` when that variable is set (how the
/// captures in docs/tui.md were made).
fn keep(name: &str, screen: &str) {
    if let Some(dir) = std::env::var_os("CLOISON_TUI_CAPTURES") {
        let _ = std::fs::write(Path::new(&dir).join(format!("{name}.txt")), screen);
    }
}

fn workspace_names(home: &TestHome) -> Vec<String> {
    let v = home.run(&["workspace", "list", "--json"]).json();
    v.as_array()
        .or_else(|| v["workspaces"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|w| w["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_tui_creates_and_shares_a_workspace_and_sees_a_peer() {
    let homes = team(&["alice", "bob"]);
    let alice = homes[0].start(&[]);
    let _bob = homes[1].start(&[alice.addrs[0].as_str()]);
    let tui = Tmux::start("share", &bin("cloison-tui"), homes[0].path());

    // The overview.
    let s = tui.wait_for("Clinique");
    assert!(s.contains("1 Org"), "{s}");
    assert!(s.contains("q quit"), "{s}");

    // Create a workspace: screen 3, n, its name, Enter; it is listed, and the daemon has it.
    tui.keys(&["3"]);
    tui.wait_for("Members");
    tui.keys(&["n"]);
    tui.wait_for("New workspace name");
    tui.text("Ops");
    tui.keys(&["Enter"]);
    tui.wait_for("Members of Ops");
    tui.wait_for("alice");
    assert!(workspace_names(&homes[0]).contains(&"Ops".to_string()));

    // Share it with bob (the only candidate) as a contributor; bob appears as a member.
    tui.keys(&["s"]);
    tui.wait_for("bob <bob@clinique.example>");
    tui.keys(&["Enter"]);
    let s = tui.wait_for("contributor");
    assert!(s.contains("bob"), "{s}");
    keep("workspaces", &s);

    // Bob's device is a connected peer.
    tui.keys(&["4"]);
    let s = tui.wait_for("bob-dev (bob)");
    assert!(s.contains("connected"), "{s}");
    keep("peers", &s);

    // The event log has what the TUI did.
    tui.keys(&["6"]);
    tui.wait_for("✓ share Ops with bob as contributor");

    // q quits cleanly.
    tui.keys(&["q"]);
    tui.exits_cleanly();
}

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The token shown by the TUI's invitation view: the lines between its title and the
/// `The newcomer runs` line, without the pane's borders.
fn token_on(screen: &str) -> String {
    let mut token = String::new();
    let mut inside = false;
    for line in screen.lines() {
        if line.contains("The newcomer runs") {
            break;
        }
        if inside {
            token.push_str(line.trim().trim_matches('┃').trim());
        }
        if line.contains("Token for") {
            inside = true;
        }
    }
    token
}

/// The six-digit code after `marker` on the screen.
fn code_after(screen: &str, marker: &str) -> Option<String> {
    let rest = &screen[screen.find(marker)? + marker.len()..];
    let code: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (code.len() == 6).then_some(code)
}

#[test]
fn the_tui_invites_and_greets_a_new_user_who_joins_with_the_codes() {
    let homes = team(&["alice"]);
    let _alice = homes[0].start(&[]);
    let tui = Tmux::start("greet", &bin("cloison-tui"), homes[0].path());
    tui.wait_for("Clinique");

    // Invite carol as a standard user: screen 7, u, e-mail, Enter, Enter (standard).
    tui.keys(&["7"]);
    tui.wait_for("Invitations");
    tui.keys(&["u"]);
    tui.wait_for("E-mail of the new user");
    tui.text("carol@clinique.example");
    tui.keys(&["Enter"]);
    tui.wait_for("as:");
    tui.keys(&["Enter"]);
    let s = tui.wait_for("The newcomer runs");
    keep("invitation", &s);
    let token = token_on(&s);
    assert!(token.len() > 20, "no token on\n{s}");

    // Greet on it, then carol joins.
    tui.keys(&["g"]);
    tui.wait_for("Waiting for the newcomer");
    let carol = TestHome::new();
    let mut join = Killed(
        Command::new(bin("cloison"))
            .args([
                "join",
                &token,
                "--user",
                "carol",
                "--device",
                "carol-laptop",
            ])
            .env("CLOISON_HOME", carol.path())
            .env("CLOISON_PASSPHRASE", PASSPHRASE)
            .env("CLOISON_TEST_FAST_KDF", "1")
            .env("CLOISON_MDNS", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run cloison join: {e}")),
    );
    let (lines_tx, lines) = mpsc::channel();
    let stdout = join.0.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("cloison join said nothing more: {e}"))
    };
    // The claimer's code is printed on the line after its prompt.
    while !next_line().contains("Read this code to the admin") {}
    let claimer_code = next_line().trim().to_string();

    // The TUI shows our code: carol types it; the admin types hers.
    let s = tui.wait_for("Read them your code:");
    keep("greeting", &s);
    let greeter_code =
        code_after(&s, "Read them your code:").unwrap_or_else(|| panic!("no code on\n{s}"));
    let mut stdin = join.0.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    writeln!(stdin, "{greeter_code}").unwrap_or_else(|e| panic!("join's stdin: {e}"));
    drop(stdin);
    tui.text(&claimer_code);
    tui.keys(&["Enter"]);
    tui.wait_for("joined the organization");
    let status = join
        .0
        .wait()
        .unwrap_or_else(|e| panic!("cloison join: {e}"));
    let mut err = String::new();
    if let Some(mut e) = join.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        status.success(),
        "cloison join failed\nstdout: {rest:?}\nstderr: {err}"
    );

    // Carol is on the users screen.
    tui.keys(&["Enter"]);
    tui.keys(&["2"]);
    let s = tui.wait_for("carol@clinique.example");
    keep("users", &s);
    assert!(s.contains("standard"), "{s}");
    tui.keys(&["q"]);
    tui.exits_cleanly();
}
