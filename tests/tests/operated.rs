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

/// Writes `rel` under `root` (parents created).
fn file(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(p, content).unwrap_or_else(|e| panic!("{e}"));
}

/// The `WORKSPACE:PATH` of every match of `cloison find ARGS --json` on `h`.
fn found(h: &TestHome, args: &[&str]) -> Vec<String> {
    let mut a = vec!["find"];
    a.extend_from_slice(args);
    a.push("--json");
    let v = h.run(&a).json();
    assert_eq!(v["truncated"], false, "{v}");
    v["found"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|x| {
                    format!(
                        "{}:{}",
                        x["workspace_name"].as_str().unwrap_or_default(),
                        x["path"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ls_recursive_lists_a_tree_and_find_searches_the_readable_workspaces() {
    let t = team(&["ann", "bob"]);
    let (ann, bob) = (&t[0], &t[1]);
    ann.run(&["workspace", "create", "Docs"]).success();
    ann.run(&["workspace", "create", "Archive"]).success();
    bob.run(&["workspace", "create", "Private"]).success();
    let src = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = src.path();
    file(s, "proj/reports/2026/q1-Quarterly.txt", "first quarter");
    file(s, "proj/reports/2026/q2.txt", "second");
    file(s, "proj/reports/summary.md", "# summary");
    file(s, "proj/notes.txt", "notes");
    std::fs::create_dir_all(s.join("proj/empty")).unwrap_or_else(|e| panic!("{e}"));
    file(s, "plan.odt", "plan");
    file(s, "secret.txt", "bob's");
    let at = |rel: &str| s.join(rel).to_str().unwrap_or_default().to_owned();
    ann.run(&["put", "Docs", &at("proj"), "proj"]).success();
    ann.run(&["put", "Archive", &at("plan.odt"), "old/quarterly-plan.odt"])
        .success();
    ann.run(&[
        "put",
        "Archive",
        &at("plan.odt"),
        "evil\u{1b}[31m-quarterly.txt",
    ])
    .success();
    bob.run(&["put", "Private", &at("secret.txt"), "quarterly-secret.txt"])
        .success();

    // ls -R: every file and folder under the folder, each with its full path.
    let want = [
        "proj/empty",
        "proj/notes.txt",
        "proj/reports",
        "proj/reports/2026",
        "proj/reports/2026/q1-Quarterly.txt",
        "proj/reports/2026/q2.txt",
        "proj/reports/summary.md",
    ];
    let table = ann.run(&["ls", "Docs", "proj", "-R"]).success();
    let shown: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split("  ").last())
        .map(|p| p.trim_end_matches('/'))
        .collect();
    assert_eq!(shown, want, "{table}");
    assert!(
        table.contains("d            0  proj/reports/2026/\n"),
        "{table}"
    );
    let v = ann
        .run(&["ls", "Docs", "/", "--recursive", "--json"])
        .json();
    let entries = v["entries"].as_array().cloned().unwrap_or_default();
    let paths: Vec<&str> = entries.iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths[0], "proj", "{v}");
    assert_eq!(&paths[1..], want, "{v}");
    let q1 = &entries[5];
    assert_eq!(q1["kind"], "file");
    assert_eq!(q1["size"], 13);
    assert!(q1["modified_ms"].as_i64().is_some_and(|m| m > 0), "{q1}");
    assert_eq!(
        q1["hash"].as_str(),
        Some(blake3::hash(b"first quarter").to_hex().as_str())
    );
    // Without -R, one level as before.
    assert_eq!(ann.ls("Docs", "proj").len(), 3);

    // find: by a part of the name, case-insensitively, across both of ann's workspaces; the
    // hostile name shown escaped in the table.
    let mut got = found(ann, &["QUARTERLY"]);
    got.sort();
    assert_eq!(
        got,
        [
            "Archive:evil\u{1b}[31m-quarterly.txt",
            "Archive:old/quarterly-plan.odt",
            "Docs:proj/reports/2026/q1-Quarterly.txt",
        ]
    );
    let table = ann.run(&["find", "quarterly"]).success();
    assert!(
        table.contains("Archive:evil\\u{1b}[31m-quarterly.txt"),
        "{table}"
    );
    assert!(!table.contains('\u{1b}'), "{table:?}");
    assert_eq!(
        found(ann, &["q?-*.TXT", "--workspace", "Docs"]),
        ["Docs:proj/reports/2026/q1-Quarterly.txt"]
    );
    assert!(found(ann, &["nothing-like-this"]).is_empty());

    // With both daemons linked and Archive shared with bob: bob finds what is in Archive and
    // in his own workspace, never what is only in Docs; ann never what is only in Private.
    let da = ann.start(&[]);
    let db = bob.start(&[da.addr()]);
    ann.run(&[
        "workspace",
        "share",
        "Archive",
        "bob@clinique.example",
        "--role",
        "reader",
    ])
    .success();
    wait_until("bob reads Archive", WAIT, || {
        found(bob, &["quarterly"]).contains(&"Archive:old/quarterly-plan.odt".to_owned())
    });
    let mut got = found(bob, &["quarterly"]);
    got.sort();
    assert_eq!(
        got,
        [
            "Archive:evil\u{1b}[31m-quarterly.txt",
            "Archive:old/quarterly-plan.odt",
            "Private:quarterly-secret.txt",
        ]
    );
    assert!(found(bob, &["q1"]).is_empty(), "Docs is not bob's");
    assert!(found(ann, &["secret"]).is_empty(), "Private is not ann's");
    db.stop();
    da.stop();
}
