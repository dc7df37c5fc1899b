//! Two real daemons mirroring a shared workspace into folders, for the mirror tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::{Daemon, TestHome, team, wait_until};

/// How long a mirror test waits for anything.
pub const WAIT: Duration = Duration::from_secs(120);

pub use crate::connected;

/// Every entry under `dir`, folders first walked, as (relative path, path, file type); no
/// symbolic link is followed.
pub fn walk(dir: &Path) -> Vec<(String, std::path::PathBuf, std::fs::FileType)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push((e.path(), p.clone()));
            }
            out.push((p, e.path(), ft));
        }
    }
    out
}

/// Every file and folder under `dir`: path -> BLAKE3 (hex) for files, "/" for folders. The
/// mirror's own temporary files (and anything under such a name) are left out.
pub fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (p, path, ft) in walk(dir) {
        if p.split('/').any(|c| c.contains(".cloison-")) {
            continue;
        }
        if ft.is_dir() {
            out.insert(p, "/".to_owned());
        } else if ft.is_file() {
            let h = std::fs::read(path)
                .map(|b| blake3::hash(&b).to_hex().to_string())
                .unwrap_or_default();
            out.insert(p, h);
        }
    }
    out
}

/// Two devices, their daemons, and the directory holding their folders (`a`, `b`: outside the
/// homes, as a mirror must be).
pub struct Pair {
    /// The two homes.
    pub t: Vec<TestHome>,
    /// Their daemons.
    pub d: Vec<Daemon>,
    /// Holds `a` and `b`.
    pub dirs: tempfile::TempDir,
}

/// Two devices linked, a shared workspace `ws` (B with `role`), each mirroring its own folder.
pub fn pair(ws: &str, role: &str) -> Pair {
    let dirs = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let t = team(&["ann", "ben"]);
    let a = t[0].start(&[]);
    let b = t[1].start(&[a.addr()]);
    wait_until("A is linked to B", WAIT, || connected(&t[0]) == 1);
    t[0].run(&["workspace", "create", ws]).success();
    t[0].run(&[
        "workspace",
        "share",
        ws,
        "ben@clinique.example",
        "--role",
        role,
    ])
    .success();
    wait_until("B holds the workspace", WAIT, || t[1].run(&["ls", ws]).ok);
    for (h, name) in t.iter().zip(["a", "b"]) {
        let dir = dirs.path().join(name);
        h.run(&["sync", ws, dir.to_str().unwrap_or_default()])
            .success();
    }
    Pair {
        t,
        d: vec![a, b],
        dirs,
    }
}

impl Pair {
    /// A's and B's folders.
    pub fn folders(&self) -> (std::path::PathBuf, std::path::PathBuf) {
        (self.dirs.path().join("a"), self.dirs.path().join("b"))
    }

    /// Waits until B's folder holds what A's does (but `local_only`), and returns it.
    pub fn same_on_both(&self, local_only: &[&str]) -> BTreeMap<String, String> {
        let (fa, fb) = self.folders();
        let mut want = BTreeMap::new();
        wait_until("both folders hold the same", WAIT, || {
            want = tree(&fa);
            want.retain(|k, _| !local_only.contains(&k.as_str()));
            tree(&fb) == want
        });
        want
    }
}

/// `sync --list --json`.
pub fn mirrors(h: &TestHome) -> serde_json::Value {
    h.run(&["sync", "--list", "--json"]).json()
}
