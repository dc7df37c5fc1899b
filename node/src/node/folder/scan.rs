//! The local side of a mirror: a scan of the directory (kind, size, mtime, inode, content hash)
//! and the ignore rules (`.cloisonignore` in gitignore syntax, plus editors' temporary files).
//!
//! The root's `.cloisonignore` belongs to this device alone: it is never uploaded and a remote
//! file of that name never lands (whatever its rules say), so no other member can change what
//! this device keeps local (Syncthing never syncs `.stignore`, for the same reason). Rules are
//! shared deliberately with an `#include PATH` line naming a file of the mirror, which syncs like
//! any file and so can be changed by any contributor.
//!
//! Invariants: a file's hash is reused from the last-synced state only when size, mtime and
//! inode are all unchanged; a file that changes while it is hashed is re-read (a few times), and
//! one that keeps changing is reported as unsettled and left out of the round's decisions (its
//! last-synced state stands for it, so it is never taken for deleted). Symlinks and special files
//! are skipped with a notice; names the workspace refuses are skipped too. Nothing here writes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::plan::{BaseEntry, EntryKind, LocalEntry};

/// The ignore file at a mirror's root.
pub const IGNORE_FILE: &str = ".cloisonignore";

/// Ignored by default: temporary files of common editors and office suites, and OS litter. The
/// mirror's own temporary files are always ignored, by their exact name (`temps::is_temp_name`),
/// so that a user's file of a similar name still syncs.
pub const DEFAULT_IGNORES: &[&str] = &[
    "*.swp",
    "*.swo",
    "*.swx",
    "4913",
    "*~",
    ".#*",
    "#*#",
    "~$*",
    ".~lock.*",
    ".DS_Store",
    "._*",
    "Thumbs.db",
    "desktop.ini",
    ".goutputstream-*",
    "*.crdownload",
    "*.part",
];

/// How many times a file that changes while read is re-read.
pub const REREADS: usize = 3;

/// The ignore rules of one mirror.
pub struct Ignores {
    root: PathBuf,
    rules: Gitignore,
    /// What was wrong with the rules (an unreadable file, a bad rule, an `#include` outside the
    /// folder), for the caller to report. A missing `.cloisonignore` is not a problem: the file
    /// is optional.
    pub problems: Vec<String>,
}

impl Ignores {
    /// The default rules plus the root's `.cloisonignore` and the files it includes (read again
    /// on every call). Nothing is logged here: [`Ignores::problems`] says what was wrong, and
    /// the daemon logs it rate-limited (it is read again on every round).
    pub fn load(root: &Path) -> Ignores {
        let mut b = GitignoreBuilder::new(root);
        let mut problems = Vec::new();
        for p in DEFAULT_IGNORES {
            if let Err(e) = b.add_line(None, p) {
                problems.push(format!("default ignore {p:?}: {e}"));
            }
        }
        let own = root.join(IGNORE_FILE);
        for line in rule_lines(&own, &mut problems) {
            match line.strip_prefix("#include ") {
                Some(rel) => add_included(&mut b, root, rel.trim(), &mut problems),
                None => add_rule(&mut b, &own, &line, &mut problems),
            }
        }
        let rules = b.build().unwrap_or_else(|e| {
            problems.push(format!("ignore rules of {}: {e}", root.display()));
            Gitignore::empty()
        });
        Ignores {
            root: root.to_owned(),
            rules,
            problems,
        }
    }

    /// Whether a root-relative `/`-separated path is ignored (or inside an ignored folder).
    /// The root's own `.cloisonignore` and the mirror's own temporary files
    /// ([`super::temps::is_temp_name`], and anything under such a name) always are, whatever
    /// the rules say.
    pub fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        if rel.is_empty() {
            return false;
        }
        if rel == IGNORE_FILE || rel.split('/').any(super::temps::is_temp_name) {
            return true;
        }
        self.rules
            .matched_path_or_any_parents(Path::new(rel), is_dir)
            .is_ignore()
    }

    /// The mirror's root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Largest ignore file read (bigger ones are skipped with a warning).
pub const MAX_IGNORE_FILE: u64 = 1 << 20;

