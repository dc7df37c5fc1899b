//! Enrolment on a node: invitation records (created, listed, cancelled, burned, used), the
//! greeter's certificates and `Welcome` once both codes are confirmed, and the claimer's new
//! home built from a `Welcome`.
//!
//! Invariants: an invitation record is sealed under the organization key in the store (the
//! token secret and the e-mail are never on disk in clear); a user invitation is made only by
//! an admin's device, a device invitation only for the inviting device's own user; creating and
//! cancelling an invitation write its `InvitationRecorded` / `InvitationClosed` entries
//! (`enrol_log`), and an exchange writes nothing to the organization log before
//! [`Node::admit_enrolment`], which the greeter calls only once both codes are confirmed and the
//! claimer stored its home; a claimer's home is removed again if the log it was given does not
//! make its device active.

use rand::Rng;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::{Node, NodeError, now_ms};
use crate::control::enrol::{InvitationInfo, Invitee};
use crate::enroll::msg::{MAX_PEER_ADDR, MAX_WELCOME_PEERS};
use crate::enroll::{
    Claim, InvitationId, InvitationSecret, RefuseStatus, Secret32, Token, Welcome,
};
use crate::trust::author::{self, UserSecretPublic, Writer};
use crate::trust::entry::{self, CloseReason, EntryBody};
use crate::trust::keys;
use crate::trust::org_keys::OrgKeyRing;
use crate::trust::{EntryId, Profile, UserId};

/// Default lifetime of an invitation.
pub const DEFAULT_TTL_S: u64 = 24 * 3600;
/// Longest lifetime.
pub const MAX_TTL_S: u64 = 30 * 24 * 3600;
const PURPOSE: &str = "invitation";

/// Who an invitation is for, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteKind {
    /// A new user.
    User {
        /// E-mail.
        email: String,
        /// Profile.
        profile: Profile,
    },
    /// A new device of `user`.
    Device {
        /// The user.
        user: UserId,
    },
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteState {
    /// Can be claimed (until it expires).
    Live,
    /// Claimed.
    Used,
    /// Cancelled by an admin.
    Cancelled,
    /// A wrong code burned it.
    Burned,
}

/// An invitation record (sealed in the store).
#[derive(Clone, Serialize, Deserialize)]
pub struct InvitationRecord {
    /// The secret.
    pub secret: [u8; 16],
    /// For whom.
    pub kind: InviteKind,
    /// Unix ms.
    pub created_ms: u64,
    /// Unix ms.
    pub expires_ms: u64,
    /// State.
    pub state: InviteState,
    /// The greeter addresses put in the token.
    pub addrs: Vec<String>,
}

impl Drop for InvitationRecord {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl InvitationRecord {
    /// The secret.
    pub fn secret(&self) -> InvitationSecret {
        InvitationSecret::from_bytes(self.secret)
    }

    /// The id.
    pub fn id(&self) -> InvitationId {
        self.secret().id()
    }

    /// Why it cannot be claimed now, if it cannot.
    pub fn refusal(&self, now: u64) -> Option<RefuseStatus> {
        match self.state {
            InviteState::Used => Some(RefuseStatus::Used),
            InviteState::Cancelled => Some(RefuseStatus::Cancelled),
            InviteState::Burned => Some(RefuseStatus::Burned),
            InviteState::Live if now >= self.expires_ms => Some(RefuseStatus::Expired),
            InviteState::Live => None,
        }
    }

    fn state_label(&self, now: u64) -> &'static str {
        match self.refusal(now) {
            None => "live",
            Some(RefuseStatus::Used) => "used",
            Some(RefuseStatus::Cancelled) => "cancelled",
            Some(RefuseStatus::Burned) => "burned",
            Some(_) => "expired",
        }
    }
}

/// Parses a profile name.
pub fn parse_profile(s: &str) -> Result<Profile, NodeError> {
    match s {
        "admin" => Ok(Profile::Admin),
        "standard" => Ok(Profile::Standard),
        "outsider" => Ok(Profile::Outsider),
        o => Err(NodeError::Invalid(format!(
            "unknown profile {o:?} (admin, standard or outsider)"
        ))),
    }
}

