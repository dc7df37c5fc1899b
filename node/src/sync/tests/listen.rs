//! Revoked peers and listening links: what a device that believes a peer revoked sends it
//! (nothing it holds), takes from it (only the organization entries that make it count), and
//! how a stale device poisoned by a revoked admin's forgeries heals over a peer link.

use super::*;
use crate::sync::engine::{
    LISTEN_BYTES, LISTEN_COOLDOWN_MS, LISTEN_IDLE_MS, LISTEN_TRIALS, MAX_LISTENING,
};

/// Kinds of the messages `from` sent `to` among `sent`.
fn kinds(sent: &[(usize, usize, Vec<u8>)], from: usize, to: usize) -> Vec<&'static str> {
    sent.iter()
        .filter(|(a, b, _)| *a == from && *b == to)
        .map(|(_, _, bytes)| match Msg::decode(bytes) {
            Ok(Msg::Hello { .. }) => "hello",
            Ok(Msg::Reconcile { .. }) => "reconcile",
            Ok(Msg::ReconcileReply { .. }) => "reply",
            Ok(Msg::Want { .. }) => "want",
            Ok(Msg::Offer { .. }) => "offer",
            Ok(Msg::Items { .. }) => "items",
            Ok(Msg::BlockWant { .. }) => "block-want",
            Ok(Msg::Block { .. } | Msg::Blocks { .. }) => "block",
            Ok(Msg::BlockMissing { .. }) => "block-missing",
            Err(_) => "undecodable",
        })
        .collect()
}

/// Runs the queue and returns what was delivered, by (from, to).
fn run_traced(s: &mut Sim) -> Vec<(usize, usize, Vec<u8>)> {
    let mut sent = Vec::new();
    while let Some((a, b, bytes)) = s.queue.pop_front() {
        assert!(sent.len() < 100_000, "no quiescence");
        sent.push((a, b, bytes.clone()));
        let from = s.devs[a].keys.id();
        s.devs[b].engine.handle_message(s.now, from, &bytes);
        s.flush(b);
    }
    sent
}

fn active(s: &Sim, i: usize, device: &DeviceId) -> bool {
    s.devs[i].engine.replica().org.state().is_active(device)
}

#[test]
fn a_revoked_peer_gets_a_listening_link_that_sends_it_nothing_and_ends() {
    let mut s = Sim::new(3, 3);
    s.connect_all();
    s.run();
    let epoch = s.share_with_all();
    s.run();
    let victim = s.devs[2].keys.id();
    // The admin revokes device 2: the link turns to listening at once, no longer full.
    s.certify(0, Certificate::DeviceRevoked { device: victim });
    assert_eq!(s.cut_off(0), Vec::<DeviceId>::new(), "not cut off yet");
    assert_eq!(s.devs[0].engine.listening_peers(), vec![victim]);
    assert!(!s.devs[0].engine.peers().contains(&victim));
    let sent = run_traced(&mut s);
    assert_eq!(s.devs[1].engine.listening_peers(), vec![victim]);
    // The victim, which has not heard of it, writes; the others take nothing of it.
    let late = s.write(
        2,
        Kind::Content,
        Some(epoch),
        b"written after the revocation".to_vec(),
    );
    let late_id = *blake3::hash(&late).as_bytes();
    let sent2 = run_traced(&mut s);
    for i in [0, 1] {
        assert!(
            !s.devs[i]
                .engine
                .replica()
                .knows(DocId::Workspace(s.ws), &late_id),
            "device {i} took the revoked device's write"
        );
        // What a listening side sent the victim since: reconciliation of the organization log
        // (which reveals ids, not entries), and asking for what it lacks; nothing it holds.
        for k in kinds(&sent, i, 2).into_iter().chain(kinds(&sent2, i, 2)) {
            assert!(
                matches!(k, "reconcile" | "reply" | "want"),
                "device {i} sent the victim a {k}"
            );
        }
    }
    assert!(
        active(&s, 2, &victim),
        "the victim got its own revocation over a listening link"
    );
    // Idle past the window: cut off, and refused for the cool-down.
    s.now += LISTEN_IDLE_MS + LISTEN_COOLDOWN_MS / 2;
    for i in [0, 1] {
        let now = s.now;
        s.devs[i].engine.handle_timeout(now);
        assert_eq!(
            s.cut_off(i),
            vec![victim],
            "device {i} ends the listening link"
        );
        assert!(s.devs[i].engine.listening_peers().is_empty());
        s.devs[i].engine.handle_connected(now, victim);
        assert_eq!(s.cut_off(i), vec![victim], "refused in the cool-down");
    }
    s.now += LISTEN_COOLDOWN_MS;
    let now = s.now;
    s.devs[0].engine.handle_timeout(now);
    s.devs[0].engine.handle_connected(now, victim);
    assert_eq!(s.cut_off(0), Vec::<DeviceId>::new());
    assert_eq!(s.devs[0].engine.listening_peers(), vec![victim]);
}

