//! The caps per user (`trust::admission`, module doc): devices and open invitations, refused
//! with a typed reason by admission and, before signing, by `OrgLog::may_write`.

use super::entry::{CloseReason, Invited};
use super::invitations::USER_INV;
use super::*;
use crate::trust::admission::{MAX_PENDING_INVITATIONS, MAX_USER_DEVICE_CERTS, MAX_USER_DEVICES};

fn active_devices(dev: &Dev) -> usize {
    dev.log.state().active_devices_of(&dev.user).len()
}

#[test]
fn a_user_has_at_most_max_devices_and_revoking_one_frees_a_place() {
    let (mut org, mut ada) = new_org(41);
    let mut added = Vec::new();
    while active_devices(&ada) < MAX_USER_DEVICES {
        added.push(org.add_own_device(&mut ada).keys.id());
    }
    let (_, cert) = org.device_cert(&ada);
    // The writer is told why before it signs...
    let e = ada.log.may_write(&ada.keys.id(), &cert).unwrap_err();
    assert!(matches!(e, Rejection::TooManyDevices { active, .. } if active == MAX_USER_DEVICES));
    assert!(e.to_string().contains("revoke a device first"), "{e}");
    // ... and admission refuses the entry if it is signed anyway.
    let (bytes, r) = org.try_write(&mut ada, cert);
    assert!(matches!(
        only_rejection(&r),
        Rejection::TooManyDevices { .. }
    ));
    assert!(!ada.log.contains(&id_of(&bytes)));
    // Revoking one frees a place.
    org.write(&mut ada, Certificate::DeviceRevoked { device: added[0] });
    let (_, cert) = org.device_cert(&ada);
    assert_eq!(ada.log.may_write(&ada.keys.id(), &cert), Ok(()));
    assert!(org.try_write(&mut ada, cert).1.is_clean());
    assert_eq!(active_devices(&ada), MAX_USER_DEVICES);
}

#[test]
fn device_churn_is_capped_by_certificates_in_all() {
    let (mut org, mut ada) = new_org(42);
    // Add and revoke until the user holds as many certificates as allowed.
    let mut certs = 1; // the first device
    while certs < MAX_USER_DEVICE_CERTS {
        let d = org.add_own_device(&mut ada).keys.id();
        org.write(&mut ada, Certificate::DeviceRevoked { device: d });
        certs += 1;
    }
    assert_eq!(active_devices(&ada), 1);
    let (_, cert) = org.device_cert(&ada);
    let (_, r) = org.try_write(&mut ada, cert);
    assert_eq!(
        only_rejection(&r),
        Rejection::TooManyDevices {
            user: ada.user,
            active: 1,
            certs: MAX_USER_DEVICE_CERTS,
        }
    );
}

#[test]
fn open_invitations_are_capped_per_user_and_closing_or_expiry_frees_places() {
    let (mut org, mut ada) = new_org(43);
    let mut phone = org.add_own_device(&mut ada);
    // Invitations by both of the user's devices count together.
    for i in 0..MAX_PENDING_INVITATIONS {
        let id = [
            i as u8,
            (i >> 8) as u8,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let email = format!("u{i}@example.org");
        let by = if i % 2 == 0 { &mut ada } else { &mut phone };
        assert!(org.record(by, id, USER_INV, Some(&email)).is_clean());
        if i % 2 == 1 {
            sync(&mut ada, &mut phone);
        }
    }
    sync(&mut ada, &mut phone);
    let over = [0xFF; 16];
    let r = org.record(&mut phone, over, USER_INV, Some("late@example.org"));
    assert_eq!(
        only_rejection(&r),
        Rejection::TooManyInvitations {
            open: MAX_PENDING_INVITATIONS
        }
    );
    // Another user's invitations are not capped by this user's.
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let own = Invited::Device { user: bob.user };
    assert!(org.record(&mut bob, [0xEE; 16], own, None).is_clean());
    // Closing one frees a place.
    let first = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(
        org.close(&mut ada, first, CloseReason::Cancelled)
            .is_clean()
    );
    assert!(
        org.record(&mut ada, over, USER_INV, Some("late@example.org"))
            .is_clean()
    );
    // Expired ones do not count: an entry dated after their expiry (an hour) is admitted.
    let parents = all_bytes(&ada.log);
    let later = Hlc((org.now + 3_700_000) << 16);
    let cert = Writer {
        keys: &ada.keys,
        org_key: &org.key,
        clock: &mut Clock::default(),
    }
    .invitation_recorded(
        &mut org.rng,
        &org.org,
        [0xEF; 16],
        USER_INV,
        org.now + 7_200_000,
        Some("next@example.org"),
    )
    .unwrap();
    let b = forge(&org, &ada.keys, &heads_of(&ada.log, &parents), later, cert);
    assert!(ada.log.ingest(vec![b]).is_clean());
}

/// The entries among `all` that are heads of `log`.
fn heads_of(log: &OrgLog, all: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let heads = log.heads();
    all.iter()
        .filter(|b| heads.contains(&id_of(b)))
        .cloned()
        .collect()
}

#[test]
fn a_device_invitation_is_not_recorded_for_a_user_without_room_for_a_device() {
    let (mut org, mut ada) = new_org(44);
    while active_devices(&ada) < MAX_USER_DEVICES {
        org.add_own_device(&mut ada);
    }
    let own = Invited::Device { user: ada.user };
    let r = org.record(&mut ada, [7; 16], own, None);
    assert!(matches!(
        only_rejection(&r),
        Rejection::TooManyDevices { .. }
    ));
    // A user invitation by the same admin is still recorded.
    assert!(
        org.record(&mut ada, [8; 16], USER_INV, Some("new@example.org"))
            .is_clean()
    );
}
