//! Bundles for air-gapped sites: export what a destination lacks (everything, or what a receipt
//! does not list), import a bundle through the same admission as the network, and write
//! receipts. Formats in [`crate::bundle`].
//!
//! Invariants: an export is written to a temporary file beside its destination and renamed only
//! once complete and signed; an import checks the whole file (hash and signature) before it
//! admits anything, then admits entries and envelopes through the engine (exactly as if a peer
//! had sent them: refusals are counted, revocation wins) and stores blocks only if they match
//! their ids; importing the same bundle twice changes nothing.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::BufWriter;
use std::path::Path;

use cloison_crdt::Kind as EntryKind;

use super::{Node, NodeError, Progress, now_ms};
use crate::bundle::{self, BundleError, BundleWriter, Header, Item, Receipt};
use crate::sync::DocId;
use crate::workspace::WorkspaceId;

/// What an export or an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BundleReport {
    /// Organization-log entries carried (export) or newly admitted (import).
    pub entries: u64,
    /// Envelopes carried or newly admitted.
    pub envelopes: u64,
    /// Blocks carried or newly stored.
    pub blocks: u64,
    /// Items refused by admission (import).
    pub refused: u64,
    /// The bundle's size in bytes.
    pub bytes: u64,
    /// The device that created the bundle (hex).
    pub creator: String,
    /// When it was created (unix ms).
    pub created_ms: u64,
    /// Whether it was made for a receipt.
    pub for_receipt: bool,
}

/// Blocks buffered before one store write during an import.
const IMPORT_BATCH: usize = 64 << 20;

fn bundle_err(e: BundleError) -> NodeError {
    NodeError::Invalid(format!("bundle refused: {e}"))
}