impl Node {
    /// Creates an invitation whose token names `addrs` as the greeter's addresses.
    pub fn create_invitation(
        &mut self,
        invitee: &Invitee,
        ttl_s: Option<u64>,
        addrs: Vec<String>,
    ) -> Result<InvitationInfo, NodeError> {
        let me = self.device_id();
        if !self.state().is_active(&me) {
            return Err(NodeError::Forbidden("this device is not active".into()));
        }
        let kind = match invitee {
            Invitee::User { email, profile } => {
                let admin = self
                    .state()
                    .users
                    .get(&self.user_id())
                    .is_some_and(|u| u.profile == Profile::Admin);
                if !admin {
                    return Err(NodeError::Forbidden(
                        "only an admin may invite a user".into(),
                    ));
                }
                if email.is_empty() || email.len() > 256 || email.chars().any(char::is_control) {
                    return Err(NodeError::Invalid(
                        "the e-mail must be 1 to 256 printable bytes".into(),
                    ));
                }
                InviteKind::User {
                    email: email.clone(),
                    profile: parse_profile(profile)?,
                }
            }
            Invitee::Device => InviteKind::Device {
                user: self.user_id(),
            },
        };
        let ttl = ttl_s.unwrap_or(DEFAULT_TTL_S);
        if ttl == 0 || ttl > MAX_TTL_S {
            return Err(NodeError::Invalid(format!(
                "the lifetime must be 1 s to {MAX_TTL_S} s"
            )));
        }
        let mut secret = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        let now = now_ms();
        let rec = InvitationRecord {
            secret,
            kind,
            created_ms: now,
            expires_ms: now + ttl * 1000,
            state: InviteState::Live,
            addrs,
        };
        secret.zeroize();
        // Recorded in the log first, so that a refused record leaves no local invitation.
        self.record_invitation(&rec)?;
        self.save_invitation(&rec)?;
        self.invitation_info(&rec, now, true, &self.org_ring())
    }

    fn save_invitation(&self, rec: &InvitationRecord) -> Result<(), NodeError> {
        let id = rec.id();
        let plain = Zeroizing::new(
            postcard::to_stdvec(rec)
                .map_err(|_| NodeError::Invalid("cannot encode an invitation".into()))?,
        );
        let sealed =
            self.keys
                .org_key()
                .seal(&mut rand::rng(), &self.org_id(), PURPOSE, &id.0, &plain);
        if !self.store.put_invitation(&id.0, &sealed)? {
            return Err(NodeError::Invalid("too many invitations kept".into()));
        }
        Ok(())
    }

    /// Every invitation this device holds.
    pub fn invitation_records(&self) -> Result<Vec<InvitationRecord>, NodeError> {
        let key = self.keys.org_key();
        let org = self.org_id();
        let mut out = Vec::new();
        for (id, sealed) in self.store.invitations()? {
            let Ok(plain) = key.open(&org, PURPOSE, &id, &sealed) else {
                tracing::warn!(id = %hex::encode(&id[..4]), "invitation record does not open; skipped");
                continue;
            };
            match postcard::take_from_bytes::<InvitationRecord>(&plain) {
                Ok((mut r, [])) if r.id().0 == id => {
                    self.overlay_log(&mut r);
                    out.push(r);
                }
                _ => {
                    tracing::warn!(id = %hex::encode(&id[..4]), "invitation record malformed; skipped")
                }
            }
        }
        out.sort_by_key(|r| r.created_ms);
        Ok(out)
    }

    /// The invitations, for display: this device's own (with their tokens while live) and
    /// those the organization log records from every other device.
    pub fn invitations(&self) -> Result<Vec<InvitationInfo>, NodeError> {
        let now = now_ms();
        let ring = self.org_ring();
        let mut out = self
            .invitation_records()?
            .iter()
            .map(|r| self.invitation_info(r, now, false, &ring))
            .collect::<Result<Vec<_>, _>>()?;
        let elsewhere = self.recorded_elsewhere(&out, now, &ring);
        out.extend(elsewhere);
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }

