//! The registered mirrors (kept in the store so a daemon restores them at start), and what the
//! daemon's mirror runner needs to know of the node (whether anything arrived for a workspace).
//!
//! Invariants: a mirror's directory is absolute, an existing directory, outside the home, and
//! neither inside nor around another mirror's directory; one mirror per workspace.

use std::path::{Path, PathBuf};

use crate::control::MirrorInfo;
use crate::node::{Node, NodeError, now_ms};
use crate::store::MirrorRecord;
use crate::workspace::WorkspaceId;

fn inside(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

impl Node {
    /// Registers a mirror of `w` at `dir` (created if missing). Returns the canonical directory.
    pub fn register_mirror(&mut self, w: WorkspaceId, dir: &Path) -> Result<PathBuf, NodeError> {
        if !dir.is_absolute() {
            return Err(NodeError::Invalid(format!(
                "{} is not an absolute path",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|err| NodeError::Io {
            path: dir.to_owned(),
            err,
        })?;
        let dir = dir.canonicalize().map_err(|err| NodeError::Io {
            path: dir.to_owned(),
            err,
        })?;
        if !dir.is_dir() {
            return Err(NodeError::Invalid(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let home = self
            .home()
            .canonicalize()
            .unwrap_or_else(|_| self.home().to_owned());
        if inside(&dir, &home) {
            return Err(NodeError::Invalid(
                "a mirror cannot be inside or around the home directory".into(),
            ));
        }
        self.doc(w)?;
        for (other, rec) in self.store.mirrors()? {
            if other != w && inside(&dir, Path::new(&rec.dir)) {
                return Err(NodeError::Invalid(format!(
                    "{} overlaps the mirror of {other} at {}",
                    dir.display(),
                    rec.dir
                )));
            }
        }
        let dir_text = dir
            .to_str()
            .ok_or_else(|| NodeError::Invalid("the directory's path is not UTF-8".into()))?
            .to_owned();
        let previous = self.store.mirrors()?.into_iter().find(|(o, _)| *o == w);
        if let Some((_, rec)) = previous
            && rec.dir != dir_text
        {
            // Another directory: what was synced with the old one says nothing about this one.
            self.store.remove_mirror(w)?;
        }
        self.store.put_mirror(
            w,
            &MirrorRecord {
                dir: dir_text,
                added_ms: now_ms(),
            },
        )?;
        Ok(dir)
    }

    /// Forgets the mirror of `w` (files on both sides stay).
    pub fn unregister_mirror(&mut self, w: WorkspaceId) -> Result<(), NodeError> {
        if !self.store.remove_mirror(w)? {
            return Err(NodeError::NotFound {
                what: "mirror",
                query: w.to_string(),
            });
        }
        Ok(())
    }

    /// The registered mirrors.
    pub fn mirrors(&self) -> Result<Vec<(WorkspaceId, PathBuf)>, NodeError> {
        Ok(self
            .store
            .mirrors()?
            .into_iter()
            .map(|(w, r)| (w, PathBuf::from(r.dir)))
            .collect())
    }

    /// The registered mirrors as `sync --list` shows them without a daemon.
    pub fn mirror_infos(&mut self) -> Result<Vec<MirrorInfo>, NodeError> {
        let mut out = Vec::new();
        for (w, dir) in self.mirrors()? {
            let name = self
                .workspace_info(w)
                .map(|i| i.name)
                .unwrap_or_else(|_| w.to_string());
            let read_only = self
                .role_in(w)
                .is_none_or(|r| r < crate::workspace::Role::Contributor);
            out.push(MirrorInfo {
                ws: w.to_string(),
                name,
                dir: dir.display().to_string(),
                running: false,
                read_only,
                last_round_ms: None,
                totals: Default::default(),
            });
        }
        Ok(out)
    }

    /// A mark that changes when something arrives for `w` (an item from a peer or a block), so a
    /// mirror knows a round may have work.
    pub fn arrival_mark(&self, w: WorkspaceId) -> (Option<u64>, usize) {
        (self.last_sync.get(&w).copied(), self.blocks.len())
    }
}
