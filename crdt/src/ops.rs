//! Local operations: create, rename, move, delete, write content.
//!
//! Invariants: every operation validates against the current view before it writes anything
//! (so an `Err` leaves the workspace unchanged), never creates a clash or a cycle itself, and
//! writes only the entry fields it changes (a move writes `p`, a rename `n`), so concurrent
//! edits of different fields of one entry all survive. Any operation on an entry that shows
//! conflict copies first makes those copies real entries (deterministic ids, identical version
//! bytes on every replica), so resolving a conflict never makes a visible copy vanish.
//! The view is patched in place only under the conditions spelled out at each patch; otherwise
//! it is dropped and rebuilt on the next read.

use std::sync::Arc;

use automerge::ScalarValue;

use crate::codec::{self, Named, Place};
use crate::error::CrdtError;
use crate::ids::{EntryId, IdSource, VersionId, conflict_copy_version};
use crate::model::{Author, Kind, Manifest, Version};
use crate::names::check_name;
use crate::schema::Field;
use crate::tree::{Node, Tree};
use crate::workspace::Workspace;

impl Workspace {
    /// Creates an empty folder `name` in `parent`.
    pub fn create_folder(
        &mut self,
        ids: &mut impl IdSource,
        parent: EntryId,
        name: &str,
        now_ms: i64,
    ) -> Result<EntryId, CrdtError> {
        self.create_entry(ids.entry_id(), parent, name, Kind::Folder, now_ms)
    }

    /// Creates an empty file `name` in `parent` (write its content with
    /// [`Workspace::write_content`]).
    pub fn create_file(
        &mut self,
        ids: &mut impl IdSource,
        parent: EntryId,
        name: &str,
        now_ms: i64,
    ) -> Result<EntryId, CrdtError> {
        self.create_entry(ids.entry_id(), parent, name, Kind::File, now_ms)
    }

    fn create_entry(
        &mut self,
        id: EntryId,
        parent: EntryId,
        name: &str,
        kind: Kind,
        now: i64,
    ) -> Result<EntryId, CrdtError> {
        check_name(name)?;
        let tree = self.tree();
        folder_of(&tree, parent)?;
        if tree.child(parent, name).is_some() {
            return Err(CrdtError::NameTaken(name.to_owned()));
        }
        if self.raw.entries.contains_key(&id) {
            return Err(CrdtError::NameTaken(id.to_hex())); // id reuse: the source is broken
        }
        let place = Place {
            time: now,
            kind,
            parent,
            prev: parent,
        };
        drop(tree); // the view must be uniquely owned to be patched without a copy
        self.put_field(id, Field::Place, bytes(codec::encode_place(&place)))?;
        self.put_field(
            id,
            Field::Name,
            bytes(codec::encode_name(&Named {
                time: now,
                name: name.to_owned(),
            })),
        )?;
        self.touch(now);
        // Patch: a fresh id under a visible folder with a free name changes nothing else, unless
        // some entry already names this id as a (missing) parent: only possible if irregular.
        self.patch_view(|t| {
            if t.irregular || t.clash_folders.contains(&parent) {
                return false;
            }
            let node = Node {
                id,
                parent,
                name: name.to_owned(),
                kind,
                current: None,
                conflict_of: None,
                is_virtual: false,
            };
            insert_child(t, node);
            if kind == Kind::Folder {
                t.children.insert(id, Vec::new());
            }
            true
        });
        Ok(id)
    }

    /// Renames an entry within its folder.
    pub fn rename(&mut self, id: EntryId, name: &str, now_ms: i64) -> Result<(), CrdtError> {
        check_name(name)?;
        let id = self.prepare_edit(id, now_ms)?;
        let tree = self.tree();
        let node = tree.get(id).ok_or(CrdtError::NotFound(id))?.clone();
        if node.name == name {
            return Ok(());
        }
        if tree.child(node.parent, name).is_some() {
            return Err(CrdtError::NameTaken(name.to_owned()));
        }
        drop(tree); // the view must be uniquely owned to be patched without a copy
        self.put_field(
            id,
            Field::Name,
            bytes(codec::encode_name(&Named {
                time: now_ms,
                name: name.to_owned(),
            })),
        )?;
        self.touch(now_ms);
        // Patch: with no suffix in the folder and no conflict copies named after this entry,
        // only this node's name changes.
        self.patch_view(|t| {
            if t.clash_folders.contains(&node.parent) || t.with_copies.contains(&id) {
                return false;
            }
            remove_child(t, node.parent, id);
            let mut n = node.clone();
            n.name = name.to_owned();
            insert_child(t, n);
            true
        });
        Ok(())
    }

