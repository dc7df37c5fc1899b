//! Writes the seed corpora (`fuzz/seeds/<target>/`) from the frozen vectors (`node/src/*/vectors/`)
//! and the real encoders with the fixtures of `cloison_fuzz`. Run by hand when a format changes:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seed` (then commit `fuzz/seeds/`).
//! `scripts/fuzz.sh` copies the seeds into a working corpus, so runs never touch them.
//!
//! Each seed starts with the mode byte its target reads (see each target's header comment).

use std::fs;
use std::path::{Path, PathBuf};

use cloison_crdt::{Author, EntryId, Manifest, SeededIds, Workspace};
use cloison_fuzz::{ORG, bundle_header, claim, claimer, greeter, join, token};
use cloison_node::bundle::{BundleWriter, Item, Receipt, write_receipt};
use cloison_node::control::wire::write_frame;
use cloison_node::control::{Frame, Request, RequestFrame, VERSION};
use cloison_node::enroll::{Claimer, GreetMsg, Greeter, OfflineClaimer, OfflineGreeter, Packet};
use cloison_node::keystore::{KdfParams, Keystore};
use cloison_node::node::folder::plan::{BaseEntry, EntryKind};
use cloison_node::relay::wire::RelayMsg;
use cloison_node::seal::ConvergenceSecret;
use cloison_node::store::MirrorRecord;
use cloison_node::sync::msg::Heads;
use cloison_node::sync::{DocId, Msg};
use cloison_node::trust::entry::{self, KeyCache};
use cloison_node::trust::{OrgKey, UserId, UserSecret};
use cloison_node::workspace::WorkspaceId;
use cloison_node::workspace::content::{actor_of, encode_changes};
use cloison_node::workspace::envelope;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A `key value` line of a vector file, hex-decoded (`None` if the key is absent).
fn vector_field(file: &str, key: &str) -> Res<Vec<u8>> {
    let text = fs::read_to_string(root().join("..").join(file))?;
    for line in text.lines() {
        let mut it = line.splitn(2, [' ', '=']);
        if it.next() == Some(key) {
            let v = it
                .next()
                .unwrap_or("")
                .trim_start_matches([' ', '='])
                .trim();
            return Ok(hex::decode(v).unwrap_or_else(|_| v.as_bytes().to_vec()));
        }
    }
    Err(format!("{file}: no {key}").into())
}

/// A vector file that is one hex blob.
fn vector_hex(file: &str) -> Res<Vec<u8>> {
    Ok(hex::decode(
        fs::read_to_string(root().join("..").join(file))?.trim(),
    )?)
}

struct Seeds(PathBuf);

impl Seeds {
    fn target(name: &str) -> Res<Seeds> {
        let d = root().join("seeds").join(name);
        if d.exists() {
            fs::remove_dir_all(&d)?;
        }
        fs::create_dir_all(&d)?;
        Ok(Seeds(d))
    }
    fn put(&self, name: &str, mode: Option<u8>, bytes: &[u8]) -> Res<()> {
        let mut b = mode.map(|m| vec![m]).unwrap_or_default();
        b.extend_from_slice(bytes);
        fs::write(self.0.join(name), b)?;
        Ok(())
    }
}

const ENTRY_VECTORS: &[&str] = &[
    "entry_v2",
    "invitation_closed_v2",
    "invitation_recorded_v2",
    "org_key_rotated_v2",
    "org_key_shared_v2",
    "relay_revoked_v2",
    "user_added_v2",
];

fn entries() -> Res<Vec<Vec<u8>>> {
    ENTRY_VECTORS
        .iter()
        .map(|v| vector_hex(&format!("node/src/trust/vectors/{v}.hex")))
        .collect()
}

fn org_entry() -> Res<()> {
    let s = Seeds::target("org_entry")?;
    let all = entries()?;
    for (name, bytes) in ENTRY_VECTORS.iter().zip(&all) {
        s.put(name, Some(0), bytes)?;
        // Mode 1: the same body by the fixture device, without its signature.
        if let Ok(u) = entry::decode_with(bytes.clone(), &mut KeyCache::default()) {
            let mut body = u.body().clone();
            body.author = greeter().id();
            let signed = entry::sign(&greeter(), &body);
            s.put(
                &format!("{name}_signed"),
                Some(1),
                &signed[..signed.len() - 64],
            )?;
        }
    }
    let parts: Vec<&[u8]> = all.iter().map(Vec::as_slice).collect();
    s.put("batch", Some(2), &join(&parts))
}

fn sample_envelope() -> Res<Vec<u8>> {
    vector_hex("node/src/workspace/vectors/envelope_v1.hex")
}

