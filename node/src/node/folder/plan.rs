//! The mirror's planner (sans-IO): reconciles three states of a folder — the local scan, the
//! workspace tree and the last-synced state ("base") — into [`Action`]s.
//!
//! Paths are relative to the mirror's root, `/`-separated, without empty components.
//!
//! Rules (each a pure function of the three maps, so a round can be re-planned at any time):
//! - **Moves first**, shallowest first. A base path missing locally whose inode now sits at a new
//!   local path is a local move (→ [`Action::RemoteMove`] when the workspace still has the entry
//!   where it was); a base entry whose id sits at another workspace path is a remote move
//!   (→ [`Action::LocalMove`]). Each move rewrites the subtree's paths in the working copies, so
//!   a folder move carries its contents and they compare unchanged. A move's destination must be
//!   free on that side: nothing at it *or under it* — a move planned earlier in the round whose
//!   destination lies below creates the folders above it, so a later move there would
//!   overwrite. A move that finds its destination taken waits; the per-path plan settles it.
//! - A path present in the base is the same entry (save-by-rename keeps identity: a new inode at
//!   the same path is an edit, not a new file).
//! - Changed on one side only: that side wins. Changed on both: same content is agreement,
//!   otherwise the local entry is renamed aside ([`Action::ConflictCopy`]) and the workspace
//!   version is written in its place; the renamed copy is uploaded as a new file by the next
//!   round. Nothing is overwritten without a copy or a version kept.
//! - Edit beats delete on either side. A folder is not deleted while anything under it survives.
//! - Read-only (READER): nothing that would change the workspace is planned; such local changes
//!   are reported as [`Action::Refused`] and left alone.
//! - Order of the output: moves, conflict copies, local/remote folder creations (parents first),
//!   uploads and downloads (path order), deletions (children first), then base bookkeeping.

use std::collections::{BTreeMap, BTreeSet};

/// BLAKE3 of a file's content (zero for folders).
pub type Hash = [u8; 32];
/// A workspace entry id.
pub type Id = [u8; 16];

/// File or folder.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Folder,
}

/// One entry of the local scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalEntry {
    /// Kind.
    pub kind: EntryKind,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time, unix ns.
    pub mtime_ns: i64,
    /// Inode (file id); 0 when unknown.
    pub inode: u64,
    /// Content hash (files).
    pub hash: Hash,
}

/// One entry of the workspace tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteEntry {
    /// Entry id.
    pub id: Id,
    /// Kind.
    pub kind: EntryKind,
    /// Content hash of the current version (files).
    pub hash: Hash,
    /// Size (files).
    pub size: u64,
}

/// What was last synced at a path: both sides agreed on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BaseEntry {
    /// Workspace entry id.
    pub id: Id,
    /// Kind.
    pub kind: EntryKind,
    /// Content hash (files).
    pub hash: Hash,
    /// Local size.
    pub size: u64,
    /// Local modification time, unix ns.
    pub mtime_ns: i64,
    /// Local inode.
    pub inode: u64,
}

/// One step of a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Rename `from` to `to` on disk (the workspace moved the entry).
    LocalMove {
        /// Old local path.
        from: String,
        /// New local path.
        to: String,
        /// The last-synced path whose state (and subtree) moves to `to` with it.
        base: String,
    },
    /// Move entry `id` from `from` to `to` in the workspace (moved on disk).
    RemoteMove {
        /// The entry.
        id: Id,
        /// Its workspace path now.
        from: String,
        /// Where it goes.
        to: String,
    },
    /// Create a local folder for the workspace folder `id`.
    LocalMkdir {
        /// Path.
        path: String,
        /// The workspace folder.
        id: Id,
    },
    /// Create a workspace folder for a local one.
    RemoteMkdir {
        /// Path.
        path: String,
    },
    /// Rename the local entry at `path` aside (a conflict copy); the next round uploads it.
    ConflictCopy {
        /// Path.
        path: String,
    },
    /// Write the local file's content to the workspace (a new version of `id`, or a new file).
    Upload {
        /// Path.
        path: String,
        /// The entry to write a version of; `None` creates one.
        id: Option<Id>,
    },
    /// Write the workspace file `id` to disk. The local path must still be what `expect` says
    /// (absent for `None`) right before the final rename, or both are kept.
    Download {
        /// Path.
        path: String,
        /// The workspace file.
        id: Id,
        /// What the local file must still be.
        expect: Option<BaseEntry>,
    },
    /// Delete the local file or (empty) folder, if it is still `expect`.
    LocalDelete {
        /// Path.
        path: String,
        /// What it must still be.
        expect: BaseEntry,
    },
    /// Delete entry `id` from the workspace (history keeps it).
    RemoteDelete {
        /// Path.
        path: String,
        /// The entry.
        id: Id,
    },
    /// Both sides agree at `path`: remember it.
    Record {
        /// Path.
        path: String,
        /// The synced state.
        base: BaseEntry,
    },
    /// Neither side has `path` any more.
    Forget {
        /// Path.
        path: String,
    },
    /// A local change a read-only mirror does not upload.
    Refused {
        /// Path.
        path: String,
    },
}

