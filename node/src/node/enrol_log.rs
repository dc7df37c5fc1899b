//! Invitations in the organization log: recording an invitation when it is made, closing it
//! when it is cancelled or used, and the listing that merges what the log says (every admin's
//! invitations) with this device's own records (which alone hold tokens).
//!
//! Invariants: the log carries the invitation id, never the secret, and the e-mail only sealed
//! under the organization key (purpose `invitation`, subject the id); a wrong code burns the
//! invitation on the greeter only (nothing is written to the log on a failed exchange), so
//! other admins see a burned invitation as live until it expires; a closure in the log wins
//! over a local record that is still live, so an admin can cancel another admin's invitation.

use super::enrol::{InvitationRecord, InviteKind, InviteState};
use super::{Node, NodeError, now_ms};
use crate::control::enrol::InvitationInfo;
use crate::enroll::InvitationId;
use crate::trust::author::{self, InvitationPrivate, UserPrivate, Writer};
use crate::trust::entry::{Certificate, CloseReason, Invited};
use crate::trust::org_keys::OrgKeyRing;
use crate::trust::state::InvitationState;

impl Node {
    /// Writes the `InvitationRecorded` certificate of a new invitation.
    pub(super) fn record_invitation(&mut self, rec: &InvitationRecord) -> Result<(), NodeError> {
        let (invited, email) = match &rec.kind {
            InviteKind::User { email, profile } => {
                (Invited::User { profile: *profile }, Some(email.as_str()))
            }
            InviteKind::Device { user } => (Invited::Device { user: *user }, None),
        };
        let device = self.keys.device();
        let org_key = self.sealing_org_key();
        let org = self.org_id();
        let cert = Writer {
            keys: &device,
            org_key: &org_key,
            clock: &mut self.clock,
        }
        .invitation_recorded(
            &mut rand::rng(),
            &org,
            rec.id().0,
            invited,
            rec.expires_ms,
            email,
        )
        .map_err(|e| NodeError::Invalid(e.to_string()))?;
        self.write(cert)?;
        Ok(())
    }

    /// The closing certificate for invitation `id`, if the log records it still open (an
    /// invitation made before invitations were recorded has nothing to close).
    pub(super) fn closing_cert(
        &self,
        id: &InvitationId,
        reason: CloseReason,
    ) -> Option<Certificate> {
        let open = self
            .state()
            .invitations
            .get(&id.0)
            .is_some_and(|i| i.closed.is_none());
        open.then_some(Certificate::InvitationClosed { id: id.0, reason })
    }

    /// Writes `InvitationClosed` for `id` if the log records it still open.
    pub(super) fn close_recorded(
        &mut self,
        id: &InvitationId,
        reason: CloseReason,
    ) -> Result<(), NodeError> {
        if let Some(cert) = self.closing_cert(id, reason) {
            self.write(cert)?;
        }
        Ok(())
    }

    /// How the log closed invitation `id`, if it did.
    pub(super) fn closed_in_log(&self, id: &InvitationId) -> Option<CloseReason> {
        self.state().invitations.get(&id.0)?.closed.map(|c| c.0)
    }

    /// A local record as the log sees it: closed there (by another admin, or by this device
    /// before a crash) means closed here.
    pub(super) fn overlay_log(&self, rec: &mut InvitationRecord) {
        if rec.state != InviteState::Live {
            return;
        }
        if let Some(reason) = self.closed_in_log(&rec.id()) {
            rec.state = match reason {
                CloseReason::Used => InviteState::Used,
                CloseReason::Cancelled => InviteState::Cancelled,
            };
        }
    }

    /// Fills in who recorded a listed invitation, from the log.
    pub(super) fn add_recorder(&self, info: &mut InvitationInfo, id: &[u8; 16], ring: &OrgKeyRing) {
        if let Some(i) = self.state().invitations.get(id) {
            info.recorded = true;
            info.recorded_by_device = Some(i.recorded_by.to_string());
            info.recorded_by_user = self.recorder_name(i, ring);
        }
    }

