//! How a device is introduced to the relay (`Intro`), and what a relay revocation does: the
//! rules are in the parent module's doc (`relay::server`).
//!
//! Invariants: nothing is stored for an organization whose log, judged on a scratch copy, does
//! not authorize this relay or revokes it, nor for one served no more (revoked), unless the
//! entries brought, judged on a copy, void the revocation and make the sender active; a
//! revoked organization's devices are unlinked and refused, never welcomed.

use super::{MAX_ORGS, Relay, RelayError};
use crate::node::now_ms;
use crate::relay::served::{open_served, org_dir};
use crate::relay::wire::{Refusal, RelayMsg};
use crate::sync::DocId;
use crate::trust::{DeviceId, OrgId, OrgLog};

impl Relay {
    /// A device's `Intro`: serve a new organization that authorizes us, take a served one's
    /// entries from a device that counts with them, then welcome the device or refuse it.
    pub(super) fn on_intro(
        &mut self,
        from: DeviceId,
        org: OrgId,
        entries: Vec<Vec<u8>>,
    ) -> Result<(), RelayError> {
        let now = now_ms();
        // A new organization is served only if its log, judged on a copy, makes the sender active.
        let newly_served = !self.orgs.contains_key(&org);
        if newly_served {
            if self.orgs.len() >= MAX_ORGS {
                self.refuse(from, Refusal::NotAuthorized);
                return Ok(());
            }
            // Nothing is stored for an organization that does not authorize us.
            let mut scratch = OrgLog::new(org);
            scratch.ingest(entries.clone());
            let st = scratch.state();
            if st.revoked_relays.contains_key(&self.me) {
                self.refuse(from, Refusal::RelayRevoked);
                return Ok(());
            }
            if !st.relays.contains_key(&self.me) {
                self.refuse(from, Refusal::NotAuthorized);
                return Ok(());
            }
            if !st.is_active(&from) {
                self.refuse(from, Refusal::NotActive);
                return Ok(());
            }
            let served = open_served(self.me, &org_dir(&self.data, &org), org)?;
            tracing::info!(org = %hex::encode(&org.0[..6]), "now serving an organization");
            self.orgs.insert(org, served);
        }
        let Some(s) = self.orgs.get_mut(&org) else {
            return Ok(());
        };
        let fresh: Vec<Vec<u8>> = entries
            .into_iter()
            .filter(|b| {
                !s.engine
                    .replica()
                    .holds(DocId::Org, blake3::hash(b).as_bytes())
            })
            .collect();
        // Entries are taken only from a device that counts once they are in: active in the
        // relay's own state, or in that state with the entries added, judged on a copy first
        // (a newly enrolled device brings its certificate; an honest device brings the
        // revocation that voids a revoked one's forgeries, which may have reached the relay
        // first). A stranger's or a revoked device's entries are neither stored nor passed on.
        if s.revoked {
            // Served no more: nothing is taken, unless the entries (judged on a copy) void the
            // revocation and make the sender active.
            let me = self.me;
            let back = s
                .engine
                .replica()
                .org
                .state_with(&fresh)
                .is_some_and(|st| st.relays.contains_key(&me) && st.is_active(&from));
            if !back {
                self.refuse(from, Refusal::RelayRevoked);
                return Ok(());
            }
            s.revoked = false;
            tracing::warn!(org = %hex::encode(&org.0[..6]), "revocation voided: serving the organization again");
        }
        let takes = newly_served || s.engine.replica().org.counts_with(&from, &fresh);
        if takes && !fresh.is_empty() {
            let _ = s.engine.handle_local(now, DocId::Org, fresh);
        }
        let st = s.engine.replica().org.state();
        let (authorized, active) = (st.relays.contains_key(&self.me), st.is_active(&from));
        if st.revoked_relays.contains_key(&self.me) {
            // This introduction brought the revocation (the turn then cuts the others off).
            self.unlink(from);
            self.refuse(from, Refusal::RelayRevoked);
        } else if !authorized {
            self.refuse(from, Refusal::NotAuthorized);
        } else if !active {
            self.refuse(from, Refusal::NotActive);
        } else {
            self.pending.remove(&from);
            if let Some(old) = self.peer_org.insert(from, org)
                && old != org
                && let Some(o) = self.orgs.get_mut(&old)
            {
                o.engine.handle_disconnected(from);
            }
            // The welcome goes out first (replies are sent before the engine's transmits).
            self.replies.push((from, RelayMsg::Welcome));
            if let Some(s) = self.orgs.get_mut(&org) {
                s.engine.handle_connected(now, from);
            }
            tracing::info!(peer = %from.short(), org = %hex::encode(&org.0[..6]), "device welcomed");
        }
        Ok(())
    }

    /// Organizations whose log now revokes this relay: served no more (each welcomed device of
    /// theirs is refused and cut off; the allowlist, recomputed after, drops them all).
    pub(super) fn apply_revocations(&mut self) {
        let me = self.me;
        let mut newly = Vec::new();
        for (org, s) in &mut self.orgs {
            let revoked = s
                .engine
                .replica()
                .org
                .state()
                .revoked_relays
                .contains_key(&me);
            if revoked && !s.revoked {
                newly.push(*org);
            }
            s.revoked = revoked;
        }
        for org in newly {
            tracing::warn!(org = %hex::encode(&org.0[..6]), "the organization revoked this relay: no longer serving it (stored data kept)");
            let peers: Vec<DeviceId> = self
                .peer_org
                .iter()
                .filter(|(_, o)| **o == org)
                .map(|(p, _)| *p)
                .collect();
            for p in peers {
                self.unlink(p);
                self.refuse(p, Refusal::RelayRevoked);
            }
        }
    }

    /// Forgets which organization welcomed `peer` and unlinks it from that engine.
    pub(super) fn unlink(&mut self, peer: DeviceId) {
        if let Some(org) = self.peer_org.remove(&peer)
            && let Some(s) = self.orgs.get_mut(&org)
        {
            s.engine.handle_disconnected(peer);
        }
    }
}
