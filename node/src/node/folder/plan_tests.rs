//! Tests of the planner: a model world (a local tree, a workspace tree, the base) that applies
//! plans the way the mirror does, with proptests over random edits on both sides: rounds converge
//! (both trees identical, a final plan with nothing to do), nothing edited on either side is lost,
//! and actions come in a valid order (parents before children, nothing overwritten).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

#[derive(Clone, Debug, Default)]
struct World {
    /// path -> (kind, content, inode)
    local: BTreeMap<String, (EntryKind, u8, u64)>,
    /// path -> (kind, content, id)
    remote: BTreeMap<String, (EntryKind, u8, Id)>,
    base: BTreeMap<String, BaseEntry>,
    next: u64,
}

fn h(c: u8) -> Hash {
    [c; 32]
}

impl World {
    fn fresh(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn id(&mut self) -> Id {
        let n = self.fresh();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&n.to_le_bytes());
        id
    }

    fn states(&self) -> States {
        States {
            local: self
                .local
                .iter()
                .map(|(p, (k, c, i))| {
                    let e = LocalEntry {
                        kind: *k,
                        size: u64::from(*c),
                        mtime_ns: 0,
                        inode: *i,
                        hash: h(*c),
                    };
                    (p.clone(), e)
                })
                .collect(),
            remote: self
                .remote
                .iter()
                .map(|(p, (k, c, id))| {
                    let e = RemoteEntry {
                        id: *id,
                        kind: *k,
                        hash: h(*c),
                        size: u64::from(*c),
                    };
                    (p.clone(), e)
                })
                .collect(),
            base: self.base.clone(),
        }
    }

    fn record(&mut self, path: &str) {
        let (Some(l), Some(r)) = (self.local.get(path), self.remote.get(path)) else {
            panic!("record of {path} without both sides");
        };
        assert_eq!((l.0, l.1), (r.0, r.1), "{path} differs after a transfer");
        let b = BaseEntry {
            id: r.2,
            kind: r.0,
            hash: h(r.1),
            size: u64::from(l.1),
            mtime_ns: 0,
            inode: l.2,
        };
        self.base.insert(path.to_owned(), b);
    }

    fn parent_ok<V>(map: &BTreeMap<String, (EntryKind, u8, V)>, path: &str) -> bool {
        let p = parent_of(path);
        p.is_empty() || map.get(p).is_some_and(|e| e.0 == EntryKind::Folder)
    }

    fn local_parents(&mut self, path: &str) {
        let p = parent_of(path);
        if p.is_empty() || self.local.contains_key(p) {
            return;
        }
        self.local_parents(p);
        let i = self.fresh();
        self.local.insert(p.to_owned(), (EntryKind::Folder, 0, i));
    }

    fn remote_parents(&mut self, path: &str) {
        let p = parent_of(path);
        if p.is_empty() || self.remote.contains_key(p) {
            return;
        }
        self.remote_parents(p);
        let id = self.id();
        self.remote.insert(p.to_owned(), (EntryKind::Folder, 0, id));
    }

