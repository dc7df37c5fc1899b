//! Local writes of a mirror: atomic file replacement that never clobbers a change made meanwhile,
//! guarded deletes and moves, and conflict-copy names.
//!
//! Invariants: a downloaded file is written to a temporary file in its destination's directory,
//! fsynced, given its mtime, and renamed over the destination only if the destination is still
//! exactly what was last synced (or still absent); otherwise the download lands beside it as a
//! conflict copy and the local file stays; a landing that fails at any step removes its
//! temporary file. A delete removes a file only if it is still what was last synced, and a
//! folder only if it is empty. A move never replaces an existing entry.
//! Nothing is ever read, written, moved or deleted through a symbolic link: every local path is
//! resolved by [`resolve`], which refuses one whose folders below the root hold a link (or a
//! file) and creates missing folders one at a time, never following one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::plan::{BaseEntry, EntryKind};
use super::scan::matches_base;

/// `rel` (a `/`-separated path of the workspace) under the mirror's `root`. Refused when one of
/// its folders below the root exists and is not a real folder: a symbolic link there would make
/// a write land outside the mirror (the link's target is the local user's choice, the path is
/// any contributor's). With `create`, missing folders are made, one at a time. The last
/// component may be anything: a rename replaces a link rather than follow it, and a deletion
/// removes the link itself.
pub fn resolve(root: &Path, rel: &str, create: bool) -> std::io::Result<PathBuf> {
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != ".." && !c.contains('\0'))
        .collect();
    let mut p = root.to_owned();
    let Some((_, folders)) = parts.split_last() else {
        return Ok(p);
    };
    for c in folders {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                let what = if m.file_type().is_symlink() {
                    "a symbolic link"
                } else {
                    "not a folder"
                };
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{} is {what}: nothing is written through it", p.display()),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                match fs::create_dir(&p) {
                    Ok(()) => {}
                    // Made meanwhile (another lander): checked again by the next component.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        if !fs::symlink_metadata(&p)?.is_dir() {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::InvalidInput,
                                format!("{} is not a folder", p.display()),
                            ));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            // Nothing below exists: the path is absent, there is no link to follow.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        }
    }
    Ok(parts.iter().fold(root.to_owned(), |p, c| p.join(c)))
}

/// Where a download landed.
#[derive(Debug, PartialEq, Eq)]
pub enum Landed {
    /// At its path.
    InPlace,
    /// Beside it, as this conflict copy (the local file changed meanwhile).
    Beside(PathBuf),
}

/// `stem (conflict <who> <yyyy-mm-dd>).ext`, then ` 2`, ` 3`… until the name is free.
pub fn conflict_path(path: &Path, who: &str, now_ms: u64) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name.as_str(), ""),
    };
    let date = ymd(now_ms);
    let dir = path.parent().unwrap_or(Path::new("."));
    for n in 1..1000u32 {
        let tag = if n == 1 {
            format!("{stem} (conflict {who} {date}){ext}")
        } else {
            format!("{stem} (conflict {who} {date} {n}){ext}")
        };
        let p = dir.join(tag);
        if fs::symlink_metadata(&p).is_err() {
            return p;
        }
    }
    dir.join(format!("{stem} (conflict {who} {date} {now_ms}){ext}"))
}

/// A unix-ms time as a UTC `yyyy-mm-dd` (civil-from-days).
fn ymd(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Whether `path` is still what `expect` says (absent for `None`).
pub fn still(path: &Path, expect: Option<&BaseEntry>) -> bool {
    match (fs::symlink_metadata(path), expect) {
        (Err(e), None) => e.kind() == std::io::ErrorKind::NotFound,
        (Ok(meta), Some(b)) => matches_base(&meta, b),
        _ => false,
    }
}

/// What a landed file carries besides its bytes: the version's modification time and
/// permission bits (masked by `scan::landing_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Unix milliseconds.
    pub mtime_ms: i64,
    /// Permission bits, if the version has them.
    pub mode: Option<u32>,
}

