//! The one API every front end goes through: CLI now, the daemon and the TUI later.
//!
//! A [`Node`] is one device's home directory opened: its key file unlocked, its store open, its
//! organization log loaded and verified. Every change goes through [`Node::ingest_log`], the same
//! admission path as entries received from peers, and is persisted in one transaction before the
//! call returns.
//!
//! Home layout: `keys.cloison` (the passphrase-encrypted key file), `store.redb` (the database).
//!
//! Invariants: nothing is written to the store that the log did not admit; this module reads the
//! wall clock and the OS RNG and hands them to the sans-IO core, which never does itself.
//!
//! Listings and name resolution (decrypting names for display) live in [`directory`].

mod directory;

pub use directory::{DeviceInfo, OrgInfo, UserInfo};

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::keystore::{KdfParams, Keystore, KeystoreError};
use crate::store::{Store, StoreError};
use crate::trust::author::{self, Newcomer, Writer};
use crate::trust::{
    Certificate, Clock, DeviceId, EntryId, IngestReport, OrgId, OrgLog, OrgState, Profile,
    Rejection, UserId, UserSecret,
};

/// File name of the key file in a home directory.
pub const KEY_FILE: &str = "keys.cloison";
/// File name of the database in a home directory.
pub const STORE_FILE: &str = "store.redb";

