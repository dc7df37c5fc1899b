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
