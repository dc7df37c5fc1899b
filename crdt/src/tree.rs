//! The materialized tree: the view of the document that the folder mirror and the API read.
//!
//! Invariants (established by [`crate::resolve`]): every node's parent chain reaches the root (no
//! cycle, no orphan); every node's parent is a folder; no two nodes in one folder share a name;
//! every name satisfies [`crate::names::check_name`]. The tree is a pure function of the set of
//! changes, and [`Tree::canonical_bytes`] / [`Tree::digest`] are byte-identical on every replica
//! holding the same changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::ids::{EntryId, hex};
use crate::model::{Kind, Version};

/// One visible entry of the materialized tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The entry id (for a conflict copy not yet made real: its derived id).
    pub id: EntryId,
    /// The parent folder ([`EntryId::ROOT`] for the root itself).
    pub parent: EntryId,
    /// The final name, after clash suffixes.
    pub name: String,
    /// File or folder.
    pub kind: Kind,
    /// For files: the current version (`None` for a file never written: empty).
    pub current: Option<Arc<Version>>,
    /// For a conflict copy: the entry whose losing concurrent version it shows.
    pub conflict_of: Option<EntryId>,
    /// True for a derived conflict copy that exists only in this view (operations on it
    /// first make it a real entry).
    pub is_virtual: bool,
}

/// The materialized tree. Build it with `Workspace::tree`.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    pub(crate) nodes: BTreeMap<EntryId, Node>,
    /// Children of each folder, sorted by name bytes.
    pub(crate) children: BTreeMap<EntryId, Vec<EntryId>>,
    /// Facts that tell local edits whether they may patch the tree in place (see
    /// `Workspace`'s incremental view): a cycle was undone or a parent replaced by the root.
    pub(crate) irregular: bool,
    /// Some visible entry is deleted itself and shown only because a descendant is alive.
    pub(crate) resurrected: bool,
    /// Folders where a clash suffix was given.
    pub(crate) clash_folders: BTreeSet<EntryId>,
    /// Entries that have derived (virtual) conflict copies.
    pub(crate) with_copies: BTreeSet<EntryId>,
}

/// Trees are equal when their nodes and folder listings are (the hint flags are conservative
/// over-approximations and may differ between a patched and a fresh tree).
impl PartialEq for Tree {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes && self.children == other.children
    }
}
impl Eq for Tree {}

impl Tree {
    /// Number of visible entries, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when only the root exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// A visible entry.
    pub fn get(&self, id: EntryId) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// The visible children of a folder, sorted by name (empty for files and unknown ids).
    pub fn children(&self, folder: EntryId) -> impl Iterator<Item = &Node> + '_ {
        self.children
            .get(&folder)
            .into_iter()
            .flatten()
            .filter_map(|id| self.nodes.get(id))
    }

    /// The child of `folder` named `name`.
    pub fn child(&self, folder: EntryId, name: &str) -> Option<&Node> {
        let kids = self.children.get(&folder)?;
        let i = kids
            .binary_search_by(|id| self.name_of(*id).cmp(name))
            .ok()?;
        self.nodes.get(&kids[i])
    }

    pub(crate) fn name_of(&self, id: EntryId) -> &str {
        self.nodes.get(&id).map_or("", |n| n.name.as_str())
    }

    /// Resolves a `/`-separated path from the root (`""` and `"/"` are the root; empty
    /// components are skipped).
    pub fn resolve(&self, path: &str) -> Option<&Node> {
        let mut cur = self.nodes.get(&EntryId::ROOT)?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur = self.child(cur.id, part)?;
        }
        Some(cur)
    }

    /// The path of a visible entry from the root, `/`-separated, without a leading slash.
    pub fn path_of(&self, id: EntryId) -> Option<String> {
        let mut parts = Vec::new();
        let mut cur = self.nodes.get(&id)?;
        while !cur.id.is_root() {
            parts.push(cur.name.as_str());
            cur = self.nodes.get(&cur.parent)?;
        }
        parts.reverse();
        Some(parts.join("/"))
    }

    /// Every visible entry (root excluded), in id order, without building paths (cheaper than
    /// [`Tree::walk`] when paths are not needed).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        self.nodes.values().filter(|n| !n.id.is_root())
    }

    /// Every visible entry (root excluded) with its path, depth first, children by name.
    pub fn walk(&self) -> Vec<(String, &Node)> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<(String, EntryId)> = vec![(String::new(), EntryId::ROOT)];
        while let Some((prefix, folder)) = stack.pop() {
            let kids: Vec<&Node> = self.children(folder).collect();
            for node in kids.iter().rev() {
                let path = if prefix.is_empty() {
                    node.name.clone()
                } else {
                    format!("{prefix}/{}", node.name)
                };
                stack.push((path, node.id));
            }
            if let Some(n) = self.nodes.get(&folder).filter(|_| !folder.is_root()) {
                out.push((prefix, n));
            }
        }
        out
    }

    /// A canonical serialization: one line per node, depth first, children by name bytes.
    /// Equal on every replica that holds the same changes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.nodes.len() * 96);
        for (path, n) in self.walk() {
            let kind = match n.kind {
                Kind::File => 'f',
                Kind::Folder => 'd',
            };
            let (vid, size, hash) = match &n.current {
                Some(v) => (
                    v.id.to_hex(),
                    v.manifest.size,
                    hex(&v.manifest.content_hash),
                ),
                None => ("-".into(), 0, "-".into()),
            };
            let conflict = n.conflict_of.map_or_else(|| "-".to_owned(), |c| c.to_hex());
            let line = format!(
                "{kind}\t{}\t{}\t{vid}\t{size}\t{hash}\t{conflict}\t{}\t{path}\n",
                n.id.to_hex(),
                n.parent.to_hex(),
                u8::from(n.is_virtual)
            );
            out.extend_from_slice(line.as_bytes());
        }
        out
    }

    /// BLAKE3 of [`Tree::canonical_bytes`].
    pub fn digest(&self) -> [u8; 32] {
        *blake3::hash(&self.canonical_bytes()).as_bytes()
    }
}