    /// Moves an entry into another folder, keeping its name.
    pub fn move_entry(
        &mut self,
        id: EntryId,
        new_parent: EntryId,
        now_ms: i64,
    ) -> Result<(), CrdtError> {
        let id = self.prepare_edit(id, now_ms)?;
        let tree = self.tree();
        let node = tree.get(id).ok_or(CrdtError::NotFound(id))?.clone();
        folder_of(&tree, new_parent)?;
        if node.parent == new_parent {
            return Ok(());
        }
        let mut up = new_parent;
        loop {
            if up == id {
                return Err(CrdtError::WouldCycle(id));
            }
            if up.is_root() {
                break;
            }
            up = tree.get(up).map_or(EntryId::ROOT, |n| n.parent);
        }
        if tree.child(new_parent, &node.name).is_some() {
            return Err(CrdtError::NameTaken(node.name.clone()));
        }
        let stored = self
            .raw
            .entries
            .get(&id)
            .and_then(|r| r.name())
            .map(|n| n.name.clone());
        let place = Place {
            time: now_ms,
            kind: node.kind,
            parent: new_parent,
            prev: node.parent,
        };
        drop(tree); // the view must be uniquely owned to be patched without a copy
        self.put_field(id, Field::Place, bytes(codec::encode_place(&place)))?;
        if stored.as_deref() != Some(node.name.as_str()) {
            // Pin the name the user saw (it carried a clash suffix or was a fallback).
            let named = Named {
                time: now_ms,
                name: node.name.clone(),
            };
            self.put_field(id, Field::Name, bytes(codec::encode_name(&named)))?;
        }
        self.touch(now_ms);
        // Patch: with no undone cycle or replaced parent (a move could repair those), no folder
        // kept alive only by a descendant (it could vanish), and no suffix in the old folder.
        self.patch_view(|t| {
            if t.irregular
                || t.resurrected
                || t.clash_folders.contains(&node.parent)
                || t.with_copies.contains(&id)
            {
                return false;
            }
            remove_child(t, node.parent, id);
            let mut n = node.clone();
            n.parent = new_parent;
            insert_child(t, n);
            true
        });
        Ok(())
    }

    /// Deletes an entry; a folder is deleted with everything visible inside it (each entry gets
    /// its own tombstone, so a concurrent edit inside brings back that file and its folders).
    pub fn delete(&mut self, id: EntryId, now_ms: i64) -> Result<(), CrdtError> {
        let id = self.prepare_edit(id, now_ms)?;
        let tree = self.tree();
        let node = tree.get(id).ok_or(CrdtError::NotFound(id))?.clone();
        let mut doomed = vec![id];
        let mut i = 0;
        while i < doomed.len() {
            doomed.extend(
                tree.children(doomed[i])
                    .filter(|n| !n.is_virtual)
                    .map(|n| n.id),
            );
            i += 1;
        }
        drop(tree); // the view must be uniquely owned to be patched without a copy
        for d in &doomed {
            self.put_field(*d, Field::Deleted, ScalarValue::Int(now_ms.max(1)))?;
        }
        self.touch(now_ms);
        self.patch_view(|t| {
            if t.irregular || t.resurrected || t.clash_folders.contains(&node.parent) {
                return false;
            }
            remove_child(t, node.parent, id);
            let mut stack = vec![id];
            while let Some(x) = stack.pop() {
                t.nodes.remove(&x);
                t.with_copies.remove(&x);
                if let Some(kids) = t.children.remove(&x) {
                    stack.extend(kids);
                }
            }
            true
        });
        Ok(())
    }

    /// Writes a new content version of a file; it supersedes every current version (resolving
    /// any conflict: the conflict copies become real entries first) and undeletes the file.
    pub fn write_content(
        &mut self,
        ids: &mut impl IdSource,
        id: EntryId,
        manifest: Manifest,
        author: &Author,
        now_ms: i64,
    ) -> Result<VersionId, CrdtError> {
        manifest.validate()?;
        author.validate()?;
        let id = self.prepare_edit(id, now_ms)?;
        let node = self.tree().get(id).ok_or(CrdtError::NotFound(id))?.clone();
        if node.kind != Kind::File {
            return Err(CrdtError::NotAFile(id));
        }
        let preds = self.head_ids(id);
        let version = Version {
            id: ids.version_id(),
            manifest,
            author: author.clone(),
            preds,
            restored_from: None,
        };
        self.put_version(id, &version)?;
        self.touch(now_ms);
        let current = Arc::new(version.clone());
        self.patch_view(|t| {
            match t.nodes.get_mut(&id) {
                Some(n) if !n.is_virtual => n.current = Some(current),
                _ => return false,
            }
            !t.with_copies.contains(&id)
        });
        Ok(version.id)
    }

    pub(crate) fn head_ids(&self, id: EntryId) -> Vec<VersionId> {
        self.raw
            .entries
            .get(&id)
            .map(|r| r.heads().iter().map(|v| v.id).collect())
            .unwrap_or_default()
    }

