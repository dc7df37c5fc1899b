//! One reconciliation round of a mirror on a [`Node`]: scan the folder, read the workspace tree,
//! plan against the last-synced state, carry the actions out, persist the new last-synced state.
//!
//! Invariants: uploads stream through the convergent chunker (unchanged chunks give the same
//! block ids and are not stored or sent again), and a file's blocks are in the store before the
//! envelope naming them; a download whose blocks have not all arrived is left for a later round
//! (nothing partial lands); one failing action is reported (the daemon logs it, rate-limited)
//! and does not stop the round; the last-synced state changes only for actions that completed, in one store
//! transaction at the end of the round.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cloison_crdt::{ChunkRef, EntryId, Kind, Manifest};

use super::apply::{self, Landed};
use super::plan::{self, Action, BaseEntry, EntryKind, RemoteEntry, States, parent_of};
use super::scan::{self, Ignores};
use crate::node::docs::OsIds;
use crate::node::{Node, NodeError, PutReport, now_ms};
use crate::seal::{self, BlockId, ChunkKey};
use crate::workspace::{Role, WorkspaceId};

/// Files written per commit during a round.
const FILES_PER_COMMIT: usize = 1000;
/// Bytes uploaded per commit (and block bytes buffered before a store write).
const BYTES_PER_COMMIT: u64 = 64 << 20;

/// What a round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoundReport {
    /// Files uploaded (new or new versions).
    pub uploaded: u64,
    /// Files written to disk.
    pub downloaded: u64,
    /// Folders created (either side).
    pub folders: u64,
    /// Moves (either side).
    pub moved: u64,
    /// Deletions (either side).
    pub deleted: u64,
    /// Conflict copies made.
    pub conflicts: u64,
    /// Downloads waiting for blocks still on their way.
    pub pending: u64,
    /// Blocks new to the store from uploads.
    pub new_blocks: u64,
    /// Plaintext bytes uploaded.
    pub bytes_up: u64,
    /// Plaintext bytes written to disk.
    pub bytes_down: u64,
    /// Local changes a read-only mirror did not upload.
    pub refused: Vec<String>,
    /// Entries skipped (symlinks, special files, names not allowed).
    pub skipped: Vec<String>,
    /// Files that kept changing while read (tried again next round).
    pub unsettled: u64,
    /// Actions that failed, with why.
    pub errors: Vec<String>,
    /// What is wrong with the ignore rules (a bad rule, an unreadable file); a missing
    /// `.cloisonignore` is not one.
    #[serde(default)]
    pub ignore_problems: Vec<String>,
}

impl RoundReport {
    /// Adds another round's counts to these totals (lists keep the latest round's, capped).
    pub fn add(&mut self, r: &RoundReport) {
        self.uploaded += r.uploaded;
        self.downloaded += r.downloaded;
        self.folders += r.folders;
        self.moved += r.moved;
        self.deleted += r.deleted;
        self.conflicts += r.conflicts;
        self.pending = r.pending;
        self.new_blocks += r.new_blocks;
        self.bytes_up += r.bytes_up;
        self.bytes_down += r.bytes_down;
        self.unsettled = r.unsettled;
        const KEEP: usize = 100;
        self.refused = r.refused.iter().take(KEEP).cloned().collect();
        self.skipped = r.skipped.iter().take(KEEP).cloned().collect();
        self.errors = r.errors.iter().take(KEEP).cloned().collect();
        self.ignore_problems = r.ignore_problems.iter().take(KEEP).cloned().collect();
    }

    /// Whether the round changed anything (so another round may have more to do).
    pub fn changed(&self) -> bool {
        self.uploaded + self.downloaded + self.folders + self.moved + self.deleted + self.conflicts
            > 0
    }
}

/// A mirror: a workspace, a directory, and what was last synced between them.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// The workspace.
    pub ws: WorkspaceId,
    /// The directory.
    pub dir: PathBuf,
    /// Last-synced state by path (persisted in the store).
    pub base: BTreeMap<String, BaseEntry>,
    /// Whether the last round ran read-only (we are a READER).
    pub read_only: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |err| NodeError::Io {
        path: path.to_owned(),
        err,
    }
}

