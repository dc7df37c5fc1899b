//! Rounds of a mirror on one real node (real store, real files): uploads, save-by-rename,
//! moves, remote changes landing on disk, deletes, the last-synced state surviving a reopen, and
//! a landing on a full disk (a small tmpfs, where mounting is allowed).

use std::fs;

use crate::keystore::KdfParams;
use crate::node::{InitParams, Node};

fn node(dir: &std::path::Path) -> Node {
    Node::init(
        &dir.join("home"),
        b"pass",
        KdfParams::TEST_ONLY,
        &InitParams {
            org_name: "O",
            user_name: "Ann",
            email: "ann@x.example",
            device_label: "a",
        },
    )
    .unwrap()
}

fn round(n: &mut Node, m: &mut super::Mirror) -> super::RoundReport {
    let r = n.mirror_round(m, &mut |_| {}).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    r
}

#[test]
fn rounds_carry_changes_both_ways() {
    let t = tempfile::tempdir().unwrap();
    let mut n = node(t.path());
    let w = n.create_workspace("W").unwrap();
    let w = n.find_workspace(&w.name).unwrap();
    let dir = t.path().join("folder");
    fs::create_dir_all(dir.join("docs/empty")).unwrap();
    fs::write(dir.join("docs/a.txt"), b"one").unwrap();
    fs::write(dir.join("b.bin"), vec![7u8; 300_000]).unwrap();
    fs::write(dir.join("c.swp"), b"editor temp").unwrap();
    let mut m = n.open_mirror(w, &dir).unwrap();
    let r = round(&mut n, &mut m);
    assert_eq!((r.uploaded, r.folders), (2, 2), "{r:?}");
    assert!(n.ls(w, "docs/empty").unwrap().is_empty());
    assert!(n.ls(w, "c.swp").is_err(), "ignored file uploaded");
    // Nothing more to do.
    let r = round(&mut n, &mut m);
    assert!(!r.changed(), "{r:?}");

    // Save-by-rename: a temp file renamed over the original keeps identity and history.
    let id = n.ls(w, "docs/a.txt").unwrap()[0].id.clone();
    fs::write(dir.join("docs/.a.txt.tmp"), b"two!").unwrap();
    fs::rename(dir.join("docs/.a.txt.tmp"), dir.join("docs/a.txt")).unwrap();
    round(&mut n, &mut m);
    assert_eq!(n.ls(w, "docs/a.txt").unwrap()[0].id, id);
    assert_eq!(n.history(w, "docs/a.txt").unwrap().len(), 2);

    // A folder move is a move (same id) and a case-only rename too.
    fs::rename(dir.join("docs"), dir.join("papers")).unwrap();
    fs::rename(dir.join("b.bin"), dir.join("B.bin")).unwrap();
    let r = round(&mut n, &mut m);
    assert_eq!(r.moved, 2, "{r:?}");
    assert_eq!(r.uploaded, 0, "{r:?}");
    assert_eq!(n.ls(w, "papers/a.txt").unwrap()[0].id, id);
    assert!(n.ls(w, "B.bin").is_ok() && n.ls(w, "b.bin").is_err());

    // Remote changes land on disk: a new file, a move, a delete.
    let src = t.path().join("new.txt");
    fs::write(&src, b"from elsewhere").unwrap();
    n.put(w, &src, "papers/new.txt", &mut |_| {}, &mut |_| {})
        .unwrap();
    n.mv(w, "papers/a.txt", "a-moved.txt").unwrap();
    n.rm(w, "B.bin").unwrap();
    let r = round(&mut n, &mut m);
    assert_eq!((r.downloaded, r.moved, r.deleted), (1, 1, 1), "{r:?}");
    assert_eq!(
        fs::read(dir.join("papers/new.txt")).unwrap(),
        b"from elsewhere"
    );
    assert_eq!(fs::read(dir.join("a-moved.txt")).unwrap(), b"two!");
    assert!(!dir.join("B.bin").exists());

    // The last-synced state survives a reopen: nothing to do.
    let mut m2 = n.open_mirror(w, &dir).unwrap();
    assert_eq!(m2.base, m.base);
    let r = round(&mut n, &mut m2);
    assert!(!r.changed(), "{r:?}");
    // Local delete of a folder with content.
    fs::remove_dir_all(dir.join("papers")).unwrap();
    let r = round(&mut n, &mut m2);
    assert!(r.deleted >= 1, "{r:?}");
    assert!(n.ls(w, "papers").is_err());
}