/// The three states.
#[derive(Clone, Debug, Default)]
pub struct States {
    /// The local scan.
    pub local: BTreeMap<String, LocalEntry>,
    /// The workspace tree.
    pub remote: BTreeMap<String, RemoteEntry>,
    /// The last-synced state.
    pub base: BTreeMap<String, BaseEntry>,
}

/// True if `path` is `dir` or inside it.
pub fn under(path: &str, dir: &str) -> bool {
    path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// Re-keys every path under `from` to the same place under `to`.
pub fn rekey<V>(map: &mut BTreeMap<String, V>, from: &str, to: &str) {
    let moved: Vec<String> = map.keys().filter(|k| under(k, from)).cloned().collect();
    let mut taken = Vec::with_capacity(moved.len());
    for k in moved {
        if let Some(v) = map.remove(&k) {
            taken.push((format!("{to}{}", &k[from.len()..]), v));
        }
    }
    map.extend(taken);
}

/// Whether `path` is taken in `map`: an entry is at it or under it. An entry under it without
/// one at it is the subtree of a move planned earlier in the round, whose missing parent
/// folders the move creates: the path is no free destination either.
fn taken<V>(map: &BTreeMap<String, V>, path: &str) -> bool {
    if map.contains_key(path) {
        return true;
    }
    let inside = format!("{path}/");
    map.range(inside.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&inside))
}

/// Whether a strict ancestor of `path` is a file in `kinds` (a move there would need a folder
/// where a file is: it waits, and the per-path plan sorts the file out first).
fn under_a_file<'a>(path: &str, kind_at: impl Fn(&str) -> Option<EntryKind> + 'a) -> bool {
    let mut p = parent_of(path);
    while !p.is_empty() {
        if kind_at(p) == Some(EntryKind::File) {
            return true;
        }
        p = parent_of(p);
    }
    false
}

fn depth(p: &str) -> usize {
    p.bytes().filter(|b| *b == b'/').count()
}

/// The parent path of `p` (empty for top-level entries).
pub fn parent_of(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}

fn local_changed(l: &LocalEntry, b: &BaseEntry) -> bool {
    l.kind != b.kind || (l.kind == EntryKind::File && l.hash != b.hash)
}

fn remote_changed(r: &RemoteEntry, b: &BaseEntry) -> bool {
    r.kind != b.kind || r.id != b.id || (r.kind == EntryKind::File && r.hash != b.hash)
}

fn base_of(l: &LocalEntry, r: &RemoteEntry) -> BaseEntry {
    BaseEntry {
        id: r.id,
        kind: r.kind,
        hash: r.hash,
        size: l.size,
        mtime_ns: l.mtime_ns,
        inode: l.inode,
    }
}

