//! Files in a workspace: put (a file or a whole directory), get, move, remove, history and
//! restore (listing is in `listing`), on the decrypted document, with contents sealed into
//! blocks in the store.
//!
//! Paths inside a workspace are `/`-separated; empty components are ignored, so `a//b/` is
//! `a/b` and `` or `/` is the root.
//!
//! Invariants: a file's blocks are in the store before the envelope naming them is written;
//! `get` writes through a temporary file in the destination's directory and renames it only
//! after the whole content checked against the version's content hash; `put` of a file whose
//! current content is identical writes nothing.

use std::fs;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use cloison_crdt::{ChunkRef, EntryId, Kind, Manifest, VersionId};

use super::docs::OsIds;
use super::{Node, NodeError, now_ms};
use crate::seal::{self, BlockId, ChunkKey};
use crate::workspace::{Role, WorkspaceId};

/// Files per content envelope batch during a `put` of a directory.
const FILES_PER_COMMIT: usize = 1000;
/// Content bytes after which a `put` commits what it has, so peers start fetching blocks while
/// the rest is still being sealed (the transfer overlaps the put instead of following it).
const BYTES_PER_COMMIT: u64 = 64 << 20;
/// How often a long `put` lets the daemon pump the network.
pub const PUMP_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// Block bytes buffered before one store transaction.
const BLOCK_BATCH_BYTES: usize = 64 << 20;

/// Where a transfer is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Bytes done.
    pub bytes: u64,
    /// Bytes in all.
    pub total_bytes: u64,
    /// Files done.
    pub files: u64,
    /// Files in all.
    pub total_files: u64,
}

/// What a `put` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PutReport {
    /// Files written (new or changed).
    pub written: u64,
    /// Files skipped because their content was already current.
    pub unchanged: u64,
    /// Folders created.
    pub folders: u64,
    /// Plaintext bytes read.
    pub bytes: u64,
    /// Blocks new to the store.
    pub new_blocks: u64,
    /// Content envelopes written.
    pub envelopes: u64,
    /// Local entries skipped (symlinks, special files), with why.
    pub skipped: Vec<String>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EntryInfo {
    /// Path in the workspace.
    pub path: String,
    /// Name.
    pub name: String,
    /// `file` or `folder`.
    pub kind: String,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time of the current version, unix ms (files).
    pub modified_ms: Option<i64>,
    /// Entry id (hex).
    pub id: String,
    /// For a conflict copy: the path of the entry it is a copy of.
    pub conflict_of: Option<String>,
    /// BLAKE3 of the content (hex), files only.
    pub hash: Option<String>,
}

/// One version of a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionRow {
    /// Version id (hex).
    pub version: String,
    /// Modification time, unix ms.
    pub modified_ms: i64,
    /// Size.
    pub size: u64,
    /// Author's name.
    pub user: String,
    /// Author's device label.
    pub device: String,
    /// The current version (or a concurrent one shown as a conflict copy).
    pub head: bool,
    /// The version it restored, if any (hex).
    pub restored_from: Option<String>,
    /// BLAKE3 of the content (hex).
    pub hash: String,
}

/// Splits a workspace path into its components.
fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |err| NodeError::Io {
        path: path.to_owned(),
        err,
    }
}

