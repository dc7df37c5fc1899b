//! Hostile but well-formed changes: bad values, keys in the wrong shard, nested objects. They
//! must never panic, and every replica must read them the same way.

mod common;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ScalarValue};
use cloison_crdt::{EntryId, RemoteChange, Workspace, check_name, shard_of};
use common::*;

fn evil_change(shard: u16, puts: &[(String, ScalarValue)], nested: bool) -> RemoteChange {
    let first = puts.first().map_or("", |p| p.0.as_str());
    evil_change_by(&format!("evil-{shard}-{first}"), shard, puts, nested)
}

fn evil_change_by(
    actor: &str,
    shard: u16,
    puts: &[(String, ScalarValue)],
    nested: bool,
) -> RemoteChange {
    let mut doc = AutoCommit::new().with_actor(automerge::ActorId::from(actor.as_bytes()));
    for (k, v) in puts {
        doc.put(ROOT, k.as_str(), v.clone()).unwrap();
    }
    if nested {
        let obj = doc.put_object(ROOT, "nested", ObjType::Map).unwrap();
        doc.put(&obj, "x", 1).unwrap();
    }
    doc.commit();
    let bytes = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    RemoteChange { shard, bytes }
}

#[test]
fn garbage_values_are_read_identically_and_never_break_the_tree() {
    let mut rs = Replica::cluster(2);
    let f = rs[0].file(EntryId::ROOT, "ok.txt", T0);
    sync_all(&mut rs);
    let s = shard_of(f, SHARDS);
    let hex = f.to_hex();
    let other = EntryId([0xee; 16]);
    let wrong_shard = (shard_of(other, SHARDS) + 1) % SHARDS;
    let mut place = vec![1u8, 0];
    place.extend_from_slice(&[0xab; 16]); // a parent that does not exist
    place.extend_from_slice(&[0; 16]);
    place.extend_from_slice(&T0.to_be_bytes());
    let mut bad_name = vec![1u8];
    bad_name.extend_from_slice(&(T0 + 99).to_be_bytes());
    bad_name.extend_from_slice(b"a/b");
    let changes = vec![
        evil_change(
            s,
            &[
                (format!("{hex}/n"), ScalarValue::Bytes(bad_name)),
                (format!("{hex}/d"), ScalarValue::Str("yes".into())),
                (
                    format!("{hex}/v/{}", "00".repeat(16)),
                    ScalarValue::Bytes(vec![1, 2, 3]),
                ),
                ("junk".into(), ScalarValue::Int(1)),
            ],
            true,
        ),
        evil_change(
            wrong_shard,
            &[(
                format!("{}/p", other.to_hex()),
                ScalarValue::Bytes(place.clone()),
            )],
            false,
        ),
        evil_change(
            shard_of(EntryId([0xef; 16]), SHARDS),
            &[(
                format!("{}/p", EntryId([0xef; 16]).to_hex()),
                ScalarValue::Bytes(place),
            )],
            false,
        ),
    ];
    for r in rs.iter_mut() {
        r.ws.apply_remote(changes.clone()).unwrap();
    }
    assert_converged(&mut rs);
    let tree = rs[0].tree();
    for (_, n) in tree.walk() {
        check_name(&n.name).unwrap();
    }
    assert!(
        tree.get(other).is_none(),
        "an entry written into the wrong shard is ignored"
    );
    let renamed = tree.get(f).unwrap();
    assert!(
        renamed.name.starts_with("invalid-name-"),
        "a bad stored name gets a fallback: {}",
        renamed.name
    );
    assert!(
        tree.get(EntryId([0xef; 16]))
            .is_some_and(|n| n.parent.is_root()),
        "orphans show at the root"
    );
    let mut fresh = Workspace::join(b"fresh", SHARDS).unwrap();
    let all: Vec<_> = rs[0]
        .sent
        .iter()
        .cloned()
        .map(RemoteChange::from)
        .chain(changes)
        .collect();
    fresh.apply_remote(all).unwrap();
    assert_eq!(
        fresh.tree().canonical_bytes(),
        rs[1].tree().canonical_bytes()
    );
}

#[test]
fn a_batch_reusing_an_actor_sequence_number_is_refused_whole() {
    let mut rs = Replica::cluster(1);
    let before = rs[0].tree().digest();
    let a = evil_change_by("twin", 0, &[("x".into(), ScalarValue::Int(1))], false);
    let b = evil_change_by("twin", 0, &[("y".into(), ScalarValue::Int(2))], false);
    let ok = evil_change(
        1,
        &[
            ("z".into(), ScalarValue::Int(3)),
            ("w".into(), ScalarValue::Int(3)),
        ],
        false,
    );
    assert_ne!(a.bytes, b.bytes);
    let err = rs[0]
        .ws
        .apply_remote([ok, a.clone(), b.clone()])
        .unwrap_err();
    assert!(
        matches!(err, cloison_crdt::CrdtError::ConflictingSeq { index: 2 }),
        "{err}"
    );
    assert_eq!(rs[0].tree().digest(), before);
    assert!(
        rs[0].ws.heads()[1].is_empty(),
        "nothing of the batch was applied"
    );
    // The same reuse across two batches: refused before anything is applied.
    rs[0].ws.apply_remote([a]).unwrap();
    let before = (rs[0].ws.heads(), rs[0].tree().digest());
    let err = rs[0].ws.apply_remote([b]).unwrap_err();
    assert!(
        matches!(err, cloison_crdt::CrdtError::ConflictingSeq { index: 0 }),
        "{err}"
    );
    assert_eq!((rs[0].ws.heads(), rs[0].tree().digest()), before);
}