/// Detects moves on both sides and rewrites the working copies; returns the move actions.
fn plan_moves(s: &mut States, read_only: bool) -> Vec<Action> {
    use std::collections::HashMap;
    // Indexes, rebuilt after a move re-keys the maps (moves are rare; lookups are not).
    fn by_id(s: &States) -> HashMap<(Id, EntryKind), String> {
        s.remote
            .iter()
            .map(|(k, r)| ((r.id, r.kind), k.clone()))
            .collect()
    }
    fn new_by_inode(s: &States) -> HashMap<(u64, EntryKind), String> {
        s.local
            .iter()
            .filter(|(k, l)| l.inode != 0 && !s.base.contains_key(*k))
            .map(|(k, l)| ((l.inode, l.kind), k.clone()))
            .collect()
    }
    let mut out = Vec::new();
    let mut remote_ids = by_id(s);
    let mut inodes = new_by_inode(s);
    // Shallower destinations first (the new local path of an entry moved on disk, else its
    // workspace place): a folder moved to `b` goes before an entry moved into `b/`, whose move
    // would otherwise create `b` and block the folder's. Ties (and entries that stay) by their
    // own depth, so an ancestor still re-keys its subtree first.
    let mut order: Vec<String> = s.base.keys().cloned().collect();
    order.sort_by_cached_key(|p| {
        let own = depth(p);
        let place = s.base.get(p).map_or(own, |b| {
            let moved_here = (!s.local.contains_key(p) && b.inode != 0)
                .then(|| inodes.get(&(b.inode, b.kind)))
                .flatten();
            moved_here
                .or_else(|| remote_ids.get(&(b.id, b.kind)))
                .map_or(own, |r| depth(r))
        });
        (place, own, p.clone())
    });
    for p in order {
        let Some(b) = s.base.get(&p).copied() else {
            continue; // re-keyed by an earlier (ancestor) move
        };
        let here = s.local.contains_key(&p);
        if here
            && s.remote
                .get(&p)
                .is_some_and(|r| r.id == b.id && r.kind == b.kind)
        {
            continue; // the common case: nothing moved
        }
        let remote_at = remote_ids.get(&(b.id, b.kind)).cloned();
        if !here && b.inode != 0 {
            // Moved locally?
            if let Some(to) = inodes.get(&(b.inode, b.kind)).cloned() {
                if under(&to, &p) {
                    continue;
                }
                match remote_at {
                    Some(r)
                        if r == p
                            && !read_only
                            && !taken(&s.remote, &to)
                            && !under_a_file(&to, |q| s.remote.get(q).map(|e| e.kind)) =>
                    {
                        out.push(Action::RemoteMove {
                            id: b.id,
                            from: p.clone(),
                            to: to.clone(),
                        });
                        rekey(&mut s.remote, &p, &to);
                        rekey(&mut s.base, &p, &to);
                    }
                    Some(r)
                        if r != p
                            && !taken(&s.local, &r)
                            && !under(&r, &to)
                            && !under_a_file(&r, |q| s.local.get(q).map(|e| e.kind)) =>
                    {
                        // Moved on both sides: the workspace's place wins.
                        out.push(Action::LocalMove {
                            from: to.clone(),
                            to: r.clone(),
                            base: p.clone(),
                        });
                        rekey(&mut s.local, &to, &r);
                        rekey(&mut s.base, &p, &r);
                    }
                    _ => continue,
                }
                remote_ids = by_id(s);
                inodes = new_by_inode(s);
                continue;
            }
        }
        if let Some(r) = remote_at
            && r != p
            && s.local.get(&p).is_some_and(|l| l.kind == b.kind)
            && !taken(&s.local, &r)
            && !under(&r, &p)
            && !under_a_file(&r, |q| s.local.get(q).map(|e| e.kind))
        {
            out.push(Action::LocalMove {
                from: p.clone(),
                to: r.clone(),
                base: p.clone(),
            });
            rekey(&mut s.local, &p, &r);
            rekey(&mut s.base, &p, &r);
            inodes = new_by_inode(s);
        }
    }
    out
}