    fn apply(&mut self, a: &Action) {
        match a {
            Action::LocalMove { from, to, base } => {
                assert!(self.local.contains_key(from), "{a:?}");
                assert!(!self.local.contains_key(to), "{a:?} overwrites");
                // Like the mirror: a move creates the missing parent folders.
                self.local_parents(to);
                rekey(&mut self.local, from, to);
                rekey(&mut self.base, base, to);
            }
            Action::RemoteMove { id, from, to } => {
                assert_eq!(self.remote.get(from).map(|e| e.2), Some(*id), "{a:?}");
                assert!(!self.remote.contains_key(to), "{a:?} overwrites");
                self.remote_parents(to);
                rekey(&mut self.remote, from, to);
                rekey(&mut self.base, from, to);
            }
            Action::LocalMkdir { path, .. } => {
                assert!(Self::parent_ok(&self.local, path), "{a:?}: no parent");
                match self.local.get(path) {
                    Some((EntryKind::Folder, ..)) => {}
                    Some(_) => panic!("{a:?} overwrites"),
                    None => {
                        let i = self.fresh();
                        self.local.insert(path.clone(), (EntryKind::Folder, 0, i));
                    }
                }
                self.record(path);
            }
            Action::RemoteMkdir { path } => {
                assert!(Self::parent_ok(&self.remote, path), "{a:?}: no parent");
                match self.remote.get(path) {
                    Some((EntryKind::Folder, ..)) => {}
                    Some(_) => panic!("{a:?} overwrites"),
                    None => {
                        let id = self.id();
                        self.remote.insert(path.clone(), (EntryKind::Folder, 0, id));
                    }
                }
                self.record(path);
            }
            Action::ConflictCopy { path } => {
                let mut n = 1;
                let to = loop {
                    let t = format!("{path} (conflict {n})");
                    if !self.local.contains_key(&t) {
                        break t;
                    }
                    n += 1;
                };
                rekey(&mut self.local, path, &to);
            }
            Action::Upload { path, id } => {
                assert!(Self::parent_ok(&self.remote, path), "{a:?}: no parent");
                let l = self.local[path];
                assert_eq!(l.0, EntryKind::File);
                let id = match id {
                    Some(id) => {
                        assert_eq!(self.remote.get(path).map(|e| e.2), Some(*id), "{a:?}");
                        *id
                    }
                    None => {
                        assert!(!self.remote.contains_key(path), "{a:?} overwrites");
                        self.id()
                    }
                };
                self.remote.insert(path.clone(), (EntryKind::File, l.1, id));
                self.record(path);
            }
            Action::Download { path, id, expect } => {
                assert!(Self::parent_ok(&self.local, path), "{a:?}: no parent");
                let r = self.remote[path];
                assert_eq!(r.2, *id);
                match (expect, self.local.get(path)) {
                    (None, None) => {}
                    (Some(b), Some(l)) => assert_eq!((b.hash, b.inode), (h(l.1), l.2), "{a:?}"),
                    (e, l) => panic!("{a:?} would clobber {l:?} (expected {e:?})"),
                }
                let i = self.fresh();
                self.local.insert(path.clone(), (EntryKind::File, r.1, i));
                self.record(path);
            }
            Action::LocalDelete { path, expect } => {
                let l = self.local[path];
                assert_eq!((h(l.1), l.0), (expect.hash, expect.kind), "{a:?}");
                let has_child = self.local.keys().any(|k| k != path && under(k, path));
                assert!(!has_child, "{a:?} deletes a folder with content");
                self.local.remove(path);
                self.base.remove(path);
            }
            Action::RemoteDelete { path, id } => {
                assert_eq!(self.remote.get(path).map(|e| e.2), Some(*id), "{a:?}");
                let gone: Vec<String> = self
                    .remote
                    .keys()
                    .filter(|k| under(k, path))
                    .cloned()
                    .collect();
                for g in gone {
                    self.remote.remove(&g);
                }
                self.base.remove(path);
            }
            Action::Record { path, base } => {
                self.base.insert(path.clone(), *base);
            }
            Action::Forget { path } => {
                self.base.remove(path);
            }
            Action::Refused { .. } => {}
        }
    }

    fn files(
        m: &BTreeMap<String, (EntryKind, u8, impl Copy)>,
    ) -> BTreeMap<String, (EntryKind, u8)> {
        m.iter().map(|(p, e)| (p.clone(), (e.0, e.1))).collect()
    }
}

/// An edit on one side: the paths are picked from a small universe so that they collide.
#[derive(Clone, Debug)]
enum Op {
    Write {
        path: usize,
        content: u8,
        new_inode: bool,
    },
    Mkdir {
        path: usize,
    },
    Delete {
        path: usize,
    },
    Move {
        from: usize,
        to: usize,
    },
}

const PATHS: [&str; 8] = ["a", "b", "a/x", "a/y", "b/x", "z", "a/c", "a/c/w"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..PATHS.len(), 1u8..=250, any::<bool>()).prop_map(|(path, content, new_inode)| {
            Op::Write {
                path,
                content,
                new_inode,
            }
        }),
        (0..PATHS.len()).prop_map(|path| Op::Mkdir { path }),
        (0..PATHS.len()).prop_map(|path| Op::Delete { path }),
        (0..PATHS.len(), 0..PATHS.len()).prop_map(|(from, to)| Op::Move { from, to }),
    ]
}