fn envelope() -> Res<()> {
    let s = Seeds::target("envelope")?;
    let v = sample_envelope()?;
    s.put("envelope_v1", Some(0), &v)?;
    let u = envelope::decode(v, &mut KeyCache::default()).map_err(|(_, r)| format!("{r:?}"))?;
    let e = envelope::verify_batch(vec![u])
        .pop()
        .ok_or("no verdict")?
        .map_err(|(_, r)| format!("{r:?}"))?;
    let mut h = e.header().clone();
    h.author = greeter().id();
    let signed = envelope::sign(&greeter(), &h, e.payload());
    s.put("envelope_v1_signed", Some(1), &signed[..signed.len() - 64])?;
    let f = "node/src/seal/vectors/payload_v1.hex";
    let sealed = vector_field(f, "payload")?;
    let aad = vector_field(f, "aad")?;
    s.put("payload_v1", Some(2), &join(&[&sealed, &aad]))
}

fn block() -> Res<()> {
    let s = Seeds::target("block")?;
    let f = "node/src/seal/vectors/block_v1.hex";
    s.put("block_v1", Some(0), &vector_field(f, "block")?)?;
    let mut padded = b"padded plaintext".to_vec();
    padded.resize(512 - 4, 0);
    padded.extend_from_slice(&16u32.to_le_bytes());
    s.put("padded", Some(1), &padded)?;
    s.put("chunk", Some(2), &vector_field(f, "plaintext")?)
}

fn items() -> Res<Vec<Item>> {
    let ws = WorkspaceId([2; 16]);
    let block = ConvergenceSecret::from_bytes(&[0x11; 32]).seal_chunk(b"a small block", 0)?;
    Ok(vec![
        Item::Entry(entries()?.remove(0)),
        Item::Envelope(ws, sample_envelope()?),
        Item::Block(ws, block.bytes),
    ])
}

fn bundle() -> Res<()> {
    let s = Seeds::target("bundle")?;
    let mut w = BundleWriter::new(Vec::new(), &bundle_header())?;
    for i in items()? {
        w.item(&i)?;
    }
    s.put("bundle", Some(0), &w.finish(&greeter())?)?;
    let r = Receipt {
        org: ORG,
        device: greeter().id(),
        created_ms: 2,
        heads: vec![[1; 32]],
        entries: vec![[1; 32], [2; 32]],
        envelopes: vec![[3; 32]],
        blocks: vec![[4; 32]],
    };
    let mut out = Vec::new();
    write_receipt(&mut out, &greeter(), &r)?;
    s.put("receipt", Some(1), &out)
}

fn bundle_items() -> Res<()> {
    let s = Seeds::target("bundle_items")?;
    let empty = BundleWriter::new(Vec::new(), &bundle_header())?.finish(&greeter())?;
    let head = empty.len() - 1 - 96;
    let mut w = BundleWriter::new(Vec::new(), &bundle_header())?;
    for i in items()? {
        w.item(&i)?;
    }
    let full = w.finish(&greeter())?;
    s.put("items", None, &full[head..full.len() - 96])?;
    s.put("empty", None, &[0])
}

fn token_seeds() -> Res<()> {
    let s = Seeds::target("token")?;
    let f = "node/src/enroll/vectors/greet_v2.txt";
    s.put("token_v1", Some(0), &vector_field(f, "token")?)?;
    s.put("token_bytes", Some(1), &token().to_bytes()?)
}

fn greeting() -> Res<()> {
    let s = Seeds::target("greeting")?;
    let f = "node/src/enroll/vectors/greet_v2.txt";
    for k in ["hello", "reply", "claim", "confirm", "abort"] {
        s.put(&format!("packet_{k}"), Some(0), &vector_field(f, k)?)?;
    }
    s.put("claim", Some(1), &claim().encode()?)?;
    s.put("confirm", Some(2), &GreetMsg::Confirm.encode()?)?;
    s.put(
        "abort",
        Some(2),
        &GreetMsg::Abort {
            reason: "cancelled".into(),
        }
        .encode()?,
    )?;
    let t = token();
    let (c, hello) = Claimer::start(&t, &claimer(), [3; 32])?;
    s.put("hello", Some(3), &hello)?;
    let (g, reply) =
        Greeter::respond(&ORG, &t.secret, &greeter(), claimer().id(), [4; 32], &hello)?;
    s.put("reply", Some(4), &reply)?;
    let (mut cs, last) = c.finish(&reply, &claim())?;
    s.put("last", Some(5), &last)?;
    let _ = g;
    s.put("sealed", Some(6), &cs.seal(&GreetMsg::Ready)?)?;
    s.put(
        "refused",
        Some(4),
        &Packet::Frames(vec![vec![1, 2, 3]]).encode(),
    )
}

fn greeting_offline() -> Res<()> {
    let s = Seeds::target("greeting_offline")?;
    let t = token();
    let (_, request) = OfflineClaimer::request(&t, &claim(), [5; 32])?;
    s.put("request", Some(0), &request)?;
    let (g, _) = OfflineGreeter::open(&t.org, &t.greeter, &t.secret, &request, [6; 32])?;
    let (answer, _) = g.answer(&GreetMsg::Abort {
        reason: "no".into(),
    })?;
    s.put("answer", Some(1), &answer)?;
    s.put("challenge", Some(2), b"123 456")
}

