//! History: every version of every file, restores, deleted entries, and retention.
//!
//! Invariants: versions are immutable records that are never removed from the document, so
//! every version ever written stays listed by [`Workspace::versions`]. Retention is a pure
//! function of the document and the caller's `now`: it only says which versions are retained,
//! and it never drops a current (head) version.

use std::sync::Arc;

use automerge::ScalarValue;
use automerge::transaction::Transactable;

use crate::codec;
use crate::error::CrdtError;
use crate::ids::{EntryId, IdSource, VersionId};
use crate::model::{Author, Kind, Retention, Version};
use crate::schema::{self, Field, shard_of};
use crate::workspace::Workspace;

/// One version in an entry's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version (manifest, author, what it superseded).
    pub version: Arc<Version>,
    /// True for versions no other supersedes (the current one and any conflicting ones).
    pub head: bool,
}

/// An entry that is deleted and not visible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedEntry {
    /// Its id (restore it with [`Workspace::restore_entry`]).
    pub id: EntryId,
    /// Its last name.
    pub name: String,
    /// The folder it was in.
    pub parent: EntryId,
    /// File or folder.
    pub kind: Kind,
    /// When it was deleted (unix ms).
    pub deleted_ms: i64,
}

const DAY_MS: i64 = 86_400_000;

impl Workspace {
    /// Every version of an entry, oldest first (by modified time, then id).
    pub fn versions(&self, id: EntryId) -> Result<Vec<VersionInfo>, CrdtError> {
        let raw = self.raw.entries.get(&id).ok_or(CrdtError::NotFound(id))?;
        let heads: Vec<VersionId> = raw.heads().iter().map(|v| v.id).collect();
        let mut out: Vec<VersionInfo> = raw
            .versions
            .values()
            .map(|v| VersionInfo {
                version: Arc::clone(v),
                head: heads.contains(&v.id),
            })
            .collect();
        out.sort_by_key(|i| (i.version.manifest.modified_ms, i.version.id));
        Ok(out)
    }

