//! The caps per user (`trust::admission`'s module doc): how many devices and open invitations
//! one user may hold, counted in an entry's cited past, for admission and for a writer's own
//! check before it signs.
//!
//! Invariant: a refusal stays right whatever comes later, since later entries can only add to
//! the cited past (more devices, more invitations), never take from it.

use super::{At, Index};
use crate::dag::Dag;
use crate::trust::entry::{Certificate, Entry, Invited};
use crate::trust::ids::{DeviceId, UserId};
use crate::trust::rejection::Rejection;

/// Most devices of one user not revoked in the cited past when a device is added.
pub const MAX_USER_DEVICES: usize = 32;
/// Most device certificates of one user, revoked ones included (bounds churn in the log).
pub const MAX_USER_DEVICE_CERTS: usize = 256;
/// Most invitations recorded by one user's devices and still open in the cited past.
pub const MAX_PENDING_INVITATIONS: usize = 128;

impl At<'_> {
    /// `user`'s device certificates in the causal past, and how many of those devices are not
    /// revoked there (nor their user).
    fn user_devices(&self, user: &UserId) -> (usize, usize) {
        let certs = self.ancestors_in(self.index.user_devices.get(user));
        if self.any_in(self.index.user_revokes.get(user)) {
            return (certs.len(), 0);
        }
        let mut devices: Vec<DeviceId> = certs
            .iter()
            .filter_map(|p| self.entries[*p as usize].body().cert.device_added())
            .map(|(d, _)| d.device)
            .collect();
        devices.sort_unstable();
        devices.dedup();
        let active = devices
            .iter()
            .filter(|d| !self.any_in(self.index.device_revokes.get(d)))
            .count();
        (certs.len(), active)
    }

    /// Invitations recorded by devices of `user` in the causal past that are still open at
    /// `time`: not closed there, not expired.
    fn open_invitations(&self, user: &UserId, time: u64) -> usize {
        let devices = self
            .ancestors_in(self.index.user_devices.get(user))
            .into_iter()
            .filter_map(|p| self.entries[p as usize].body().cert.device_added())
            .map(|(d, _)| d.device)
            .collect::<std::collections::BTreeSet<_>>();
        devices
            .iter()
            .flat_map(|d| self.ancestors_in(self.index.invitations_by.get(d)))
            .filter(|p| match &self.entries[*p as usize].body().cert {
                Certificate::InvitationRecorded(i) => {
                    i.expires_ms > time && !self.any_in(self.index.invitation_closes.get(&i.id))
                }
                _ => false,
            })
            .count()
    }
}

/// The caps per user (module doc), for `cert` by a device of `author_user` at `time_ms`, in
/// the causal past of `past`: admission's rule, and a writer's own check on its current heads
/// ([`OrgLog::may_write`](super::OrgLog::may_write)) so that it says why before signing.
pub fn check_caps(
    dag: &Dag,
    entries: &[Entry],
    index: &Index,
    past: &[u32],
    cert: &Certificate,
    author_user: &UserId,
    time_ms: u64,
) -> Result<(), Rejection> {
    let q = At {
        dag,
        entries,
        index,
        past,
    };
    caps(&q, cert, author_user, time_ms)
}

pub(super) fn caps(
    q: &At<'_>,
    cert: &Certificate,
    author_user: &UserId,
    time_ms: u64,
) -> Result<(), Rejection> {
    let room_for_a_device = |user: &UserId| {
        let (certs, active) = q.user_devices(user);
        if active >= MAX_USER_DEVICES || certs >= MAX_USER_DEVICE_CERTS {
            return Err(Rejection::TooManyDevices {
                user: *user,
                active,
                certs,
            });
        }
        Ok(())
    };
    match cert {
        Certificate::DeviceAdded(d) => room_for_a_device(&d.user)?,
        Certificate::InvitationRecorded(i) => {
            let open = q.open_invitations(author_user, time_ms);
            if open >= MAX_PENDING_INVITATIONS {
                return Err(Rejection::TooManyInvitations { open });
            }
            // A device invitation that could never be used is not recorded.
            if let Invited::Device { user } = &i.invited {
                room_for_a_device(user)?;
            }
        }
        _ => {}
    }
    Ok(())
}