    fn recorder_name(&self, i: &InvitationState, ring: &OrgKeyRing) -> Option<String> {
        let st = self.state();
        let user = st.devices.get(&i.recorded_by)?.user;
        let u = st.users.get(&user)?;
        let name = author::open_private::<UserPrivate>(
            ring,
            &self.org_id(),
            author::PRIVATE_USER,
            &user.0,
            &u.private,
        )
        .map_or_else(|_| "(unreadable)".to_owned(), |p| p.name);
        Some(name)
    }

    /// The invitations the log records that this device holds no record of (another admin's,
    /// or another device's of this user), for display.
    pub(super) fn recorded_elsewhere(
        &self,
        local: &[InvitationInfo],
        now: u64,
        key: &OrgKeyRing,
    ) -> Vec<InvitationInfo> {
        let org = self.org_id();
        let mut out = Vec::new();
        for (id, i) in &self.state().invitations {
            let hex_id = InvitationId(*id).to_string();
            if local.iter().any(|l| l.id == hex_id) {
                continue;
            }
            let (kind, email, profile) = match i.invited {
                Invited::User { profile } => {
                    let email = author::open_private::<InvitationPrivate>(
                        key,
                        &org,
                        author::PRIVATE_INVITATION,
                        id,
                        &i.private,
                    )
                    .map_or_else(|_| "(unreadable)".to_owned(), |p| p.email);
                    ("user", Some(email), Some(profile.as_str().to_owned()))
                }
                Invited::Device { .. } => ("device", None, None),
            };
            let state = match i.closed {
                Some((reason, _)) => reason.as_str(),
                None if now >= i.expires_ms => "expired",
                None => "live",
            };
            let mut info = InvitationInfo {
                id: hex_id,
                kind: kind.into(),
                email,
                profile,
                created_ms: i.recorded_ms,
                expires_ms: i.expires_ms,
                state: state.into(),
                token: None,
                recorded: true,
                recorded_by_user: None,
                recorded_by_device: None,
            };
            self.add_recorder(&mut info, id, key);
            out.push(info);
        }
        out
    }

    /// Cancels an invitation this device holds no record of, found in the log by id or hex
    /// prefix (an admin cancelling another admin's invitation).
    pub(super) fn cancel_recorded(&mut self, query: &str) -> Result<InvitationInfo, NodeError> {
        let q = query.trim().to_ascii_lowercase();
        let not_found = || NodeError::NotFound {
            what: "invitation",
            query: query.to_owned(),
        };
        if q.len() < 4 {
            return Err(not_found());
        }
        let hits: Vec<[u8; 16]> = self
            .state()
            .invitations
            .keys()
            .filter(|id| hex::encode(id).starts_with(&q))
            .copied()
            .collect();
        let id = match hits.as_slice() {
            [] => return Err(not_found()),
            [one] => InvitationId(*one),
            _ => {
                return Err(NodeError::Ambiguous {
                    what: "invitation",
                    query: query.to_owned(),
                    candidates: hits
                        .iter()
                        .map(|h| hex::encode(&h[..6]))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        };
        let now = now_ms();
        let open = self
            .state()
            .invitations
            .get(&id.0)
            .map(|i| (i.closed.map(|c| c.0), now >= i.expires_ms));
        match open {
            Some((Some(reason), _)) => {
                return Err(NodeError::Refused(format!(
                    "invitation {id} cannot be cancelled: it is already {}",
                    reason.as_str()
                )));
            }
            Some((None, true)) => {
                return Err(NodeError::Refused(format!(
                    "invitation {id} cannot be cancelled: it has expired"
                )));
            }
            _ => {}
        }
        self.close_recorded(&id, CloseReason::Cancelled)?;
        let listed = self.recorded_elsewhere(&[], now, &self.org_ring());
        listed
            .into_iter()
            .find(|i| i.id == id.to_string())
            .ok_or_else(not_found)
    }
}