    /// Every version of every entry the document knows (live or deleted, current or not), in
    /// no particular order: what a device may be asked to restore.
    pub fn all_versions(&self) -> impl Iterator<Item = &Arc<Version>> + '_ {
        self.raw
            .entries
            .values()
            .flat_map(|raw| raw.versions.values())
    }

    /// Versions of `id` that the retention policy keeps at time `now` (heads always).
    pub fn retained_versions(&self, id: EntryId, now_ms: i64) -> Result<Vec<VersionId>, CrdtError> {
        let all = self.versions(id)?;
        Ok(retained(&all, self.retention, now_ms))
    }

    /// Every `(entry, version)` the retention policy drops at time `now`: their blocks may be
    /// garbage-collected. Sorted; the same on every replica given the same changes and `now`.
    pub fn pruned_versions(&self, now_ms: i64) -> Vec<(EntryId, VersionId)> {
        if self.retention == Retention::KeepAll {
            return Vec::new();
        }
        let mut out = Vec::new();
        for id in self.raw.entries.keys() {
            let Ok(all) = self.versions(*id) else {
                continue;
            };
            let keep = retained(&all, self.retention, now_ms);
            out.extend(
                all.iter()
                    .filter(|v| !keep.contains(&v.version.id))
                    .map(|v| (*id, v.version.id)),
            );
        }
        out
    }

    /// Sets the retention policy (an owner's decision: the sync layer checks the role).
    pub fn set_retention(&mut self, policy: Retention, now_ms: i64) -> Result<(), CrdtError> {
        let s = usize::from(self.k);
        let value = ScalarValue::Bytes(codec::encode_retention(now_ms, policy));
        self.docs[s].put(automerge::ROOT, schema::KEY_RETENTION, value)?;
        self.dirty[s] = true;
        self.retention = schema::read_retention(&self.docs[s]);
        self.touch(now_ms);
        Ok(())
    }

    /// Makes an old version current again: writes a new version with its content (modified
    /// `now`, by `author`, `restored_from` set) that supersedes the current ones. Works on a
    /// deleted file too, which comes back.
    pub fn restore_version(
        &mut self,
        ids: &mut impl IdSource,
        id: EntryId,
        version: VersionId,
        author: &Author,
        now_ms: i64,
    ) -> Result<VersionId, CrdtError> {
        author.validate()?;
        let raw = self.raw.entries.get(&id).ok_or(CrdtError::NotFound(id))?;
        if raw.place().map(|p| p.kind) != Some(Kind::File) {
            return Err(CrdtError::NotAFile(id));
        }
        let old = raw.versions.get(&version).ok_or(CrdtError::NoSuchVersion)?;
        let mut manifest = old.manifest.clone();
        manifest.modified_ms = now_ms;
        let v = Version {
            id: ids.version_id(),
            manifest,
            author: author.clone(),
            preds: self.head_ids(id),
            restored_from: Some(version),
        };
        self.put_version(id, &v)?;
        self.touch(now_ms);
        self.view = None;
        Ok(v.id)
    }

    /// Entries that are deleted and not visible, most recently deleted first.
    pub fn deleted_entries(&mut self) -> Vec<DeletedEntry> {
        let tree = self.tree();
        let mut out: Vec<DeletedEntry> = self
            .raw
            .entries
            .iter()
            .filter(|(id, _)| tree.get(**id).is_none())
            .filter_map(|(id, raw)| {
                let place = raw.place()?;
                Some(DeletedEntry {
                    id: *id,
                    name: raw.name().map(|n| n.name.clone()).unwrap_or_default(),
                    parent: place.parent,
                    kind: place.kind,
                    deleted_ms: raw.deleted_at()?,
                })
            })
            .collect();
        out.sort_by_key(|d| (std::cmp::Reverse(d.deleted_ms), d.id));
        out
    }

    /// Brings back a deleted entry: it, its deleted ancestors, and the descendants deleted with
    /// it (same deletion time). Name clashes with newer entries get the usual suffix.
    pub fn restore_entry(&mut self, id: EntryId, now_ms: i64) -> Result<(), CrdtError> {
        let raw = self.raw.entries.get(&id).ok_or(CrdtError::NotFound(id))?;
        let when = raw.deleted_at().ok_or(CrdtError::NotFound(id))?;
        let mut targets = vec![id];
        // Ancestors (bounded: a hostile cycle stops at a repeat).
        let mut up = raw.place().map(|p| p.parent);
        while let Some(p) = up {
            if p.is_root() || targets.contains(&p) {
                break;
            }
            let Some(r) = self.raw.entries.get(&p) else {
                break;
            };
            if r.deleted_at().is_some() {
                targets.push(p);
            }
            up = r.place().map(|pl| pl.parent);
        }
        // Descendants deleted by the same delete.
        let mut frontier = vec![id];
        while let Some(f) = frontier.pop() {
            for (cid, r) in &self.raw.entries {
                if r.place().map(|p| p.parent) == Some(f)
                    && r.deleted_at() == Some(when)
                    && !targets.contains(cid)
                {
                    targets.push(*cid);
                    frontier.push(*cid);
                }
            }
        }
        for t in targets {
            debug_assert_eq!(shard_of(t, self.k), self.shard_of(t));
            self.put_field(t, Field::Deleted, ScalarValue::Int(-now_ms.max(0)))?;
        }
        self.touch(now_ms);
        self.view = None;
        Ok(())
    }
}

fn retained(all: &[VersionInfo], policy: Retention, now: i64) -> Vec<VersionId> {
    // Newest first.
    let mut order: Vec<&VersionInfo> = all.iter().collect();
    order.sort_by_key(|i| std::cmp::Reverse((i.version.manifest.modified_ms, i.version.id)));
    order
        .iter()
        .enumerate()
        .filter(|(rank, i)| {
            i.head
                || match policy {
                    Retention::KeepAll => true,
                    Retention::LastK(k) => (*rank as u64) < u64::from(k),
                    Retention::NewerThanDays(d) => {
                        i.version.manifest.modified_ms
                            >= now.saturating_sub(i64::from(d).saturating_mul(DAY_MS))
                    }
                }
        })
        .map(|(_, i)| i.version.id)
        .collect()
}
