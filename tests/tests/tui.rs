//! `cloison-tui` end to end: a real `cloison run` daemon, the real TUI in a tmux pane of 80×24
//! (a private tmux server, killed at the end), driven with `send-keys` and read with
//! `capture-pane`: the overview, creating a workspace and seeing it listed, sharing it with
//! another user and seeing them as a member, and seeing that user's device as a connected peer.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use cloison_tests::{TestHome, bin, team, wait_until};

const WAIT: Duration = Duration::from_secs(30);

/// A private tmux server with one 80×24 session; killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(program: &Path, home: &Path) -> Tmux {
        let t = Tmux {
            socket: format!("cloison-tui-test-{}", std::process::id()),
        };
        let cmd = format!("{} --home {}", program.display(), home.display());
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
            &cmd,
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.tmux(&["set-option", "-t", "tui", "remain-on-exit", "on"]);
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

    fn pane(&self, what: &str) -> String {
        let out = self.tmux(&["display", "-p", "-t", "tui", what]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
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
    let tui = Tmux::start(&bin("cloison-tui"), homes[0].path());

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
    wait_until("the TUI exits", WAIT, || tui.pane("#{pane_dead}") == "1");
    assert_eq!(tui.pane("#{pane_dead_status}"), "0");
}
