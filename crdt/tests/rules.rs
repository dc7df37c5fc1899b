//! One small scenario per concurrency rule: two replicas diverge, exchange, and agree.

mod common;
use cloison_crdt::{CrdtError, EntryId, Kind, RemoteChange, Retention};
use common::*;

const ROOT: EntryId = EntryId::ROOT;

/// Two replicas that share a starting tree built by the first.
fn pair() -> Vec<Replica> {
    Replica::cluster(2)
}

#[test]
fn rename_vs_rename_has_one_winner() {
    let mut rs = pair();
    let f = rs[0].file(ROOT, "draft.txt", T0);
    sync_all(&mut rs);
    rs[0].ws.rename(f, "by-ann.txt", T0 + 10).unwrap();
    rs[1].ws.rename(f, "by-bob.txt", T0 + 20).unwrap();
    sync_all(&mut rs);
    assert_converged(&mut rs);
    assert_eq!(
        rs[0].paths(),
        vec!["by-bob.txt"],
        "the later rename wins, the entry is not duplicated"
    );
    assert_eq!(rs[1].ws.stat(f).unwrap().name, "by-bob.txt");
}

#[test]
fn move_vs_move_has_one_winner() {
    let mut rs = pair();
    let a = rs[0].folder(ROOT, "a", T0);
    let b = rs[0].folder(ROOT, "b", T0);
    let f = rs[0].file(ROOT, "f", T0);
    sync_all(&mut rs);
    rs[0].ws.move_entry(f, a, T0 + 20).unwrap();
    rs[1].ws.move_entry(f, b, T0 + 10).unwrap();
    sync_all(&mut rs);
    assert_converged(&mut rs);
    assert_eq!(rs[0].paths(), vec!["a", "a/f", "b"]);
}

#[test]
fn rename_and_move_of_one_entry_both_apply() {
    let mut rs = pair();
    let a = rs[0].folder(ROOT, "a", T0);
    let f = rs[0].file(ROOT, "f", T0);
    sync_all(&mut rs);
    rs[0].ws.move_entry(f, a, T0 + 10).unwrap();
    rs[1].ws.rename(f, "g", T0 + 10).unwrap();
    sync_all(&mut rs);
    assert_converged(&mut rs);
    assert_eq!(rs[0].paths(), vec!["a", "a/g"]);
}

#[test]
fn moves_into_each_other_undo_the_later_move() {
    let mut rs = pair();
    let a = rs[0].folder(ROOT, "a", T0);
    let b = rs[0].folder(ROOT, "b", T0);
    rs[0].file(a, "in-a", T0);
    sync_all(&mut rs);
    rs[0].ws.move_entry(a, b, T0 + 10).unwrap(); // a into b
    rs[1].ws.move_entry(b, a, T0 + 20).unwrap(); // b into a: later, so undone
    sync_all(&mut rs);
    assert_converged(&mut rs);
    assert_eq!(rs[0].paths(), vec!["b", "b/a", "b/a/in-a"]);
}

#[test]
fn three_way_cycle_is_broken() {
    let mut rs = Replica::cluster(3);
    let a = rs[0].folder(ROOT, "a", T0);
    let b = rs[0].folder(ROOT, "b", T0);
    let c = rs[0].folder(ROOT, "c", T0);
    sync_all(&mut rs);
    rs[0].ws.move_entry(a, b, T0 + 10).unwrap();
    rs[1].ws.move_entry(b, c, T0 + 20).unwrap();
    rs[2].ws.move_entry(c, a, T0 + 30).unwrap();
    sync_all(&mut rs);
    assert_converged(&mut rs);
    assert_eq!(rs[0].paths(), vec!["c", "c/b", "c/b/a"]);
}

#[test]
fn edit_beats_concurrent_delete() {
    let mut rs = pair();
    let f = rs[0].file(ROOT, "notes.md", T0);
    rs[0].write(f, 1, T0);
    sync_all(&mut rs);
    let v2 = rs[0].write(f, 2, T0 + 10);
    rs[1].ws.delete(f, T0 + 20).unwrap();
    sync_all(&mut rs);
    assert_converged(&mut rs);
    let node = rs[1]
        .ws
        .stat(f)
        .expect("the edited file survives the delete");
    assert_eq!(node.current.unwrap().id, v2);
}

#[test]
fn edit_inside_a_deleted_folder_brings_the_folder_back() {
    let mut rs = pair();
    let d = rs[0].folder(ROOT, "project", T0);
    let f = rs[0].file(d, "main.rs", T0);
    rs[0].file(d, "old.rs", T0);
    sync_all(&mut rs);
    rs[0].write(f, 7, T0 + 10);
    rs[1].ws.delete(d, T0 + 20).unwrap();
    sync_all(&mut rs);
    assert_converged(&mut rs);
    assert_eq!(
        rs[0].paths(),
        vec!["project", "project/main.rs"],
        "only the edited file comes back"
    );
}