/// Applies an edit to one side's map; returns the content written, if any.
fn edit<V: Copy>(
    map: &mut BTreeMap<String, (EntryKind, u8, V)>,
    op: &Op,
    mut fresh: impl FnMut() -> V,
) -> Option<u8> {
    match op {
        Op::Write {
            path,
            content,
            new_inode,
        } => {
            let p = PATHS[*path];
            if !World::parent_ok(map, p) {
                return None;
            }
            match map.get(p).copied() {
                Some((EntryKind::Folder, ..)) => None,
                Some((_, _, v)) => {
                    let v = if *new_inode { fresh() } else { v };
                    map.insert(p.to_owned(), (EntryKind::File, *content, v));
                    Some(*content)
                }
                None => {
                    map.insert(p.to_owned(), (EntryKind::File, *content, fresh()));
                    Some(*content)
                }
            }
        }
        Op::Mkdir { path } => {
            let p = PATHS[*path];
            if World::parent_ok(map, p) && !map.contains_key(p) {
                map.insert(p.to_owned(), (EntryKind::Folder, 0, fresh()));
            }
            None
        }
        Op::Delete { path } => {
            let p = PATHS[*path];
            map.retain(|k, _| !under(k, p));
            None
        }
        Op::Move { from, to } => {
            let (f, t) = (PATHS[*from], PATHS[*to]);
            if map.contains_key(f)
                && !map.contains_key(t)
                && World::parent_ok(map, t)
                && !under(t, f)
            {
                rekey(map, f, t);
            }
            None
        }
    }
}

/// A synced world built from a list of operations.
fn synced(ops: &[Op]) -> World {
    let mut w = World::default();
    let mut next = 1000u64;
    let mut tree: BTreeMap<String, (EntryKind, u8, u64)> = BTreeMap::new();
    for o in ops {
        edit(&mut tree, o, || {
            next += 1;
            next
        });
    }
    w.next = next;
    for (p, (k, c, i)) in tree {
        w.local.insert(p.clone(), (k, c, i));
        let id = w.id();
        w.remote.insert(p.clone(), (k, c, id));
        w.record(&p);
    }
    w
}

/// Runs rounds until the plan has nothing but bookkeeping; returns the number of rounds.
fn settle(w: &mut World, read_only: bool) -> usize {
    for round in 0..6 {
        let actions = plan(&w.states(), read_only);
        let busy = actions.iter().any(|a| {
            !matches!(
                a,
                Action::Record { .. } | Action::Forget { .. } | Action::Refused { .. }
            )
        });
        for a in &actions {
            w.apply(a);
        }
        if !busy {
            return round;
        }
    }
    panic!("no convergence: {:?}", plan(&w.states(), read_only));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn rounds_converge_and_keep_every_edit(
        init in proptest::collection::vec(op(), 0..10),
        local_ops in proptest::collection::vec(op(), 0..6),
        remote_ops in proptest::collection::vec(op(), 0..6),
    ) {
        let mut w = synced(&init);
        let mut next = w.next;
        let mut written = Vec::new();
        for o in &local_ops {
            written.extend(edit(&mut w.local, o, || { next += 1; next }));
        }
        w.next = next;
        for o in &remote_ops {
            let mut id_next = w.next;
            written.extend(edit(&mut w.remote, o, || {
                id_next += 1;
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&id_next.to_le_bytes());
                id
            }));
            w.next = id_next;
        }
        // What each side holds that the base did not: it must survive somewhere.
        let mut must_keep: Vec<u8> = Vec::new();
        // (Contents written since the last sync: any content no base entry holds.)
        let fresh = |c: u8| !w.base.values().any(|b| b.kind == EntryKind::File && b.hash == h(c));
        for e in w.local.values() {
            if e.0 == EntryKind::File && fresh(e.1) {
                must_keep.push(e.1);
            }
        }
        for e in w.remote.values() {
            if e.0 == EntryKind::File && fresh(e.1) {
                must_keep.push(e.1);
            }
        }
        let _ = written;
        settle(&mut w, false);
        prop_assert_eq!(World::files(&w.local), World::files(&w.remote));
        let finals: Vec<u8> = w.local.values().filter(|e| e.0 == EntryKind::File).map(|e| e.1).collect();
        for c in must_keep {
            prop_assert!(finals.contains(&c), "content {} lost", c);
        }
        // Bases describe both sides.
        for (p, b) in &w.base {
            prop_assert_eq!(w.remote.get(p).map(|e| e.2), Some(b.id));
        }
    }

    #[test]
    fn read_only_never_changes_the_workspace(
        init in proptest::collection::vec(op(), 0..10),
        local_ops in proptest::collection::vec(op(), 0..6),
        remote_ops in proptest::collection::vec(op(), 0..6),
    ) {
        let mut w = synced(&init);
        let mut next = w.next;
        for o in &local_ops {
            edit(&mut w.local, o, || { next += 1; next });
        }
        for o in &remote_ops {
            edit(&mut w.remote, o, || {
                next += 1;
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&next.to_le_bytes());
                id
            });
        }
        w.next = next;
        let before = w.remote.clone();
        for a in plan(&w.states(), true) {
            prop_assert!(
                !matches!(a, Action::Upload { .. } | Action::RemoteMkdir { .. } | Action::RemoteMove { .. } | Action::RemoteDelete { .. }),
                "read-only planned {:?}", a
            );
            w.apply(&a);
        }
        prop_assert_eq!(before, w.remote);
    }
}