/// Plans one round. `read_only` plans nothing that changes the workspace.
pub fn plan(states: &States, read_only: bool) -> Vec<Action> {
    let mut s = states.clone();
    let moves = plan_moves(&mut s, read_only);
    let paths: BTreeSet<&String> = s
        .local
        .keys()
        .chain(s.remote.keys())
        .chain(s.base.keys())
        .collect();
    let mut mkdirs = Vec::new();
    let mut copies = Vec::new();
    let mut transfers = Vec::new();
    let mut deletes = Vec::new();
    let mut books = Vec::new();
    // Paths that exist once the round is done, to keep their folders.
    let mut survives: BTreeSet<String> = BTreeSet::new();
    // Children first, so a folder knows whether something under it survives.
    for p in paths.into_iter().rev() {
        let l = s.local.get(p);
        let r = s.remote.get(p);
        let b = s.base.get(p);
        let keeps_child = survives
            .range::<String, _>((
                std::ops::Bound::Excluded(p.clone()),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|c| under(c, p));
        let path = p.clone();
        let mut exists = true;
        match (l, r, b) {
            (Some(l), Some(r), Some(b)) => {
                let (lc, rc) = (local_changed(l, b), remote_changed(r, b));
                let same = l.kind == r.kind && (l.kind == EntryKind::Folder || l.hash == r.hash);
                if same {
                    let nb = base_of(l, r);
                    if nb != *b {
                        books.push(Action::Record { path, base: nb });
                    }
                } else if lc && !rc {
                    if read_only && l.kind == r.kind {
                        books.push(Action::Refused { path });
                    } else if l.kind == r.kind {
                        transfers.push(Action::Upload {
                            path,
                            id: Some(r.id),
                        });
                    } else {
                        copies.push(Action::ConflictCopy { path: path.clone() });
                        route(&mut mkdirs, &mut transfers, download(path, r, None));
                    }
                } else if !lc && rc && l.kind == r.kind {
                    // The local content is the synced one, though its file may be another
                    // (saved by rename): the download replaces the file as it is now.
                    let expect = BaseEntry {
                        size: l.size,
                        mtime_ns: l.mtime_ns,
                        inode: l.inode,
                        ..*b
                    };
                    route(&mut mkdirs, &mut transfers, download(path, r, Some(expect)));
                } else {
                    copies.push(Action::ConflictCopy { path: path.clone() });
                    route(&mut mkdirs, &mut transfers, download(path, r, None));
                }
            }
            (Some(l), Some(r), None) => {
                let same = l.kind == r.kind && (l.kind == EntryKind::Folder || l.hash == r.hash);
                if same {
                    books.push(Action::Record {
                        path,
                        base: base_of(l, r),
                    });
                } else {
                    copies.push(Action::ConflictCopy { path: path.clone() });
                    route(&mut mkdirs, &mut transfers, download(path, r, None));
                }
            }
            (Some(l), None, Some(b)) => {
                if local_changed(l, b) || keeps_child {
                    books.push(Action::Forget { path: path.clone() });
                    upload(&mut mkdirs, &mut transfers, &mut books, path, l, read_only);
                } else {
                    deletes.push(Action::LocalDelete { path, expect: *b });
                    exists = false;
                }
            }
            (None, Some(r), Some(b)) => {
                if read_only || remote_changed(r, b) || keeps_child {
                    books.push(Action::Forget { path: path.clone() });
                    fetch(&mut mkdirs, &mut transfers, path, r);
                } else {
                    deletes.push(Action::RemoteDelete { path, id: r.id });
                    exists = false;
                }
            }
            (None, None, Some(_)) => {
                books.push(Action::Forget { path });
                exists = false;
            }
            (Some(l), None, None) => {
                upload(&mut mkdirs, &mut transfers, &mut books, path, l, read_only);
            }
            (None, Some(r), None) => fetch(&mut mkdirs, &mut transfers, path, r),
            (None, None, None) => exists = false,
        }
        if exists {
            survives.insert(p.clone());
        }
    }
    // A local folder renamed aside takes its content with it: the next round plans that.
    let aside: Vec<String> = copies
        .iter()
        .map(|a| action_path(a).to_owned())
        .filter(|p| s.local.get(p).is_some_and(|l| l.kind == EntryKind::Folder))
        .collect();
    if !aside.is_empty() {
        let inside = |a: &Action| {
            let p = action_path(a);
            aside.iter().any(|d| p != d && under(p, d))
        };
        for list in [&mut mkdirs, &mut transfers, &mut deletes, &mut books] {
            list.retain(|a| !inside(a));
        }
    }
    mkdirs.sort_by(|a, b| action_path(a).cmp(action_path(b)));
    copies.reverse();
    transfers.reverse();
    let mut out = moves;
    out.extend(copies);
    out.extend(mkdirs);
    out.extend(transfers);
    out.extend(deletes);
    out.extend(books);
    out
}

fn download(path: String, r: &RemoteEntry, expect: Option<BaseEntry>) -> Action {
    match r.kind {
        EntryKind::Folder => Action::LocalMkdir { path, id: r.id },
        EntryKind::File => Action::Download {
            path,
            id: r.id,
            expect,
        },
    }
}

/// Folder creations go with the folder creations (parents first), the rest with the transfers.
fn route(mkdirs: &mut Vec<Action>, transfers: &mut Vec<Action>, a: Action) {
    match a {
        Action::LocalMkdir { .. } | Action::RemoteMkdir { .. } => mkdirs.push(a),
        a => transfers.push(a),
    }
}

fn fetch(mkdirs: &mut Vec<Action>, transfers: &mut Vec<Action>, path: String, r: &RemoteEntry) {
    route(mkdirs, transfers, download(path, r, None));
}

fn upload(
    mkdirs: &mut Vec<Action>,
    transfers: &mut Vec<Action>,
    books: &mut Vec<Action>,
    path: String,
    l: &LocalEntry,
    read_only: bool,
) {
    if read_only {
        books.push(Action::Refused { path });
    } else if l.kind == EntryKind::Folder {
        mkdirs.push(Action::RemoteMkdir { path });
    } else {
        transfers.push(Action::Upload { path, id: None });
    }
}

/// The path an action is about (its destination for moves).
pub fn action_path(a: &Action) -> &str {
    match a {
        Action::LocalMove { to, .. } | Action::RemoteMove { to, .. } => to,
        Action::LocalMkdir { path, .. }
        | Action::RemoteMkdir { path }
        | Action::ConflictCopy { path }
        | Action::Upload { path, .. }
        | Action::Download { path, .. }
        | Action::LocalDelete { path, .. }
        | Action::RemoteDelete { path, .. }
        | Action::Record { path, .. }
        | Action::Forget { path }
        | Action::Refused { path } => path,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
