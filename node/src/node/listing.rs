//! Listing and finding names: `ls` (one folder), `ls -R` (every entry under a folder, with its full path) and
//! `find` (names matching a pattern across every workspace this device can read).
//!
//! Both read only the decrypted documents this device already holds: `find` is a walk of local
//! trees, nothing is asked of a peer and no name leaves the device. A workspace whose key this
//! device does not hold has no readable tree, so nothing in it is ever found.
//!
//! Invariants: `find` returns at most [`MAX_FOUND`] entries (and says when it stopped there), so
//! its answer fits in one control frame; a pattern is matched against names only, case-insensitively.

use cloison_crdt::{EntryId, Kind, Tree};
use serde::{Deserialize, Serialize};

use super::{EntryInfo, Node, NodeError};
use crate::workspace::WorkspaceId;

/// Most entries `find` returns.
pub const MAX_FOUND: usize = 10_000;
/// Longest pattern accepted.
pub const MAX_PATTERN: usize = 1024;

/// An entry found by `find`, with its workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundEntry {
    /// Workspace id (hex).
    pub workspace: String,
    /// Workspace name.
    pub workspace_name: String,
    /// The entry (its `path` is from the workspace root).
    #[serde(flatten)]
    pub entry: EntryInfo,
}

/// What `find` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindReport {
    /// Matches, by workspace name then path.
    pub found: Vec<FoundEntry>,
    /// Whether the search stopped at [`MAX_FOUND`].
    pub truncated: bool,
}

/// A name pattern: a glob when it has `*`, `?` or `[`, otherwise a substring; both
/// case-insensitive.
enum Pattern {
    Glob(globset::GlobMatcher),
    Part(String),
}

impl Pattern {
    fn new(p: &str) -> Result<Pattern, NodeError> {
        if p.is_empty() || p.len() > MAX_PATTERN {
            return Err(NodeError::Invalid(format!(
                "a pattern of 1 to {MAX_PATTERN} bytes is needed"
            )));
        }
        if p.contains(['*', '?', '[']) {
            let g = globset::GlobBuilder::new(p)
                .case_insensitive(true)
                .build()
                .map_err(|e| NodeError::Invalid(format!("pattern {p:?}: {e}")))?;
            Ok(Pattern::Glob(g.compile_matcher()))
        } else {
            Ok(Pattern::Part(p.to_lowercase()))
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Glob(g) => g.is_match(name),
            Pattern::Part(p) => name.to_lowercase().contains(p.as_str()),
        }
    }
}

/// Every entry under `folder` (not itself), each once, in no particular order.
fn under(tree: &Tree, folder: EntryId) -> Vec<&cloison_crdt::Node> {
    let mut out = Vec::new();
    let mut stack = vec![folder];
    while let Some(f) = stack.pop() {
        let kids: Vec<&cloison_crdt::Node> = tree.children(f).collect();
        for n in kids.iter().rev() {
            if n.kind == Kind::Folder {
                stack.push(n.id);
            }
        }
        out.extend(kids);
    }
    out
}

/// How `ls`, `ls -R` and `find` describe an entry of `tree`.
fn entry_info(tree: &cloison_crdt::Tree, n: &cloison_crdt::Node) -> EntryInfo {
    EntryInfo {
        path: tree.path_of(n.id).unwrap_or_default(),
        name: n.name.clone(),
        kind: if n.kind == Kind::Folder {
            "folder"
        } else {
            "file"
        }
        .to_owned(),
        size: n.current.as_ref().map_or(0, |v| v.manifest.size),
        modified_ms: n.current.as_ref().map(|v| v.manifest.modified_ms),
        id: n.id.to_hex(),
        conflict_of: n.conflict_of.and_then(|c| tree.path_of(c)),
        hash: (n.kind == Kind::File).then(|| {
            n.current.as_ref().map_or_else(
                || hex::encode(blake3::hash(b"").as_bytes()),
                |v| hex::encode(v.manifest.content_hash),
            )
        }),
    }
}

