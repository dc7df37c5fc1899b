//! One organization served by the relay: its keyless engine and its store, opened and
//! rebuilt at start, the drain of the engine's events into the store ([`settle`]) and the merge
//! of its offers ([`coalesce_offers`]). Also the relay's identity file.
//!
//! Invariants: admitted items and blocks are written before the caller sends anything (the
//! caller settles, then transmits); a stored item that no longer passes admission on load is
//! logged and left out, never trusted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::server::{IDENTITY_FILE, RelayError, io_err};
use super::storage::{RelayStorage, Usage};
use crate::node::now_ms;
use crate::store::{Store, StoreError};
use crate::sync::{Config, DocId, Engine, Msg, Replica};
use crate::trust::keys::DeviceKeys;
use crate::trust::{DeviceId, EntryId, OrgId, OrgLog};
use crate::workspace::EnvelopeId;

/// One organization served.
pub(super) struct Served {
    pub(super) engine: Engine,
    pub(super) store: Store,
    pub(super) usage: Usage,
    /// The log this relay holds revokes it (`RelayRevoked`): the organization is served no
    /// more (its devices refused and cut off, nothing more stored); what is stored is kept.
    pub(super) revoked: bool,
    /// Items its devices sent that the engine refused since start, by reason label.
    pub(super) items_refused: BTreeMap<&'static str, u64>,
}

/// Loads the relay's identity, or creates it (mode 0600, written atomically).
pub fn identity(dir: &Path) -> Result<DeviceKeys, RelayError> {
    let path = dir.join(IDENTITY_FILE);
    if path.exists() {
        let b = std::fs::read(&path).map_err(io_err(&path))?;
        let (Some(s), Some(x)) = (
            b.get(..32).and_then(|s| <[u8; 32]>::try_from(s).ok()),
            b.get(32..64).and_then(|s| <[u8; 32]>::try_from(s).ok()),
        ) else {
            return Err(RelayError::Identity(path));
        };
        if b.len() != 64 {
            return Err(RelayError::Identity(path));
        }
        return Ok(DeviceKeys::from_secrets(&s, &x));
    }
    let keys = DeviceKeys::generate(&mut rand::rng());
    let (s, x) = keys.secrets();
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(64));
    bytes.extend_from_slice(&*s);
    bytes.extend_from_slice(&*x);
    let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(&bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    Ok(keys)
}

pub(super) fn org_dir(data: &Path, org: &OrgId) -> PathBuf {
    data.join("orgs").join(hex::encode(org.0))
}

/// Opens a served organization's store and rebuilds its engine.
pub(super) fn open_served(me: DeviceId, dir: &Path, org: OrgId) -> Result<Served, RelayError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let store = Store::open(&dir.join("store.redb"))?;
    RelayStorage::set_org(&store, org)?;
    let mut log = OrgLog::new(org);
    let report = log.ingest(store.load_log()?);
    if !report.rejected.is_empty() {
        tracing::warn!(org = %hex::encode(&org.0[..6]), refused = report.rejected.len(), "stored entries refused on load");
    }
    let mut replica = Replica::with_log(Arc::new(log));
    let mut usage = Usage::default();
    for w in RelayStorage::workspaces(&store)? {
        let envs = RelayStorage::load_workspace(&store, w)?;
        usage.envelopes += envs.len() as u64;
        usage.bytes += envs.iter().map(|e| e.len() as u64).sum::<u64>();
        let r = replica.ingest(DocId::Workspace(w), envs);
        if !r.refused.is_empty() {
            tracing::warn!(workspace = %w, refused = r.refused.len(), "stored envelopes refused on load");
        }
    }
    let (blocks, bytes) = store.block_usage()?;
    usage.blocks = blocks;
    usage.bytes += bytes;
    let cfg = Config {
        relay: true,
        ..Config::device(me)
    };
    let revoked = replica.org.state().revoked_relays.contains_key(&me);
    Ok(Served {
        engine: Engine::new(cfg, replica, now_ms()),
        store,
        usage,
        revoked,
        items_refused: BTreeMap::new(),
    })
}

/// Items refused by reason, all organizations (`RelayStatus::items_refused`).
pub(super) fn items_refused<'a>(orgs: impl Iterator<Item = &'a Served>) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for (reason, n) in orgs.flat_map(|s| &s.items_refused) {
        *all.entry((*reason).to_owned()).or_default() += n;
    }
    all
}

/// Drains an engine's events: persists admitted items and received blocks, answers block
/// requests. Returns the peers the engine cut off and how many items (log entries, envelopes,
/// blocks) were newly stored.
pub(super) fn settle(s: &mut Served) -> Result<(Vec<DeviceId>, usize), StoreError> {
    let mut cut = Vec::new();
    let mut stored = 0;
    for _ in 0..16 {
        let Some(d) = s.engine.drain() else {
            break;
        };
        cut.extend(d.disconnects);
        for (reason, n) in &d.refused {
            *s.items_refused.entry(reason).or_default() += *n as u64;
        }
        let (org_ids, ws_ids, blocks) = (d.org, d.workspaces, d.blocks);
        if !org_ids.is_empty() {
            let log = &s.engine.replica().org;
            let entries: Vec<_> = org_ids
                .iter()
                .filter_map(|id| log.get(&EntryId(*id)))
                .collect();
            stored += RelayStorage::put_log_entries(&s.store, &entries)?;
        }
        for (w, ids) in &ws_ids {
            let Some(log) = s.engine.replica().workspaces.get(w) else {
                continue;
            };
            let envs: Vec<_> = ids
                .iter()
                .filter_map(|id| log.get(&EnvelopeId(*id)))
                .collect();
            let n = RelayStorage::put_envelopes(&s.store, *w, &envs)?;
            stored += n;
            s.usage.envelopes += n as u64;
            if n > 0 {
                s.usage.bytes += envs.iter().map(|e| e.bytes().len() as u64).sum::<u64>();
            }
        }
        if !blocks.is_empty() {
            let refs: Vec<crate::store::BlockIn<'_>> = blocks
                .iter()
                .map(|(w, id, b)| (*w, id, b.as_slice()))
                .collect();
            let n = RelayStorage::put_blocks(&s.store, &refs)?;
            stored += n;
            s.usage.blocks += n as u64;
            if n > 0 {
                s.usage.bytes += blocks.iter().map(|(_, _, b)| b.len() as u64).sum::<u64>();
            }
        }
        let store = &s.store;
        s.engine
            .answer_block_requests(d.requests, |w, id| RelayStorage::block_for(store, w, id))?;
    }
    Ok((cut, stored))
}

/// Merges the `Offer`s of one turn per (peer, document), after the other messages: the engine
/// offers what it admitted from each `Items` to every other linked device, so with many
/// writers a turn would otherwise send one offer per writer's message to every device.
pub(super) fn coalesce_offers(
    transmits: impl Iterator<Item = crate::sync::Transmit>,
) -> Vec<(DeviceId, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offers: BTreeMap<(DeviceId, DocId), Vec<[u8; 32]>> = BTreeMap::new();
    for t in transmits {
        match Msg::decode(&t.bytes) {
            Ok(Msg::Offer { doc, ids }) => offers.entry((t.peer, doc)).or_default().extend(ids),
            _ => out.push((t.peer, t.bytes)),
        }
    }
    for ((peer, doc), mut ids) in offers {
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(crate::sync::msg::MAX_IDS) {
            let m = Msg::Offer {
                doc,
                ids: chunk.to_vec(),
            };
            out.push((peer, m.encode()));
        }
    }
    out
}