/// The lines of an ignore file: none if it is missing (not a problem: the file is optional),
/// not a regular file (a symlink is not followed) or over [`MAX_IGNORE_FILE`] (those two are
/// problems).
fn rule_lines(path: &Path, problems: &mut Vec<String>) -> Vec<String> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(format!("ignore file {}: {e}", path.display()));
            return Vec::new();
        }
    };
    if !meta.is_file() || meta.len() > MAX_IGNORE_FILE {
        problems.push(format!(
            "ignore file {} skipped: not a regular file of at most 1 MiB",
            path.display()
        ));
        return Vec::new();
    }
    match fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b)
            .lines()
            .map(str::to_owned)
            .collect(),
        Err(e) => {
            problems.push(format!("ignore file {}: {e}", path.display()));
            Vec::new()
        }
    }
}

fn add_rule(b: &mut GitignoreBuilder, from: &Path, line: &str, problems: &mut Vec<String>) {
    if let Err(e) = b.add_line(Some(from.to_owned()), line) {
        problems.push(format!("ignore rule {line:?} in {}: {e}", from.display()));
    }
}

/// The rules of a file of the mirror named by an `#include` line (root-relative; no `..`, no
/// absolute path; its own `#include` lines are not followed).
fn add_included(b: &mut GitignoreBuilder, root: &Path, rel: &str, problems: &mut Vec<String>) {
    let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() || rel.starts_with('/') || parts.iter().any(|c| *c == ".." || *c == ".") {
        problems.push(format!(
            "{IGNORE_FILE}: #include {rel:?} skipped: a path inside the folder is needed"
        ));
        return;
    }
    let path = parts.iter().fold(root.to_owned(), |p, c| p.join(c));
    for line in rule_lines(&path, problems) {
        if !line.starts_with("#include ") {
            add_rule(b, &path, &line, problems);
        }
    }
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Entries by root-relative path.
    pub entries: BTreeMap<String, LocalEntry>,
    /// Files that kept changing while read: their last-synced state stands for them.
    pub unsettled: Vec<String>,
    /// Entries skipped (symlinks, special files, names not allowed), with why.
    pub skipped: Vec<String>,
    /// Bytes hashed.
    pub hashed_bytes: u64,
}

/// Unix ns of a modification time (0 if unknown or before 1970).
pub fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A file's permission bits (`0o7777` at most), as a manifest records them.
pub fn mode_bits(meta: &fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        Some(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The permissions a file written from the workspace gets from a recorded `mode`: never setuid,
/// setgid or sticky (those bits come from another device and are not trusted), and always
/// readable and writable by its owner (so this device can read it back and replace it).
pub fn landing_mode(mode: u32) -> u32 {
    (mode & 0o777) | 0o600
}

/// Sets the permissions of an open file from a recorded mode (no-op without one, or off Unix).
pub fn apply_mode(f: &fs::File, mode: Option<u32>) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(m) = mode {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(landing_mode(m)))?;
    }
    #[cfg(not(unix))]
    let _ = (f, mode);
    Ok(())
}

/// The inode (file id) of a file.
pub fn inode(meta: &fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        std::os::unix::fs::MetadataExt::ino(meta)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0
    }
}

/// Whether a file's metadata still matches a last-synced state.
pub fn matches_base(meta: &fs::Metadata, b: &BaseEntry) -> bool {
    let kind = if meta.is_dir() {
        EntryKind::Folder
    } else {
        EntryKind::File
    };
    kind == b.kind
        && (kind == EntryKind::Folder
            || (meta.len() == b.size && mtime_ns(meta) == b.mtime_ns && inode(meta) == b.inode))
}

