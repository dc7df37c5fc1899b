//! Temporary files of landings (a mirror's downloads and `cloison get`): their one name pattern,
//! creating one beside its target, and removing those an interrupted landing left behind.
//!
//! A temporary file of `name` is `.{name}.cloison-{12 lowercase hex digits}`, created new (never
//! opened if it exists) in the target's directory so the final rename is atomic. The pattern is
//! exact on purpose: [`is_temp_name`] decides what [`remove_stale`] deletes, so a user's file of
//! a merely similar name (`.notes.cloison-draft`, upper-case or shorter digits) is never taken
//! for one. The scanner ignores such names whatever the ignore rules say (`scan::Ignores`), so a
//! temporary file is never uploaded, and a workspace entry of such a name never lands.
//!
//! Invariants: [`remove_stale`] removes regular files of that exact pattern only; it never
//! follows a symbolic link (neither a linked folder nor a linked file), and it reports what it
//! could not read or remove instead of failing.

use std::fs;
use std::path::{Path, PathBuf};

/// What sits between the target's name and the random digits.
const TAG: &str = ".cloison-";
/// Random bytes in a name (twice as many hex digits).
const RANDOM_BYTES: usize = 6;

/// The temporary name for a target named `name`, with `random` as its distinguishing part.
pub fn temp_name(name: &str, random: &[u8; RANDOM_BYTES]) -> String {
    format!(".{name}{TAG}{}", hex::encode(random))
}

/// Whether `name` is exactly a temporary name as [`temp_name`] makes them.
pub fn is_temp_name(name: &str) -> bool {
    let Some((target, digits)) = name
        .strip_prefix('.')
        .and_then(|rest| rest.rsplit_once(TAG))
    else {
        return false;
    };
    !target.is_empty()
        && digits.len() == 2 * RANDOM_BYTES
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new temporary file beside `target` (in its directory).
pub fn temp_beside(target: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for _ in 0..16 {
        let mut r = [0u8; RANDOM_BYTES];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut r);
        let path = dir.join(temp_name(&name, &r));
        match fs::File::options().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("no free temporary name in {}", dir.display()),
    ))
}

/// What [`remove_stale`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Temporary files removed.
    pub removed: Vec<PathBuf>,
    /// What could not be read or removed, with why.
    pub problems: Vec<String>,
}

/// Removes the temporary files under `root` (see the module invariants). Run when a mirror
/// starts, before its first round: no landing of it is under way then.
pub fn remove_stale(root: &Path) -> Swept {
    let mut out = Swept::default();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) => {
                out.problems.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        for e in entries {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    out.problems.push(format!("{}: {err}", dir.display()));
                    continue;
                }
            };
            // The entry's own type: a symbolic link is neither a folder nor a file here.
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && e.file_name().to_str().is_some_and(is_temp_name) {
                let p = e.path();
                match fs::remove_file(&p) {
                    Ok(()) => out.removed.push(p),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => out.problems.push(format!("{}: {err}", p.display())),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _f) = temp_beside(&dir.path().join("report.pdf")).unwrap();
        let made = p.file_name().unwrap().to_str().unwrap();
        assert!(made.starts_with(".report.pdf.cloison-"), "{made}");
        assert!(is_temp_name(made));
        assert!(is_temp_name(".a.cloison-0123456789ab"));
        assert!(is_temp_name("..bashrc.cloison-0123456789ab"));
        assert!(is_temp_name(".x.cloison-y.cloison-0123456789ab"));
        for similar in [
            ".notes.cloison-draft",
            ".a.cloison-0a1b2c",
            ".a.cloison-0123456789abc",
            ".a.cloison-0123456789AB",
            ".a.cloison-0123456789ag",
            "a.cloison-0123456789ab",
            "..cloison-0123456789ab",
            ".cloison-0123456789ab",
            ".a.cloison-0123456789ab.txt",
            ".a.cloison-0123456789ab ",
        ] {
            assert!(
                !is_temp_name(similar),
                "{similar} taken for a temporary file"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn stale_temporaries_go_and_similar_names_links_and_folders_stay() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("m"), dir.path().join("outside"));
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::create_dir(&outside).unwrap();
        let (t1, _) = temp_beside(&root.join("big.bin")).unwrap();
        let (t2, mut f2) = temp_beside(&root.join("sub/deeper/x.txt")).unwrap();
        std::io::Write::write_all(&mut f2, b"half a landing").unwrap();
        drop(f2);
        let kept = [
            "big.bin",
            ".notes.cloison-draft",
            ".big.bin.cloison-0a1b2c",
            ".big.bin.cloison-0123456789AB",
            "sub/.x.cloison-0123456789abc",
        ];
        for k in kept {
            fs::write(root.join(k), b"user data").unwrap();
        }
        // A folder of a temporary's name, and links of that name: none is removed or followed.
        fs::create_dir(root.join(".d.cloison-0123456789ab")).unwrap();
        let target = outside.join(".o.cloison-0123456789ab");
        fs::write(&target, b"outside").unwrap();
        std::os::unix::fs::symlink(&target, root.join(".l.cloison-0123456789ab")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("sub/linked")).unwrap();

        let swept = remove_stale(&root);
        let mut removed = swept.removed.clone();
        removed.sort();
        let mut want = vec![t1, t2];
        want.sort();
        assert_eq!(removed, want);
        assert!(swept.problems.is_empty(), "{:?}", swept.problems);
        for k in kept {
            assert_eq!(fs::read(root.join(k)).unwrap(), b"user data", "{k}");
        }
        assert!(root.join(".d.cloison-0123456789ab").is_dir());
        assert!(
            fs::symlink_metadata(root.join(".l.cloison-0123456789ab")).is_ok(),
            "the link was removed"
        );
        assert_eq!(fs::read(&target).unwrap(), b"outside");
        // Nothing left to do the second time.
        assert_eq!(remove_stale(&root), Swept::default());
    }
}