/// Failures of node operations, each with what a user needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The key file failed (missing, wrong passphrase, damaged).
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `init` on a home that already has a device.
    #[error("{0} already holds a device; use another --home")]
    AlreadyInitialized(PathBuf),
    /// No device in this home.
    #[error("no device in {0}: run `cloison init` (or join an organization) first")]
    NotInitialized(PathBuf),
    /// Creating the home failed.
    #[error("cannot use home directory {path}: {err}")]
    Home {
        /// The directory.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// A name, e-mail or label is not acceptable.
    #[error(transparent)]
    Text(#[from] author::TextError),
    /// Our own entry was refused by admission.
    #[error("refused: {0}")]
    Refused(Rejection),
    /// The stored log did not load cleanly.
    #[error("stored organization log is damaged: {count} entries refused (first: {first})")]
    DamagedLog {
        /// How many.
        count: usize,
        /// The first reason.
        first: Rejection,
    },
    /// Nothing matches a user or device reference.
    #[error("no {what} matches {query:?}")]
    NotFound {
        /// "user" or "device".
        what: &'static str,
        /// The reference.
        query: String,
    },
    /// Several match.
    #[error("{query:?} matches several {what}s: {candidates}; give more of the id")]
    Ambiguous {
        /// "user" or "device".
        what: &'static str,
        /// The reference.
        query: String,
        /// Short ids of the matches.
        candidates: String,
    },
    /// The operation makes no sense here.
    #[error("{0}")]
    Invalid(String),
    /// Key sealing failed.
    #[error("key operation failed: {0}")]
    Key(#[from] crate::trust::keys::KeyError),
}

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
    log: OrgLog,
    clock: Clock,
}

fn now_ms() -> u64 {
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
        let mut node = Node {
            home: home.to_owned(),
            keys,
            store,
            log: OrgLog::new(n.org),
            clock,
        };
        node.ingest_own(n.genesis)?;
        Ok(node)
    }

    /// Opens an existing home.
    pub fn open(home: &Path, passphrase: &[u8]) -> Result<Node, NodeError> {
        if !home.join(KEY_FILE).exists() {
            return Err(NodeError::NotInitialized(home.to_owned()));
        }
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
        let mut node = Node {
            home: home.to_owned(),
            keys,
            store,
            log,
            clock,
        };
        node.maintain()?;
        Ok(node)
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.keys.device().id()
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
    pub fn state(&mut self) -> &OrgState {
        self.log.state()
    }

    /// The organization log (read-only).
    pub fn log(&self) -> &OrgLog {
        &self.log
    }

    /// Admits entries (from a peer, a bundle, or ourselves) and persists what was admitted.
    pub fn ingest_log(&mut self, batch: Vec<Vec<u8>>) -> Result<IngestReport, NodeError> {
        let report = self.log.ingest(batch);
        for (id, r) in &report.rejected {
            tracing::warn!(entry = %id.short(), reason = r.label(), "organization-log entry refused: {r}");
        }
        let admitted: Vec<_> = report
            .admitted
            .iter()
            .filter_map(|id| self.log.get(id))
            .collect();
        self.store.put_log_entries(admitted)?;
        Ok(report)
    }

    fn ingest_own(&mut self, bytes: Vec<u8>) -> Result<EntryId, NodeError> {
        let report = self.ingest_log(vec![bytes])?;
        if let Some((_, r)) = report.rejected.into_iter().next() {
            return Err(NodeError::Refused(r));
        }
        report
            .admitted
            .first()
            .copied()
            .ok_or_else(|| NodeError::Invalid("entry already present".into()))
    }

    /// Signs `cert` on top of the kept heads and admits it.
    pub fn write(&mut self, cert: Certificate) -> Result<EntryId, NodeError> {
        let device = self.keys.device();
        let org_key = self.keys.org_key();
        let bytes = Writer {
            keys: &device,
            org_key: &org_key,
            clock: &mut self.clock,
        }
        .draft(&self.log, now_ms(), cert);
        self.ingest_own(bytes)
    }

    /// Housekeeping after the log changed: picks up user-key rotations made by a sibling device,
    /// and rotates our user key if a device that held it was revoked.
    pub fn maintain(&mut self) -> Result<(), NodeError> {
        let me = self.device_id();
        let user = self.user_id();
        let org = self.org_id();
        if !self.log.state().is_active(&me) {
            return Ok(());
        }
        // Learn rotations sealed to us.
        let device = self.keys.device();
        let mut learned = Vec::new();
        for e in self.log.entries() {
            if let Certificate::UserKeyRotated(r) = &e.body().cert
                && r.user == user
                && self.keys.user_secret_gen(r.generation).is_none()
                && let Ok(s) = author::open_rotation(&org, &device, r)
            {
                learned.push(s);
            }
        }
        if !learned.is_empty() {
            self.keys.add_user_secrets(&learned)?;
        }
        let Some(key) = self.log.state().users.get(&user).map(|u| u.key.clone()) else {
            return Ok(());
        };
        if key.needs_rotation {
            self.rotate_user_key()?;
        }
        Ok(())
    }

    /// Moves our user key to a new generation sealed to our user's active devices.
    pub fn rotate_user_key(&mut self) -> Result<EntryId, NodeError> {
        let user = self.user_id();
        let org = self.org_id();
        let st = self.log.state();
        let current = st
            .users
            .get(&user)
            .map(|u| u.key.generation)
            .ok_or_else(|| NodeError::Invalid("this device's user is unknown".into()))?;
        let recipients: Vec<(DeviceId, [u8; 32])> = st
            .active_devices_of(&user)
            .into_iter()
            .filter_map(|d| st.devices.get(&d).map(|s| (d, s.exchange_key)))
            .collect();
        let prev = self.keys.user_secret_gen(current).ok_or_else(|| {
            NodeError::Invalid(format!("this device lacks user-key generation {current}"))
        })?;
        let next = UserSecret::generate(current + 1, &mut rand::rng());
        let cert = author::rotation(&mut rand::rng(), &org, user, &prev, &next, &recipients)?;
        let id = self.write(cert)?;
        self.keys.add_user_secrets(&[next])?;
        Ok(id)
    }

    /// Revokes a device. Revoking another device of our own user rotates our user key at once;
    /// for another user's device the rotation falls to that user's remaining devices (an admin
    /// must never learn another user's key).
    pub fn revoke_device(&mut self, device: DeviceId) -> Result<EntryId, NodeError> {
        if device == self.device_id() {
            return Err(NodeError::Invalid(
                "this is the device you are using; revoke it from another device".into(),
            ));
        }
        let id = self.write(Certificate::DeviceRevoked { device })?;
        self.maintain()?;
        Ok(id)
    }

    /// Revokes a user and all their devices.
    pub fn revoke_user(&mut self, user: UserId) -> Result<EntryId, NodeError> {
        if user == self.user_id() {
            return Err(NodeError::Invalid(
                "this is your own user; another admin must revoke it".into(),
            ));
        }
        self.write(Certificate::UserRevoked { user })
    }

    /// Provisions a new user with one device, for tests and the demo until interactive enrolment
    /// exists. The new device's secrets are generated here and written to `new_home`'s key file;
    /// the certificates go through admission like any entry (this device must be an admin's).
    #[allow(clippy::too_many_arguments)]
    pub fn provision_user(
        &mut self,
        new_home: &Path,
        passphrase: &[u8],
        kdf: KdfParams,
        name: &str,
        email: &str,
        device_label: &str,
        profile: Profile,
    ) -> Result<Node, NodeError> {
        let mut rng = rand::rng();
        let mut uid = [0u8; 16];
        rand::Rng::fill_bytes(&mut rng, &mut uid);
        let user = UserId(uid);
        let secret = UserSecret::generate(0, &mut rng);
        let device = crate::trust::DeviceKeys::generate(&mut rng);
        let org = self.org_id();
        let me = self.keys.device();
        let org_key = self.keys.org_key();
        let w = Writer {
            keys: &me,
            org_key: &org_key,
            clock: &mut Clock::default(),
        };
        let who = Newcomer {
            name,
            email,
            device_label,
        };
        let c1 = w.user_added(
            &mut rng,
            &org,
            user,
            profile,
            &author::UserSecretPublic(secret.public()),
            &who,
        )?;
        let c2 = w.device_added(
            &mut rng,
            &org,
            user,
            device.id(),
            device.exchange_public(),
            device_label,
        )?;
        prepare_home(new_home)?;
        self.write(c1)?;
        self.write(c2)?;
        Keystore::create(
            &new_home.join(KEY_FILE),
            passphrase,
            kdf,
            org,
            user,
            &device,
            &org_key,
            &secret,
        )?;
        let store = Store::open(&new_home.join(STORE_FILE))?;
        store.set_org(org)?;
        drop(store);
        let mut node = Node::open(new_home, passphrase)?;
        let all: Vec<Vec<u8>> = self.log.entries().map(|e| e.bytes().to_vec()).collect();
        node.ingest_log(all)?;
        Ok(node)
    }
}

/// Makes `dir` ready to hold a new device: refuses one that already does; creates a missing one
/// with owner-only permissions (an existing directory keeps its own: the key file is 0600 anyway,
/// and changing the mode of, say, a user's home directory would surprise them).
fn prepare_home(dir: &Path) -> Result<(), NodeError> {
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
