//! Folder mirrors against a hostile contributor, with real daemons on 127.0.0.1: another member
//! cannot change what a device's ignore file keeps local (the ignore file is never synced), and
//! a remote path never lands through a local symbolic link.

use cloison_tests::mirror::{WAIT, mirrors, pair};
use cloison_tests::wait_until;

/// A mirror's errors so far, as one string.
fn errors(m: &serde_json::Value) -> String {
    m["mirrors"][0]["totals"]["errors"].to_string()
}

#[test]
fn another_members_ignore_file_never_changes_what_this_device_keeps_local() {
    let p = pair("Ops", "contributor");
    let (fa, fb) = p.folders();
    let t = &p.t;
    // B keeps its credentials local.
    std::fs::write(fb.join(".cloisonignore"), b"secret.env\n").unwrap();
    std::fs::write(fb.join("secret.env"), b"DB_PASSWORD=CANARY-b-secret").unwrap();
    // A, hostile, writes an ignore file that keeps nothing local, in its folder and straight
    // into the workspace.
    std::fs::write(fa.join(".cloisonignore"), b"# nothing ignored\n").unwrap();
    let empty = p.dirs.path().join("empty-ignore");
    std::fs::write(&empty, b"!secret.env\n").unwrap();
    t[0].run(&[
        "put",
        "Ops",
        empty.to_str().unwrap_or_default(),
        ".cloisonignore",
    ])
    .success();
    // Traffic both ways proves both mirrors ran rounds after all of that.
    std::fs::write(fa.join("from-a.txt"), b"a").unwrap();
    wait_until("B has A's file", WAIT, || fb.join("from-a.txt").exists());
    std::fs::write(fb.join("from-b.txt"), b"b").unwrap();
    wait_until("A has B's file", WAIT, || fa.join("from-b.txt").exists());
    // Two more rounds on B after A's put: B's own file still rules.
    std::fs::write(fb.join("from-b-2.txt"), b"b2").unwrap();
    wait_until("A has B's second file", WAIT, || {
        fa.join("from-b-2.txt").exists()
    });
    assert!(
        !fa.join("secret.env").exists(),
        "B's ignored file reached A"
    );
    assert!(
        !t[0].run(&["ls", "Ops", "secret.env"]).ok,
        "B uploaded its ignored file"
    );
    assert_eq!(
        std::fs::read(fb.join(".cloisonignore")).unwrap(),
        b"secret.env\n",
        "another member's ignore file landed over B's"
    );
    assert_eq!(
        std::fs::read(fa.join(".cloisonignore")).unwrap(),
        b"# nothing ignored\n"
    );
    // A mirror never uploads its own ignore file: what the workspace holds is A's put alone.
    let got = p.dirs.path().join("got");
    t[1].run(&[
        "get",
        "Ops",
        ".cloisonignore",
        got.to_str().unwrap_or_default(),
    ])
    .success();
    assert_eq!(std::fs::read(&got).unwrap(), b"!secret.env\n");
}

#[test]
fn a_remote_path_never_lands_through_a_local_symbolic_link() {
    let p = pair("Lab", "contributor");
    let (fa, fb) = p.folders();
    let t = &p.t;
    // B's folder has `x` pointing elsewhere on B's disk.
    let elsewhere = p.dirs.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, fb.join("x")).unwrap();
    // A creates a folder `x` with files, and an ordinary file beside it.
    std::fs::create_dir_all(fa.join("x/deeper")).unwrap();
    std::fs::write(fa.join("x/planted.sh"), b"echo CANARY-planted").unwrap();
    std::fs::write(fa.join("x/deeper/more.txt"), b"more").unwrap();
    std::fs::write(fa.join("ok.txt"), b"fine").unwrap();
    wait_until("B has A's ordinary file", WAIT, || {
        fb.join("ok.txt").exists()
    });
    wait_until("B reports the refused landing", WAIT, || {
        let e = errors(&mirrors(&t[1]));
        e.contains("symbolic link")
    });
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "a remote file landed through B's symbolic link"
    );
    assert!(
        std::fs::symlink_metadata(fb.join("x"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "B's link was replaced"
    );
    // Nothing was taken for deleted either way: A's files are still in the workspace.
    assert!(t[1].run(&["ls", "Lab", "x/planted.sh"]).ok);
    assert!(fa.join("x/planted.sh").exists());
}