    /// Finds an invitation by id or hex prefix (at least 4 characters).
    pub fn find_invitation(&self, query: &str) -> Result<InvitationRecord, NodeError> {
        let q = query.trim().to_ascii_lowercase();
        let not_found = || NodeError::NotFound {
            what: "invitation",
            query: query.to_owned(),
        };
        if q.len() < 4 {
            return Err(not_found());
        }
        let mut hits: Vec<InvitationRecord> = self
            .invitation_records()?
            .into_iter()
            .filter(|r| hex::encode(r.id().0).starts_with(&q))
            .collect();
        match hits.len() {
            0 => Err(not_found()),
            1 => Ok(hits.remove(0)),
            _ => Err(NodeError::Ambiguous {
                what: "invitation",
                query: query.to_owned(),
                candidates: hits
                    .iter()
                    .map(|r| hex::encode(&r.id().0[..6]))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The record of invitation `id`, if this device holds it.
    pub fn invitation_by_id(
        &self,
        id: &InvitationId,
    ) -> Result<Option<InvitationRecord>, NodeError> {
        Ok(self
            .invitation_records()?
            .into_iter()
            .find(|r| r.id() == *id))
    }

    /// Moves an invitation to `state` (a live one only; the others are final).
    pub fn set_invitation_state(
        &mut self,
        id: &InvitationId,
        state: InviteState,
    ) -> Result<(), NodeError> {
        let Some(mut rec) = self.invitation_by_id(id)? else {
            return Err(NodeError::NotFound {
                what: "invitation",
                query: id.to_string(),
            });
        };
        if rec.state == InviteState::Live {
            rec.state = state;
            self.save_invitation(&rec)?;
        }
        Ok(())
    }

    /// Cancels a live invitation: this device's own, or (for an admin) one the log records
    /// from another device.
    pub fn cancel_invitation(&mut self, query: &str) -> Result<InvitationInfo, NodeError> {
        let rec = match self.find_invitation(query) {
            Err(NodeError::NotFound { .. }) => return self.cancel_recorded(query),
            r => r?,
        };
        if let Some(r) = rec.refusal(now_ms()) {
            return Err(NodeError::Refused(format!(
                "invitation {} cannot be cancelled: {}",
                rec.id(),
                r.message()
            )));
        }
        self.close_recorded(&rec.id(), CloseReason::Cancelled)?;
        self.set_invitation_state(&rec.id(), InviteState::Cancelled)?;
        let rec = self.find_invitation(&rec.id().to_string())?;
        self.invitation_info(&rec, now_ms(), false, &self.org_ring())
    }

    fn invitation_info(
        &self,
        r: &InvitationRecord,
        now: u64,
        with_token: bool,
        ring: &OrgKeyRing,
    ) -> Result<InvitationInfo, NodeError> {
        let (kind, email, profile) = match &r.kind {
            InviteKind::User { email, profile } => (
                "user",
                Some(email.clone()),
                Some(profile.as_str().to_owned()),
            ),
            InviteKind::Device { .. } => ("device", None, None),
        };
        let live = r.refusal(now).is_none();
        let token = if with_token || live {
            Some(
                Token {
                    org: self.org_id(),
                    greeter: self.device_id(),
                    secret: r.secret(),
                    addrs: r.addrs.clone(),
                }
                .encode()
                .map_err(|e| NodeError::Invalid(e.to_string()))?,
            )
        } else {
            None
        };
        let mut info = InvitationInfo {
            id: r.id().to_string(),
            kind: kind.into(),
            email,
            profile,
            created_ms: r.created_ms,
            expires_ms: r.expires_ms,
            state: r.state_label(now).into(),
            token,
            recorded: false,
            recorded_by_user: None,
            recorded_by_device: None,
        };
        self.add_recorder(&mut info, &r.id().0, ring);
        Ok(info)
    }

    /// The greeter's side once both codes are confirmed: signs the certificates for `claim`
    /// (not admitted yet) and builds the `Welcome`. Returns it with the new user's id and the
    /// certificates to admit once the claimer has stored its home.
    pub fn enrolment_welcome(
        &mut self,
        rec: &InvitationRecord,
        claim: &Claim,
    ) -> Result<(Welcome, Vec<Vec<u8>>), NodeError> {
        // Closed in the log meanwhile (another admin cancelled it): certify nothing.
        if let Some(reason) = self.closed_in_log(&rec.id()) {
            return Err(NodeError::Refused(format!(
                "invitation {} was {} in the organization log",
                rec.id(),
                reason.as_str()
            )));
        }
        let org = self.org_id();
        let me = self.keys.device();
        // The current key: a member enrolled after a rotation reaches the older ones through
        // the chain.
        let org_key = self.sealing_org_key();
        let mut rng = rand::rng();
        let now = now_ms();
        let (user, certs, user_keys) = match (&rec.kind, &claim.user) {
            (InviteKind::User { email, profile }, Some(nu)) => {
                let claimed = claim.claimed();
                let user = claimed.first_user(&org);
                let w = Writer {
                    keys: &me,
                    org_key: &org_key,
                    clock: &mut self.clock,
                };
                let c = w.user_added(
                    &mut rng,
                    &org,
                    *profile,
                    &UserSecretPublic(nu.user_key),
                    &claimed,
                    &author::Newcomer {
                        name: &nu.name,
                        email,
                        device_label: &claim.device_label,
                    },
                )?;
                (user, vec![c], Vec::new())
            }
            (InviteKind::Device { user }, None) => {
                if *user != self.user_id() {
                    return Err(NodeError::Forbidden(
                        "a device invitation is greeted by a device of its user".into(),
                    ));
                }
                let w = Writer {
                    keys: &me,
                    org_key: &org_key,
                    clock: &mut self.clock,
                };
                let c =
                    w.device_added(&mut rng, &org, *user, &claim.claimed(), &claim.device_label)?;
                let mut sealed = Vec::new();
                let current = self.keys.user_secret().map_or(0, |s| s.generation);
                for g in 0..=current {
                    if let Some(s) = self.keys.user_secret_gen(g) {
                        let aad = keys::user_key_aad(&org, user, g, &claim.device);
                        sealed.push((
                            g,
                            keys::seal_to_device(
                                &mut rng,
                                &claim.exchange_key,
                                &aad,
                                s.secret_bytes(),
                            )?,
                        ));
                    }
                }
                (*user, vec![c], sealed)
            }
            _ => {
                return Err(NodeError::Invalid(
                    "the claim does not match the invitation's kind".into(),
                ));
            }
        };
        // The invitation is closed as used in the same chain, if the log records it.
        let mut certs = certs;
        certs.extend(self.closing_cert(&rec.id(), CloseReason::Used));
        // Chain the certificates: the first on the kept heads, each next on the previous.
        let mut bytes: Vec<Vec<u8>> = Vec::new();
        let log = &self.engine.replica().org;
        for cert in &certs {
            log.may_write(&me.id(), cert)
                .map_err(|r| NodeError::Refused(r.label().to_owned()))?;
        }
        for cert in certs {
            let b = match bytes.last() {
                None => Writer {
                    keys: &me,
                    org_key: &org_key,
                    clock: &mut self.clock,
                }
                .draft(log, now, cert),
                Some(prev) => {
                    let body = EntryBody {
                        org,
                        parents: vec![EntryId(*blake3::hash(prev).as_bytes())],
                        author: me.id(),
                        time: self.clock.tick(now),
                        cert,
                    };
                    entry::sign(&me, &body)
                }
            };
            bytes.push(b);
        }
        let mut entries: Vec<Vec<u8>> = log.entries().map(|e| e.bytes().to_vec()).collect();
        entries.extend(bytes.iter().cloned());
        Ok((
            Welcome {
                user,
                org_key: Secret32(*org_key.as_bytes()),
                user_keys,
                entries,
                peers: self
                    .advertised
                    .iter()
                    .filter(|a| a.len() <= MAX_PEER_ADDR)
                    .take(MAX_WELCOME_PEERS)
                    .cloned()
                    .collect(),
            },
            bytes,
        ))
    }

    /// Admits the certificates of a completed enrolment.
    pub fn admit_enrolment(&mut self, certs: Vec<Vec<u8>>) -> Result<(), NodeError> {
        for c in certs {
            self.ingest_own(c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "enrol_tests.rs"]
pub(super) mod tests;
