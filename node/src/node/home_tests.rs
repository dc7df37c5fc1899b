//! Tests of the home directory's protection: a home left open to other users is tightened when
//! it is opened.

use super::*;

#[cfg(unix)]
#[test]
fn a_home_open_to_other_users_is_tightened_when_opened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let params = InitParams {
        org_name: "Org",
        user_name: "Ann",
        email: "ann@x.example",
        device_label: "a",
    };
    drop(Node::init(&home, b"pass", KdfParams::TEST_ONLY, &params).unwrap());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home), 0o700);
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(Node::open(&home, b"pass").unwrap());
    assert_eq!(mode(&home), 0o700, "a loose home stays loose");
}
