//! Workspace documents in memory: the decrypted file tree of each workspace, rebuilt from the
//! content envelopes this device can open, and local edits sealed back into envelopes.
//!
//! A [`Doc`] holds the automerge document ([`cloison_crdt::Workspace`]), the epoch keys this
//! device opened ([`Keyring`]) and which content envelopes it has applied. Documents are never
//! written to disk in clear: they are rebuilt from the (sealed) envelopes in the store when a
//! node opens them.
//!
//! Invariants:
//! - Only envelopes in the workspace's *kept* set are applied; if revocation-wins drops one that
//!   was applied, the document is rebuilt from the kept set.
//! - Every change inside an envelope was written by the envelope's signing device
//!   ([`content::open_changes`]).
//! - Changes to the settings shard (title, retention) count only from an author who was an
//!   OWNER in the envelope's causal past ([`crate::workspace::WorkspaceLog::author_role`]).
//! - Every workspace uses [`SHARDS`] entry shards (protocol v1 fixes it: a joining device must
//!   know it before any change arrives).
//! - Local edits become envelopes of at most [`MAX_PAYLOAD`] plaintext bytes and
//!   [`content::MAX_CHANGES`] changes each. While the workspace awaits a new epoch that this
//!   device cannot open (`KeyringError::AwaitingRotation`: a member left or was revoked and no
//!   OWNER or MANAGER has rotated yet), the edit is refused and the document is rebuilt from what
//!   is admitted: nothing unsealed is kept (it would be lost with the process), and the command
//!   says why, so the edit can be made again once the epoch arrives.

use std::collections::HashSet;
use std::sync::Arc;

use cloison_crdt::{Author, IdSource, Kind as EntryKind, Workspace};

use super::{Node, NodeError, now_ms};
use crate::seal::ConvergenceSecret;
use crate::sync::DocId;
use crate::workspace::keyring::{self, Actor, Keyring, KeyringError};
use crate::workspace::{EnvelopeId, Role, WorkspaceId, content};

/// Entry shards of every workspace document (fixed in protocol v1).
pub const SHARDS: u16 = cloison_crdt::DEFAULT_SHARDS;
/// Largest plaintext of one content envelope (the envelope limit is 2 MiB).
pub const MAX_PAYLOAD: usize = 1536 * 1024;

/// Entry and version ids from the OS random generator.
pub(super) struct OsIds;

impl IdSource for OsIds {
    fn next_bytes(&mut self) -> [u8; cloison_crdt::ID_LEN] {
        let mut b = [0u8; cloison_crdt::ID_LEN];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut b);
        b
    }
}

/// One workspace's document, opened.
pub(super) struct Doc {
    pub crdt: Workspace,
    pub ring: Keyring,
    /// `Keys` envelopes seen when `ring` was opened.
    keys_seen: usize,
    /// Content envelopes applied (or found unreadable, never retried).
    applied: HashSet<EnvelopeId>,
    /// Content envelopes this device cannot open yet (no epoch key).
    pub locked: usize,
    /// `(envelopes, organization entries)` when last refreshed: nothing to do while unchanged.
    refreshed_at: (usize, usize),
    /// Content envelopes whose changes made the document library fail (`CrdtError::Poisoned`):
    /// never applied again, kept across rebuilds.
    poison: HashSet<EnvelopeId>,
}

impl Doc {
    pub(super) fn joined(actor: &[u8]) -> Result<Doc, NodeError> {
        Ok(Doc {
            crdt: Workspace::join(actor, SHARDS)?,
            ring: Keyring::default(),
            keys_seen: usize::MAX,
            applied: HashSet::new(),
            locked: 0,
            refreshed_at: (usize::MAX, usize::MAX),
            poison: HashSet::new(),
        })
    }
}

/// What a keyed workspace operation works on: the workspace's log, the organization log, this
/// device as the signing actor, the epoch keys it holds and its key file.
pub(super) struct Keyed<'a> {
    pub log: &'a mut crate::workspace::WorkspaceLog,
    pub org: &'a crate::trust::OrgLog,
    pub actor: Actor<'a>,
    pub ring: &'a Keyring,
    pub keys: &'a crate::keystore::Keystore,
}

