//! Test kit: replicas with their own id streams, authors, and change delivery helpers.
#![allow(dead_code)]

use cloison_crdt::{
    Author, EntryId, LocalChange, Manifest, RemoteChange, SeededIds, Tree, Workspace,
};

pub const SHARDS: u16 = 4;
pub const T0: i64 = 1_700_000_000_000; // 2023-11-14

pub struct Replica {
    pub ws: Workspace,
    pub ids: SeededIds,
    pub author: Author,
    /// Everything this replica committed, in order.
    pub sent: Vec<LocalChange>,
}

pub fn author(user: &str, device: &str, n: u8) -> Author {
    Author {
        device: [n; 32],
        user_name: user.into(),
        device_label: device.into(),
    }
}

impl Replica {
    /// The first replica creates the workspace; the others join it.
    pub fn cluster(n: usize) -> Vec<Replica> {
        let names = [
            ("ann", "laptop"),
            ("bob", "desktop"),
            ("cy", "phone"),
            ("dee", "tablet"),
            ("eve", "server"),
        ];
        (0..n)
            .map(|i| {
                let actor = format!("actor-{i}");
                let ws = if i == 0 {
                    Workspace::create(actor.as_bytes(), SHARDS, T0).unwrap()
                } else {
                    Workspace::join(actor.as_bytes(), SHARDS).unwrap()
                };
                let (u, d) = names[i % names.len()];
                Replica {
                    ws,
                    ids: SeededIds::new(1000 + i as u64),
                    author: author(u, d, i as u8 + 1),
                    sent: Vec::new(),
                }
            })
            .collect()
    }

    pub fn commit(&mut self) -> Vec<LocalChange> {
        let c = self.ws.commit_local();
        self.sent.extend(c.iter().cloned());
        c
    }

    pub fn folder(&mut self, parent: EntryId, name: &str, t: i64) -> EntryId {
        self.ws
            .create_folder(&mut self.ids, parent, name, t)
            .unwrap()
    }

    pub fn file(&mut self, parent: EntryId, name: &str, t: i64) -> EntryId {
        self.ws.create_file(&mut self.ids, parent, name, t).unwrap()
    }

    pub fn write(&mut self, id: EntryId, seed: u64, t: i64) -> cloison_crdt::VersionId {
        let m = Manifest::synthetic(seed, &[10, 20], t);
        let author = self.author.clone();
        self.ws
            .write_content(&mut self.ids, id, m, &author, t)
            .unwrap()
    }

    pub fn tree(&mut self) -> std::sync::Arc<Tree> {
        self.ws.tree()
    }

    pub fn path(&mut self, p: &str) -> Option<EntryId> {
        self.ws.resolve(p).map(|n| n.id)
    }

    /// Sorted list of visible paths.
    pub fn paths(&mut self) -> Vec<String> {
        self.ws.walk().into_iter().map(|(p, _)| p).collect()
    }
}

/// Commits everything pending on every replica and delivers all to all (full mesh).
pub fn sync_all(rs: &mut [Replica]) {
    let all: Vec<LocalChange> = rs.iter_mut().flat_map(|r| r.commit()).collect();
    for r in rs.iter_mut() {
        r.ws.apply_remote(all.iter().cloned().map(RemoteChange::from))
            .unwrap();
    }
}

/// Delivers `from`'s pending changes to `to` only.
pub fn send(rs: &mut [Replica], from: usize, to: usize) {
    let c = rs[from].commit();
    rs[to]
        .ws
        .apply_remote(c.into_iter().map(RemoteChange::from))
        .unwrap();
}

pub fn assert_converged(rs: &mut [Replica]) {
    let d0 = rs[0].tree().canonical_bytes();
    for r in rs.iter_mut().skip(1) {
        let d = r.tree().canonical_bytes();
        assert_eq!(
            String::from_utf8_lossy(&d),
            String::from_utf8_lossy(&d0),
            "replicas diverged"
        );
    }
}
