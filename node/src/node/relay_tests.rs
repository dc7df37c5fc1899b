//! Tests of `relay add` / `relay revoke` / `relay list` on a node without a daemon.

use super::*;
use crate::trust::DeviceKeys;

fn admin_home(dir: &Path) -> Node {
    let params = InitParams {
        org_name: "Org",
        user_name: "Ann",
        email: "ann@x.example",
        device_label: "a",
    };
    Node::init(&dir.join("h"), b"pass", KdfParams::TEST_ONLY, &params).unwrap()
}

#[test]
fn a_relay_is_revoked_by_address_or_prefix_for_good_and_listed_as_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = admin_home(dir.path());
    let keys = DeviceKeys::from_secrets(&[3; 32], &[4; 32]);
    let pid = crate::net::peer_id(&keys.id()).unwrap().to_string();
    let addr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{pid}");
    n.relay_add(&addr).unwrap();
    // Unknown references and prefixes too short to be safe are refused.
    assert!(matches!(
        n.relay_revoke("ffff0000"),
        Err(NodeError::NotFound { .. })
    ));
    assert!(matches!(
        n.relay_revoke(&pid[..8]),
        Err(NodeError::NotFound { .. })
    ));
    let r = n.relay_revoke(&pid[..14]).unwrap();
    assert_eq!(r.status, "revoked");
    assert!(n.state().relays.is_empty());
    let list = n.relays();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, "revoked");
    assert_eq!(list[0].revoked_by, r.revoked_by);
    assert_eq!(list[0].addrs, vec![addr.clone()]);
    // Final: neither revoked again nor authorized again.
    assert!(matches!(n.relay_revoke(&addr), Err(NodeError::Invalid(_))));
    assert!(matches!(n.relay_add(&addr), Err(NodeError::Invalid(_))));
    // Kept across a reopen (the revocation is in the stored log).
    drop(n);
    let n = Node::open(&dir.path().join("h"), b"pass").unwrap();
    assert!(n.state().relays.is_empty());
    assert!(n.state().revoked_relays.contains_key(&keys.id()));
}
