//! Organization-log operations of a node: admitting entries, signing our own, user-key
//! maintenance, revocations and library provisioning of new users.
//!
//! Invariant: every entry, ours included, goes through the engine's admission
//! ([`crate::sync::Engine::handle_local`]) and is persisted by [`Node::settle`] before the call
//! returns.

use std::path::Path;

use super::{KEY_FILE, Node, NodeError, STORE_FILE, now_ms, prepare_home};
use crate::keystore::{KdfParams, Keystore};
use crate::store::Store;
use crate::sync::DocId;
use crate::sync::replica::Ingested;
use crate::trust::author::{self, Newcomer, Writer};
use crate::trust::{Certificate, Clock, DeviceId, EntryId, Profile, UserId, UserSecret};

impl Node {
    /// Admits organization-log entries (from a bundle, a provisioning, or ourselves) through the
    /// engine, which pushes what is new to connected peers; [`Node::settle`] persists them.
    pub fn ingest_log(&mut self, batch: Vec<Vec<u8>>) -> Result<Ingested, NodeError> {
        let r = self.engine.handle_local(now_ms(), DocId::Org, batch);
        for (id, reason) in &r.refused {
            tracing::warn!(entry = %hex::encode(&id[..6]), reason, "organization-log entry refused");
        }
        self.settle()?;
        Ok(r)
    }

    pub(super) fn ingest_own(&mut self, bytes: Vec<u8>) -> Result<EntryId, NodeError> {
        let id = EntryId(*blake3::hash(&bytes).as_bytes());
        let r = self.ingest_log(vec![bytes])?;
        if let Some((_, reason)) = r.refused.into_iter().next() {
            return Err(NodeError::Refused(reason.to_owned()));
        }
        if !self.log().contains(&id) {
            return Err(NodeError::Refused("waiting for its parents".into()));
        }
        if self.state().dropped.binary_search(&id).is_ok() {
            return Err(NodeError::Refused("admitted but does not count".into()));
        }
        Ok(id)
    }

    /// Signs `cert` on top of the kept heads and admits it.
    pub fn write(&mut self, cert: Certificate) -> Result<EntryId, NodeError> {
        let device = self.keys.device();
        self.log()
            .may_write(&device.id(), &cert)
            .map_err(|r| NodeError::Refused(format!("{}: {r}", r.label())))?;
        let bytes = author::draft(
            &device,
            &mut self.clock,
            &self.engine.replica().org,
            now_ms(),
            cert,
        );
        self.ingest_own(bytes)
    }

    /// Housekeeping after the log changed: picks up user-key rotations made by a sibling device,
    /// rotates the organization key if a revoked user holds it (admins' devices), and rotates
    /// our user key if a device that held it was revoked.
    pub fn maintain(&mut self) -> Result<(), NodeError> {
        let me = self.device_id();
        let user = self.user_id();
        let org = self.org_id();
        if !self.state().is_active(&me) {
            return Ok(());
        }
        // Learn rotations sealed to us.
        let device = self.keys.device();
        let mut learned = Vec::new();
        for e in self.log().entries() {
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
        self.maintain_org_key();
        let Some(key) = self.log().state().users.get(&user).map(|u| u.key.clone()) else {
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
        let st = self.log().state();
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
        let secret = UserSecret::generate(0, &mut rng);
        let device = crate::trust::DeviceKeys::generate(&mut rng);
        let org = self.org_id();
        let claimed = author::claim_first(&device, &org, &secret.public());
        let user = claimed.first_user(&org);
        let me = self.keys.device();
        let org_key = self.sealing_org_key();
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
        let c = w.user_added(
            &mut rng,
            &org,
            profile,
            &author::UserSecretPublic(secret.public()),
            &claimed,
            &who,
        )?;
        prepare_home(new_home)?;
        self.write(c)?;
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
        let all: Vec<Vec<u8>> = self.log().entries().map(|e| e.bytes().to_vec()).collect();
        node.ingest_log(all)?;
        Ok(node)
    }
}
