//! The organization key rotates when a user is revoked (issue 15, item 15): what an admin adds
//! afterwards is readable by the remaining members and by members enrolled later, not by the
//! revoked user from her key file and a later copy of the log; what was sealed before stays
//! readable to her.

use std::path::Path;

use super::enrol::tests::{PASS, enrol, user_invite};
use super::{InitParams, Node};
use crate::control::enrol::Invitee;
use crate::keystore::KdfParams;
use crate::trust::author::{self, UserPrivate};
use crate::trust::keys::{KeyError, OrgKeys};
use crate::trust::{OrgKey, Profile, UserId};

fn alice(dir: &Path) -> Node {
    Node::init(
        &dir.join("alice"),
        PASS,
        KdfParams::TEST_ONLY,
        &InitParams {
            org_name: "Clinic",
            user_name: "Alice",
            email: "alice@x.example",
            device_label: "a",
        },
    )
    .unwrap()
}

fn member(a: &mut Node, dir: &Path, name: &str) -> Node {
    a.provision_user(
        &dir.join(name),
        PASS,
        KdfParams::TEST_ONLY,
        name,
        &format!("{name}@x.example"),
        "laptop",
        Profile::Standard,
    )
    .unwrap()
}

fn sync_logs(from: &Node, to: &mut Node) {
    let all: Vec<Vec<u8>> = from.log().entries().map(|e| e.bytes().to_vec()).collect();
    to.ingest_log(all).unwrap();
}

/// The name `n` shows for `user`.
fn name_of(n: &mut Node, user: UserId) -> String {
    let id = user.to_string();
    n.users()
        .into_iter()
        .find(|u| u.id == id)
        .map(|u| u.name)
        .unwrap_or_default()
}

#[test]
fn a_revoked_user_cannot_read_names_added_after_the_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = alice(dir.path());
    let mut bob = member(&mut a, dir.path(), "Bob");
    let mut carol = member(&mut a, dir.path(), "Carol");
    let carol_user = carol.user_id();
    assert_eq!(a.state().org_keys.current, None);

    // Revoking Carol: Alice's node (an admin's) rotates the key on `maintain`.
    a.revoke_user(carol_user).unwrap();
    a.maintain().unwrap();
    let st = a.state();
    let current = st.org_keys.current.expect("the key rotated");
    assert!(!st.org_keys.needs_rotation);
    assert!(
        !st.org_keys.rotations[&current]
            .recipients
            .contains(&carol_user)
    );
    assert_eq!(a.sealing_org_key().id(), current);

    // Alice adds Dan afterwards: his name is sealed under the new key.
    let dan = member(&mut a, dir.path(), "Dan");
    let dan_user = dan.user_id();
    let dan_private = a.state().users[&dan_user].private.clone();
    assert_eq!(dan_private[0], 2, "a version-2 blob");
    assert_eq!(&dan_private[1..9], &current);

    // Bob reads Dan's name.
    sync_logs(&a, &mut bob);
    assert_eq!(name_of(&mut bob, dan_user), "Dan");

    // Carol, with her key file and a later copy of the log, does not; she still reads the names
    // sealed before the rotation.
    sync_logs(&a, &mut carol);
    assert!(carol.state().users[&carol_user].revoked_by.is_some());
    assert_eq!(name_of(&mut carol, dan_user), "(unreadable)");
    assert_eq!(name_of(&mut carol, bob.user_id()), "Bob");
    assert_eq!(name_of(&mut carol, a.user_id()), "Alice");
    let org = carol.org_id();
    let open_with = |k: &dyn OrgKeys| {
        author::open_private::<UserPrivate>(
            k,
            &org,
            author::PRIVATE_USER,
            &dan_user.0,
            &dan_private,
        )
    };
    assert_eq!(
        open_with(&carol.org_ring()).map(|p| p.name),
        Err(KeyError::UnknownKey)
    );
    let file_key = carol.keys.org_key();
    assert!(open_with(&file_key).is_err());
    assert!(open_with(&OrgKey::rotated_from_bytes(file_key.as_bytes())).is_err());

    // A member enrolled after the rotation reads old and new names.
    a.create_invitation(&user_invite("erin@x.example"), None, vec![])
        .unwrap();
    let rec = a.invitation_records().unwrap().remove(0);
    let mut erin = enrol(&mut a, &rec, &dir.path().join("erin"), Some("Erin")).unwrap();
    assert_eq!(
        erin.keys.org_key().id(),
        current,
        "the welcome carries the current key"
    );
    sync_logs(&a, &mut erin);
    assert_eq!(name_of(&mut erin, dan_user), "Dan");
    assert_eq!(name_of(&mut erin, bob.user_id()), "Bob");
    assert_eq!(name_of(&mut erin, carol_user), "Carol");
    assert_eq!(erin.org_info().name, "Clinic");
    // Dan, provisioned after the rotation too, reads the genesis-sealed names.
    let mut dan = dan;
    sync_logs(&a, &mut dan);
    assert_eq!(name_of(&mut dan, bob.user_id()), "Bob");
    assert_eq!(name_of(&mut dan, erin.user_id()), "Erin");
}

/// A stolen device, revoked while its user stays: its user's key rotates first (the user's other
/// device), then an admin's device rotates the organization key to the new user key, so names
/// added afterwards stay closed to the device's key file and a later copy of the log.
#[test]
fn a_revoked_device_cannot_read_names_added_after_the_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = alice(dir.path());
    let mut bob = member(&mut a, dir.path(), "Bob");
    sync_logs(&a, &mut bob);
    bob.create_invitation(&Invitee::Device, None, vec![])
        .unwrap();
    let rec = bob.invitation_records().unwrap().remove(0);
    let mut phone = enrol(&mut bob, &rec, &dir.path().join("phone"), None).unwrap();
    // Alice, an admin, revokes the phone: Bob's key must rotate, which only his devices can do.
    sync_logs(&bob, &mut a);
    a.revoke_device(phone.device_id()).unwrap();
    a.maintain().unwrap();
    let st = a.state();
    assert!(st.org_keys.needs_rotation);
    assert_eq!(
        st.org_keys.current, None,
        "Alice waits for Bob's user key to rotate"
    );
    sync_logs(&a, &mut bob);
    bob.maintain().unwrap();
    assert!(!bob.state().users[&bob.user_id()].key.needs_rotation);
    sync_logs(&bob, &mut a);
    a.maintain().unwrap();
    let st = a.state();
    assert!(st.org_keys.current.is_some(), "rotated");
    assert!(!st.org_keys.needs_rotation);
    let dan_user = member(&mut a, dir.path(), "Dan").user_id();
    sync_logs(&a, &mut bob);
    bob.maintain().unwrap();
    assert_eq!(name_of(&mut bob, dan_user), "Dan");
    sync_logs(&a, &mut phone);
    assert_eq!(name_of(&mut phone, dan_user), "(unreadable)");
    assert_eq!(name_of(&mut phone, a.user_id()), "Alice");
}
