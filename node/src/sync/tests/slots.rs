//! Workspace slots against a member's hostile peer (issue 15, item 2): a `Hello` naming
//! thousands of random workspaces opens none, and items for random workspaces (junk, or signed
//! envelopes whose parents never come) hold at most `MAX_TENTATIVE` slots; a real share still
//! arrives.

use super::*;
use crate::sync::msg::Heads;
use crate::sync::replica::MAX_TENTATIVE;
use crate::workspace::envelope;

#[test]
fn random_workspace_ids_take_no_slot_from_a_real_share() {
    let mut s = Sim::new(3, 21);
    s.connect_all();
    s.run();
    let (attacker, victim) = (s.devs[1].keys.id(), 2);
    let org = s.devs[1].engine.replica().org.clone();
    let random = |i: u32| {
        WorkspaceId(
            *blake3::hash(&i.to_le_bytes())
                .as_bytes()
                .first_chunk()
                .unwrap(),
        )
    };
    // A Hello naming 10,000 workspaces.
    let docs = (0..10_000)
        .map(|i| Heads {
            doc: DocId::Workspace(random(i)),
            count: 5,
            heads: vec![[i as u8; 32]],
        })
        .collect();
    let now = s.now;
    s.devs[victim]
        .engine
        .handle_message(now, attacker, &Msg::Hello { docs }.encode());
    assert!(s.devs[victim].engine.replica().workspaces.is_empty());
    // Items for 2,000 more: junk, and a signed envelope on parents that never come.
    for i in 10_000..12_000u32 {
        let ws = random(i);
        let header = Header {
            org: org.org(),
            workspace: ws,
            author: attacker,
            parents: vec![EnvelopeId([i as u8; 32])],
            org_heads: org.heads(),
            time: Hlc((now + 1) << 16),
            epoch: None,
            kind: Kind::Merge,
        };
        let signed = envelope::sign(&s.devs[1].keys, &header, &[]);
        let msg = Msg::Items {
            doc: DocId::Workspace(ws),
            items: vec![vec![0x5a; 100], signed],
        };
        s.devs[victim]
            .engine
            .handle_message(now, attacker, &msg.encode());
    }
    s.queue.clear();
    let held = s.devs[victim].engine.replica().workspaces.len();
    assert!(held <= MAX_TENTATIVE, "{held} workspaces held");
    // The real share arrives in full.
    let epoch = s.share_with_all();
    s.run();
    let content = s.write(0, Kind::Content, Some(epoch), b"real".to_vec());
    s.run();
    let r = s.devs[victim].engine.replica();
    assert!(r.knows(DocId::Workspace(s.ws), blake3::hash(&content).as_bytes()));
    assert_eq!(s.heads(victim), s.heads(0));
    assert!(r.workspaces.len() <= MAX_TENTATIVE + 1);
}