impl Node {
    /// Runs a keyring operation on workspace `w` (`None` if the replica does not hold it).
    pub(super) fn keyed<T>(
        &mut self,
        w: WorkspaceId,
        f: impl FnOnce(Keyed<'_>) -> Result<T, KeyringError>,
    ) -> Result<Option<T>, NodeError> {
        let device = self.keys.device();
        let rep = self.engine.replica_mut();
        let org = Arc::clone(&rep.org);
        let Some(log) = rep.workspaces.get_mut(&w) else {
            return Ok(None);
        };
        let empty = Keyring::default();
        let ring = self.docs.get(&w).map_or(&empty, |d| &d.ring);
        Ok(Some(f(Keyed {
            log,
            org: &org,
            actor: Actor {
                keys: &device,
                clock: &mut self.clock,
            },
            ring,
            keys: &self.keys,
        })?))
    }

    /// Hands envelopes this device signed to the engine (admitted, then pushed to peers); the
    /// first refusal is an error. The caller settles.
    pub(super) fn local_items(
        &mut self,
        w: WorkspaceId,
        items: Vec<Vec<u8>>,
    ) -> Result<(), NodeError> {
        let r = self
            .engine
            .handle_local(now_ms(), DocId::Workspace(w), items);
        match r.refused.first() {
            Some((_, reason)) => Err(NodeError::Refused((*reason).to_owned())),
            None => Ok(()),
        }
    }

    /// The actor id this device writes documents with.
    pub(super) fn actor(&self) -> Vec<u8> {
        content::actor_of(&self.device_id())
    }

    /// Brings the document of `w` up to date with the admitted envelopes (opening it if needed),
    /// then, in eager mode, asks the engine for the blocks of its current files.
    pub(super) fn refresh_doc(&mut self, w: WorkspaceId) -> Result<(), NodeError> {
        let user = self.user_id();
        let actor = self.actor();
        if let std::collections::btree_map::Entry::Vacant(v) = self.docs.entry(w) {
            v.insert(Doc::joined(&actor)?);
        }
        let Some(log) = self.engine.replica().workspaces.get(&w) else {
            return Ok(());
        };
        let org = &self.engine.replica().org;
        let Some(doc) = self.docs.get_mut(&w) else {
            return Ok(());
        };
        let now_at = (log.len(), org.len());
        if doc.refreshed_at == now_at {
            return Ok(());
        }
        doc.refreshed_at = now_at;
        let st = log.state(org);
        if st.dropped.iter().any(|id| doc.applied.contains(id)) {
            tracing::info!(workspace = %w, "an applied envelope was dropped by revocation: rebuilding the document");
            *doc = Doc::joined(&actor)?;
        }
        if doc.keys_seen != st.keys.len() {
            let keys = &self.keys;
            doc.ring = Keyring::open(log, org, user, |g| keys.user_secret_gen(g));
            doc.keys_seen = st.keys.len();
        }
        let mut locked = 0;
        let mut applied_any = false;
        let mut poisoned = false;
        for id in &st.content {
            if doc.applied.contains(id) || doc.poison.contains(id) {
                continue;
            }
            let Some(e) = log.get(id) else { continue };
            match doc.ring.read(e) {
                Ok(plain) => {
                    doc.applied.insert(*id);
                    match content::open_changes(&plain, &e.header().author) {
                        Ok(mut changes) => {
                            // Workspace settings (title, retention) are an owner's to change:
                            // judged by the author's role in the envelope's causal past, so
                            // every replica drops the same changes.
                            if changes.iter().any(|c| c.shard == SHARDS)
                                && log.author_role(id) != Some(Role::Owner)
                            {
                                tracing::warn!(workspace = %w, envelope = %id, "settings changes from a non-owner ignored");
                                changes.retain(|c| c.shard != SHARDS);
                            }
                            match doc.crdt.apply_remote(changes) {
                                Ok(_) => applied_any = true,
                                Err(cloison_crdt::CrdtError::Poisoned) => {
                                    tracing::error!(workspace = %w, envelope = %id, author = %e.header().author, "these changes made the document library fail: rebuilding the document without them");
                                    doc.poison.insert(*id);
                                    poisoned = true;
                                    break;
                                }
                                Err(err) => {
                                    tracing::warn!(workspace = %w, envelope = %id, "changes refused by the document: {err}");
                                }
                            }
                        }
                        Err(err) => {
                            tracing::warn!(workspace = %w, envelope = %id, "content refused: {err}");
                        }
                    }
                }
                Err(KeyringError::NoKey(_)) => locked += 1,
                Err(err) => {
                    doc.applied.insert(*id);
                    tracing::warn!(workspace = %w, envelope = %id, "content does not open: {err}");
                }
            }
        }
        if poisoned {
            // Each rebuild leaves out one more envelope, so this ends.
            let poison = std::mem::take(&mut doc.poison);
            *doc = Doc::joined(&actor)?;
            doc.poison = poison;
            return self.refresh_doc(w);
        }
        doc.locked = locked;
        if applied_any && self.eager {
            self.want_blocks(w);
        }
        Ok(())
    }

    /// Asks the engine for every block of the current version of every file of `w` that the
    /// store lacks.
    pub(super) fn want_blocks(&mut self, w: WorkspaceId) {
        let Some(doc) = self.docs.get_mut(&w) else {
            return;
        };
        let tree = doc.crdt.tree();
        let want: Vec<([u8; 32], u64)> = tree
            .nodes()
            .filter(|n| n.kind == EntryKind::File)
            .filter_map(|n| n.current.as_ref())
            .flat_map(|v| v.manifest.chunks.iter())
            .filter(|c| !self.blocks.contains(&c.id))
            .map(|c| (c.id, u64::from(c.len) + 64))
            .collect();
        if !want.is_empty() {
            self.engine.fetch_blocks_sized(DocId::Workspace(w), want);
        }
    }

    /// The document of `w`, opened and up to date.
    pub(super) fn doc(&mut self, w: WorkspaceId) -> Result<&mut Doc, NodeError> {
        if !self.engine.replica().workspaces.contains_key(&w) {
            return Err(NodeError::NotFound {
                what: "workspace",
                query: w.to_string(),
            });
        }
        self.refresh_doc(w)?;
        self.docs.get_mut(&w).ok_or_else(|| NodeError::NotFound {
            what: "workspace",
            query: w.to_string(),
        })
    }

    /// Our role in `w`, if we are a member.
    pub(super) fn role_in(&self, w: WorkspaceId) -> Option<Role> {
        let r = self.engine.replica();
        let log = r.workspaces.get(&w)?;
        log.state(&r.org).members.get(&self.user_id()).copied()
    }

    /// Fails unless our role in `w` is at least `min`.
    pub(super) fn require_role(
        &self,
        w: WorkspaceId,
        min: Role,
        what: &str,
    ) -> Result<(), NodeError> {
        match self.role_in(w) {
            Some(r) if r >= min => Ok(()),
            Some(r) => Err(NodeError::Forbidden(format!(
                "{what} needs {min}, you are {r}"
            ))),
            None => Err(NodeError::Forbidden(format!(
                "{what}: you are not a member"
            ))),
        }
    }

    /// The convergence secret for new blocks of `w`: derived from the current epoch key, so
    /// identical chunks dedup within an epoch and nothing links them across a rotation.
    pub(super) fn convergence(&mut self, w: WorkspaceId) -> Result<ConvergenceSecret, NodeError> {
        let r = self.engine.replica();
        let epoch = r
            .workspaces
            .get(&w)
            .and_then(|log| log.state(&r.org).current_epoch().map(|e| e.id));
        let doc = self.doc(w)?;
        let key = epoch
            .and_then(|id| doc.ring.epoch(&id))
            .ok_or_else(|| NodeError::NoKey(w.to_string()))?;
        let derived = zeroize::Zeroizing::new(blake3::derive_key(
            "cloison 2026 convergence-secret v1",
            key.as_bytes(),
        ));
        Ok(ConvergenceSecret::from_bytes(&derived))
    }

    /// Who we are, for the versions we write.
    pub(super) fn author(&mut self) -> Author {
        let me = self.device_id();
        let user = self.user_id().to_string();
        let users = self.users();
        let user_name = users
            .iter()
            .find(|u| u.id == user)
            .map(|u| clean_label(&u.name))
            .unwrap_or_default();
        let label = self
            .devices()
            .into_iter()
            .find(|d| d.this_device)
            .map(|d| clean_label(&d.label))
            .unwrap_or_default();
        Author {
            device: me.0,
            user_name,
            device_label: label,
        }
    }

    /// Seals the document's uncommitted edits into content envelopes and admits them.
    pub(super) fn commit(&mut self, w: WorkspaceId) -> Result<usize, NodeError> {
        let Some(doc) = self.docs.get_mut(&w) else {
            return Ok(0);
        };
        let changes: Vec<(u16, Vec<u8>)> = doc
            .crdt
            .commit_local()
            .into_iter()
            .map(|c| (c.shard, c.bytes))
            .collect();
        let mut groups: Vec<Vec<(u16, Vec<u8>)>> = Vec::new();
        let mut size = 0;
        for c in changes {
            let len = c.1.len() + 8;
            match groups.last_mut() {
                Some(g) if size + len <= MAX_PAYLOAD && g.len() < content::MAX_CHANGES => {
                    size += len;
                    g.push(c);
                }
                _ => {
                    size = len;
                    groups.push(vec![c]);
                }
            }
        }
        let plains: Vec<zeroize::Zeroizing<Vec<u8>>> = groups
            .iter()
            .map(|g| zeroize::Zeroizing::new(content::encode_changes(g)))
            .collect();
        let sealed = self.seal_edits(w, &plains);
        if sealed.is_err() {
            // Nothing unsealed stays behind (it would not survive the process): the document is
            // rebuilt from what is admitted, and the caller reports why.
            self.docs.remove(&w);
        }
        self.settle()?;
        sealed
    }

    /// Seals encoded edits of `w` in order and hands them to the engine (the caller settles).
    /// Returns how many were sealed; `KeyringError::AwaitingRotation` while the workspace awaits
    /// a rotation this device cannot make.
    fn seal_edits(
        &mut self,
        w: WorkspaceId,
        plains: &[zeroize::Zeroizing<Vec<u8>>],
    ) -> Result<usize, NodeError> {
        let mut sealed = 0;
        for plain in plains {
            let Some(items) = self.keyed(w, |mut k| {
                keyring::write(
                    &mut rand::rng(),
                    k.log,
                    k.org,
                    &mut k.actor,
                    now_ms(),
                    k.ring,
                    plain,
                )
            })?
            else {
                break;
            };
            if let (Some(doc), Some(content)) = (self.docs.get_mut(&w), items.last()) {
                doc.applied.insert(keyring::id_of(content));
            }
            sealed += 1;
            self.local_items(w, items)?;
        }
        Ok(sealed)
    }

    /// What an OWNER or MANAGER device owes the workspace (a new epoch after a member left or
    /// was revoked, keys for members who lack them): written and handed to the engine; the
    /// caller's settle round persists them.
    pub(super) fn maintain_workspace(&mut self, w: WorkspaceId) -> Result<(), NodeError> {
        if !self.state().is_active(&self.device_id()) {
            return Ok(());
        }
        let user = self.user_id();
        let out = self
            .keyed(w, |mut k| {
                keyring::maintain(
                    &mut rand::rng(),
                    k.log,
                    k.org,
                    &mut k.actor,
                    user,
                    now_ms(),
                    |g| k.keys.user_secret_gen(g),
                )
            })?
            .unwrap_or_default();
        if !out.is_empty() {
            tracing::info!(workspace = %w, envelopes = out.len(), "workspace keys maintained");
            let _ = self.engine.handle_local(now_ms(), DocId::Workspace(w), out);
        }
        Ok(())
    }
}

/// How long a device waits after noticing another device's work on the heads before it writes
/// a `Merge` on them (writes arriving meanwhile share one merge).
pub const MERGE_DELAY_MS: u64 = 2_000;

impl Node {
    /// Whether the kept heads of `w` hold a non-`Merge` envelope written by another device: then
    /// this device (if a member) owes a `Merge` on them, so that what it accepted while the
    /// author was active stays kept if the author is revoked later (revocation wins keeps only
    /// what an active device built on). Merges of merges protect nothing new, so a head that is
    /// a `Merge` (or ours) asks for nothing: the exchange ends after one round.
    fn merge_wanted(&self, w: WorkspaceId) -> bool {
        let me = self.device_id();
        let r = self.engine.replica();
        let Some(log) = r.workspaces.get(&w) else {
            return false;
        };
        let st = log.state(&r.org);
        if !st.members.contains_key(&self.user_id()) {
            return false;
        }
        st.heads.iter().any(|h| {
            log.get(h).is_some_and(|e| {
                e.header().author != me && e.header().kind != crate::workspace::Kind::Merge
            })
        })
    }