#[test]
fn a_local_edit_and_a_remote_edit_keep_both() {
    let t = tempfile::tempdir().unwrap();
    let mut n = node(t.path());
    let w = n.create_workspace("W").unwrap();
    let w = n.find_workspace(&w.name).unwrap();
    let dir = t.path().join("folder");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f.txt"), b"base").unwrap();
    let mut m = n.open_mirror(w, &dir).unwrap();
    round(&mut n, &mut m);
    fs::write(dir.join("f.txt"), b"local edit").unwrap();
    let src = t.path().join("f.txt");
    fs::write(&src, b"remote edit").unwrap();
    n.put(w, &src, "f.txt", &mut |_| {}, &mut |_| {}).unwrap();
    let r = round(&mut n, &mut m);
    assert_eq!(r.conflicts, 1, "{r:?}");
    round(&mut n, &mut m);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(fs::read(dir.join("f.txt")).unwrap(), b"remote edit");
    let copy = names.iter().find(|n| n.contains("conflict")).unwrap();
    assert_eq!(fs::read(dir.join(copy)).unwrap(), b"local edit");
    assert!(n.ls(w, copy).is_ok(), "conflict copy not uploaded");
}

#[test]
fn registration_refuses_relative_overlapping_and_home_directories() {
    let t = tempfile::tempdir().unwrap();
    let mut n = node(t.path());
    let w1 = n.create_workspace("One").unwrap();
    let w1 = n.find_workspace(&w1.name).unwrap();
    let w2 = n.create_workspace("Two").unwrap();
    let w2 = n.find_workspace(&w2.name).unwrap();
    assert!(n.register_mirror(w1, std::path::Path::new("rel")).is_err());
    assert!(
        n.register_mirror(w1, &t.path().join("home/inside"))
            .is_err()
    );
    let one = n.register_mirror(w1, &t.path().join("one")).unwrap();
    assert!(n.register_mirror(w2, &one.join("nested")).is_err());
    assert!(
        n.register_mirror(w2, t.path()).is_err(),
        "a folder around a mirror"
    );
    n.register_mirror(w2, &t.path().join("two")).unwrap();
    assert_eq!(n.mirrors().unwrap().len(), 2);
    n.unregister_mirror(w1).unwrap();
    assert_eq!(n.mirrors().unwrap().len(), 1);
    assert!(n.unregister_mirror(w1).is_err());
}

/// A small tmpfs mounted over a directory (unmounted when dropped): a real full disk.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts `size` (as `mount -o size=` takes it) over `dir`; `None` where mounting is not
    /// allowed (not root, or no mount in this sandbox).
    fn mount(dir: &std::path::Path, size: &str) -> Option<SmallDisk> {
        fs::create_dir_all(dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_owned()))
    }

    fn grow(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount of {} failed", self.0.display());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_landing_on_a_full_disk_fails_clearly_leaves_nothing_and_lands_later() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("folder");
    let Some(disk) = SmallDisk::mount(&dir, "1m") else {
        eprintln!("skipped: mounting a small tmpfs needs root (a real ENOSPC)");
        return;
    };
    let mut n = node(t.path());
    let w = n.create_workspace("W").unwrap();
    let w = n.find_workspace(&w.name).unwrap();
    let mut m = n.open_mirror(w, &dir).unwrap();
    round(&mut n, &mut m);
    // A file larger than the disk (streamed) and a small one (landed in a batch).
    let big: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let small = vec![5u8; 100_000];
    for (name, bytes) in [("big.bin", &big), ("small.bin", &small)] {
        let src = t.path().join(name);
        fs::write(&src, bytes).unwrap();
        n.put(w, &src, name, &mut |_| {}, &mut |_| {}).unwrap();
    }
    let r = n.mirror_round(&mut m, &mut |_| {}).unwrap();
    assert_eq!(r.downloaded, 1, "{r:?}");
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(
        r.errors[0].contains("big.bin") && r.errors[0].contains("No space left on device"),
        "{r:?}"
    );
    // Nothing partial stays (no temporary file eats the space), and the last-synced state,
    // in memory and in the store, does not claim the file.
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["small.bin"]);
    assert!(!m.base.contains_key("big.bin"));
    assert!(!n.open_mirror(w, &dir).unwrap().base.contains_key("big.bin"));
    // Room made: the next round lands it.
    disk.grow("16m");
    let r = round(&mut n, &mut m);
    assert_eq!(r.downloaded, 1, "{r:?}");
    assert_eq!(fs::read(dir.join("big.bin")).unwrap(), big);
    assert_eq!(fs::read(dir.join("small.bin")).unwrap(), small);
    let r = round(&mut n, &mut m);
    assert!(!r.changed(), "{r:?}");
}