/// The local path of a workspace path (`apply::resolve`: never through a symbolic link; with
/// `create`, its folders are made). Names come from the document, whose rules already refuse
/// `.`, `..`, `/` and NUL; such components are dropped anyway, so nothing lands outside the root.
fn local_path(dir: &Path, rel: &str, create: bool) -> Result<PathBuf, NodeError> {
    apply::resolve(dir, rel, create).map_err(|err| NodeError::Io {
        path: dir.join(rel),
        err,
    })
}

/// A file uploaded: its manifest and its local state when read.
struct Sealed {
    manifest: Manifest,
    size: u64,
    mtime_ns: i64,
    inode: u64,
}

impl Node {
    /// Loads a mirror's last-synced state, and removes the temporary files its interrupted
    /// landings left in `dir` (a mirror is opened when it starts, before any landing of it).
    pub fn open_mirror(&mut self, ws: WorkspaceId, dir: &Path) -> Result<Mirror, NodeError> {
        let swept = super::temps::remove_stale(dir);
        if !swept.removed.is_empty() {
            tracing::info!(ws = %ws, dir = %dir.display(), count = swept.removed.len(), "removed the temporary files of interrupted landings");
        }
        for p in swept.problems.iter().take(10) {
            tracing::warn!(ws = %ws, "temporary files of interrupted landings: {p}");
        }
        Ok(Mirror {
            ws,
            dir: dir.to_owned(),
            base: self.store.mirror_base(ws)?,
            read_only: false,
        })
    }

    /// Runs one round of `m` (see the module doc). `pump` is called regularly during long
    /// uploads and downloads, so a daemon keeps serving its peers.
    pub fn mirror_round(
        &mut self,
        m: &mut Mirror,
        pump: &mut dyn FnMut(&mut Node),
    ) -> Result<RoundReport, NodeError> {
        let w = m.ws;
        m.read_only = self.role_in(w).is_none_or(|r| r < Role::Contributor);
        let ignores = Ignores::load(&m.dir);
        let scanned = scan::scan(&ignores, &m.base).map_err(io(&m.dir))?;
        let mut report = RoundReport {
            skipped: scanned.skipped,
            ignore_problems: ignores.problems.clone(),
            unsettled: scanned.unsettled.len() as u64,
            ..RoundReport::default()
        };
        let tree = self.doc(w)?.crdt.tree();
        let empty = *blake3::hash(b"").as_bytes();
        let mut remote = BTreeMap::new();
        for (path, n) in tree.walk() {
            let kind = if n.kind == Kind::Folder {
                EntryKind::Folder
            } else {
                EntryKind::File
            };
            if ignores.ignored(&path, kind == EntryKind::Folder) {
                continue;
            }
            let (hash, size) = n
                .current
                .as_ref()
                .map_or((empty, 0), |v| (v.manifest.content_hash, v.manifest.size));
            remote.insert(
                path,
                RemoteEntry {
                    id: n.id.0,
                    kind,
                    hash,
                    size,
                },
            );
        }
        // Let the tree go: holding it would make every edit of the round copy it.
        drop(tree);
        let unsettled = scanned.unsettled;
        let keep = |k: &String| !unsettled.iter().any(|u| plan::under(k, u));
        let mut states = States {
            local: scanned.entries,
            remote,
            base: m.base.clone(),
        };
        states.local.retain(|k, _| keep(k));
        states.remote.retain(|k, _| keep(k));
        states
            .base
            .retain(|k, v| keep(k) && !ignores.ignored(k, v.kind == EntryKind::Folder));
        let actions = plan::plan(&states, m.read_only);
        let before = m.base.clone();
        if let Err(e) = self.carry_out(m, &actions, &mut report, pump) {
            // The next round redoes what this one did: the base it built in memory may record
            // uploads whose commit failed (a workspace awaiting a rotation), and a base claiming
            // a file the workspace never got would read as a remote deletion of the local file.
            m.base = before;
            return Err(e);
        }
        // Persist what changed.
        let mut changes: Vec<(&str, Option<&BaseEntry>)> = Vec::new();
        for (k, v) in &m.base {
            if before.get(k) != Some(v) {
                changes.push((k, Some(v)));
            }
        }
        for k in before.keys() {
            if !m.base.contains_key(k) {
                changes.push((k, None));
            }
        }
        self.store.update_mirror_base(w, &changes)?;
        if !report.refused.is_empty() {
            tracing::info!(
                ws = %w,
                count = report.refused.len(),
                first = %report.refused[0],
                "read-only mirror: local changes not uploaded"
            );
        }
        Ok(report)
    }