#[test]
fn delete_after_seeing_the_edit_wins() {
    let mut rs = pair();
    let f = rs[0].file(ROOT, "x", T0);
    rs[0].write(f, 1, T0);
    sync_all(&mut rs);
    rs[1].ws.delete(f, T0 + 5).unwrap();
    sync_all(&mut rs);
    assert_converged(&mut rs);
    assert!(rs[0].paths().is_empty());
}

#[test]
fn concurrent_writes_make_a_conflict_copy_and_keep_both_versions() {
    let mut rs = pair();
    let f = rs[0].file(ROOT, "report.txt", T0);
    sync_all(&mut rs);
    let va = rs[0].write(f, 1, T0 + 1000); // ann/laptop, earlier: loses
    let vb = rs[1].write(f, 2, T0 + 2000); // bob/desktop, later: wins
    sync_all(&mut rs);
    assert_converged(&mut rs);
    assert_eq!(
        rs[0].paths(),
        vec!["report (conflict ann laptop 2023-11-14).txt", "report.txt"]
    );
    assert_eq!(rs[0].ws.stat(f).unwrap().current.unwrap().id, vb);
    let copy = rs[0]
        .ws
        .resolve("report (conflict ann laptop 2023-11-14).txt")
        .unwrap();
    assert_eq!(copy.current.unwrap().id, va);
    assert_eq!(copy.conflict_of, Some(f));
    let history: Vec<_> = rs[1]
        .ws
        .versions(f)
        .unwrap()
        .into_iter()
        .map(|v| v.version.id)
        .collect();
    assert_eq!(history, vec![va, vb]);

    // Writing the file again resolves the conflict, and the copy stays, now a real entry.
    rs[1].write(f, 3, T0 + 3000);
    sync_all(&mut rs);
    assert_converged(&mut rs);
    let copy = rs[0]
        .ws
        .resolve("report (conflict ann laptop 2023-11-14).txt")
        .unwrap();
    assert!(!copy.is_virtual);
    assert_eq!(rs[0].ws.versions(f).unwrap().len(), 3);
}

#[test]
fn same_name_in_one_folder_gets_a_suffix_on_the_later_one() {
    let mut rs = pair();
    let early = rs[0].file(ROOT, "todo.txt", T0 + 10);
    let late = rs[1].file(ROOT, "todo.txt", T0 + 20);
    sync_all(&mut rs);
    assert_converged(&mut rs);
    assert_eq!(rs[0].ws.stat(early).unwrap().name, "todo.txt");
    assert_eq!(rs[0].ws.stat(late).unwrap().name, "todo (2).txt");
}

#[test]
fn local_edits_refuse_clashes_cycles_and_bad_names() {
    let mut rs = pair();
    let r = &mut rs[0];
    let a = r.folder(ROOT, "a", T0);
    let b = r.folder(a, "b", T0);
    let f = r.file(ROOT, "f", T0);
    assert!(matches!(
        r.ws.move_entry(a, b, T0),
        Err(CrdtError::WouldCycle(_))
    ));
    assert!(matches!(
        r.ws.rename(f, "a", T0),
        Err(CrdtError::NameTaken(_))
    ));
    assert!(matches!(
        r.ws.rename(f, "x/y", T0),
        Err(CrdtError::InvalidName(_))
    ));
    assert!(matches!(
        r.ws.rename(f, "..", T0),
        Err(CrdtError::InvalidName(_))
    ));
    assert!(matches!(
        r.ws.rename(f, &"x".repeat(256), T0),
        Err(CrdtError::InvalidName(_))
    ));
    assert!(matches!(
        r.ws.create_file(&mut r.ids, f, "child", T0),
        Err(CrdtError::NotAFolder(_))
    ));
    assert!(matches!(r.ws.delete(ROOT, T0), Err(CrdtError::IsRoot)));
    assert!(r.ws.view_is_consistent());
}

#[test]
fn history_restore_version_and_deleted_entry() {
    let mut rs = pair();
    let d = rs[0].folder(ROOT, "d", T0);
    let f = rs[0].file(d, "f.txt", T0);
    let v1 = rs[0].write(f, 1, T0 + 1);
    let _v2 = rs[0].write(f, 2, T0 + 2);
    let author = rs[0].author.clone();
    let r0 = &mut rs[0];
    let v3 = r0
        .ws
        .restore_version(&mut r0.ids, f, v1, &author, T0 + 3)
        .unwrap();
    let cur = rs[0].ws.stat(f).unwrap().current.unwrap();
    assert_eq!(
        (cur.id, cur.restored_from, cur.manifest.chunks.clone()),
        (v3, Some(v1), {
            rs[0].ws.versions(f).unwrap()[0]
                .version
                .manifest
                .chunks
                .clone()
        })
    );
    rs[0].ws.delete(d, T0 + 4).unwrap();
    assert!(rs[0].paths().is_empty());
    let gone: Vec<_> = rs[0]
        .ws
        .deleted_entries()
        .into_iter()
        .map(|e| (e.id, e.kind))
        .collect();
    assert!(gone.contains(&(d, Kind::Folder)) && gone.contains(&(f, Kind::File)));
    rs[0].ws.restore_entry(d, T0 + 5).unwrap();
    assert_eq!(rs[0].paths(), vec!["d", "d/f.txt"]);
    sync_all(&mut rs);
    assert_converged(&mut rs);
    assert_eq!(rs[1].ws.versions(f).unwrap().len(), 3);
}

