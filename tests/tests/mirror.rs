//! Folder mirrors (`cloison sync`) between real daemons on 127.0.0.1: what happens in A's folder
//! appears in B's folder (create, edit, save-by-rename, rename, move, delete, empty folders),
//! concurrent edits give one file plus one conflict copy on both sides, a 1-byte change in a
//! large file moves only a few chunks, 10,000 files created at once all arrive, a daemon killed
//! mid-sync resumes without fetching completed files again and leaves no temporary file behind,
//! and a READER's mirror uploads nothing.

use std::collections::BTreeMap;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use cloison_tests::mirror::{WAIT, connected, mirrors, pair, tree};
use cloison_tests::{TestHome, team, wait_until};

#[test]
fn changes_in_one_folder_appear_in_the_other() {
    let p = pair("Docs", "contributor");
    let (fa, fb) = p.folders();
    let t = &p.t;
    // Create: files, a nested folder, an empty folder, an ignored editor file, a symlink.
    std::fs::create_dir_all(fa.join("reports/2026")).unwrap();
    std::fs::create_dir_all(fa.join("empty")).unwrap();
    std::fs::write(fa.join("reports/2026/q1.txt"), b"first quarter").unwrap();
    std::fs::write(fa.join("notes.md"), b"# notes\n").unwrap();
    std::fs::write(fa.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(fa.join("run.sh"), Permissions::from_mode(0o750)).unwrap();
    std::fs::write(fa.join("notes.md.swp"), b"vim swap").unwrap();
    std::os::unix::fs::symlink("notes.md", fa.join("link.md")).unwrap();
    wait_until("B has the files", WAIT, || {
        fb.join("reports/2026/q1.txt").exists()
            && fb.join("empty").is_dir()
            && fb.join("run.sh").exists()
    });
    let got = p.same_on_both(&["notes.md.swp", "link.md"]);
    assert!(got.contains_key("notes.md"));
    assert!(
        !fb.join("notes.md.swp").exists(),
        "an ignored file was synced"
    );
    assert!(!fb.join("link.md").exists(), "a symlink was synced");
    // Mode bits are carried (an executable stays executable).
    let mode = std::fs::metadata(fb.join("run.sh"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o750, "mode on B: {mode:o}");
    let listed = mirrors(&t[0]);
    assert!(
        listed["mirrors"][0]["totals"]["skipped"]
            .as_array()
            .is_some_and(|s| s
                .iter()
                .any(|x| x.as_str().unwrap_or("").contains("symlink"))),
        "{listed}"
    );

    // Edit in place, and save-by-rename (write a temp file, rename it over the original).
    std::fs::write(fa.join("reports/2026/q1.txt"), b"first quarter, revised").unwrap();
    std::fs::write(fa.join(".notes.md.tmp"), b"# notes\nsaved by rename\n").unwrap();
    std::fs::rename(fa.join(".notes.md.tmp"), fa.join("notes.md")).unwrap();
    wait_until("B has both edits", WAIT, || {
        std::fs::read(fb.join("notes.md")).ok().as_deref() == Some(b"# notes\nsaved by rename\n")
            && std::fs::read(fb.join("reports/2026/q1.txt"))
                .ok()
                .as_deref()
                == Some(b"first quarter, revised")
    });
    let h = t[1].run(&["history", "Docs", "notes.md", "--json"]).json();
    assert_eq!(h["versions"].as_array().map(Vec::len), Some(2), "{h}");
    let id_before = entry_id(&t[1], "Docs", "reports/2026/q1.txt");

    // Rename a file, move a folder, case-only rename: moves, same entries.
    std::fs::rename(fa.join("reports/2026"), fa.join("archive-2026")).unwrap();
    std::fs::rename(fa.join("notes.md"), fa.join("Notes.md")).unwrap();
    wait_until("B sees the moves", WAIT, || {
        fb.join("archive-2026/q1.txt").exists() && fb.join("Notes.md").exists()
    });
    assert_eq!(entry_id(&t[1], "Docs", "archive-2026/q1.txt"), id_before);
    let h = t[1].run(&["history", "Docs", "Notes.md", "--json"]).json();
    assert_eq!(h["versions"].as_array().map(Vec::len), Some(2), "{h}");

    // Delete a file and a folder; edits on B come back to A.
    std::fs::remove_file(fa.join("Notes.md")).unwrap();
    std::fs::remove_dir_all(fa.join("reports")).unwrap();
    std::fs::write(fb.join("from-b.txt"), b"hello from B").unwrap();
    wait_until("deletes reach B and B's file reaches A", WAIT, || {
        !fb.join("Notes.md").exists()
            && !fb.join("reports").exists()
            && fa.join("from-b.txt").exists()
    });
    p.same_on_both(&["notes.md.swp", "link.md"]);
}

fn entry_id(h: &TestHome, ws: &str, path: &str) -> String {
    let v = h.run(&["ls", ws, path, "--json"]).json();
    v["entries"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn concurrent_edits_give_one_file_and_one_conflict_copy_on_both() {
    let mut p = pair("Plans", "contributor");
    let (fa, fb) = p.folders();
    let t = &p.t;
    std::fs::write(fa.join("plan.txt"), b"v0").unwrap();
    wait_until("B has the plan", WAIT, || fb.join("plan.txt").exists());
    // B goes offline and edits; A edits meanwhile.
    let b = p.d.pop().unwrap_or_else(|| panic!("no daemon"));
    b.stop();
    std::fs::write(fa.join("plan.txt"), b"edited on A").unwrap();
    std::fs::write(fb.join("plan.txt"), b"edited on B").unwrap();
    wait_until("A uploaded its edit", WAIT, || {
        mirrors(&t[0])["mirrors"][0]["totals"]["uploaded"].as_u64() >= Some(2)
    });
    let t = &p.t;
    let _b = t[1].start(&[p.d[0].addr()]);
    let got = p.same_on_both(&[]);
    // (Wait for the copies to settle: two entries on both sides.)
    let got = if got.len() == 2 {
        got
    } else {
        let mut g = BTreeMap::new();
        wait_until("one file and one copy", WAIT, || {
            g = tree(&fa);
            g.len() == 2 && tree(&fb) == g
        });
        g
    };
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains_key("plan.txt"), "{got:?}");
    let copy = got.keys().find(|k| k.contains("conflict")).cloned();
    let copy = copy.unwrap_or_else(|| panic!("no conflict copy in {got:?}"));
    let mut contents: Vec<Vec<u8>> = [fa.join("plan.txt"), fa.join(&copy)]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    contents.sort();
    assert_eq!(
        contents,
        vec![b"edited on A".to_vec(), b"edited on B".to_vec()]
    );
}

/// Every name under `dir` with `.cloison-` in it (the mirror's temporary files, and any
/// similar name), as a sorted list of relative paths.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = cloison_tests::mirror::walk(dir)
        .into_iter()
        .map(|(p, _, _)| p)
        .filter(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|n| n.contains(".cloison-"))
        })
        .collect();
    out.sort();
    out
}