    fn carry_out(
        &mut self,
        m: &mut Mirror,
        actions: &[Action],
        report: &mut RoundReport,
        pump: &mut dyn FnMut(&mut Node),
    ) -> Result<(), NodeError> {
        let w = m.ws;
        let dir = m.dir.clone();
        let author = self.author();
        let who = format!("{} {}", author.user_name, author.device_label)
            .trim()
            .to_owned();
        let mut pending: Vec<(BlockId, Vec<u8>)> = Vec::new();
        let mut files_since = 0usize;
        let mut bytes_since = 0u64;
        let mut remote_dirty = false;
        let mut pumped = std::time::Instant::now();
        let mut batch: Vec<Job> = Vec::new();
        let mut batch_bytes = 0usize;
        for a in actions {
            let now = now_ms();
            if !batch.is_empty() && !matches!(a, Action::Download { .. }) {
                land_batch(m, report, std::mem::take(&mut batch), &who, now);
                batch_bytes = 0;
            }
            let result: Result<(), NodeError> = (|| {
                match a {
                    Action::LocalMove { from, to, base } => {
                        let (f, t) = (local_path(&dir, from, false)?, local_path(&dir, to, true)?);
                        if apply::move_no_clobber(&f, &t).map_err(io(&t))? {
                            plan::rekey(&mut m.base, base, to);
                            report.moved += 1;
                        }
                    }
                    Action::RemoteMove { id, from, to } => {
                        let id = EntryId(*id);
                        let parts: Vec<&str> =
                            parent_of(to).split('/').filter(|c| !c.is_empty()).collect();
                        let name = to.rsplit('/').next().unwrap_or(to);
                        let parent = self.ensure_folders(
                            w,
                            EntryId::ROOT,
                            &parts,
                            &mut PutReport::default(),
                        )?;
                        let doc = self.doc(w)?;
                        let Some(node) = doc.crdt.stat(id) else {
                            return Ok(());
                        };
                        if node.parent != parent {
                            doc.crdt.move_entry(id, parent, now as i64)?;
                        }
                        if node.name != name {
                            doc.crdt.rename(id, name, now as i64)?;
                        }
                        plan::rekey(&mut m.base, from, to);
                        remote_dirty = true;
                        report.moved += 1;
                    }
                    Action::LocalMkdir { path, id } => {
                        let p = local_path(&dir, path, true)?;
                        if let Err(e) = std::fs::create_dir(&p)
                            && e.kind() != std::io::ErrorKind::AlreadyExists
                        {
                            return Err(io(&p)(e));
                        }
                        let meta = std::fs::symlink_metadata(&p).map_err(io(&p))?;
                        if !meta.is_dir() {
                            return Err(io(&p)(std::io::Error::new(
                                std::io::ErrorKind::InvalidInput,
                                "not a folder (a symbolic link is never followed)",
                            )));
                        }
                        m.base.insert(path.clone(), folder_base(*id, &meta));
                        report.folders += 1;
                    }
                    Action::RemoteMkdir { path } => {
                        let p = local_path(&dir, path, false)?;
                        let parts: Vec<&str> = path.split('/').collect();
                        let id = self.ensure_folders(
                            w,
                            EntryId::ROOT,
                            &parts,
                            &mut PutReport::default(),
                        )?;
                        let meta = std::fs::symlink_metadata(&p).map_err(io(&p))?;
                        m.base.insert(path.clone(), folder_base(id.0, &meta));
                        remote_dirty = true;
                        report.folders += 1;
                    }
                    Action::ConflictCopy { path } => {
                        let p = local_path(&dir, path, false)?;
                        let copy = apply::conflict_path(&p, &who, now);
                        std::fs::rename(&p, &copy).map_err(io(&p))?;
                        tracing::info!(path = %p.display(), copy = %copy.display(), "conflict: local version kept as a copy");
                        report.conflicts += 1;
                    }
                    Action::Upload { path, id } => {
                        let p = local_path(&dir, path, false)?;
                        let secret = self.convergence(w)?;
                        let Some(sealed) =
                            self.seal_file(w, &secret, &p, &mut pending, report, pump)?
                        else {
                            report.unsettled += 1;
                            return Ok(());
                        };
                        let parts: Vec<&str> = parent_of(path)
                            .split('/')
                            .filter(|c| !c.is_empty())
                            .collect();
                        let name = path.rsplit('/').next().unwrap_or(path);
                        let parent = self.ensure_folders(
                            w,
                            EntryId::ROOT,
                            &parts,
                            &mut PutReport::default(),
                        )?;
                        let doc = self.doc(w)?;
                        let known = id.map(EntryId).and_then(|i| doc.crdt.stat(i));
                        // (Not inside the match: a tree still held would be copied by the edit.)
                        let existing = doc.crdt.tree().child(parent, name).map(|n| (n.id, n.kind));
                        let target = match known {
                            Some(n) if n.kind == Kind::File => n.id,
                            _ => match existing {
                                Some((i, Kind::File)) => i,
                                Some(_) => {
                                    return Err(NodeError::Invalid(format!(
                                        "{path}: a folder in the workspace"
                                    )));
                                }
                                None => {
                                    doc.crdt.create_file(&mut OsIds, parent, name, now as i64)?
                                }
                            },
                        };
                        let hash = sealed.manifest.content_hash;
                        let size = sealed.manifest.size;
                        doc.crdt.write_content(
                            &mut OsIds,
                            target,
                            sealed.manifest,
                            &author,
                            now as i64,
                        )?;
                        m.base.insert(
                            path.clone(),
                            BaseEntry {
                                id: target.0,
                                kind: EntryKind::File,
                                hash,
                                size: sealed.size,
                                mtime_ns: sealed.mtime_ns,
                                inode: sealed.inode,
                            },
                        );
                        remote_dirty = true;
                        report.uploaded += 1;
                        report.bytes_up += size;
                        files_since += 1;
                        bytes_since += size;
                        if files_since >= FILES_PER_COMMIT || bytes_since >= BYTES_PER_COMMIT {
                            report.new_blocks += self.flush_blocks(w, &mut pending)? as u64;
                            self.commit(w)?;
                            files_since = 0;
                            bytes_since = 0;
                            remote_dirty = false;
                            pump(self);
                            pumped = std::time::Instant::now();
                        }
                    }
                    Action::Download { path, id, expect } => {
                        let p = local_path(&dir, path, true)?;
                        let Some(node) = self.doc(w)?.crdt.stat(EntryId(*id)) else {
                            return Ok(());
                        };
                        let (chunks, hash, size, stamp) = match &node.current {
                            Some(v) => (
                                v.manifest.chunks.clone(),
                                v.manifest.content_hash,
                                v.manifest.size,
                                apply::Stamp {
                                    mtime_ms: v.manifest.modified_ms,
                                    mode: v.manifest.mode,
                                },
                            ),
                            None => (
                                Vec::new(),
                                *blake3::hash(b"").as_bytes(),
                                0,
                                apply::Stamp {
                                    mtime_ms: 0,
                                    mode: None,
                                },
                            ),
                        };
                        if chunks.iter().any(|c| !self.blocks.contains(&c.id)) {
                            report.pending += 1;
                            return Ok(());
                        }
                        let store = &self.store;
                        if size <= SMALL_FILE {
                            // Small files land in parallel batches (their fsyncs overlap).
                            let mut plain = Vec::with_capacity(size as usize);
                            for c in &chunks {
                                let bytes =
                                    store.block(&c.id)?.ok_or_else(|| NodeError::NotSynced {
                                        path: path.clone(),
                                        missing: 1,
                                    })?;
                                plain.extend_from_slice(&seal::open_block(
                                    &bytes,
                                    &BlockId(c.id),
                                    &ChunkKey::from_bytes(&c.key),
                                )?);
                            }
                            batch_bytes += plain.len();
                            batch.push(Job {
                                path: path.clone(),
                                target: p,
                                id: *id,
                                hash,
                                stamp,
                                expect: *expect,
                                plain,
                            });
                            if batch.len() >= BATCH_FILES || batch_bytes >= BATCH_BYTES {
                                land_batch(m, report, std::mem::take(&mut batch), &who, now);
                                batch_bytes = 0;
                            }
                            return Ok(());
                        }
                        let mut it = chunks.iter().map(|c: &ChunkRef| {
                            let bytes = store
                                .block(&c.id)
                                .map_err(std::io::Error::other)?
                                .ok_or_else(|| std::io::Error::other("block missing"))?;
                            seal::open_block(&bytes, &BlockId(c.id), &ChunkKey::from_bytes(&c.key))
                                .map_err(std::io::Error::other)
                        });
                        let landed =
                            apply::land(&p, &mut it, &hash, stamp, expect.as_ref(), &who, now)
                                .map_err(io(&p))?;
                        record_landed(m, report, path, *id, hash, &p, landed)?;
                    }
                    Action::LocalDelete { path, expect } => {
                        let p = local_path(&dir, path, false)?;
                        if apply::delete_if_still(&p, expect) {
                            m.base.remove(path);
                            report.deleted += 1;
                        }
                    }
                    Action::RemoteDelete { path, id } => {
                        let doc = self.doc(w)?;
                        if doc.crdt.stat(EntryId(*id)).is_some() {
                            doc.crdt.delete(EntryId(*id), now as i64)?;
                            remote_dirty = true;
                            report.deleted += 1;
                        }
                        m.base.remove(path);
                    }
                    Action::Record { path, base } => {
                        m.base.insert(path.clone(), *base);
                    }
                    Action::Forget { path } => {
                        m.base.remove(path);
                    }
                    Action::Refused { path } => report.refused.push(path.clone()),
                }
                Ok(())
            })();
            if let Err(e) = result {
                report.errors.push(format!("{}: {e}", plan::action_path(a)));
            }
            if pumped.elapsed() >= crate::node::files::PUMP_EVERY {
                report.new_blocks += self.flush_blocks(w, &mut pending)? as u64;
                if remote_dirty {
                    self.commit(w)?;
                    remote_dirty = false;
                    files_since = 0;
                    bytes_since = 0;
                }
                pump(self);
                pumped = std::time::Instant::now();
            }
        }
        if !batch.is_empty() {
            land_batch(m, report, batch, &who, now_ms());
        }
        report.new_blocks += self.flush_blocks(w, &mut pending)? as u64;
        if remote_dirty {
            self.commit(w)?;
        }
        Ok(())
    }
}

