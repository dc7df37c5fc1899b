//! Cloison operated like the tools people already use (issue 19), with the real `cloison`
//! binary: a mirror's log stays quiet (no warning for a missing `.cloisonignore`, a repeated one
//! logged once), completions that a real bash loads, manual pages, `ls -R` and `find`.

use std::path::Path;
use std::time::Duration;

use cloison_tests::{TestHome, team, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// Writes `content` to `dir/name` and waits until the daemon's workspace has it.
fn edit_and_wait(h: &TestHome, dir: &Path, name: &str, content: &str) {
    std::fs::write(dir.join(name), content).unwrap_or_else(|e| panic!("{e}"));
    let want = blake3::hash(content.as_bytes()).to_hex().to_string();
    wait_until(&format!("{name} uploaded"), WAIT, || {
        h.ls("Docs", "/").get(name) == Some(&want)
    });
}

fn warnings(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("WARN")).collect()
}

#[test]
fn a_mirror_without_an_ignore_file_logs_no_warning_and_a_bad_rule_is_logged_once() {
    let t = team(&["ann"]);
    let h = &t[0];
    h.run(&["workspace", "create", "Docs"]).success();
    let folder = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = folder.path();
    let d = h.start(&[]);
    h.run(&["sync", "Docs", dir.to_str().unwrap_or_default()])
        .success();
    // Several rounds with no `.cloisonignore` (each edit starts one, the safety net more).
    for i in 0..4 {
        edit_and_wait(h, dir, "notes.txt", &format!("version {i}"));
    }
    let log = h.log();
    assert!(log.contains("mirror round"), "no round ran:\n{log}");
    assert!(
        warnings(&log).is_empty(),
        "a mirror without an ignore file warned:\n{log}"
    );
    // A bad rule is worth a warning, once, not once per round.
    std::fs::write(dir.join(".cloisonignore"), "*.log\nbad[z-a]\n")
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..4 {
        edit_and_wait(h, dir, "notes.txt", &format!("again {i}"));
    }
    let log = h.log();
    let bad: Vec<&str> = warnings(&log)
        .into_iter()
        .filter(|l| l.contains("bad[z-a]"))
        .collect();
    assert_eq!(bad.len(), 1, "the bad rule's warning, repeated:\n{log}");
    assert_eq!(warnings(&log).len(), 1, "other warnings:\n{log}");
    d.stop();
}

/// Runs a binary of the workspace with `args`; its stdout.
fn output_of(bin: &str, args: &[&str]) -> String {
    let o = std::process::Command::new(cloison_tests::bin(bin))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    assert!(
        o.status.success(),
        "{bin} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `script` in a real bash; its stdout.
fn bash(script: &str) -> String {
    let o = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", script])
        .output()
        .unwrap_or_else(|e| panic!("bash: {e}"));
    assert!(
        o.status.success(),
        "bash failed: {}\n{script}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The subcommands `BIN --help` lists (without `help`).
fn subcommands(bin: &str) -> Vec<String> {
    let help = output_of(bin, &["--help"]);
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A wrapped description continues on a line indented further.
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn completions_load_in_bash_and_manual_pages_cover_every_command() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let script = dir.path().join("cloison.bash");
    std::fs::write(&script, output_of("cloison", &["completions", "bash"]))
        .unwrap_or_else(|e| panic!("{e}"));
    // Sourced in a real bash: registered for `cloison`, and `cloison work<TAB>` offers
    // `workspace`, `cloison workspace <TAB>` its subcommands.
    let out = bash(&format!(
        "source {s}; complete -p cloison; \
         COMP_WORDS=(cloison work); COMP_CWORD=1; _cloison cloison work cloison; \
         echo \"first: ${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(cloison workspace ''); COMP_CWORD=2; _cloison cloison '' workspace; \
         echo \"second: ${{COMPREPLY[*]}}\"",
        s = script.display()
    ));
    assert!(
        out.contains("-F _cloison") && out.contains(" cloison\n"),
        "{out}"
    );
    assert!(out.contains("first: workspace\n"), "{out}");
    let second = out
        .lines()
        .find_map(|l| l.strip_prefix("second: "))
        .unwrap_or_default();
    for sub in ["create", "list", "share", "members"] {
        assert!(second.split(' ').any(|w| w == sub), "{sub}: {out}");
    }
    for shell in ["zsh", "fish"] {
        let s = output_of("cloison", &["completions", shell]);
        assert!(s.contains("workspace") && s.contains("cloison"), "{shell}");
    }

    // Manual pages: one per command and subcommand, each with NAME and SYNOPSIS.
    let man = dir.path().join("man");
    output_of(
        "cloison",
        &["man", "--out", man.to_str().unwrap_or_default()],
    );
    let commands = subcommands("cloison");
    assert!(commands.len() > 20, "{commands:?}");
    assert!(commands.iter().any(|c| c == "completions") && commands.iter().any(|c| c == "man"));
    let main = std::fs::read_to_string(man.join("cloison.1")).unwrap_or_else(|e| panic!("{e}"));
    for page in std::iter::once("cloison.1".to_owned())
        .chain(commands.iter().map(|c| format!("cloison-{c}.1")))
        .chain(["cloison-workspace-create.1".to_owned()])
    {
        let text =
            std::fs::read_to_string(man.join(&page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.contains(".SH NAME") && text.contains(".SH SYNOPSIS"),
            "{page}"
        );
    }
    for c in &commands {
        assert!(main.contains(c.as_str()), "cloison.1 does not name {c}");
    }
    assert_eq!(
        output_of("cloison", &["man"]),
        main,
        "`man` prints the main page"
    );
    // Rendered by man itself when the machine has it.
    if std::process::Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let o = std::process::Command::new("man")
            .args(["-l", man.join("cloison-ls.1").to_str().unwrap_or_default()])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap_or_else(|e| panic!("man: {e}"));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains("NAME") && text.contains("cloison-ls"),
            "{text}"
        );
    }

    // The relay and the TUI have the same two commands.
    for bin in ["cloison-bootstrap", "cloison-tui"] {
        let script = dir.path().join(format!("{bin}.bash"));
        std::fs::write(&script, output_of(bin, &["completions", "bash"]))
            .unwrap_or_else(|e| panic!("{e}"));
        let out = bash(&format!("source {}; complete -p {bin}", script.display()));
        assert!(out.contains(bin), "{out}");
        let page = output_of(bin, &["man"]);
        assert!(
            page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"),
            "{bin}: {page}"
        );
    }
    assert!(subcommands("cloison-bootstrap").iter().any(|c| c == "run"));
}
