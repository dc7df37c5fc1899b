//! The one API every front end goes through (the control API's executor, hence the CLI and the
//! daemon; tests and the demo use it directly).
//!
//! A [`Node`] is one device's home directory opened: its key file unlocked, its store open, its
//! organization log and workspace DAGs loaded and verified into the sync engine's replica (the
//! one in-memory copy). Every change, ours included, enters through the engine's admission and is
//! persisted by [`Node::settle`] before the call returns.
//!
//! Home layout: `keys.cloison` (the passphrase-encrypted key file), `store.redb` (the database),
//! `blocks/` (block packs), `control.sock` (while a daemon runs).
//!
//! Invariants: nothing is written to the store that admission did not accept; workspace
//! documents never touch the disk in clear; this module reads the wall clock and the OS RNG and
//! hands them to the sans-IO core, which never does itself.
//!
//! Submodules: `org` (organization log), `workspaces`, `files`, `docs` (decrypted documents,
//! merges), `settle` (the event drain), `bundles`, `directory` (listings and name resolution),
//! `org_keys` (the organization-key ring and its rotation).

mod bundles;
mod directory;
mod docs;
pub mod enrol;
mod enrol_log;
pub mod enrol_offline;
mod error;
mod files;
pub mod folder;
mod join;
mod listing;
mod org;
mod org_keys;
mod relays;
mod settle;
mod workspaces;

pub use bundles::BundleReport;
pub use directory::{DeviceInfo, OrgInfo, UserInfo};
pub use error::NodeError;
pub use files::{EntryInfo, Progress, PutReport, VersionRow};
pub use listing::{FindReport, FoundEntry, MAX_FOUND};
pub use settle::Settled;
pub use workspaces::{MemberInfo, WorkspaceInfo};

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::keystore::{KdfParams, Keystore};
use crate::store::Store;
use crate::sync::{Config, DocId, Engine, Replica};
use crate::trust::author::{self, Newcomer};
use crate::trust::{Clock, DeviceId, OrgId, OrgLog, OrgState, UserId};
use crate::workspace::WorkspaceId;

/// File name of the key file in a home directory.
pub const KEY_FILE: &str = "keys.cloison";
/// File name of the database in a home directory.
pub const STORE_FILE: &str = "store.redb";

/// What `init` needs.
pub struct InitParams<'a> {
    /// Organization name.
    pub org_name: &'a str,
    /// First admin's name.
    pub user_name: &'a str,
    /// First admin's e-mail.
    pub email: &'a str,
    /// First device's label.
    pub device_label: &'a str,
}

/// One device's home, opened.
pub struct Node {
    home: PathBuf,
    keys: Keystore,
    store: Store,
    /// The sync engine; its replica is the one copy of the organization log and the workspace
    /// DAGs in memory.
    engine: Engine,
    clock: Clock,
    /// Workspace documents opened so far (decrypted, in memory only).
    docs: BTreeMap<WorkspaceId, docs::Doc>,
    /// Open every workspace's document as soon as it is known (the daemon, which fetches
    /// blocks for them); otherwise documents open on first use.
    eager: bool,
    /// Ids of the blocks in the store.
    blocks: HashSet<[u8; 32]>,
    /// Per workspace: unix ms of the last item admitted from a peer.
    last_sync: BTreeMap<WorkspaceId, u64>,
    /// Peers the engine asked to disconnect, for the daemon to act on.
    disconnects: Vec<DeviceId>,
    /// Items refused from peers since the node opened, by reason label.
    refused_items: BTreeMap<&'static str, u64>,
    /// Workspaces whose heads hold another device's work that we have not built on, and since
    /// when (see `Node::tick`).
    merge_due: BTreeMap<WorkspaceId, u64>,
    /// Where our daemon listens (`…/p2p/<peer id>`), told by the daemon: a device we enrol
    /// remembers them (`Welcome::peers`).
    advertised: Vec<String>,
}

