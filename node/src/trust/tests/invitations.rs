//! Admission, state and frozen-vector tests of the invitation certificates
//! (`InvitationRecorded`, `InvitationClosed`).

use super::entry::{CloseReason, InvitationRecorded, Invited};
use super::*;

impl Org {
    /// `dev` records invitation `id` (a user invitation when `email` is given).
    pub(super) fn record(
        &mut self,
        dev: &mut Dev,
        id: [u8; 16],
        invited: Invited,
        email: Option<&str>,
    ) -> IngestReport {
        let expires = self.now + 3_600_000;
        let cert = Writer {
            keys: &dev.keys,
            org_key: &self.key,
            clock: &mut Clock::default(),
        }
        .invitation_recorded(&mut self.rng, &self.org, id, invited, expires, email)
        .unwrap();
        self.try_write(dev, cert).1
    }

    pub(super) fn close(
        &mut self,
        dev: &mut Dev,
        id: [u8; 16],
        reason: CloseReason,
    ) -> IngestReport {
        self.try_write(dev, Certificate::InvitationClosed { id, reason })
            .1
    }
}

pub(super) const USER_INV: Invited = Invited::User {
    profile: Profile::Standard,
};

#[test]
fn an_admin_records_a_user_invitation_whose_email_only_the_org_key_opens() {
    let (mut org, mut ada) = new_org(11);
    assert!(
        org.record(&mut ada, [1; 16], USER_INV, Some("bob@example.org"))
            .is_clean()
    );
    let st = ada.log.state().clone();
    let inv = &st.invitations[&[1; 16]];
    assert_eq!(inv.invited, USER_INV);
    assert_eq!(inv.recorded_by, ada.keys.id());
    assert_eq!(inv.greeter, ada.keys.id());
    assert_eq!(inv.closed, None);
    let p: author::InvitationPrivate = author::open_private(
        &org.key,
        &org.org,
        author::PRIVATE_INVITATION,
        &[1; 16],
        &inv.private,
    )
    .unwrap();
    assert_eq!(p.email, "bob@example.org");
    // The AAD binds purpose and subject: another invitation id or purpose does not open it.
    assert!(
        author::open_private::<author::InvitationPrivate>(
            &org.key,
            &org.org,
            author::PRIVATE_INVITATION,
            &[2; 16],
            &inv.private
        )
        .is_err()
    );
    assert!(
        author::open_private::<author::InvitationPrivate>(
            &org.key,
            &org.org,
            author::PRIVATE_USER,
            &[1; 16],
            &inv.private
        )
        .is_err()
    );
    assert!(!inv.private.windows(15).any(|w| w == b"bob@example.org"));
}

#[test]
fn a_standard_user_records_only_invitations_for_their_own_devices() {
    let (mut org, mut ada) = new_org(12);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let r = org.record(&mut bob, [1; 16], USER_INV, Some("eve@example.org"));
    assert!(matches!(only_rejection(&r), Rejection::NotAdmin { .. }));
    let r = org.record(&mut bob, [2; 16], Invited::Device { user: ada.user }, None);
    assert!(matches!(only_rejection(&r), Rejection::NotOwner { .. }));
    let own = Invited::Device { user: bob.user };
    assert!(org.record(&mut bob, [3; 16], own, None).is_clean());
    // Not even an admin records a device invitation for someone else's user.
    let r = org.record(&mut ada, [4; 16], own, None);
    assert!(matches!(only_rejection(&r), Rejection::NotOwner { .. }));
    assert_eq!(bob.log.state().invitations.len(), 1);
}

#[test]
fn an_invitation_id_is_recorded_once_and_closed_once() {
    let (mut org, mut ada) = new_org(13);
    assert!(
        org.record(&mut ada, [1; 16], USER_INV, Some("a@example.org"))
            .is_clean()
    );
    let r = org.record(&mut ada, [1; 16], USER_INV, Some("b@example.org"));
    assert_eq!(
        only_rejection(&r),
        Rejection::InvitationExists { id: [1; 16] }
    );
    let r = org.close(&mut ada, [9; 16], CloseReason::Cancelled);
    assert_eq!(
        only_rejection(&r),
        Rejection::UnknownInvitation { id: [9; 16] }
    );
    assert!(org.close(&mut ada, [1; 16], CloseReason::Used).is_clean());
    let r = org.close(&mut ada, [1; 16], CloseReason::Cancelled);
    assert_eq!(
        only_rejection(&r),
        Rejection::InvitationAlreadyClosed { id: [1; 16] }
    );
    let st = ada.log.state();
    assert_eq!(
        st.invitations[&[1; 16]].closed.map(|c| c.0),
        Some(CloseReason::Used)
    );
}