    /// Notes the workspaces that may want a merge (after envelopes arrived).
    pub(super) fn note_merges(&mut self, ws: impl IntoIterator<Item = WorkspaceId>, now: u64) {
        for w in ws {
            if !self.merge_due.contains_key(&w) && self.merge_wanted(w) {
                self.merge_due.insert(w, now);
            }
        }
    }

    /// Periodic housekeeping (the daemon calls it at least every second): writes the `Merge`
    /// envelopes that have been due for `MERGE_DELAY_MS` (2 s). Returns how many were written.
    pub fn tick(&mut self, now: u64) -> Result<usize, NodeError> {
        let due: Vec<WorkspaceId> = self
            .merge_due
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) >= MERGE_DELAY_MS)
            .map(|(w, _)| *w)
            .collect();
        let mut written = 0;
        for w in due {
            self.merge_due.remove(&w);
            if !self.merge_wanted(w) {
                continue;
            }
            let Some(bytes) = self.keyed(w, |k| {
                Ok(k.log.draft(
                    k.org,
                    k.actor.keys,
                    k.actor.clock,
                    now,
                    crate::workspace::Kind::Merge,
                    None,
                    |_| Vec::new(),
                )?)
            })?
            else {
                continue;
            };
            self.local_items(w, vec![bytes])?;
            written += 1;
        }
        if written > 0 {
            self.settle()?;
        }
        Ok(written)
    }
}

/// A display string the document accepts as an author label (no `/`, no control characters,
/// at most 64 bytes).
fn clean_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    while out.len() > cloison_crdt::limits::MAX_LABEL {
        out.pop();
    }
    out
}