/// Paths in tree order: folder by folder, so a folder comes right before what it holds (plain
/// string order would put `a b` between `a` and `a/x`).
fn by_components(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

impl Node {
    /// Lists a folder (or describes a file).
    pub fn ls(&mut self, w: WorkspaceId, path: &str) -> Result<Vec<EntryInfo>, NodeError> {
        let node = self.resolve_path(w, path)?;
        let tree = self.doc(w)?.crdt.tree();
        if node.kind == Kind::File {
            return Ok(vec![entry_info(&tree, &node)]);
        }
        Ok(tree
            .children(node.id)
            .map(|n| entry_info(&tree, n))
            .collect())
    }

    /// Every entry under a folder with its full path (`ls -R`), parents before their
    /// children; a file gives itself.
    pub fn ls_tree(&mut self, w: WorkspaceId, path: &str) -> Result<Vec<EntryInfo>, NodeError> {
        let node = self.resolve_path(w, path)?;
        let tree = self.doc(w)?.crdt.tree();
        if node.kind == Kind::File {
            return Ok(vec![entry_info(&tree, &node)]);
        }
        let mut out: Vec<EntryInfo> = under(&tree, node.id)
            .into_iter()
            .map(|n| entry_info(&tree, n))
            .collect();
        out.sort_by(|a, b| by_components(&a.path, &b.path));
        Ok(out)
    }

    /// Entries whose name matches `pattern` (see [`Pattern`]) in `only`, or in every workspace
    /// this device holds; local (see the module doc).
    pub fn find(
        &mut self,
        pattern: &str,
        only: Option<WorkspaceId>,
    ) -> Result<FindReport, NodeError> {
        let pattern = Pattern::new(pattern)?;
        let spaces: Vec<WorkspaceId> = match only {
            Some(w) => vec![w],
            None => self.engine.replica().workspaces.keys().copied().collect(),
        };
        let mut found = Vec::new();
        let mut truncated = false;
        'spaces: for w in spaces {
            let doc = self.doc(w)?;
            // No key, no title and no tree: nothing to read.
            let Some(title) = doc.crdt.title() else {
                continue;
            };
            let tree = doc.crdt.tree();
            for n in under(&tree, EntryId::ROOT) {
                if !pattern.matches(&n.name) {
                    continue;
                }
                if found.len() == MAX_FOUND {
                    truncated = true;
                    break 'spaces;
                }
                found.push(FoundEntry {
                    workspace: w.to_string(),
                    workspace_name: title.clone(),
                    entry: entry_info(&tree, n),
                });
            }
        }
        found.sort_by(|a, b| {
            (&a.workspace_name, &a.workspace)
                .cmp(&(&b.workspace_name, &b.workspace))
                .then_with(|| by_components(&a.entry.path, &b.entry.path))
        });
        Ok(FindReport { found, truncated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_globs_or_parts_and_ignore_case() {
        let p = Pattern::new("*.PDF").unwrap();
        assert!(p.matches("report.pdf") && p.matches("A.Pdf") && !p.matches("pdf.txt"));
        let p = Pattern::new("Quarter").unwrap();
        assert!(p.matches("q1-quarter.txt") && p.matches("QUARTERLY") && !p.matches("q1.txt"));
        let p = Pattern::new("q?.txt").unwrap();
        assert!(p.matches("Q1.txt") && !p.matches("q10.txt"));
        assert!(Pattern::new("").is_err());
        assert!(Pattern::new("[z-a]").is_err());
        assert!(Pattern::new(&"x".repeat(MAX_PATTERN + 1)).is_err());
    }

    #[test]
    fn tree_order_puts_a_folder_right_before_its_contents() {
        let mut v = vec!["a/x", "a b", "a", "a/x/y", "b"];
        v.sort_by(|a, b| by_components(a, b));
        assert_eq!(v, ["a", "a/x", "a/x/y", "a b", "b"]);
    }
}