fn not_found(what: &'static str, path: &str) -> NodeError {
    NodeError::NotFound {
        what,
        query: path.to_owned(),
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

fn mtime_ms(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

impl Node {
    /// Resolves a workspace path to an entry (the root for an empty path).
    pub(super) fn resolve_path(
        &mut self,
        w: WorkspaceId,
        path: &str,
    ) -> Result<cloison_crdt::Node, NodeError> {
        let doc = self.doc(w)?;
        let clean = components(path).join("/");
        if clean.is_empty() {
            return doc
                .crdt
                .stat(EntryId::ROOT)
                .ok_or_else(|| not_found("path", path));
        }
        doc.crdt
            .resolve(&clean)
            .ok_or_else(|| not_found("path", path))
    }

    /// Makes sure the folders of `parts` exist under `from`; returns the last one's id.
    pub(super) fn ensure_folders(
        &mut self,
        w: WorkspaceId,
        from: EntryId,
        parts: &[&str],
        report: &mut PutReport,
    ) -> Result<EntryId, NodeError> {
        let now = now_ms() as i64;
        let doc = self.doc(w)?;
        let mut at = from;
        for p in parts {
            let existing = doc.crdt.tree().child(at, p).map(|n| (n.id, n.kind));
            at = match existing {
                Some((id, Kind::Folder)) => id,
                Some(_) => {
                    return Err(NodeError::Invalid(format!(
                        "{p:?} exists and is not a folder"
                    )));
                }
                None => {
                    report.folders += 1;
                    doc.crdt.create_folder(&mut OsIds, at, p, now)?
                }
            };
        }
        Ok(at)
    }

    /// Copies a local file or directory (recursively) into `w` at `remote`. A directory lands as
    /// the folder `remote`; a file lands at `remote`, or inside it when `remote` is an existing
    /// folder or ends with `/`. `pump` is called after each committed batch and at least every
    /// `PUMP_EVERY` (50 ms) while sealing, so a daemon keeps serving peers (who start fetching the
    /// first batches while the rest is sealed).
    pub fn put(
        &mut self,
        w: WorkspaceId,
        local: &Path,
        remote: &str,
        progress: &mut dyn FnMut(Progress),
        pump: &mut dyn FnMut(&mut Node),
    ) -> Result<PutReport, NodeError> {
        self.require_role(w, Role::Contributor, "writing")?;
        let meta = fs::metadata(local).map_err(io_err(local))?;
        let mut report = PutReport::default();
        // (local file, workspace folder parts, name, size)
        let mut plan: Vec<(PathBuf, Vec<String>, String, u64)> = Vec::new();
        let mut folders: Vec<Vec<String>> = Vec::new();
        let target: Vec<String> = components(remote).iter().map(|s| s.to_string()).collect();
        if meta.is_dir() {
            folders.push(target.clone());
            walk(local, &target, &mut plan, &mut folders, &mut report.skipped)?;
        } else if meta.is_file() {
            let into_folder = remote.ends_with('/')
                || target.is_empty()
                || matches!(self.resolve_path(w, remote), Ok(n) if n.kind == Kind::Folder);
            let name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    NodeError::Invalid(format!("{} has no file name", local.display()))
                })?;
            let (parts, name) = if into_folder {
                (target.clone(), name)
            } else {
                let mut parts = target.clone();
                let last = parts.pop().unwrap_or(name);
                (parts, last)
            };
            plan.push((local.to_owned(), parts, name, meta.len()));
        } else {
            return Err(NodeError::Invalid(format!(
                "{} is neither a file nor a directory",
                local.display()
            )));
        }
        let secret = self.convergence(w)?;
        let author = self.author();
        let mut p = Progress {
            total_bytes: plan.iter().map(|f| f.3).sum(),
            total_files: plan.len() as u64,
            ..Progress::default()
        };
        for f in &folders {
            let parts: Vec<&str> = f.iter().map(String::as_str).collect();
            self.ensure_folders(w, EntryId::ROOT, &parts, &mut report)?;
        }
        let mut pending: Vec<(BlockId, Vec<u8>)> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut since_commit = 0;
        let mut bytes_since_commit = 0u64;
        let mut pumped = std::time::Instant::now();
        for (path, parts, name, _) in plan {
            let parts_ref: Vec<&str> = parts.iter().map(String::as_str).collect();
            let parent = self.ensure_folders(w, EntryId::ROOT, &parts_ref, &mut report)?;
            let file = fs::File::open(&path).map_err(io_err(&path))?;
            let fmeta = file.metadata().map_err(io_err(&path))?;
            let mut reader = Hashing {
                inner: BufReader::with_capacity(1 << 20, file),
                hasher: blake3::Hasher::new(),
                count: 0,
            };
            let mut chunks = Vec::new();
            for b in secret.seal_stream(&mut reader) {
                let b = b.map_err(io_err(&path))?;
                chunks.push(ChunkRef {
                    id: b.id.0,
                    key: *b.key.as_bytes(),
                    len: b.plain_len as u32,
                });
                p.bytes += b.plain_len as u64;
                if !self.blocks.contains(&b.id.0) {
                    pending_bytes += b.bytes.len();
                    pending.push((b.id, b.bytes));
                }
                if pending_bytes >= BLOCK_BATCH_BYTES {
                    report.new_blocks += self.flush_blocks(w, &mut pending)? as u64;
                    pending_bytes = 0;
                }
                if pumped.elapsed() >= PUMP_EVERY {
                    pump(self);
                    pumped = std::time::Instant::now();
                }
            }
            let manifest = Manifest {
                size: reader.count,
                chunks,
                content_hash: *reader.hasher.finalize().as_bytes(),
                modified_ms: mtime_ms(&fmeta),
                mode: super::folder::scan::mode_bits(&fmeta),
            };
            let bytes_before = report.bytes;
            report.bytes += manifest.size;
            let now = now_ms() as i64;
            let doc = self.doc(w)?;
            let existing = doc.crdt.tree().child(parent, &name).cloned();
            let id = match existing {
                Some(n) if n.kind == Kind::Folder => {
                    return Err(NodeError::Invalid(format!(
                        "{name:?} is a folder in the workspace; cannot put a file there"
                    )));
                }
                Some(n) => {
                    let same = n.current.as_ref().is_some_and(|v| {
                        v.manifest.content_hash == manifest.content_hash
                            && v.manifest.size == manifest.size
                    });
                    if same && n.conflict_of.is_none() {
                        report.unchanged += 1;
                        p.files += 1;
                        progress(p);
                        continue;
                    }
                    n.id
                }
                None => doc.crdt.create_file(&mut OsIds, parent, &name, now)?,
            };
            doc.crdt
                .write_content(&mut OsIds, id, manifest, &author, now)?;
            report.written += 1;
            p.files += 1;
            progress(p);
            since_commit += 1;
            bytes_since_commit += report.bytes - bytes_before;
            if since_commit >= FILES_PER_COMMIT || bytes_since_commit >= BYTES_PER_COMMIT {
                report.new_blocks += self.flush_blocks(w, &mut pending)? as u64;
                pending_bytes = 0;
                report.envelopes += self.commit(w)? as u64;
                since_commit = 0;
                bytes_since_commit = 0;
                pump(self);
                pumped = std::time::Instant::now();
            } else if pumped.elapsed() >= PUMP_EVERY {
                pump(self);
                pumped = std::time::Instant::now();
            }
        }
        report.new_blocks += self.flush_blocks(w, &mut pending)? as u64;
        report.envelopes += self.commit(w)? as u64;
        Ok(report)
    }

    /// Stores the blocks sealed for workspace `w` so far.
    pub(super) fn flush_blocks(
        &mut self,
        w: WorkspaceId,
        pending: &mut Vec<(BlockId, Vec<u8>)>,
    ) -> Result<usize, NodeError> {
        if pending.is_empty() {
            return Ok(0);
        }
        let refs: Vec<crate::store::BlockIn<'_>> = pending
            .iter()
            .map(|(id, b)| (w, &id.0, b.as_slice()))
            .collect();
        let n = self.store.put_hashed_blocks(&refs)?;
        self.blocks.extend(pending.iter().map(|(id, _)| id.0));
        pending.clear();
        Ok(n)
    }

    /// Copies a file or folder of `w` to the local `dest` (inside it if it is a directory).
    /// Blocks that have not arrived yet are waited for up to `wait`, with `pump` letting a daemon
    /// receive them meanwhile (without a daemon, pass no wait: nothing would bring them).
    pub fn get(
        &mut self,
        w: WorkspaceId,
        remote: &str,
        dest: &Path,
        progress: &mut dyn FnMut(Progress),
        pump: &mut dyn FnMut(&mut Node),
        wait: std::time::Duration,
    ) -> Result<Progress, NodeError> {
        let node = self.resolve_path(w, remote)?;
        let dest = if dest.is_dir() && !node.id.is_root() {
            dest.join(&node.name)
        } else {
            dest.to_owned()
        };
        // (workspace node, local path)
        let mut files: Vec<(cloison_crdt::Node, PathBuf)> = Vec::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        if node.kind == Kind::Folder {
            let tree = self.doc(w)?.crdt.tree();
            let base = tree.path_of(node.id).unwrap_or_default();
            dirs.push(dest.clone());
            for (path, n) in tree.walk() {
                let rel = if base.is_empty() {
                    Some(path.as_str())
                } else {
                    path.strip_prefix(&base).and_then(|r| r.strip_prefix('/'))
                };
                let Some(rel) = rel else { continue };
                let local = dest.join(rel);
                match n.kind {
                    Kind::Folder => dirs.push(local),
                    Kind::File => files.push((n.clone(), local)),
                }
            }
        } else {
            files.push((node, dest.clone()));
        }
        let deadline = std::time::Instant::now() + wait;
        loop {
            let missing: usize = files
                .iter()
                .filter_map(|(n, _)| n.current.as_ref())
                .flat_map(|v| v.manifest.chunks.iter())
                .filter(|c| !self.blocks.contains(&c.id))
                .count();
            if missing == 0 {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(NodeError::NotSynced {
                    path: remote.to_owned(),
                    missing,
                });
            }
            pump(self);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for d in &dirs {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        let mut p = Progress {
            total_bytes: files
                .iter()
                .filter_map(|(n, _)| n.current.as_ref())
                .map(|v| v.manifest.size)
                .sum(),
            total_files: files.len() as u64,
            ..Progress::default()
        };
        for (n, local) in files {
            if let Some(parent) = local.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            self.write_local(&n, &local, &mut p, progress)?;
            p.files += 1;
            progress(p);
        }
        Ok(p)
    }

    /// Writes one file's current version to `local`, atomically.
    fn write_local(
        &mut self,
        n: &cloison_crdt::Node,
        local: &Path,
        p: &mut Progress,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), NodeError> {
        let mut tmp = super::folder::temps::temp_beside(local).map_err(io_err(local))?;
        let mut hasher = blake3::Hasher::new();
        if let Some(v) = &n.current {
            for c in &v.manifest.chunks {
                let bytes = self
                    .store
                    .block(&c.id)?
                    .ok_or_else(|| NodeError::NotSynced {
                        path: local.display().to_string(),
                        missing: 1,
                    })?;
                let plain =
                    seal::open_block(&bytes, &BlockId(c.id), &ChunkKey::from_bytes(&c.key))?;
                hasher.update(&plain);
                tmp.1.write_all(&plain).map_err(io_err(&tmp.0))?;
                p.bytes += plain.len() as u64;
                progress(*p);
            }
            if *hasher.finalize().as_bytes() != v.manifest.content_hash {
                let _ = fs::remove_file(&tmp.0);
                return Err(NodeError::Invalid(format!(
                    "{}: content does not match its hash",
                    local.display()
                )));
            }
        }
        tmp.1.sync_all().map_err(io_err(&tmp.0))?;
        drop(tmp.1);
        if let Some(v) = &n.current {
            let mtime = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(v.manifest.modified_ms.max(0) as u64);
            if let Ok(f) = fs::File::options().write(true).open(&tmp.0) {
                let _ = f.set_modified(mtime);
                let _ = super::folder::scan::apply_mode(&f, v.manifest.mode);
            }
        }
        fs::rename(&tmp.0, local).map_err(io_err(local))?;
        Ok(())
    }

    /// Moves or renames an entry: into `to` if it is an existing folder, otherwise to the path
    /// `to` (its parent folder must exist).
    pub fn mv(&mut self, w: WorkspaceId, from: &str, to: &str) -> Result<(), NodeError> {
        self.require_role(w, Role::Contributor, "moving")?;
        let node = self.resolve_path(w, from)?;
        if node.id.is_root() {
            return Err(NodeError::Invalid("cannot move the root".into()));
        }
        let target = self.resolve_path(w, to).ok();
        let now = now_ms() as i64;
        let (parent, name) = match target {
            Some(t) if t.kind == Kind::Folder => (t.id, node.name.clone()),
            Some(_) => {
                return Err(NodeError::Invalid(format!("{to:?} already exists")));
            }
            None => {
                let mut parts = components(to);
                let name = parts
                    .pop()
                    .ok_or_else(|| NodeError::Invalid("empty destination".into()))?
                    .to_owned();
                let parent = self.resolve_path(w, &parts.join("/"))?;
                if parent.kind != Kind::Folder {
                    return Err(NodeError::Invalid(format!(
                        "{} is not a folder",
                        parts.join("/")
                    )));
                }
                (parent.id, name)
            }
        };
        let doc = self.doc(w)?;
        if parent != node.parent {
            doc.crdt.move_entry(node.id, parent, now)?;
        }
        if name != node.name {
            doc.crdt.rename(node.id, &name, now)?;
        }
        self.commit(w)?;
        Ok(())
    }

    /// Deletes an entry (a folder with everything in it). History keeps it: `restore` brings
    /// it back.
    pub fn rm(&mut self, w: WorkspaceId, path: &str) -> Result<(), NodeError> {
        self.require_role(w, Role::Contributor, "removing")?;
        let node = self.resolve_path(w, path)?;
        if node.id.is_root() {
            return Err(NodeError::Invalid("cannot remove the root".into()));
        }
        let now = now_ms() as i64;
        self.doc(w)?.crdt.delete(node.id, now)?;
        self.commit(w)?;
        Ok(())
    }

    /// Every version of a file, oldest first.
    pub fn history(&mut self, w: WorkspaceId, path: &str) -> Result<Vec<VersionRow>, NodeError> {
        let id = match self.resolve_path(w, path) {
            Ok(n) => n.id,
            Err(e) => self.find_deleted(w, path).ok_or(e)?,
        };
        let doc = self.doc(w)?;
        Ok(doc
            .crdt
            .versions(id)?
            .into_iter()
            .map(|v| VersionRow {
                version: v.version.id.to_hex(),
                modified_ms: v.version.manifest.modified_ms,
                size: v.version.manifest.size,
                user: v.version.author.user_name.clone(),
                device: v.version.author.device_label.clone(),
                head: v.head,
                restored_from: v.version.restored_from.map(|r| r.to_hex()),
                hash: hex::encode(v.version.manifest.content_hash),
            })
            .collect())
    }

    fn find_deleted(&mut self, w: WorkspaceId, path: &str) -> Option<EntryId> {
        let mut parts = components(path);
        let name = parts.pop()?.to_owned();
        let parent = if parts.is_empty() {
            EntryId::ROOT
        } else {
            self.resolve_path(w, &parts.join("/")).ok()?.id
        };
        let doc = self.doc(w).ok()?;
        doc.crdt
            .deleted_entries()
            .into_iter()
            .find(|d| d.parent == parent && d.name == name)
            .map(|d| d.id)
    }

    /// Restores a file: a deleted file comes back; `version` (a version id or a prefix of one)
    /// becomes current again, by default the version before the current one. Returns the new
    /// current version id.
    pub fn restore(
        &mut self,
        w: WorkspaceId,
        path: &str,
        version: Option<&str>,
    ) -> Result<String, NodeError> {
        self.require_role(w, Role::Contributor, "restoring")?;
        let now = now_ms() as i64;
        let (id, was_deleted) = match self.resolve_path(w, path) {
            Ok(n) => (n.id, false),
            Err(e) => (self.find_deleted(w, path).ok_or(e)?, true),
        };
        let author = self.author();
        let doc = self.doc(w)?;
        if was_deleted {
            doc.crdt.restore_entry(id, now)?;
        }
        let versions = doc.crdt.versions(id)?;
        let pick: Option<VersionId> = match version {
            Some(q) => {
                let q = q.to_lowercase();
                let hits: Vec<VersionId> = versions
                    .iter()
                    .map(|v| v.version.id)
                    .filter(|v| v.to_hex().starts_with(&q))
                    .collect();
                match hits.as_slice() {
                    [one] => Some(*one),
                    [] => return Err(not_found("version", &q)),
                    _ => {
                        return Err(NodeError::Ambiguous {
                            what: "version",
                            query: q,
                            candidates: hits
                                .iter()
                                .map(|v| v.to_hex()[..12].to_owned())
                                .collect::<Vec<_>>()
                                .join(", "),
                        });
                    }
                }
            }
            None if was_deleted => None,
            None => {
                let heads: Vec<usize> = (0..versions.len()).filter(|i| versions[*i].head).collect();
                let first_head = heads.first().copied().unwrap_or(versions.len());
                if first_head == 0 {
                    return Err(NodeError::Invalid("the file has no earlier version".into()));
                }
                Some(versions[first_head - 1].version.id)
            }
        };
        let current = match pick {
            Some(v) => doc.crdt.restore_version(&mut OsIds, id, v, &author, now)?,
            None => versions
                .iter()
                .rev()
                .find(|v| v.head)
                .map(|v| v.version.id)
                .unwrap_or(VersionId([0; 16])),
        };
        self.commit(w)?;
        // The restored version may name blocks this device never fetched (an old version's).
        if self.eager {
            self.want_blocks(w);
        }
        Ok(current.to_hex())
    }
}

/// Walks a local directory: files to put and folders to create, sorted; symlinks and special
/// files are skipped and reported.
fn walk(
    dir: &Path,
    at: &[String],
    plan: &mut Vec<(PathBuf, Vec<String>, String, u64)>,
    folders: &mut Vec<Vec<String>>,
    skipped: &mut Vec<String>,
) -> Result<(), NodeError> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if cloison_crdt::check_name(&name).is_err() {
            skipped.push(format!("{}: name not allowed", path.display()));
            continue;
        }
        let ft = e.file_type().map_err(io_err(&path))?;
        if ft.is_dir() {
            let mut sub = at.to_vec();
            sub.push(name);
            folders.push(sub.clone());
            walk(&path, &sub, plan, folders, skipped)?;
        } else if ft.is_file() {
            let len = e.metadata().map_err(io_err(&path))?.len();
            plan.push((path, at.to_vec(), name, len));
        } else {
            tracing::info!(path = %path.display(), "skipped: not a regular file or directory");
            skipped.push(format!("{}: not a regular file", path.display()));
        }
    }
    Ok(())
}