fn bytes_received(h: &TestHome) -> u64 {
    h.run(&["status", "--json"]).json()["bytes_received"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn a_one_byte_change_in_200_mib_moves_a_few_chunks() {
    const SIZE: usize = 200 << 20;
    let p = pair("Big", "contributor");
    let (fa, fb) = p.folders();
    let t = &p.t;
    let mut data = vec![0u8; SIZE];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut data);
    std::fs::write(fa.join("disk.img"), &data).unwrap();
    let landed = |data: &[u8]| {
        let want = *blake3::hash(data).as_bytes();
        let path = fb.join("disk.img");
        move || std::fs::read(&path).is_ok_and(|b| *blake3::hash(&b).as_bytes() == want)
    };
    wait_until(
        "B has the 200 MiB file",
        Duration::from_secs(300),
        landed(&data),
    );
    let before = bytes_received(&t[1]);
    // One byte in the middle, written in place.
    data[SIZE / 2] ^= 0xff;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::options()
            .write(true)
            .open(fa.join("disk.img"))
            .unwrap();
        f.seek(SeekFrom::Start((SIZE / 2) as u64)).unwrap();
        f.write_all(&[data[SIZE / 2]]).unwrap();
    }
    wait_until("B has the changed file", WAIT, landed(&data));
    let moved = bytes_received(&t[1]) - before;
    println!("1-byte change in 200 MiB: B received {moved} bytes");
    assert!(
        moved < 5 << 20,
        "B received {moved} bytes for a 1-byte change"
    );
}