/// Files up to this size land in parallel batches.
const SMALL_FILE: u64 = 1 << 20;
/// Files per batch.
const BATCH_FILES: usize = 256;
/// Bytes per batch.
const BATCH_BYTES: usize = 32 << 20;
/// Threads landing a batch.
const LANDERS: usize = 8;

/// A small file to land, its content already opened and complete.
struct Job {
    path: String,
    target: PathBuf,
    id: [u8; 16],
    hash: [u8; 32],
    stamp: apply::Stamp,
    expect: Option<BaseEntry>,
    plain: Vec<u8>,
}

/// Lands a batch of small files on a few threads (each landing is atomic and checked on its
/// own, see `apply::land`), then records what landed.
fn land_batch(m: &mut Mirror, report: &mut RoundReport, jobs: Vec<Job>, who: &str, now: u64) {
    let per = jobs.len().div_ceil(LANDERS).max(1);
    let results: Vec<(&Job, std::io::Result<Landed>)> = std::thread::scope(|sc| {
        let handles: Vec<_> = jobs
            .chunks(per)
            .map(|part| {
                sc.spawn(move || {
                    part.iter()
                        .map(|j| {
                            let mut it = std::iter::once(Ok(j.plain.clone()));
                            let r = apply::land(
                                &j.target,
                                &mut it,
                                &j.hash,
                                j.stamp,
                                j.expect.as_ref(),
                                who,
                                now,
                            );
                            (j, r)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (j, r) in results {
        let outcome = r
            .map_err(io(&j.target))
            .and_then(|landed| record_landed(m, report, &j.path, j.id, j.hash, &j.target, landed));
        if let Err(e) = outcome {
            report.errors.push(format!("{}: {e}", j.path));
        }
    }
}

/// Records a landed download in the last-synced state.
fn record_landed(
    m: &mut Mirror,
    report: &mut RoundReport,
    path: &str,
    id: [u8; 16],
    hash: [u8; 32],
    target: &Path,
    landed: Landed,
) -> Result<(), NodeError> {
    match landed {
        Landed::InPlace => {
            let meta = std::fs::symlink_metadata(target).map_err(io(target))?;
            m.base.insert(
                path.to_owned(),
                BaseEntry {
                    id,
                    kind: EntryKind::File,
                    hash,
                    size: meta.len(),
                    mtime_ns: scan::mtime_ns(&meta),
                    inode: scan::inode(&meta),
                },
            );
            report.downloaded += 1;
            report.bytes_down += meta.len();
        }
        Landed::Beside(_) => {
            // The local file changed meanwhile: remember the workspace version as synced but
            // force a re-read, so the local change is uploaded over it next round (the copy
            // beside keeps the workspace's).
            m.base.insert(
                path.to_owned(),
                BaseEntry {
                    id,
                    kind: EntryKind::File,
                    hash,
                    size: u64::MAX,
                    mtime_ns: 0,
                    inode: 0,
                },
            );
            report.conflicts += 1;
        }
    }
    Ok(())
}

fn folder_base(id: [u8; 16], meta: &std::fs::Metadata) -> BaseEntry {
    BaseEntry {
        id,
        kind: EntryKind::Folder,
        hash: [0; 32],
        size: 0,
        mtime_ns: 0,
        inode: scan::inode(meta),
    }
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    count: u64,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl Node {
    /// Chunks and seals a file; new blocks go to `pending` (flushed to the store as it fills).
    /// Re-reads a file that changed while it was read; `None` if it kept changing.
    fn seal_file(
        &mut self,
        w: WorkspaceId,
        secret: &seal::ConvergenceSecret,
        path: &Path,
        pending: &mut Vec<(BlockId, Vec<u8>)>,
        report: &mut RoundReport,
        pump: &mut dyn FnMut(&mut Node),
    ) -> Result<Option<Sealed>, NodeError> {
        for _ in 0..scan::REREADS {
            let file = std::fs::File::open(path).map_err(io(path))?;
            let before = file.metadata().map_err(io(path))?;
            let mut reader = Hashing {
                inner: std::io::BufReader::with_capacity(1 << 20, file),
                hasher: blake3::Hasher::new(),
                count: 0,
            };
            let mut chunks = Vec::new();
            let mut pending_bytes: u64 = if pending.is_empty() {
                0
            } else {
                pending.iter().map(|p| p.1.len() as u64).sum()
            };
            let mut pumped = std::time::Instant::now();
            for b in secret.seal_stream(&mut reader) {
                let b = b.map_err(io(path))?;
                chunks.push(ChunkRef {
                    id: b.id.0,
                    key: *b.key.as_bytes(),
                    len: b.plain_len as u32,
                });
                if !self.blocks.contains(&b.id.0) {
                    pending_bytes += b.bytes.len() as u64;
                    pending.push((b.id, b.bytes));
                }
                // Blocks are content-addressed: storing them before we know the file held
                // still costs nothing but space if it did not.
                if pending_bytes >= BYTES_PER_COMMIT {
                    report.new_blocks += self.flush_blocks(w, pending)? as u64;
                }
                if pumped.elapsed() >= crate::node::files::PUMP_EVERY {
                    pump(self);
                    pumped = std::time::Instant::now();
                }
            }
            let after = std::fs::symlink_metadata(path).map_err(io(path))?;
            let same = after.len() == reader.count
                && scan::mtime_ns(&after) == scan::mtime_ns(&before)
                && scan::inode(&after) == scan::inode(&before);
            if !same {
                tracing::debug!(path = %path.display(), "changed while read; reading again");
                continue;
            }
            let mtime_ns = scan::mtime_ns(&after);
            return Ok(Some(Sealed {
                manifest: Manifest {
                    size: reader.count,
                    chunks,
                    content_hash: *reader.hasher.finalize().as_bytes(),
                    modified_ms: mtime_ns / 1_000_000,
                    mode: scan::mode_bits(&after),
                },
                size: after.len(),
                mtime_ns,
                inode: scan::inode(&after),
            }));
        }
        Ok(None)
    }
}