#[test]
fn save_by_rename_is_an_edit_of_the_same_entry() {
    let mut w = synced(&[Op::Write {
        path: 5,
        content: 1,
        new_inode: false,
    }]);
    let id = w.remote["z"].2;
    w.local.insert("z".into(), (EntryKind::File, 2, 999));
    let actions = plan(&w.states(), false);
    assert_eq!(
        actions,
        vec![Action::Upload {
            path: "z".into(),
            id: Some(id)
        }]
    );
}

#[test]
fn folder_move_is_one_move_and_carries_its_content() {
    let mut w = synced(&[
        Op::Mkdir { path: 0 },
        Op::Write {
            path: 2,
            content: 7,
            new_inode: false,
        },
    ]);
    rekey(&mut w.local, "a", "b");
    let actions = plan(&w.states(), false);
    let id = w.remote["a"].2;
    assert_eq!(
        actions,
        vec![Action::RemoteMove {
            id,
            from: "a".into(),
            to: "b".into()
        }]
    );
}

#[test]
fn case_only_rename_is_a_move() {
    let mut w = synced(&[Op::Write {
        path: 5,
        content: 3,
        new_inode: false,
    }]);
    rekey(&mut w.local, "z", "Z");
    let id = w.remote["z"].2;
    assert_eq!(
        plan(&w.states(), false),
        vec![Action::RemoteMove {
            id,
            from: "z".into(),
            to: "Z".into()
        }]
    );
}

#[test]
fn concurrent_edits_keep_both() {
    let mut w = synced(&[Op::Write {
        path: 5,
        content: 1,
        new_inode: false,
    }]);
    if let Some(e) = w.local.get_mut("z") {
        e.1 = 2;
    }
    if let Some(e) = w.remote.get_mut("z") {
        e.1 = 3;
    }
    settle(&mut w, false);
    let files = World::files(&w.local);
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files["z"].1, 3);
    assert_eq!(World::files(&w.local), World::files(&w.remote));
}

#[test]
fn a_move_never_lands_where_an_earlier_move_made_the_folders() {
    // Synced: a/c/w. Locally a/c/w moved to b and z made; remotely a moved to z. The local move
    // goes to the workspace's place z/c/w, whose move creates z/c: a/c may no longer go there.
    let mut w = synced(&[
        Op::Mkdir { path: 0 },
        Op::Mkdir { path: 6 },
        Op::Mkdir { path: 7 },
    ]);
    rekey(&mut w.local, "a/c/w", "b");
    w.local.insert("z".into(), (EntryKind::Folder, 0, 5000));
    rekey(&mut w.remote, "a", "z");
    let actions = plan(&w.states(), false);
    let mut made = Vec::new();
    for a in &actions {
        if let Action::LocalMove { to, .. } = a {
            assert!(
                !made.iter().any(|m: &String| under(m, to)),
                "{a:?} lands where an earlier move made the folders: {actions:?}"
            );
            made.push(to.clone());
        }
    }
    settle(&mut w, false);
    assert_eq!(World::files(&w.local), World::files(&w.remote));
    assert!(w.local.contains_key("z/c/w"), "{:?}", w.local);
}