#[test]
fn ten_thousand_files_created_at_once_all_arrive() {
    const FILES: usize = 10_000;
    let p = pair("Many", "contributor");
    let (fa, fb) = p.folders();
    let t = &p.t;
    let stage = t[0].path().join("stage");
    for i in 0..FILES {
        let d = stage.join(format!("d{:02}", i % 50));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i:05}.txt")), format!("file {i}\n")).unwrap();
    }
    // All at once: one rename into the mirrored folder.
    std::fs::rename(&stage, fa.join("many")).unwrap();
    wait_until("B has 10,000 files", Duration::from_secs(300), || {
        tree(&fb.join("many"))
            .values()
            .filter(|h| *h != "/")
            .count()
            == FILES
    });
    assert_eq!(tree(&fa), tree(&fb));
}

#[test]
fn a_daemon_killed_mid_sync_resumes_without_fetching_finished_files_again() {
    const FILES: usize = 40;
    const SIZE: usize = 4 << 20;
    let mut p = pair("Scans", "contributor");
    let (fa, fb) = p.folders();
    let t = &p.t;
    let stage = t[0].path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    for i in 0..FILES {
        let mut b = vec![0u8; SIZE];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut b);
        std::fs::write(stage.join(format!("scan-{i:02}.bin")), b).unwrap();
    }
    std::fs::rename(&stage, fa.join("scans")).unwrap();
    let count = || tree(&fb.join("scans")).len();
    wait_until("B has some of the files", Duration::from_secs(300), || {
        count() >= FILES / 4
    });
    // Kill B in the middle of a landing if one is seen (its temporary file exists), as a user's
    // `kill -9` or a power cut would.
    let seen = std::time::Instant::now();
    while leftovers(&fb).is_empty()
        && count() < FILES * 3 / 4
        && seen.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut b = p.d.pop().unwrap_or_else(|| panic!("no daemon"));
    b.kill();
    let done = tree(&fb.join("scans"));
    assert!(
        done.len() < FILES,
        "B finished before the kill: make the transfer larger"
    );
    let inodes: BTreeMap<String, u64> = done
        .keys()
        .map(|k| {
            let m = std::fs::metadata(fb.join("scans").join(k)).unwrap();
            (k.clone(), std::os::unix::fs::MetadataExt::ino(&m))
        })
        .collect();
    // What the kill left: the partial temporary file of the landing under way (if one was),
    // plus a stale one planted with the mirror's exact name pattern and a user's file whose
    // name is merely similar (it is the user's: it stays, and syncs).
    let left = leftovers(&fb);
    println!("temporary files after the kill: {left:?}");
    let planted = fb.join("scans/.scan-99.bin.cloison-0123456789ab");
    std::fs::write(&planted, b"half a landing").unwrap();
    let similar = "scans/.scan-00.bin.cloison-draft";
    std::fs::write(fb.join(similar), b"the user's notes").unwrap();
    let t = &p.t;
    let _b = t[1].start(&[p.d[0].addr()]);
    wait_until("B has every file", Duration::from_secs(300), || {
        tree(&fb.join("scans")) == tree(&fa.join("scans"))
    });
    // Nothing of the interrupted landings is left, and the similar name was neither removed
    // nor taken for a temporary file.
    assert_eq!(leftovers(&fb), vec![similar.to_owned()]);
    assert_eq!(
        std::fs::read(fb.join(similar)).unwrap(),
        b"the user's notes"
    );
    wait_until("A has the user's similar file", WAIT, || {
        std::fs::read(fa.join(similar)).is_ok_and(|b| b == b"the user's notes")
    });
    assert_eq!(leftovers(&fa), vec![similar.to_owned()]);
    // Files completed before the kill were neither fetched nor written again.
    for (k, ino) in &inodes {
        let m = std::fs::metadata(fb.join("scans").join(k)).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&m),
            *ino,
            "{k} was rewritten"
        );
    }
    let received = bytes_received(&t[1]);
    let remaining = ((FILES - done.len()) * SIZE) as u64;
    println!("after the restart B received {received} bytes for {remaining} bytes missing");
    assert!(
        received < remaining + (FILES * SIZE / 10) as u64,
        "B received {received} bytes after the restart, {remaining} were missing"
    );
}