/// Writes `chunks` to `target` atomically (see the module invariants), if they hash to `hash`.
/// `who` names a conflict copy. `target` comes from [`resolve`] (its folders exist).
pub fn land(
    target: &Path,
    chunks: &mut dyn Iterator<Item = std::io::Result<Vec<u8>>>,
    hash: &[u8; 32],
    stamp: Stamp,
    expect: Option<&BaseEntry>,
    who: &str,
    now_ms: u64,
) -> std::io::Result<Landed> {
    let (tmp, mut f) = super::temps::temp_beside(target)?;
    let written = (|| {
        let mut hasher = blake3::Hasher::new();
        for c in chunks {
            let c = c?;
            hasher.update(&c);
            f.write_all(&c)?;
        }
        if hasher.finalize().as_bytes() != hash {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "content does not match its hash",
            ));
        }
        super::scan::apply_mode(&f, stamp.mode)?;
        f.sync_all()?;
        let mtime =
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(stamp.mtime_ms.max(0) as u64);
        f.set_modified(mtime)?;
        Ok::<_, std::io::Error>(())
    })();
    drop(f);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The last check before the rename: a local change that arrived meanwhile is kept.
    let landed = if still(target, expect) {
        fs::rename(&tmp, target).map(|()| Landed::InPlace)
    } else {
        let beside = conflict_path(target, who, now_ms);
        fs::rename(&tmp, &beside).map(|()| {
            tracing::info!(path = %target.display(), copy = %beside.display(), "changed locally while a newer version arrived: kept both");
            Landed::Beside(beside)
        })
    };
    if landed.is_err() {
        // The landing is retried by a later round: the temporary file must not stay meanwhile.
        let _ = fs::remove_file(&tmp);
    }
    landed
}

/// Deletes `path` if it is still `expect` (a folder: if empty). Returns whether it is gone.
pub fn delete_if_still(path: &Path, expect: &BaseEntry) -> bool {
    match expect.kind {
        EntryKind::Folder => match fs::remove_dir(path) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        },
        EntryKind::File => {
            if !still(path, Some(expect)) {
                return !path.exists();
            }
            fs::remove_file(path).is_ok()
        }
    }
}