/// The wall clock in unix milliseconds (the node, the daemon and the control API read it here;
/// the sans-IO core never does).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Node {
    /// Creates an organization in an empty home: this device becomes its first admin's device.
    pub fn init(
        home: &Path,
        passphrase: &[u8],
        kdf: KdfParams,
        p: &InitParams<'_>,
    ) -> Result<Node, NodeError> {
        prepare_home(home)?;
        let mut clock = Clock::default();
        let n = author::create_org(
            &mut rand::rng(),
            now_ms(),
            &mut clock,
            p.org_name,
            &Newcomer {
                name: p.user_name,
                email: p.email,
                device_label: p.device_label,
            },
        )?;
        let store = Store::open(&home.join(STORE_FILE))?;
        store.set_org(n.org)?;
        let keys = Keystore::create(
            &home.join(KEY_FILE),
            passphrase,
            kdf,
            n.org,
            n.user,
            &n.device,
            &n.org_key,
            &n.user_secret,
        )?;
        let mut node = Node::assemble(home, keys, store, OrgLog::new(n.org), clock)?;
        node.ingest_own(n.genesis)?;
        Ok(node)
    }

    /// Opens an existing home.
    pub fn open(home: &Path, passphrase: &[u8]) -> Result<Node, NodeError> {
        if !home.join(KEY_FILE).exists() {
            return Err(NodeError::NotInitialized(home.to_owned()));
        }
        tighten_home(home)?;
        let keys = Keystore::open(&home.join(KEY_FILE), passphrase)?;
        let store = Store::open(&home.join(STORE_FILE))?;
        store.set_org(keys.org())?;
        let mut log = OrgLog::new(keys.org());
        let report = log.ingest(store.load_log()?);
        if let Some((_, first)) = report.rejected.first() {
            return Err(NodeError::DamagedLog {
                count: report.rejected.len(),
                first: first.clone(),
            });
        }
        let mut clock = Clock::default();
        clock.observe(log.max_time(&log.heads()));
        let mut node = Node::assemble(home, keys, store, log, clock)?;
        node.maintain()?;
        node.settle()?;
        Ok(node)
    }

    /// Builds the engine over the stored workspaces.
    fn assemble(
        home: &Path,
        keys: Keystore,
        store: Store,
        log: OrgLog,
        clock: Clock,
    ) -> Result<Node, NodeError> {
        let mut replica = Replica::with_log(Arc::new(log));
        for w in store.workspaces()? {
            let r = replica.ingest(DocId::Workspace(w), store.load_workspace(w)?);
            if !r.refused.is_empty() {
                tracing::warn!(workspace = %w, refused = r.refused.len(), "stored envelopes refused on load");
            }
        }
        let blocks = store.block_ids()?;
        let engine = Engine::new(Config::device(keys.device().id()), replica, now_ms());
        Ok(Node {
            home: home.to_owned(),
            keys,
            store,
            engine,
            clock,
            docs: BTreeMap::new(),
            eager: false,
            blocks,
            last_sync: BTreeMap::new(),
            disconnects: Vec::new(),
            refused_items: BTreeMap::new(),
            merge_due: BTreeMap::new(),
            advertised: Vec::new(),
        })
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Where our daemon listens (full addresses), for the devices we enrol.
    pub fn set_advertised(&mut self, addrs: Vec<String>) {
        self.advertised = addrs;
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.keys.device().id()
    }

    /// This device's keys (for the network identity).
    pub fn device_keys(&self) -> crate::trust::DeviceKeys {
        self.keys.device()
    }

    /// This device's user.
    pub fn user_id(&self) -> UserId {
        self.keys.user()
    }

    /// The organization id.
    pub fn org_id(&self) -> OrgId {
        self.keys.org()
    }

    /// The effective organization state.
    pub fn state(&self) -> &OrgState {
        self.log().state()
    }

    /// The organization log (read-only).
    pub fn log(&self) -> &OrgLog {
        &self.engine.replica().org
    }

    /// The sync engine, for the daemon to drive (inputs in, transmits out). After feeding it,
    /// call [`Node::settle`].
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The sync engine (read-only).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Opens every workspace document now and from now on as soon as a workspace is known, and
    /// fetches the blocks of their current files (the daemon's mode).
    pub fn set_eager(&mut self, eager: bool) -> Result<(), NodeError> {
        self.eager = eager;
        if eager {
            let ws: Vec<WorkspaceId> = self.engine.replica().workspaces.keys().copied().collect();
            for w in ws {
                self.refresh_doc(w)?;
            }
        }
        Ok(())
    }

    /// Peers the engine asked to cut off since the last call.
    pub fn take_disconnects(&mut self) -> Vec<DeviceId> {
        std::mem::take(&mut self.disconnects)
    }

    /// Items refused from peers since the node opened, by reason label.
    pub fn refused_items(&self) -> &BTreeMap<&'static str, u64> {
        &self.refused_items
    }

    /// Blocks in the store.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The store (for the daemon's own tables).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Makes `dir` ready to hold a new device: refuses one that already does; creates a missing one
/// with owner-only permissions (an existing directory keeps its own: the key file is 0600 anyway,
/// and changing the mode of, say, a user's home directory would surprise them).
pub(crate) fn prepare_home(dir: &Path) -> Result<(), NodeError> {
    if dir.join(KEY_FILE).exists() || dir.join(STORE_FILE).exists() {
        return Err(NodeError::AlreadyInitialized(dir.to_owned()));
    }
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|err| NodeError::Home {
        path: dir.to_owned(),
        err,
    })?;
    restrict_dir(dir)
}

/// An existing home that other users may enter or list (a copy, a `chmod`, a loose umask when it
/// was made) is tightened to 0700, with a warning: the key file is encrypted, but the store's
/// sizes, ids and the control socket are the owner's alone.
fn tighten_home(dir: &Path) -> Result<(), NodeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .map_err(|err| NodeError::Home {
                path: dir.to_owned(),
                err,
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                home = %dir.display(),
                "the home directory was open to other users (mode {:o}): tightened to 0700",
                mode & 0o777
            );
            return restrict_dir(dir);
        }
    }
    Ok(())
}

fn restrict_dir(dir: &Path) -> Result<(), NodeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|err| {
            NodeError::Home {
                path: dir.to_owned(),
                err,
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod home_tests;
#[cfg(test)]
mod org_key_tests;
#[cfg(test)]
mod relay_tests;