#[test]
fn retention_is_a_pure_function_of_document_and_now() {
    let mut rs = pair();
    let f = rs[0].file(ROOT, "f", T0);
    let vs: Vec<_> = (0..5)
        .map(|i| rs[0].write(f, i, T0 + i as i64 * 86_400_000))
        .collect();
    rs[0].ws.set_retention(Retention::LastK(2), T0).unwrap();
    sync_all(&mut rs);
    assert_eq!(rs[1].ws.retention(), Retention::LastK(2));
    let now = T0 + 10 * 86_400_000;
    assert_eq!(
        rs[1].ws.retained_versions(f, now).unwrap(),
        vec![vs[4], vs[3]]
    );
    assert_eq!(rs[0].ws.pruned_versions(now), rs[1].ws.pruned_versions(now));
    rs[1]
        .ws
        .set_retention(Retention::NewerThanDays(2), T0 + 1)
        .unwrap();
    sync_all(&mut rs);
    let now = T0 + 5 * 86_400_000;
    assert_eq!(
        rs[0].ws.retained_versions(f, now).unwrap(),
        vec![vs[4], vs[3]]
    );
    assert_eq!(rs[0].ws.pruned_versions(now).len(), 3);
    assert_eq!(
        rs[0].ws.versions(f).unwrap().len(),
        5,
        "history itself keeps everything"
    );
}

#[test]
fn malformed_change_bytes_give_a_typed_error_and_change_nothing() {
    let mut rs = pair();
    rs[0].file(ROOT, "a", T0);
    let good = rs[0].commit();
    let before = (rs[1].ws.heads(), rs[1].tree().digest());
    let mut bad = good[0].bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    for bytes in [
        bad,
        vec![],
        b"not automerge".to_vec(),
        good[0].bytes[..10].to_vec(),
    ] {
        let batch = vec![
            RemoteChange::from(good[0].clone()),
            RemoteChange {
                shard: good[0].shard,
                bytes,
            },
        ];
        let err = rs[1].ws.apply_remote(batch).unwrap_err();
        assert!(
            matches!(err, CrdtError::MalformedChange { index: 1, .. }),
            "{err}"
        );
        assert_eq!((rs[1].ws.heads(), rs[1].tree().digest()), before);
    }
    let err = rs[1]
        .ws
        .apply_remote([RemoteChange {
            shard: 99,
            bytes: vec![],
        }])
        .unwrap_err();
    assert!(matches!(err, CrdtError::BadShard { .. }));
}

#[test]
fn changes_with_missing_dependencies_are_held_until_they_arrive() {
    let mut rs = pair();
    let f = rs[0].file(ROOT, "f", T0);
    let mut changes = rs[0].commit();
    rs[0].ws.rename(f, "g", T0 + 1).unwrap();
    changes.extend(rs[0].commit());
    rs[0].ws.rename(f, "h", T0 + 2).unwrap();
    changes.extend(rs[0].commit());
    // Deliver the two renames first: both wait for the creation of f.
    let creation: Vec<_> = changes
        .iter()
        .filter(|c| c.shard == rs[0].ws.shard_of(f))
        .cloned()
        .collect();
    assert_eq!(creation.len(), 3);
    let report = rs[1]
        .ws
        .apply_remote(creation[1..].iter().cloned().map(RemoteChange::from))
        .unwrap();
    assert_eq!((report.applied, report.held), (0, 2));
    assert_eq!(rs[1].ws.missing_deps().len(), 1);
    assert!(rs[1].paths().is_empty());
    let report = rs[1]
        .ws
        .apply_remote(changes.into_iter().map(RemoteChange::from))
        .unwrap();
    assert_eq!((report.held, report.duplicates), (0, 2));
    assert!(rs[1].ws.missing_deps().is_empty());
    assert_converged(&mut rs);
    assert_eq!(rs[1].paths(), vec!["h"]);
}