#[test]
fn a_stale_device_given_a_revoked_admins_forgeries_first_heals_over_a_listening_link() {
    // 0: founding admin; 1: mal, admin, future attacker; 2: cat, standard, stale.
    let mut s = Sim::with_profiles(&[Profile::Admin, Profile::Standard], 14);
    let ids: Vec<DeviceId> = s.devs.iter().map(|d| d.keys.id()).collect();
    let users: Vec<UserId> = s.devs.iter().map(|d| d.user).collect();
    // Nobody connected: 0 revokes mal's user; mal, on its stale copy, revokes 0's user.
    s.certify(0, Certificate::UserRevoked { user: users[1] });
    s.certify(1, Certificate::UserRevoked { user: users[0] });
    s.queue.clear();
    // mal reaches cat first: cat believes the founder revoked (the inherent race).
    s.connect(1, 2);
    s.run();
    assert!(!active(&s, 2, &ids[0]), "cat took mal's forgery");
    s.disconnect(1, 2);
    // cat meets the founder: cat only listens, the founder syncs fully.
    s.connect(0, 2);
    assert_eq!(s.devs[2].engine.listening_peers(), vec![ids[0]]);
    assert!(s.devs[0].engine.peers().contains(&ids[2]));
    s.run();
    // The founder's revocation of mal voids the forgery: the founder counts again on cat,
    // the link is full, and both hold the same log (the founder has mal's forgery, dropped).
    assert!(active(&s, 2, &ids[0]), "cat healed");
    assert!(!active(&s, 2, &ids[1]) && !active(&s, 0, &ids[1]));
    assert!(s.devs[2].engine.listening_peers().is_empty());
    assert!(s.devs[2].engine.peers().contains(&ids[0]));
    assert_eq!(s.heads(0).0, s.heads(2).0);
    assert_eq!(
        s.devs[0].engine.replica().org.len(),
        s.devs[2].engine.replica().org.len()
    );
    // mal now reaches the founder: each listens to the other, nothing crosses.
    let before = s.devs[0].engine.replica().org.len();
    s.connect(0, 1);
    assert_eq!(s.devs[0].engine.listening_peers(), vec![ids[1]]);
    let sent = run_traced(&mut s);
    assert_eq!(s.devs[0].engine.replica().org.len(), before);
    assert!(
        !kinds(&sent, 0, 1).contains(&"items") && !kinds(&sent, 1, 0).contains(&"items"),
        "items crossed between two sides that only listen"
    );
}

#[test]
fn a_listening_peer_that_sends_too_much_or_only_its_own_entries_is_cut_off() {
    let mut s = Sim::with_profiles(&[Profile::Standard, Profile::Standard], 15);
    let victim = s.devs[2].keys.id();
    s.connect_all();
    s.run();
    s.certify(0, Certificate::DeviceRevoked { device: victim });
    s.run();
    // The revoked device signs entries of its own (on its stale log) and pushes them: they
    // never make it count, so nothing is taken, and each judgement is one of a few.
    let before = s.devs[0].engine.replica().org.len();
    for _ in 0..LISTEN_TRIALS {
        let now = s.now;
        let msg = Msg::Items {
            doc: DocId::Org,
            items: vec![s.certify(2, Certificate::DeviceRevoked { device: victim })],
        }
        .encode();
        s.queue.clear();
        s.devs[0].engine.handle_message(now, victim, &msg);
        assert_eq!(s.devs[0].engine.replica().org.len(), before);
    }
    assert_eq!(s.cut_off(0), Vec::<DeviceId>::new());
    let now = s.now;
    let msg = Msg::Items {
        doc: DocId::Org,
        items: vec![s.certify(2, Certificate::DeviceRevoked { device: victim })],
    }
    .encode();
    s.devs[0].engine.handle_message(now, victim, &msg);
    assert_eq!(s.cut_off(0), vec![victim], "judged too often");
    assert_eq!(s.devs[0].engine.replica().org.len(), before);
    // Bytes: past LISTEN_BYTES held aside, the link ends (device 1 listens to it too).
    let junk = Msg::Items {
        doc: DocId::Org,
        items: vec![vec![0xa5; 1 << 20]],
    }
    .encode();
    let mut cut = Vec::new();
    for _ in 0..=LISTEN_BYTES >> 20 {
        s.devs[1].engine.handle_message(now, victim, &junk);
        cut.extend(s.cut_off(1));
    }
    assert_eq!(cut, vec![victim], "too many bytes");
    assert_eq!(s.devs[1].engine.replica().org.len(), before);
}

#[test]
fn at_most_max_listening_links_at_once() {
    let n = MAX_LISTENING + 1;
    let mut s = Sim::new(n + 1, 16);
    let ids: Vec<DeviceId> = s.devs.iter().map(|d| d.keys.id()).collect();
    for id in &ids[1..] {
        s.certify(0, Certificate::DeviceRevoked { device: *id });
    }
    s.queue.clear();
    let now = s.now;
    for id in &ids[1..] {
        s.devs[0].engine.handle_connected(now, *id);
    }
    assert_eq!(s.devs[0].engine.listening_peers().len(), MAX_LISTENING);
    assert_eq!(s.cut_off(0), vec![ids[n]]);
}