fn framed(b: &[u8]) -> Vec<u8> {
    let mut out = (b.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(b);
    out
}

fn net_message() -> Res<()> {
    let s = Seeds::target("net_message")?;
    let ws = DocId::Workspace(WorkspaceId([2; 16]));
    let msgs = [
        Msg::Hello {
            docs: vec![
                Heads {
                    doc: DocId::Org,
                    count: 3,
                    heads: vec![[1; 32]],
                },
                Heads {
                    doc: ws,
                    count: 1,
                    heads: vec![[2; 32]],
                },
            ],
        },
        Msg::Want {
            doc: DocId::Org,
            ids: vec![[5; 32]],
        },
        Msg::Items {
            doc: ws,
            items: vec![sample_envelope()?],
        },
    ];
    for (i, m) in msgs.iter().enumerate() {
        s.put(&format!("framed_{i}"), None, &framed(&m.encode()))?;
        s.put(&format!("bare_{i}"), None, &m.encode())?;
    }
    Ok(())
}

fn relay_wire() -> Res<()> {
    let s = Seeds::target("relay_wire")?;
    let msgs = [
        RelayMsg::Intro {
            org: [7; 32],
            heads: vec![[8; 32]],
        },
        RelayMsg::Welcome,
    ];
    for (i, m) in msgs.iter().enumerate() {
        s.put(&format!("msg_{i}"), None, &m.encode())?;
    }
    Ok(())
}

fn control_frame() -> Res<()> {
    let s = Seeds::target("control_frame")?;
    let mut b = Vec::new();
    write_frame(
        &mut b,
        &RequestFrame {
            v: VERSION,
            request: Request::OrgShow,
        },
    )?;
    s.put("request", Some(0), &b)?;
    let mut b = Vec::new();
    write_frame(
        &mut b,
        &Frame::Err {
            kind: "invalid".into(),
            message: "no".into(),
        },
    )?;
    s.put("frame", Some(1), &b)
}

fn crdt_changes() -> Res<()> {
    let s = Seeds::target("crdt_changes")?;
    let actor = actor_of(&greeter().id());
    let mut ids = SeededIds::new(7);
    let mut w = Workspace::create(&actor, 4, 2_000)?;
    let f = w.create_file(&mut ids, EntryId::ROOT, "new.txt", 2_001)?;
    let author = Author {
        device: greeter().id().0,
        user_name: "Alice".into(),
        device_label: "laptop".into(),
    };
    w.write_content(
        &mut ids,
        f,
        Manifest::synthetic(2, &[5], 2_002),
        &author,
        2_002,
    )?;
    let changes = w.commit_local();
    let parts: Vec<Vec<u8>> = changes
        .iter()
        .map(|c| {
            let mut p = vec![c.shard as u8];
            p.extend_from_slice(&c.bytes);
            p
        })
        .collect();
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    s.put("changes", Some(0), &join(&refs))?;
    let content: Vec<(u16, Vec<u8>)> = changes.into_iter().map(|c| (c.shard, c.bytes)).collect();
    s.put("content", Some(1), &encode_changes(&content))
}

fn key_file() -> Res<()> {
    let s = Seeds::target("key_file")?;
    let dir = std::env::temp_dir().join(format!("cloison-fuzz-seed-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let path = dir.join("keys.cloison");
    Keystore::create(
        &path,
        b"fuzz",
        KdfParams::TEST_ONLY,
        ORG,
        UserId([1; 16]),
        &greeter(),
        &OrgKey::from_bytes(&[2; 32]),
        &UserSecret::from_bytes(0, &[3; 32]),
    )?;
    s.put("keys", None, &fs::read(&path)?)?;
    fs::remove_dir_all(&dir)?;
    Ok(())
}

fn mirror_rows() -> Res<()> {
    let s = Seeds::target("mirror_rows")?;
    let rec = MirrorRecord {
        dir: "/home/alice/Documents".into(),
        added_ms: 1_700_000_000_000,
    };
    s.put("mirror", Some(0), &postcard::to_stdvec(&rec)?)?;
    let base = BaseEntry {
        id: [1; 16],
        kind: EntryKind::File,
        hash: [2; 32],
        size: 1234,
        mtime_ns: 1_700_000_000_000_000_000,
        inode: 42,
    };
    s.put("base", Some(1), &postcard::to_stdvec(&base)?)
}

fn main() -> Res<()> {
    org_entry()?;
    envelope()?;
    block()?;
    bundle()?;
    bundle_items()?;
    token_seeds()?;
    greeting()?;
    greeting_offline()?;
    net_message()?;
    relay_wire()?;
    control_frame()?;
    crdt_changes()?;
    key_file()?;
    mirror_rows()?;
    println!("seeds written to {}", root().join("seeds").display());
    Ok(())
}
