//! Fuzz target: workspace-document change bytes (`cloison_crdt::Workspace::apply_remote`, and the
//! content plaintext that carries them, `workspace::content::open_changes`).
//!
//! A replica holding a small real workspace (a folder, two files, a rename, a content version,
//! made once by the fixture device) receives a hostile batch. The first byte picks the mode. 0:
//! the rest is cut (`cloison_fuzz::split`) into changes, each a shard byte then change bytes. 1:
//! the rest is a content plaintext, opened for the fixture device. A refused batch leaves the
//! replica unchanged (same saved bytes, same tree); an accepted one materializes a tree, and
//! applying it again applies nothing.
#![no_main]

use std::sync::OnceLock;

use cloison_crdt::{Author, EntryId, Manifest, RemoteChange, SeededIds, Workspace};
use cloison_fuzz::{greeter, split};
use cloison_node::workspace::content::{actor_of, open_changes};
use libfuzzer_sys::fuzz_target;

/// Entry shards of the fixture workspace (few, so that the fuzzer finds them).
pub const SHARDS: u16 = 4;

/// The fixture workspace's changes, made once.
fn base() -> &'static [RemoteChange] {
    static BASE: OnceLock<Vec<RemoteChange>> = OnceLock::new();
    BASE.get_or_init(|| {
        let actor = actor_of(&greeter().id());
        let mut ids = SeededIds::new(1);
        let mut w = Workspace::create(&actor, SHARDS, 1_000).expect("creates");
        let d = w
            .create_folder(&mut ids, EntryId::ROOT, "docs", 1_001)
            .expect("folder");
        let f = w.create_file(&mut ids, d, "a.txt", 1_002).expect("file");
        w.create_file(&mut ids, EntryId::ROOT, "b.txt", 1_003)
            .expect("file");
        w.rename(f, "c.txt", 1_004).expect("rename");
        let author = Author {
            device: greeter().id().0,
            user_name: "Alice".into(),
            device_label: "laptop".into(),
        };
        let manifest = Manifest::synthetic(1, &[10, 20], 1_005);
        w.write_content(&mut ids, f, manifest, &author, 1_005)
            .expect("content");
        w.commit_local()
            .into_iter()
            .map(RemoteChange::from)
            .collect()
    })
}

fn replica() -> Workspace {
    let mut r = Workspace::join(b"fuzz-replica", SHARDS).expect("joins");
    r.apply_remote(base().iter().cloned())
        .expect("the base applies");
    r
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let batch: Vec<RemoteChange> = if mode % 2 == 0 {
        split(rest, 8)
            .into_iter()
            .filter_map(|p| p.split_first())
            .map(|(&s, b)| RemoteChange {
                shard: u16::from(s % (SHARDS as u8 + 2)),
                bytes: b.to_vec(),
            })
            .collect()
    } else {
        match open_changes(rest, &greeter().id()) {
            Ok(c) => c,
            Err(_) => return,
        }
    };
    // libFuzzer's hook aborts on any panic, even one caught: `apply_remote` catches automerge's
    // own panics (`CrdtError::Poisoned`), so the default hook is put back; a panic that escapes
    // still aborts in libfuzzer-sys's wrapper and is reported.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let _ = std::panic::take_hook();
    });
    let mut r = replica();
    let before = (r.save(), r.tree());
    match r.apply_remote(batch.clone()) {
        Err(cloison_crdt::CrdtError::Poisoned) => {
            // The replica refuses everything from now on; its owner rebuilds it without these.
            assert!(matches!(
                r.apply_remote(base().iter().cloned()),
                Err(cloison_crdt::CrdtError::Poisoned)
            ));
        }
        Err(e) => {
            let after = (r.save(), r.tree());
            assert!(
                before.0 == after.0,
                "a refused batch ({e}) leaves the document unchanged"
            );
            assert_eq!(before.1, after.1, "and its tree");
        }
        Ok(_) => {
            let _ = r.tree();
            let again = r.apply_remote(batch).expect("the same batch applies again");
            assert_eq!(
                again.applied, 0,
                "applying a batch twice applies nothing new"
            );
        }
    }
});