/// Renames `from` to `to` unless `to` exists (both from [`resolve`], `to`'s folders made).
pub fn move_no_clobber(from: &Path, to: &Path) -> std::io::Result<bool> {
    // A case-only rename on a case-insensitive file system sees `to` as existing: allow it when
    // it is the same file.
    if let (Ok(a), Ok(b)) = (fs::symlink_metadata(from), fs::symlink_metadata(to))
        && (super::scan::inode(&a) != super::scan::inode(&b) || super::scan::inode(&a) == 0)
    {
        return Ok(false);
    }
    fs::rename(from, to)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp {
        mtime_ms: 1000,
        mode: None,
    };

    #[cfg(unix)]
    #[test]
    fn a_landed_file_gets_the_recorded_mode_without_special_bits() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let h = *blake3::hash(b"#!/bin/sh").as_bytes();
        for (recorded, expected) in [
            (0o755, 0o755),
            (0o4755, 0o755),
            (0o000, 0o600),
            (0o640, 0o640),
        ] {
            let p = dir.path().join(format!("run-{recorded:o}.sh"));
            let mut it = vec![Ok(b"#!/bin/sh".to_vec())].into_iter();
            let stamp = Stamp {
                mtime_ms: 1000,
                mode: Some(recorded),
            };
            assert_eq!(
                land(&p, &mut it, &h, stamp, None, "x", 0).unwrap(),
                Landed::InPlace
            );
            let meta = fs::metadata(&p).unwrap();
            assert_eq!(
                meta.permissions().mode() & 0o7777,
                expected,
                "recorded {recorded:o}"
            );
            assert_eq!(super::super::scan::mode_bits(&meta), Some(expected));
        }
    }

    #[cfg(unix)]
    #[test]
    fn nothing_is_resolved_through_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let (root, elsewhere) = (dir.path().join("m"), dir.path().join("elsewhere"));
        fs::create_dir_all(root.join("real")).unwrap();
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("x")).unwrap();
        fs::write(root.join("file"), b"f").unwrap();
        for rel in ["x/a.txt", "x/deep/a.txt", "file/a.txt"] {
            for create in [false, true] {
                let e = resolve(&root, rel, create).unwrap_err();
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{rel}");
            }
        }
        assert_eq!(
            fs::read_dir(&elsewhere).unwrap().count(),
            0,
            "wrote through the link"
        );
        // Real folders pass, missing ones are made only when asked, `..` never climbs out.
        assert_eq!(
            resolve(&root, "real/a", false).unwrap(),
            root.join("real/a")
        );
        assert_eq!(
            resolve(&root, "new/sub/a", false).unwrap(),
            root.join("new/sub/a")
        );
        assert!(!root.join("new").exists());
        assert_eq!(
            resolve(&root, "new/sub/a", true).unwrap(),
            root.join("new/sub/a")
        );
        assert!(root.join("new/sub").is_dir());
        assert_eq!(
            resolve(&root, "../../etc/x", true).unwrap(),
            root.join("etc/x")
        );
        // The link itself (the last component) resolves: a rename replaces it, never follows.
        assert_eq!(resolve(&root, "x", true).unwrap(), root.join("x"));
    }

    #[test]
    fn dates_and_names() {
        assert_eq!(ymd(0), "1970-01-01");
        assert_eq!(ymd(1_795_824_000_000), "2026-11-28");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("report.final.pdf");
        let c = conflict_path(&p, "bob laptop", 0);
        assert_eq!(
            c.file_name().unwrap().to_str().unwrap(),
            "report.final (conflict bob laptop 1970-01-01).pdf"
        );
        fs::write(&c, b"x").unwrap();
        let c2 = conflict_path(&p, "bob laptop", 0);
        assert!(c2.to_str().unwrap().ends_with("1970-01-01 2).pdf"));
    }

    #[test]
    fn a_failed_final_rename_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder with content where the file goes, taken as what was last synced: the check
        // passes, and the rename over it fails (a file cannot replace a folder).
        let p = dir.path().join("x");
        fs::create_dir_all(p.join("inside")).unwrap();
        let folder = BaseEntry {
            id: [1; 16],
            kind: EntryKind::Folder,
            hash: [0; 32],
            size: 0,
            mtime_ns: 0,
            inode: 0,
        };
        let h = *blake3::hash(b"v1").as_bytes();
        let mut it = vec![Ok(b"v1".to_vec())].into_iter();
        assert!(land(&p, &mut it, &h, STAMP, Some(&folder), "x", 0).is_err());
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["x"]);
    }

    #[test]
    fn land_keeps_a_local_change_made_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        // Absent expected, absent found: lands in place.
        let h1 = *blake3::hash(b"v1").as_bytes();
        let h2 = *blake3::hash(b"v2").as_bytes();
        let mut it = vec![Ok(b"v2".to_vec())].into_iter();
        assert!(
            land(&p, &mut it, &h1, STAMP, None, "x", 0).is_err(),
            "wrong hash lands"
        );
        let mut it = vec![Ok(b"v1".to_vec())].into_iter();
        assert_eq!(
            land(&p, &mut it, &h1, STAMP, None, "x", 0).unwrap(),
            Landed::InPlace
        );
        assert_eq!(fs::read(&p).unwrap(), b"v1");
        // Absent expected but a local file appeared: both kept.
        let mut it = vec![Ok(b"v2".to_vec())].into_iter();
        let got = land(&p, &mut it, &h2, STAMP, None, "x", 0).unwrap();
        let Landed::Beside(copy) = got else {
            panic!("clobbered")
        };
        assert_eq!(fs::read(&p).unwrap(), b"v1");
        assert_eq!(fs::read(copy).unwrap(), b"v2");
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".cloison-")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