impl Node {
    fn known_device(&self) -> impl Fn(&crate::trust::DeviceId) -> bool + '_ {
        |d| self.state().devices.contains_key(d)
    }

    /// Writes a bundle to `out`: every workspace in `only` (all held, if empty), and only what
    /// the receipt at `receipt` lacks, if given.
    pub fn export_bundle(
        &mut self,
        out: &Path,
        only: &[WorkspaceId],
        receipt: Option<&Path>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<BundleReport, NodeError> {
        let receipt = match receipt {
            Some(p) => {
                let bytes = fs::read(p).map_err(|err| NodeError::Io {
                    path: p.to_owned(),
                    err,
                })?;
                Some(
                    bundle::read_receipt(&bytes, self.org_id(), self.known_device())
                        .map_err(bundle_err)?,
                )
            }
            None => None,
        };
        let (has, hash) = match &receipt {
            Some((r, h)) => (Some(r), Some(*h)),
            None => (None, None),
        };
        let skip_entries: HashSet<[u8; 32]> = has
            .map(|r| r.entries.iter().copied().collect())
            .unwrap_or_default();
        let skip_envelopes: HashSet<[u8; 32]> = has
            .map(|r| r.envelopes.iter().copied().collect())
            .unwrap_or_default();
        let skip_blocks: HashSet<[u8; 32]> = has
            .map(|r| r.blocks.iter().copied().collect())
            .unwrap_or_default();
        let workspaces: Vec<WorkspaceId> = if only.is_empty() {
            self.engine.replica().workspaces.keys().copied().collect()
        } else {
            only.to_vec()
        };
        // The blocks of every version this device can see in those workspaces.
        let mut blocks: Vec<(WorkspaceId, [u8; 32])> = Vec::new();
        let mut seen = HashSet::new();
        for w in &workspaces {
            let doc = self.doc(*w)?;
            let tree = doc.crdt.tree();
            let mut ids = BTreeSet::new();
            for n in tree.nodes().filter(|n| n.kind == EntryKind::File) {
                for v in doc.crdt.versions(n.id).unwrap_or_default() {
                    ids.extend(v.version.manifest.chunks.iter().map(|c| c.id));
                }
            }
            for id in ids {
                if self.blocks.contains(&id) && !skip_blocks.contains(&id) && seen.insert(id) {
                    blocks.push((*w, id));
                }
            }
        }
        let dir = out.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.partial",
            out.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let io_err = |err| NodeError::Io {
            path: tmp.clone(),
            err,
        };
        let file = fs::File::create(&tmp).map_err(io_err)?;
        let header = Header {
            org: self.org_id(),
            creator: self.device_id(),
            created_ms: now_ms(),
            for_receipt: hash,
            known_heads: has.map(|r| r.heads.clone()).unwrap_or_default(),
        };
        let mut w = BundleWriter::new(BufWriter::with_capacity(1 << 20, file), &header)
            .map_err(bundle_err)?;
        for e in self.log().entries() {
            if !skip_entries.contains(&e.id().0) {
                w.item(&Item::Entry(e.bytes().to_vec()))
                    .map_err(bundle_err)?;
            }
        }
        for ws in &workspaces {
            if let Some(log) = self.engine.replica().workspaces.get(ws) {
                for e in log.envelopes() {
                    if !skip_envelopes.contains(&e.id().0) {
                        w.item(&Item::Envelope(*ws, e.bytes().to_vec()))
                            .map_err(bundle_err)?;
                    }
                }
            }
        }
        let mut p = Progress {
            total_files: blocks.len() as u64,
            ..Progress::default()
        };
        for (ws, id) in &blocks {
            if let Some(b) = self.store.block(id)? {
                p.bytes += b.len() as u64;
                w.item(&Item::Block(*ws, b)).map_err(bundle_err)?;
            }
            p.files += 1;
            progress(p);
        }
        let counts = w.counts;
        let f = w.finish(&self.keys.device()).map_err(bundle_err)?;
        let f = f.into_inner().map_err(|e| io_err(e.into_error()))?;
        f.sync_all().map_err(io_err)?;
        drop(f);
        fs::rename(&tmp, out).map_err(|err| NodeError::Io {
            path: out.to_owned(),
            err,
        })?;
        let bytes = fs::metadata(out).map(|m| m.len()).unwrap_or(0);
        Ok(BundleReport {
            entries: counts[0],
            envelopes: counts[1],
            blocks: counts[2],
            refused: 0,
            bytes,
            creator: header.creator.to_string(),
            created_ms: header.created_ms,
            for_receipt: hash.is_some(),
        })
    }

    /// Reads a bundle: checks it whole, then (unless `dry`) admits what it carries.
    fn read_bundle_file(
        &mut self,
        path: &Path,
        dry: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<BundleReport, NodeError> {
        let io_err = |err| NodeError::Io {
            path: path.to_owned(),
            err,
        };
        let file = fs::File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let mut entries = Vec::new();
        let mut envelopes: Vec<(WorkspaceId, Vec<u8>)> = Vec::new();
        let mut pending: Vec<(WorkspaceId, [u8; 32], Vec<u8>)> = Vec::new();
        let mut pending_bytes = 0;
        let mut new_blocks = 0u64;
        // Ids of the blocks stored by batches during the read (the node's set is updated after).
        let mut stored: Vec<[u8; 32]> = Vec::new();
        let mut block_error = None;
        let org = self.org_id();
        let known: HashSet<crate::trust::DeviceId> = self.state().devices.keys().copied().collect();
        let store = &self.store;
        let mut p = Progress {
            total_bytes: len,
            ..Progress::default()
        };
        let (header, counts) = bundle::read_bundle(
            file,
            len,
            org,
            |d| known.contains(d),
            |item| {
                p.files += 1;
                p.bytes += match &item {
                    Item::Entry(b) | Item::Envelope(_, b) | Item::Block(_, b) => b.len() as u64,
                };
                progress(p);
                if dry {
                    return Ok(());
                }
                match item {
                    Item::Entry(b) => entries.push(b),
                    Item::Envelope(w, b) => envelopes.push((w, b)),
                    Item::Block(w, b) => {
                        pending_bytes += b.len();
                        pending.push((w, *blake3::hash(&b).as_bytes(), b));
                        if pending_bytes >= IMPORT_BATCH {
                            let refs: Vec<crate::store::BlockIn<'_>> = pending
                                .iter()
                                .map(|(w, id, b)| (*w, id, b.as_slice()))
                                .collect();
                            match store.put_hashed_blocks(&refs) {
                                Ok(n) => new_blocks += n as u64,
                                Err(e) => block_error = Some(e),
                            }
                            stored.extend(pending.iter().map(|(_, id, _)| *id));
                            pending.clear();
                            pending_bytes = 0;
                        }
                    }
                }
                Ok(())
            },
        )
        .map_err(bundle_err)?;
        let mut report = BundleReport {
            bytes: len,
            creator: header.creator.to_string(),
            created_ms: header.created_ms,
            for_receipt: header.for_receipt.is_some(),
            ..BundleReport::default()
        };
        if dry {
            report.entries = counts[0];
            report.envelopes = counts[1];
            report.blocks = counts[2];
            return Ok(report);
        }
        self.blocks.extend(stored);
        if let Some(e) = block_error {
            return Err(e.into());
        }
        let refs: Vec<crate::store::BlockIn<'_>> = pending
            .iter()
            .map(|(w, id, b)| (*w, id, b.as_slice()))
            .collect();
        new_blocks += self.store.put_hashed_blocks(&refs)? as u64;
        self.blocks.extend(pending.iter().map(|(_, id, _)| *id));
        report.blocks = new_blocks;
        let before_entries = self.log().len();
        let r = self.engine.handle_local(now_ms(), DocId::Org, entries);
        report.refused += r.refused.len() as u64;
        self.settle()?;
        report.entries = (self.log().len() - before_entries) as u64;
        let mut by_ws: std::collections::BTreeMap<WorkspaceId, Vec<Vec<u8>>> = Default::default();
        for (w, b) in envelopes {
            by_ws.entry(w).or_default().push(b);
        }
        for (w, items) in by_ws {
            let before = self.engine.replica().count(DocId::Workspace(w));
            let r = self
                .engine
                .handle_local(now_ms(), DocId::Workspace(w), items);
            report.refused += r.refused.len() as u64;
            report.envelopes += (self.engine.replica().count(DocId::Workspace(w)) - before) as u64;
        }
        self.settle()?;
        let ws: Vec<WorkspaceId> = self.engine.replica().workspaces.keys().copied().collect();
        for w in ws {
            if self.eager || self.docs.contains_key(&w) {
                self.refresh_doc(w)?;
            }
        }
        Ok(report)
    }

    /// Imports a bundle.
    pub fn import_bundle(
        &mut self,
        path: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<BundleReport, NodeError> {
        self.read_bundle_file(path, false, progress)
    }

    /// Checks a bundle and says what it holds, without importing it.
    pub fn inspect_bundle(&mut self, path: &Path) -> Result<BundleReport, NodeError> {
        self.read_bundle_file(path, true, &mut |_| {})
    }

    /// Writes a signed receipt of everything this device holds.
    pub fn write_receipt(&mut self, out: &Path) -> Result<Receipt, NodeError> {
        let rep = self.engine.replica();
        let r = Receipt {
            org: self.org_id(),
            device: self.device_id(),
            created_ms: now_ms(),
            heads: self.log().heads().iter().map(|h| h.0).collect(),
            entries: self.log().entries().map(|e| e.id().0).collect(),
            envelopes: rep
                .workspaces
                .values()
                .flat_map(|l| l.envelopes().iter().map(|e| e.id().0))
                .collect(),
            blocks: self.blocks.iter().copied().collect(),
        };
        let mut bytes = Vec::new();
        bundle::write_receipt(&mut bytes, &self.keys.device(), &r).map_err(bundle_err)?;
        crate::keystore::write_atomic(out, &bytes).map_err(|err| NodeError::Io {
            path: out.to_owned(),
            err,
        })?;
        Ok(r)
    }
}