    pub(crate) fn put_version(&mut self, id: EntryId, version: &Version) -> Result<(), CrdtError> {
        self.put_field(
            id,
            Field::Version(version.id),
            bytes(codec::encode_version(version)),
        )?;
        // A write the concurrent deletes did not see keeps the entry alive (edit beats delete).
        self.put_field(
            id,
            Field::Deleted,
            ScalarValue::Int(crate::schema::alive_marker(version.id)),
        )
    }

    /// Resolves the target of an edit: the root is refused, a virtual conflict copy is made
    /// real, and an entry showing conflict copies has them made real. Returns the real id.
    fn prepare_edit(&mut self, id: EntryId, now: i64) -> Result<EntryId, CrdtError> {
        if id.is_root() {
            return Err(CrdtError::IsRoot);
        }
        let tree = self.tree();
        let node = tree.get(id).ok_or(CrdtError::NotFound(id))?;
        let copies: Vec<Node> = if node.is_virtual {
            vec![node.clone()]
        } else if tree.with_copies.contains(&id) {
            tree.children(node.parent)
                .filter(|n| n.is_virtual && n.conflict_of == Some(id))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        for copy in copies {
            self.promote(&copy, now)?;
        }
        Ok(id)
    }

    /// Makes a virtual conflict copy a real entry. Replicas promoting the same copy write the
    /// same id and identical version bytes; only the place/name times differ (greatest wins).
    fn promote(&mut self, copy: &Node, now: i64) -> Result<(), CrdtError> {
        let (Some(origin), Some(loser)) = (copy.conflict_of, copy.current.as_ref()) else {
            return Ok(());
        };
        let mut v = (**loser).clone();
        v.id = conflict_copy_version(origin, loser.id);
        v.preds = Vec::new();
        v.restored_from = None;
        let place = Place {
            time: now,
            kind: Kind::File,
            parent: copy.parent,
            prev: copy.parent,
        };
        self.put_field(copy.id, Field::Place, bytes(codec::encode_place(&place)))?;
        let named = Named {
            time: now,
            name: copy.name.clone(),
        };
        self.put_field(copy.id, Field::Name, bytes(codec::encode_name(&named)))?;
        self.put_field(
            copy.id,
            Field::Version(v.id),
            bytes(codec::encode_version(&v)),
        )?;
        self.view = None;
        Ok(())
    }

    pub(crate) fn touch(&mut self, now: i64) {
        self.last_op_ms = self.last_op_ms.max(now);
    }

    /// Applies `f` to the kept view; drops the view when `f` says the patch does not apply.
    pub(crate) fn patch_view(&mut self, f: impl FnOnce(&mut Tree) -> bool) {
        let Some(view) = self.view.take() else { return };
        let mut t = Arc::unwrap_or_clone(view);
        if f(&mut t) {
            self.view = Some(Arc::new(t));
        }
    }
}

fn bytes(b: Vec<u8>) -> ScalarValue {
    ScalarValue::Bytes(b)
}

fn folder_of(tree: &Tree, id: EntryId) -> Result<(), CrdtError> {
    match tree.get(id) {
        None => Err(CrdtError::NotFound(id)),
        Some(n) if n.kind != Kind::Folder || n.is_virtual => Err(CrdtError::NotAFolder(id)),
        Some(_) => Ok(()),
    }
}

fn insert_child(t: &mut Tree, node: Node) {
    let (parent, id) = (node.parent, node.id);
    let name = node.name.clone();
    t.nodes.insert(id, node);
    let mut list = t.children.remove(&parent).unwrap_or_default();
    let pos = list
        .binary_search_by(|k| t.name_of(*k).cmp(&name))
        .unwrap_or_else(|p| p);
    list.insert(pos, id);
    t.children.insert(parent, list);
}

fn remove_child(t: &mut Tree, parent: EntryId, id: EntryId) {
    if let Some(list) = t.children.get_mut(&parent) {
        list.retain(|c| *c != id);
    }
}

impl Manifest {
    /// Convenience for tests and tools: a manifest of one chunk per slice length, with ids and
    /// hash derived from `seed`, and each chunk key derived from its id (not a real key).
    #[doc(hidden)]
    pub fn synthetic(seed: u64, chunk_lens: &[u32], modified_ms: i64) -> Manifest {
        let chunks: Vec<_> = chunk_lens
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&seed.to_be_bytes());
                id[8..16].copy_from_slice(&(i as u64).to_be_bytes());
                let key = blake3::derive_key("cloison-crdt synthetic chunk key", &id);
                crate::model::ChunkRef { id, key, len }
            })
            .collect();
        let mut content_hash = [0u8; 32];
        content_hash[..8].copy_from_slice(&seed.to_le_bytes());
        Manifest {
            size: chunk_lens.iter().map(|&l| u64::from(l)).sum(),
            chunks,
            content_hash,
            modified_ms,
            mode: None,
        }
    }
}