#[test]
fn save_and_load_give_the_same_tree() {
    let mut rs = pair();
    let d = rs[0].folder(ROOT, "d", T0);
    let f = rs[0].file(d, "f", T0);
    rs[0].write(f, 1, T0);
    let saved = rs[0].ws.save();
    let mut loaded = cloison_crdt::Workspace::load(b"actor-0", &saved).unwrap();
    assert_eq!(loaded.tree().digest(), rs[0].tree().digest());
    assert_eq!(loaded.heads(), rs[0].ws.heads());
    assert_eq!(loaded.recorded_shard_count(), Some(loaded.shard_count()));
    assert!(cloison_crdt::Workspace::load(b"actor-0", &saved[..saved.len() - 3]).is_err());
}

#[test]
fn a_file_at_the_chunk_limit_travels_in_one_accepted_change() {
    use cloison_crdt::{Manifest, limits};
    let mut rs = pair();
    let f = rs[0].file(ROOT, "huge.bin", T0);
    sync_all(&mut rs);
    let m = Manifest::synthetic(9, &vec![1 << 20; limits::MAX_CHUNKS], T0 + 1);
    let author = rs[0].author.clone();
    let r0 = &mut rs[0];
    r0.ws
        .write_content(&mut r0.ids, f, m.clone(), &author, T0 + 1)
        .unwrap();
    let changes = rs[0].commit();
    assert!(
        changes
            .iter()
            .all(|c| c.bytes.len() <= limits::MAX_CHANGE_BYTES)
    );
    rs[1]
        .ws
        .apply_remote(changes.into_iter().map(RemoteChange::from))
        .unwrap();
    let cur = rs[1].ws.stat(f).unwrap().current.unwrap();
    assert_eq!(cur.manifest, m, "every chunk arrives with its key");
}

#[test]
fn title_set_on_one_replica_reaches_the_other() {
    let mut rs = pair();
    assert_eq!(rs[0].ws.title(), None);
    rs[0].ws.set_title("Équipe R&D / 2024", T0).unwrap();
    assert_eq!(rs[0].ws.title().as_deref(), Some("Équipe R&D / 2024"));
    let changes = rs[0].commit();
    assert!(
        changes.iter().any(|c| c.shard == rs[0].ws.settings_shard()),
        "the title travels in the settings document"
    );
    assert_eq!(rs[1].ws.title(), None);
    rs[1]
        .ws
        .apply_remote(changes.into_iter().map(RemoteChange::from))
        .unwrap();
    assert_eq!(rs[1].ws.title(), rs[0].ws.title());
    // A later title replaces it everywhere, and survives save and load.
    rs[1].ws.set_title("Archive", T0 + 1).unwrap();
    sync_all(&mut rs);
    assert_eq!(rs[0].ws.title().as_deref(), Some("Archive"));
    let loaded = cloison_crdt::Workspace::load(b"actor-0", &rs[0].ws.save()).unwrap();
    assert_eq!(loaded.title().as_deref(), Some("Archive"));
}

#[test]
fn concurrent_titles_converge_on_the_latest() {
    let mut rs = pair();
    sync_all(&mut rs);
    rs[0].ws.set_title("by ann, later", T0 + 20).unwrap();
    rs[1].ws.set_title("by bob, earlier", T0 + 10).unwrap();
    sync_all(&mut rs);
    assert_eq!(rs[0].ws.title().as_deref(), Some("by ann, later"));
    assert_eq!(rs[1].ws.title(), rs[0].ws.title());
    // Same time: the greatest encoding (so the greatest title) wins, whatever the order.
    rs[0].ws.set_title("alpha", T0 + 30).unwrap();
    rs[1].ws.set_title("beta", T0 + 30).unwrap();
    let (a, b) = (rs[0].commit(), rs[1].commit());
    rs[0]
        .ws
        .apply_remote(b.into_iter().map(RemoteChange::from))
        .unwrap();
    rs[1]
        .ws
        .apply_remote(a.into_iter().map(RemoteChange::from))
        .unwrap();
    assert_eq!(rs[0].ws.title().as_deref(), Some("beta"));
    assert_eq!(rs[1].ws.title().as_deref(), Some("beta"));
}

#[test]
fn invalid_titles_are_refused_and_change_nothing() {
    let mut rs = pair();
    rs[0].ws.set_title("kept", T0).unwrap();
    rs[0].commit();
    for bad in [
        String::new(),
        "x".repeat(256),
        "é".repeat(128),
        "two\nlines".into(),
        "tab\there".into(),
        "nul\0".into(),
        "bell\u{7}".into(),
    ] {
        let err = rs[0].ws.set_title(&bad, T0 + 1).unwrap_err();
        assert!(matches!(err, CrdtError::InvalidTitle(_)), "{bad:?}: {err}");
    }
    assert_eq!(rs[0].ws.title().as_deref(), Some("kept"));
    assert!(rs[0].commit().is_empty(), "a refused title writes nothing");
    rs[0].ws.set_title(&"x".repeat(255), T0 + 2).unwrap();
}
