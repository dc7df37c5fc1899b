//! Blocks are served per workspace, against a real daemon: a member of one workspace who names
//! another workspace's block ids (under its own workspace, or under the other) gets nothing of
//! them (issue 15, item 6; the rule is `Store::block_for`).

use std::time::Duration;

use cloison_node::keystore::Keystore;
use cloison_node::net::{Net, NetConfig, NetEvent, addr_peer};
use cloison_node::node::Node;
use cloison_node::sync::{DocId, Msg};
use cloison_node::workspace::WorkspaceId;
use cloison_tests::{PASSPHRASE, team};

const WAIT: Duration = Duration::from_secs(30);

/// The workspace `name`'s id and the blocks `home` holds for it (its daemon stopped).
fn blocks_of(node: &mut Node, name: &str) -> (WorkspaceId, Vec<[u8; 32]>) {
    let info = node
        .workspaces()
        .unwrap()
        .into_iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no workspace {name}"));
    let id = WorkspaceId::from_hex(&info.id).unwrap();
    node.ls(id, "/").unwrap();
    let blocks = node
        .held_blocks_by_workspace()
        .into_iter()
        .find(|(w, _)| *w == id)
        .map(|(_, b)| b)
        .unwrap_or_default();
    (id, blocks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_fetch_another_workspaces_blocks_by_naming_their_ids() {
    let t = team(&["ann", "ben"]);
    let ann = &t[0];
    ann.run(&["workspace", "create", "Shared"]).success();
    ann.run(&["workspace", "create", "Private"]).success();
    ann.run(&[
        "workspace",
        "share",
        "Shared",
        "ben@clinique.example",
        "--role",
        "reader",
    ])
    .success();
    for (ws, file) in [("Shared", "a.bin"), ("Private", "secret.bin")] {
        let p = ann.path().join(file);
        let mut b = vec![0u8; 300 * 1024];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut b);
        std::fs::write(&p, b).unwrap();
        ann.run(&["put", ws, p.to_str().unwrap(), file]).success();
    }
    let (shared, shared_blocks, private, private_blocks) = {
        let mut n = Node::open(ann.path(), PASSPHRASE.as_bytes()).unwrap();
        let (s, sb) = blocks_of(&mut n, "Shared");
        let (p, pb) = blocks_of(&mut n, "Private");
        (s, sb, p, pb)
    };
    assert!(!shared_blocks.is_empty() && !private_blocks.is_empty());
    let daemon = ann.start(&[]);
    // Ben's own device key, driven by a raw client instead of his daemon.
    let ben = Keystore::open(&t[1].path().join("keys.cloison"), PASSPHRASE.as_bytes())
        .unwrap()
        .device();
    let to: cloison_node::net::Multiaddr = daemon.addr().parse().unwrap();
    let ann_id = addr_peer(&to).unwrap();
    let (h, mut rx) = Net::start(&ben, NetConfig::loopback()).unwrap();
    h.set_allowed([ann_id].into()).await.unwrap();
    h.dial(to).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut asked = false;
    let mut served: Vec<[u8; 32]> = Vec::new();
    let mut missing: Vec<[u8; 32]> = Vec::new();
    let mut quiet_until = None;
    loop {
        let until = quiet_until.unwrap_or(deadline).min(deadline);
        let Ok(ev) = tokio::time::timeout_at(until, rx.recv()).await else {
            break;
        };
        let Some(ev) = ev else { break };
        let NetEvent::Message { from, bytes } = ev else {
            continue;
        };
        if from != ann_id {
            continue;
        }
        if !asked {
            // Ann's engine has linked us (it spoke first): ask for the private blocks under
            // the shared workspace, under the private one, and the shared blocks as a control.
            asked = true;
            for (doc, ids) in [
                (DocId::Workspace(shared), private_blocks.clone()),
                (DocId::Workspace(private), private_blocks.clone()),
                (DocId::Workspace(shared), shared_blocks.clone()),
            ] {
                h.send(ann_id, Msg::BlockWant { doc, ids }.encode())
                    .await
                    .unwrap();
            }
            quiet_until = Some(tokio::time::Instant::now() + Duration::from_secs(5));
            continue;
        }
        match Msg::decode(&bytes) {
            Ok(Msg::Blocks { blocks, .. }) => served.extend(blocks.iter().map(|b| b.id)),
            Ok(Msg::Block { id, .. }) => served.push(id),
            Ok(Msg::BlockMissing { ids, .. }) => missing.extend(ids),
            _ => {}
        }
    }
    let _ = h.shutdown().await;
    daemon.stop();
    assert!(asked, "ann's daemon never spoke to ben's device");
    served.sort_unstable();
    let mut want = shared_blocks.clone();
    want.sort_unstable();
    assert_eq!(served, want, "the shared blocks are served, and only them");
    for id in &private_blocks {
        assert!(!served.contains(id), "a private block was served");
        assert!(
            missing.contains(id),
            "asked under the shared workspace: said missing"
        );
    }
}