/// A reader that counts what passes through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Hashes a file, re-reading it while it changes under us. `None` if it kept changing.
pub fn hash_file(path: &Path) -> std::io::Result<Option<(LocalEntry, u64)>> {
    for _ in 0..REREADS {
        let mut f = fs::File::open(path)?;
        let before = f.metadata()?;
        let mut hasher = blake3::Hasher::new();
        let mut counted = Counting {
            inner: &mut f,
            count: 0,
        };
        hasher.update_reader(&mut counted)?;
        let read = counted.count;
        let after = fs::symlink_metadata(path)?;
        if after.len() == read
            && mtime_ns(&after) == mtime_ns(&before)
            && inode(&after) == inode(&before)
        {
            let e = LocalEntry {
                kind: EntryKind::File,
                size: read,
                mtime_ns: mtime_ns(&after),
                inode: inode(&after),
                hash: *hasher.finalize().as_bytes(),
            };
            return Ok(Some((e, read)));
        }
        tracing::debug!(path = %path.display(), "changed while read; reading again");
    }
    Ok(None)
}

/// Scans `ignores.root()`. Hashes are reused from `base` when size, mtime and inode match.
pub fn scan(ignores: &Ignores, base: &BTreeMap<String, BaseEntry>) -> std::io::Result<Scan> {
    let mut out = Scan::default();
    let root = ignores.root().to_owned();
    let mut stack: Vec<(PathBuf, String)> = vec![(root, String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if rel.is_empty() => return Err(e),
            Err(e) => {
                // Gone or unreadable meanwhile: keep its last-synced state for this round.
                tracing::debug!(dir = %dir.display(), "cannot list: {e}");
                out.unsettled.push(rel);
                continue;
            }
        };
        for e in rd {
            let Ok(e) = e else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = meta.file_type();
            if ignores.ignored(&child, ft.is_dir()) {
                continue;
            }
            if cloison_crdt::check_name(&name).is_err() || e.file_name().to_str().is_none() {
                out.skipped.push(format!("{child}: name not allowed"));
                continue;
            }
            if ft.is_dir() {
                out.entries.insert(
                    child.clone(),
                    LocalEntry {
                        kind: EntryKind::Folder,
                        size: 0,
                        mtime_ns: 0,
                        inode: inode(&meta),
                        hash: [0; 32],
                    },
                );
                stack.push((path, child));
            } else if ft.is_file() {
                if let Some(b) = base.get(&child)
                    && matches_base(&meta, b)
                {
                    out.entries.insert(
                        child,
                        LocalEntry {
                            kind: EntryKind::File,
                            size: b.size,
                            mtime_ns: b.mtime_ns,
                            inode: b.inode,
                            hash: b.hash,
                        },
                    );
                    continue;
                }
                match hash_file(&path) {
                    Ok(Some((entry, n))) => {
                        out.hashed_bytes += n;
                        out.entries.insert(child, entry);
                    }
                    Ok(None) => out.unsettled.push(child),
                    Err(e) => {
                        tracing::debug!(path = %path.display(), "cannot read: {e}");
                        out.unsettled.push(child);
                    }
                }
            } else {
                let what = if ft.is_symlink() {
                    "symlink"
                } else {
                    "not a regular file"
                };
                out.skipped.push(format!("{child}: {what}"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_file_rules_apply() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(IGNORE_FILE), "*.log\nbuild/\n").unwrap();
        let ig = Ignores::load(dir.path());
        for (p, d) in [
            ("a.swp", false),
            ("x/~$doc.docx", false),
            (".~lock.a.odt#", false),
            ("notes.txt~", false),
            (".DS_Store", false),
            ("run.log", false),
            ("build", true),
            ("build/out.o", false),
            (".report.pdf.cloison-0a1b2c3d4e5f", false),
            ("sub/.report.pdf.cloison-0a1b2c3d4e5f", false),
        ] {
            assert!(ig.ignored(p, d), "{p} should be ignored");
        }
        for p in [
            "a.txt",
            "doc.docx",
            "logs/x.txt",
            "sub/.cloisonignore",
            ".notes.cloison-draft",
        ] {
            assert!(!ig.ignored(p, false), "{p} should not be ignored");
        }
    }

    #[test]
    fn a_missing_ignore_file_is_no_problem_and_a_bad_rule_is_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Ignores::load(dir.path()).problems.is_empty());
        fs::write(
            dir.path().join(IGNORE_FILE),
            "*.log\nbad[z-a]\n#include ../x\n",
        )
        .unwrap();
        let ig = Ignores::load(dir.path());
        assert!(ig.ignored("a.log", false), "the good rule still applies");
        assert_eq!(ig.problems.len(), 2, "{:?}", ig.problems);
        assert!(ig.problems[0].contains("bad[z-a]"), "{:?}", ig.problems);
        assert!(ig.problems[1].contains("#include"), "{:?}", ig.problems);
    }

    #[test]
    fn the_own_ignore_file_stays_local_and_included_rules_apply() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("team")).unwrap();
        fs::write(
            dir.path().join("team/shared-ignores"),
            "*.bak\n#include other\n",
        )
        .unwrap();
        fs::write(dir.path().join("other"), "*.tmp\n").unwrap();
        // Even a rule that un-ignores it leaves the own ignore file local.
        fs::write(
            dir.path().join(IGNORE_FILE),
            "!.cloisonignore\n!/.cloisonignore\n#include team/shared-ignores\n#include ../outside\nsecret.env\n",
        )
        .unwrap();
        let ig = Ignores::load(dir.path());
        assert!(ig.ignored(IGNORE_FILE, false));
        assert!(ig.ignored("secret.env", false));
        assert!(ig.ignored("old.bak", false), "included rule");
        assert!(!ig.ignored("x.tmp", false), "nested include followed");
        // A symlinked ignore file is not followed.
        #[cfg(unix)]
        {
            let d2 = tempfile::tempdir().unwrap();
            fs::write(d2.path().join("rules"), "*.env\n").unwrap();
            std::os::unix::fs::symlink(d2.path().join("rules"), d2.path().join(IGNORE_FILE))
                .unwrap();
            assert!(!Ignores::load(d2.path()).ignored("a.env", false));
        }
    }

    #[test]
    fn the_mirrors_temporary_files_are_ignored_whatever_the_rules_say() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(IGNORE_FILE), "!*\n!.*\n!**/.*.cloison-*\n").unwrap();
        let ig = Ignores::load(dir.path());
        let (tmp, _f) = super::super::temps::temp_beside(&dir.path().join("big.bin")).unwrap();
        let name = tmp.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(ig.ignored(&name, false), "{name}");
        assert!(ig.ignored(&format!("deep/er/{name}"), false));
        assert!(
            ig.ignored(&format!("{name}/inside"), false),
            "under such a name"
        );
        fs::write(dir.path().join(".notes.cloison-draft"), b"mine").unwrap();
        let s = scan(&ig, &BTreeMap::new()).unwrap();
        assert!(
            !s.entries.contains_key(&name),
            "a temporary file is scanned"
        );
        assert!(s.entries.contains_key(".notes.cloison-draft"));
    }

    #[test]
    fn scan_reuses_hashes_skips_symlinks_and_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/a.txt"), b"hello").unwrap();
        fs::write(dir.path().join("b.swp"), b"temp").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("sub/a.txt", dir.path().join("link")).unwrap();
        let ig = Ignores::load(dir.path());
        let s = scan(&ig, &BTreeMap::new()).unwrap();
        assert_eq!(
            s.entries.keys().collect::<Vec<_>>(),
            vec!["sub", "sub/a.txt"]
        );
        let a = s.entries["sub/a.txt"];
        assert_eq!(a.hash, *blake3::hash(b"hello").as_bytes());
        #[cfg(unix)]
        assert!(s.skipped.iter().any(|x| x.starts_with("link")));
        // A base with the same metadata but another hash is trusted (no read)...
        let base: BTreeMap<String, BaseEntry> = [(
            "sub/a.txt".to_owned(),
            BaseEntry {
                id: [1; 16],
                kind: EntryKind::File,
                hash: [9; 32],
                size: a.size,
                mtime_ns: a.mtime_ns,
                inode: a.inode,
            },
        )]
        .into();
        let s2 = scan(&ig, &base).unwrap();
        assert_eq!(s2.entries["sub/a.txt"].hash, [9; 32]);
        assert_eq!(s2.hashed_bytes, 0);
        // ...until the size changes.
        fs::write(dir.path().join("sub/a.txt"), b"hello world").unwrap();
        let s3 = scan(&ig, &base).unwrap();
        assert_eq!(
            s3.entries["sub/a.txt"].hash,
            *blake3::hash(b"hello world").as_bytes()
        );
    }
}
