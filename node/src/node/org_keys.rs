//! The organization keys of a device: its ring (what it reads private parts with), the key it
//! seals with, and the rotation an admin's device writes after a user revocation.
//!
//! Invariant: the ring is recomputed from the key file (its organization key and user secrets)
//! and the log, never stored: nothing new is written to the key file for it. Older user-key
//! generations are recovered through the log's chain links.

use super::{Node, NodeError};
use crate::trust::org_keys::{self, OrgKeyRing};
use crate::trust::{Certificate, EntryId, OrgKey, Profile, UserId, UserSecret, keys};

impl Node {
    /// The organization keys this device holds (see [`OrgKeyRing::build`]).
    pub fn org_ring(&self) -> OrgKeyRing {
        let user = self.user_id();
        OrgKeyRing::build(self.log(), &self.keys.org_key(), &user, |g| {
            self.user_secret_at(g)
        })
    }

    /// The key this device seals new private parts with: the ring's current key.
    pub(super) fn sealing_org_key(&self) -> OrgKey {
        self.org_ring()
            .current()
            .cloned()
            .unwrap_or_else(|| self.keys.org_key())
    }

    /// Generation `g` of our user key: held in the key file, or recovered from a newer one
    /// through the chain links of our user's rotations.
    fn user_secret_at(&self, g: u32) -> Option<UserSecret> {
        if let Some(s) = self.keys.user_secret_gen(g) {
            return Some(s);
        }
        let user = self.user_id();
        let mut cur = self.keys.user_secret()?;
        while cur.generation > g {
            let link = self.log().entries().find_map(|e| match &e.body().cert {
                Certificate::UserKeyRotated(r)
                    if r.user == user
                        && r.generation == cur.generation
                        && r.key == cur.public() =>
                {
                    Some(r.prev.clone())
                }
                _ => None,
            })?;
            let prev = keys::unchain_prev(&user, &cur, &link).ok()?;
            cur = self.keys.user_secret_gen(prev.generation).unwrap_or(prev);
        }
        (cur.generation == g).then_some(cur)
    }

    /// Moves the organization key to a fresh key sealed to every user not revoked (their
    /// latest user key), the previous key chained to it. Admins only.
    pub fn rotate_org_key(&mut self) -> Result<EntryId, NodeError> {
        let org = self.org_id();
        let prev = self.sealing_org_key();
        let st = self.state();
        let recipients: Vec<(UserId, u32, [u8; 32])> = st
            .users
            .iter()
            .filter(|(_, u)| u.revoked_by.is_none())
            .map(|(id, u)| (*id, u.key.generation, u.key.public))
            .collect();
        let mut rng = rand::rng();
        let next = OrgKey::generate_rotated(&mut rng);
        let mut certs = org_keys::rotation(&mut rng, &org, &prev, &next, &recipients)?.into_iter();
        let Some(rotation) = certs.next() else {
            return Err(NodeError::Invalid("no rotation to write".into()));
        };
        let id = self.write(rotation)?;
        // More shares, each citing the rotation (our own previous entry).
        for c in certs {
            self.write(c)?;
        }
        Ok(id)
    }

    /// Part of [`Node::maintain`]: an active admin's device rotates the organization key when
    /// a revoked user holds the current one, or a revoked device of an active user can open it
    /// (once that user's key has rotated). A failure is logged, not returned (the next change
    /// of the log tries again).
    pub(super) fn maintain_org_key(&mut self) {
        let st = self.state();
        let admin = st
            .users
            .get(&self.user_id())
            .is_some_and(|u| u.profile == Profile::Admin && u.revoked_by.is_none());
        if !st.org_keys.needs_rotation || !admin || !st.is_active(&self.device_id()) {
            return;
        }
        // A rotation sealed to a user key that a revoked device knows would leave the key open
        // to it: wait for those users' own devices to rotate their keys, unless a revoked user
        // holds the current key (then rotate now, and again later).
        let waiting: Vec<_> = st
            .org_keys
            .exposed_by_devices_of
            .iter()
            .filter(|u| st.users.get(u).is_some_and(|s| s.key.needs_rotation))
            .collect();
        if !waiting.is_empty() && !st.org_keys.revoked_user_holds {
            tracing::debug!(
                users = waiting.len(),
                "organization key: waiting for user-key rotations after a device revocation"
            );
            return;
        }
        match self.rotate_org_key() {
            Ok(id) => tracing::info!(entry = %id, "organization key rotated after a revocation"),
            Err(err) => tracing::warn!(%err, "cannot rotate the organization key"),
        }
    }
}