#[test]
fn closing_is_for_an_admin_or_the_recording_device() {
    let (mut org, mut ada) = new_org(14);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let (mut cid, _) = org.add_user(&mut ada, Profile::Standard, "cid");
    let mut bob_phone = org.add_own_device(&mut bob);
    assert!(
        org.record(&mut ada, [1; 16], USER_INV, Some("x@example.org"))
            .is_clean()
    );
    let own = Invited::Device { user: bob.user };
    assert!(org.record(&mut bob, [2; 16], own, None).is_clean());
    assert!(org.record(&mut bob, [3; 16], own, None).is_clean());
    sync(&mut ada, &mut bob);
    sync(&mut ada, &mut cid);
    sync(&mut bob, &mut bob_phone);
    // Another user may not close them, nor may a sibling device of the recorder.
    let r = org.close(&mut cid, [1; 16], CloseReason::Cancelled);
    assert!(matches!(only_rejection(&r), Rejection::NotAdmin { .. }));
    let r = org.close(&mut bob, [1; 16], CloseReason::Cancelled);
    assert!(matches!(only_rejection(&r), Rejection::NotAdmin { .. }));
    let r = org.close(&mut bob_phone, [2; 16], CloseReason::Cancelled);
    assert!(matches!(only_rejection(&r), Rejection::NotAdmin { .. }));
    // The recorder may, and so may an admin, for an invitation someone else recorded.
    assert!(org.close(&mut bob, [2; 16], CloseReason::Used).is_clean());
    assert!(
        org.close(&mut ada, [3; 16], CloseReason::Cancelled)
            .is_clean()
    );
    sync(&mut ada, &mut bob);
    let st = bob.log.state();
    assert_eq!(
        st.invitations[&[2; 16]].closed.map(|c| c.0),
        Some(CloseReason::Used)
    );
    assert_eq!(
        st.invitations[&[3; 16]].closed.map(|c| c.0),
        Some(CloseReason::Cancelled)
    );
    assert_eq!(st.invitations[&[1; 16]].closed, None);
}

#[test]
fn malformed_invitation_records_are_refused_by_shape() {
    let (mut org, mut ada) = new_org(15);
    let (bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let now = org.now + 10;
    let base = InvitationRecorded {
        id: [1; 16],
        invited: USER_INV,
        expires_ms: now + 1000,
        greeter: ada.keys.id(),
        private: vec![7; 48],
    };
    let bad = [
        // Another device as greeter.
        InvitationRecorded {
            greeter: bob.keys.id(),
            ..base.clone()
        },
        // Longer than 30 days.
        InvitationRecorded {
            expires_ms: now + entry::MAX_INVITATION_TTL_MS + 60_000,
            ..base.clone()
        },
        // A user invitation without its sealed e-mail.
        InvitationRecorded {
            private: Vec::new(),
            ..base.clone()
        },
        // A device invitation with a private part.
        InvitationRecorded {
            invited: Invited::Device { user: ada.user },
            ..base.clone()
        },
        // Too large a private part.
        InvitationRecorded {
            private: vec![7; entry::MAX_PRIVATE_BYTES + 1],
            ..base.clone()
        },
    ];
    for b in bad {
        let (_, r) = org.try_write(&mut ada, Certificate::InvitationRecorded(b));
        assert_eq!(
            only_rejection(&r),
            Rejection::BadShape {
                kind: "invitation-recorded"
            }
        );
    }
    assert!(ada.log.state().invitations.is_empty());
}

/// Frozen test vectors of the two invitation certificates, as in `frozen_entry_vector`.
#[test]
fn frozen_invitation_vectors() {
    let keys = DeviceKeys::from_secrets(&[7; 32], &[8; 32]);
    let body = |cert| EntryBody {
        org: OrgId([1; 32]),
        parents: vec![EntryId([2; 32])],
        author: keys.id(),
        time: Hlc(0x0000_0190_0000_0001),
        cert,
    };
    let recorded = body(Certificate::InvitationRecorded(InvitationRecorded {
        id: [4; 16],
        invited: Invited::User {
            profile: Profile::Standard,
        },
        expires_ms: 0x0190 + 1_000,
        greeter: keys.id(),
        private: vec![5; 8],
    }));
    let closed = body(Certificate::InvitationClosed {
        id: [4; 16],
        reason: CloseReason::Used,
    });
    for (b, frozen) in [
        (recorded, frozen!("invitation_recorded_v2.hex", ())),
        (closed, frozen!("invitation_closed_v2.hex", ())),
    ] {
        let bytes = entry::sign(&keys, &b);
        let current = hex::encode(&bytes);
        assert_eq!(current, frozen, "entry wire format changed");
        let u = entry::decode(bytes).unwrap();
        let e = entry::verify_batch(vec![u]).pop().unwrap().unwrap();
        assert_eq!(e.body(), &b);
        assert!(e.body().check_shape(&OrgId([1; 32])).is_ok());
    }
}