/// Found by the `crdt_changes` fuzz target: a change reusing a sequence number its actor already
/// has in a document was refused by automerge only when that document's turn came, after the
/// batch's earlier documents were applied, so a refused batch had changed the workspace.
#[test]
fn a_batch_reusing_a_sequence_number_the_document_holds_changes_nothing() {
    let mut rs = Replica::cluster(1);
    let taken = evil_change_by("twin", 1, &[("x".into(), ScalarValue::Int(1))], false);
    rs[0].ws.apply_remote([taken]).unwrap();
    let reuse = evil_change_by("twin", 1, &[("y".into(), ScalarValue::Int(2))], false);
    let ok = evil_change_by("fine", 0, &[("z".into(), ScalarValue::Int(3))], false);
    let before = (rs[0].ws.save(), rs[0].tree().digest());
    let err = rs[0].ws.apply_remote([ok.clone(), reuse]).unwrap_err();
    assert!(
        matches!(err, cloison_crdt::CrdtError::ConflictingSeq { index: 1 }),
        "{err}"
    );
    assert_eq!(
        (rs[0].ws.save(), rs[0].tree().digest()),
        before,
        "the change of the earlier document was not applied either"
    );
    // The good change alone still applies.
    assert_eq!(rs[0].ws.apply_remote([ok]).unwrap().applied, 1);
}

#[test]
fn stored_titles_breaking_the_rules_are_ignored_identically() {
    let mut rs = Replica::cluster(2);
    rs[0].ws.set_title("real title", T0).unwrap();
    sync_all(&mut rs);
    let settings = rs[0].ws.settings_shard();
    let later = |title: &[u8], dt: i64| {
        let mut v = vec![1u8];
        v.extend_from_slice(&(T0 + dt).to_be_bytes());
        v.extend_from_slice(title);
        ScalarValue::Bytes(v)
    };
    // Concurrent with the real title (their writers never saw it), all with a later time.
    let changes: Vec<RemoteChange> = [
        later(b"line\nbreak", 10),
        later(b"", 11),
        later(&[b'x'; 256], 12),
        later(&[0xff, 0xfe], 13),
        ScalarValue::Str("not bytes".into()),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, v)| {
        evil_change_by(
            &format!("evil-title-{i}"),
            settings,
            &[("title".into(), v)],
            false,
        )
    })
    .collect();
    for r in rs.iter_mut() {
        r.ws.apply_remote(changes.clone()).unwrap();
        assert_eq!(r.ws.title().as_deref(), Some("real title"));
    }
    // A well-formed later one does win, on every replica.
    let good = evil_change_by(
        "evil-title-ok",
        settings,
        &[("title".into(), later(b"taken over", 20))],
        false,
    );
    for r in rs.iter_mut() {
        r.ws.apply_remote([good.clone()]).unwrap();
        assert_eq!(r.ws.title().as_deref(), Some("taken over"));
    }
}

/// The change bytes on which automerge 0.12 panics (`lookup_actor(..).unwrap()` in its import;
/// found by the `crdt_changes` fuzz target, kept in `fuzz/open/`): the panic is caught,
/// `apply_remote` says `Poisoned`, and the workspace refuses everything after (automerge may
/// have half-applied); the node then rebuilds the document without them.
#[test]
fn changes_that_make_automerge_panic_poison_the_workspace_and_nothing_escapes() {
    let input: &[u8] = include_bytes!("../../fuzz/open/crdt_changes-automerge-import-panic");
    // The fuzz target's layout: a mode byte (0: changes), then parts cut at `\xffCUT`, each a
    // shard byte and the change bytes.
    let (&mode, mut rest) = input.split_first().unwrap();
    assert_eq!(mode % 2, 0);
    let mut parts = Vec::new();
    while parts.len() + 1 < 8 {
        match rest.windows(4).position(|w| w == b"\xffCUT") {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + 4..];
            }
            None => break,
        }
    }
    parts.push(rest);
    const SHARDS: u16 = 4;
    let batch: Vec<RemoteChange> = parts
        .iter()
        .filter_map(|p| p.split_first())
        .map(|(&s, b)| RemoteChange {
            shard: u16::from(s % (SHARDS as u8 + 2)),
            bytes: b.to_vec(),
        })
        .collect();
    let mut w = Workspace::join(b"replica", SHARDS).unwrap();
    match w.apply_remote(batch) {
        Err(cloison_crdt::CrdtError::Poisoned) => {}
        other => panic!("expected Poisoned, got {other:?}"),
    }
    let mut other = Workspace::create(b"writer", SHARDS, 1_000).unwrap();
    let more: Vec<RemoteChange> = other
        .commit_local()
        .into_iter()
        .map(RemoteChange::from)
        .collect();
    assert!(matches!(
        w.apply_remote(more),
        Err(cloison_crdt::CrdtError::Poisoned)
    ));
}