#[test]
fn a_readers_mirror_downloads_and_uploads_nothing() {
    let p = pair("Policies", "reader");
    let (fa, fb) = p.folders();
    let t = &p.t;
    std::fs::write(fa.join("policy.txt"), b"rule 1").unwrap();
    wait_until("B has the policy", WAIT, || fb.join("policy.txt").exists());
    std::fs::write(fb.join("mine.txt"), b"local note").unwrap();
    wait_until("B reports the refused change", WAIT, || {
        let m = mirrors(&t[1]);
        m["mirrors"][0]["read_only"] == true
            && m["mirrors"][0]["totals"]["refused"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x == "mine.txt"))
    });
    assert!(!t[0].run(&["ls", "Policies", "mine.txt"]).ok);
    assert!(!fa.join("mine.txt").exists());
    // Registered mirrors come back after a restart; --stop ends one.
    let listed = mirrors(&t[1]);
    assert_eq!(
        listed["mirrors"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    t[1].run(&["sync", "--stop", "Policies"]).success();
    let listed = mirrors(&t[1]);
    assert_eq!(
        listed["mirrors"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
}

/// Kills the child process when dropped.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_foreground_mirror_runs_without_a_daemon_and_is_not_kept() {
    use std::io::BufRead;
    let t = team(&["ann", "ben"]);
    let a = t[0].start(&[]);
    let b = t[1].start(&[a.addr()]);
    wait_until("A is linked to B", WAIT, || connected(&t[0]) == 1);
    t[0].run(&["workspace", "create", "Loose"]).success();
    t[0].run(&[
        "workspace",
        "share",
        "Loose",
        "ben@clinique.example",
        "--role",
        "contributor",
    ])
    .success();
    wait_until("B holds the workspace", WAIT, || {
        t[1].run(&["ls", "Loose"]).ok
    });
    b.stop();
    let dirs = tempfile::tempdir().unwrap();
    let (fa, fb) = (dirs.path().join("a"), dirs.path().join("b"));
    t[0].run(&["sync", "Loose", fa.to_str().unwrap()]).success();
    let mut child = std::process::Command::new(cloison_tests::bin("cloison"))
        .args([
            "sync",
            "Loose",
            fb.to_str().unwrap(),
            "--foreground",
            "--no-mdns",
        ])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--peer", a.addr()])
        .env("CLOISON_HOME", t[1].path())
        .env("CLOISON_PASSPHRASE", cloison_tests::PASSPHRASE)
        .env("CLOISON_MDNS", "0")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let fg = Reap(child);
    let ready = std::io::BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|l| l == "ready");
    assert!(ready, "the foreground mirror did not start");
    std::fs::create_dir_all(&fa).unwrap();
    std::fs::write(fa.join("x.txt"), b"to the foreground mirror").unwrap();
    wait_until("B's foreground mirror has the file", WAIT, || {
        std::fs::read(fb.join("x.txt")).ok().as_deref() == Some(b"to the foreground mirror")
    });
    std::fs::write(fb.join("y.txt"), b"back to A").unwrap();
    wait_until("A has B's file", WAIT, || fa.join("y.txt").exists());
    // While it runs it is listed; it is not registered.
    let listed = mirrors(&t[1]);
    assert_eq!(listed["mirrors"][0]["running"], true, "{listed}");
    drop(fg);
    let listed = mirrors(&t[1]);
    assert_eq!(
        listed["mirrors"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
}
