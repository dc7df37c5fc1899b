//! Cross-cutting tests of `seal`: frozen vectors, the canary scan, dedup after an edit, agreement
//! with fastcdc's `StreamCDC`, and property tests of the stream (determinism, round trip).
//!
//! The vectors in `seal/vectors/` are frozen: a failure means a wire format changed. Regenerate
//! them (`CLOISON_WRITE_VECTORS=1`) only together with a new format version.

use std::io::{self, Cursor, Read};

use fastcdc::v2020::{Normalization, StreamCDC};
use proptest::prelude::*;
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::block::{AVG_CHUNK, MAX_CHUNK, MIN_CHUNK};
use super::payload::ContentKey;
use super::*;
use crate::trust::keys::UserSecret;
use crate::trust::{OrgId, UserId};

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn seal_all(secret: &ConvergenceSecret, data: &[u8]) -> Vec<SealedBlock> {
    secret
        .seal_stream(Cursor::new(data))
        .collect::<io::Result<Vec<_>>>()
        .unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Compares `actual` with the frozen vector file `name`, or rewrites it when asked to.
fn frozen(name: &str, actual: &str) {
    let path = format!("{}/src/seal/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("CLOISON_WRITE_VECTORS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(actual, want, "{name}: wire format changed");
}

fn read_vector(text: &str, key: &str) -> Vec<u8> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .unwrap();
    hex::decode(line).unwrap()
}

// ---- frozen vectors ----

#[test]
fn frozen_block_vector() {
    let secret = ConvergenceSecret::from_bytes(&[0x11; 32]);
    let plain = b"cloison block vector v1\n".repeat(25); // 600 bytes → bucket 608
    let b = secret.seal_chunk(&plain, 0).unwrap();
    assert_eq!(b.padded_len, 608);
    let text = format!(
        "secret {}\nplaintext {}\nchunk_key {}\nid {}\nblock {}\n",
        hex::encode([0x11; 32]),
        hex::encode(&plain),
        hex::encode(b.key.as_bytes()),
        b.id,
        hex::encode(&b.bytes)
    );
    frozen("block_v1.hex", &text);
    let bytes = read_vector(&text, "block");
    let id = BlockId(read_vector(&text, "id").try_into().unwrap());
    let key = ChunkKey::from_bytes(&read_vector(&text, "chunk_key").try_into().unwrap());
    assert_eq!(open_block(&bytes, &id, &key).unwrap(), plain);
}

#[test]
fn frozen_payload_vector() {
    let k = ContentKey::derive(&EpochKey::from_bytes(&[0x22; 32]), &[0x33; 16]);
    let aad = b"envelope header";
    let plain = b"automerge change bytes";
    let sealed = k.seal_with_nonce(aad, plain, &[0x44; 24]).unwrap();
    let text = format!(
        "epoch_key {}\nworkspace {}\nnonce {}\naad {}\nplaintext {}\npayload {}\n",
        hex::encode([0x22; 32]),
        hex::encode([0x33; 16]),
        hex::encode([0x44; 24]),
        hex::encode(aad),
        hex::encode(plain),
        hex::encode(&sealed)
    );
    frozen("payload_v1.hex", &text);
    let got = open_payload(
        &EpochKey::from_bytes(&[0x22; 32]),
        &[0x33; 16],
        aad,
        &read_vector(&text, "payload"),
    )
    .unwrap();
    assert_eq!(got, plain);
}

/// HPKE draws an ephemeral key, so this vector is frozen in the opening direction only: the
/// checked-in blob must keep opening to these keys. The v1 vector (ids inside the plaintext, no
/// commitment) stays checked in and must be refused.
#[test]
fn frozen_epoch_keys_vector() {
    let user = UserSecret::from_bytes(2, &[0x55; 32]);
    let ctx = EpochKeysContext {
        org: OrgId([1; 32]),
        workspace: [2; 16],
        user: UserId([3; 16]),
    };
    let (k1, k2) = (
        EpochKey::from_bytes(&[0x66; 32]),
        EpochKey::from_bytes(&[0x77; 32]),
    );
    let dir = format!("{}/src/seal/vectors", env!("CARGO_MANIFEST_DIR"));
    let path = format!("{dir}/epoch_keys_v2.hex");
    if std::env::var_os("CLOISON_WRITE_VECTORS").is_some() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let sealed = seal_epoch_keys(
            &mut rng,
            &ctx,
            &user.public(),
            2,
            &[([0x0b; 32], &k2), ([0x0a; 32], &k1)],
        )
        .unwrap();
        std::fs::write(&path, format!("sealed {}\n", hex::encode(sealed))).unwrap();
    }
    let refs = [
        ([0x0a; 32], epoch_key_commitment(&k1)),
        ([0x0b; 32], epoch_key_commitment(&k2)),
    ];
    assert_eq!(
        hex::encode(refs[0].1),
        hex::encode(blake3::derive_key(
            "cloison 2026 epoch-key commitment v1",
            &[0x66; 32]
        ))
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let got = open_epoch_keys(&user, &ctx, &refs, &read_vector(&text, "sealed")).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].0, *got[0].1.as_bytes()), ([0x0a; 32], [0x66; 32]));
    assert_eq!((got[1].0, *got[1].1.as_bytes()), ([0x0b; 32], [0x77; 32]));
    let v1 = std::fs::read_to_string(format!("{dir}/epoch_keys_v1.hex")).unwrap();
    assert_eq!(
        open_epoch_keys(&user, &ctx, &refs, &read_vector(&v1, "sealed"))
            .map(|_| ())
            .unwrap_err(),
        SealError::UnknownVersion(1)
    );
}

// ---- canary: known plaintext never shows in sealed output ----

#[test]
fn canary_markers_never_appear_in_sealed_output() {
    const MARKER: &[u8] = b"CLOISON-CANARY-7f3a9c";
    let mut data = random_bytes(11, 6 << 20);
    // Markers at the start, near a likely cut, in the middle, at the end, and a low-entropy
    // stretch made of nothing but markers and zeros (the worst case for a weak cipher mode).
    for at in [0, MIN_CHUNK - 3, 3 << 20, (6 << 20) - MARKER.len()] {
        data[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    let stretch = (1 << 20)..(1 << 20) + (300 << 10);
    for (i, b) in data[stretch].iter_mut().enumerate() {
        *b = if i % 64 < MARKER.len() {
            MARKER[i % 64]
        } else {
            0
        };
    }
    let secret = ConvergenceSecret::from_bytes(&[0x99; 32]);
    let blocks = seal_all(&secret, &data);
    assert!(blocks.len() >= 3);
    for b in &blocks {
        assert!(!contains(&b.bytes, MARKER), "marker in block {:?}", b.id);
        assert!(
            !contains(&b.bytes, &[0u8; 32]),
            "a run of zeros (padding?) in clear"
        );
        assert!(!contains(&b.bytes, b.key.as_bytes()));
        assert!(!contains(&b.bytes, secret.as_bytes()));
    }
    // A small file (one chunk in the smallest bucket).
    let small = secret.seal_chunk(MARKER, 0).unwrap();
    assert!(!contains(&small.bytes, MARKER));

    let mut rng = StdRng::seed_from_u64(12);
    let epoch = EpochKey::generate(&mut rng);
    let mut payload = MARKER.repeat(40);
    payload.extend_from_slice(&[0; 256]);
    let sealed = seal_payload(&epoch, &[7; 16], b"hdr", &payload, &mut rng).unwrap();
    assert!(!contains(&sealed, MARKER));
    assert!(!contains(&sealed, epoch.as_bytes()));

    let user = UserSecret::generate(0, &mut rng);
    let ctx = EpochKeysContext {
        org: OrgId([1; 32]),
        workspace: [7; 16],
        user: UserId([3; 16]),
    };
    let blob = seal_epoch_key(&mut rng, &ctx, &user.public(), 0, [4; 32], &epoch).unwrap();
    assert!(!contains(&blob, epoch.as_bytes()));
    assert!(!contains(&blob, &[4; 32]));
    assert!(!contains(&blob, &epoch_key_commitment(&epoch)));
}

// ---- dedup: an edit moves only the blocks it touched ----

#[test]
fn an_edit_in_the_middle_of_16_mib_changes_one_or_two_blocks() {
    let secret = ConvergenceSecret::from_bytes(&[0x42; 32]);
    let data = random_bytes(21, 16 << 20);
    let before: std::collections::BTreeSet<BlockId> =
        seal_all(&secret, &data).iter().map(|b| b.id).collect();
    assert!(before.len() >= 8, "{} blocks", before.len());

    // Overwrite 8 bytes, then insert 8 bytes, in the middle.
    let mut edited = data.clone();
    edited[8 << 20..(8 << 20) + 8].copy_from_slice(b"EDITED!!");
    let mut inserted = data.clone();
    inserted.splice(8 << 20..8 << 20, *b"INSERTED");
    for changed in [edited, inserted] {
        let after = seal_all(&secret, &changed);
        let new = after.iter().filter(|b| !before.contains(&b.id)).count();
        assert!(
            (1..=2).contains(&new),
            "{new} new blocks of {}",
            after.len()
        );
    }
}

// ---- the chunker agrees with fastcdc's StreamCDC, whatever the read sizes ----

/// A reader that returns at most `step` bytes per call (and varies it).
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
    calls: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        let n = buf
            .len()
            .min(self.data.len())
            .min(1 + (self.step * self.calls) % 97_003);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn stream_cdc_bounds(secret: &ConvergenceSecret, data: &[u8]) -> Vec<(u64, usize)> {
    StreamCDC::with_level_and_seed(
        Cursor::new(data),
        MIN_CHUNK,
        AVG_CHUNK,
        MAX_CHUNK,
        Normalization::Level1,
        secret.gear_seed(),
    )
    .map(|c| {
        let c = c.unwrap();
        (c.offset, c.length)
    })
    .collect()
}

#[test]
fn boundaries_are_those_of_stream_cdc() {
    let secret = ConvergenceSecret::from_bytes(&[0x42; 32]);
    let inputs = [
        random_bytes(31, 13 << 20),
        vec![0u8; 9 << 20], // no natural cut: all maximum chunks, then a tail
        random_bytes(32, 1000),
        random_bytes(33, MIN_CHUNK),
        random_bytes(34, MIN_CHUNK + 1),
        random_bytes(35, MAX_CHUNK),
        Vec::new(),
    ];
    for data in &inputs {
        let ours = secret.chunk_bounds(Cursor::new(data)).unwrap();
        assert_eq!(ours, stream_cdc_bounds(&secret, data), "len {}", data.len());
        let dribbled = Dribble {
            data,
            step: 4093,
            calls: 0,
        };
        assert_eq!(secret.chunk_bounds(dribbled).unwrap(), ours);
    }
    // The secret matters.
    let other = ConvergenceSecret::from_bytes(&[0x43; 32]);
    assert_ne!(
        other.chunk_bounds(Cursor::new(&inputs[0])).unwrap(),
        secret.chunk_bounds(Cursor::new(&inputs[0])).unwrap()
    );
}

#[test]
fn an_io_error_ends_the_stream() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk gone"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }
    let secret = ConvergenceSecret::from_bytes(&[1; 32]);
    let mut s = secret.seal_stream(Failing(100));
    assert!(s.next().unwrap().is_err());
    assert!(s.next().is_none());
}

// ---- properties ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// For a given secret, boundaries depend on the bytes only (not on read sizes), cover the
    /// input exactly within the size bounds, and every block opens back to its chunk.
    #[test]
    fn stream_is_deterministic_and_round_trips(
        seed in any::<u64>(),
        len in 0usize..(3 << 20),
        step in 1usize..200_000,
        secret in any::<[u8; 32]>(),
    ) {
        let secret = ConvergenceSecret::from_bytes(&secret);
        let data = random_bytes(seed, len);
        let blocks = seal_all(&secret, &data);
        let dribbled: Vec<SealedBlock> = secret
            .seal_stream(Dribble { data: &data, step, calls: 0 })
            .collect::<io::Result<_>>()
            .unwrap();
        prop_assert_eq!(blocks.len(), dribbled.len());
        let mut next = 0u64;
        let mut back = Vec::with_capacity(len);
        for (i, (a, b)) in blocks.iter().zip(&dribbled).enumerate() {
            prop_assert_eq!(a.id, b.id);
            prop_assert_eq!(&a.bytes, &b.bytes);
            prop_assert_eq!(a.offset, next);
            prop_assert!(a.plain_len <= MAX_CHUNK);
            if i + 1 < blocks.len() {
                prop_assert!(a.plain_len >= MIN_CHUNK);
            }
            next += a.plain_len as u64;
            back.extend_from_slice(&open_block(&a.bytes, &a.id, &a.key).unwrap());
        }
        prop_assert_eq!(next, len as u64);
        prop_assert!(back == data);
    }

    /// Single chunks and payloads of any content round-trip.
    #[test]
    fn chunks_and_payloads_round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..5000),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        nonce_seed in any::<u64>(),
    ) {
        let secret = ConvergenceSecret::from_bytes(&[3; 32]);
        let b = secret.seal_chunk(&data, 0).unwrap();
        prop_assert_eq!(open_block(&b.bytes, &b.id, &b.key).unwrap(), data.clone());
        let mut rng = StdRng::seed_from_u64(nonce_seed);
        let k = EpochKey::generate(&mut rng);
        let s = seal_payload(&k, &[1; 16], &aad, &data, &mut rng).unwrap();
        prop_assert_eq!(open_payload(&k, &[1; 16], &aad, &s).unwrap(), data);
    }
}

// ---- hostile sealers and the module's own invariants ----

/// A member holding the recipient's public key can seal any plaintext: a blob whose length does
/// not match the epochs it is opened for is refused before decrypting, and one whose keys do not
/// match their commitments after.
#[test]
fn non_canonical_epoch_key_blobs_are_refused() {
    let mut rng = StdRng::seed_from_u64(40);
    let user = UserSecret::generate(1, &mut rng);
    let ctx = EpochKeysContext {
        org: OrgId([1; 32]),
        workspace: [2; 16],
        user: UserId([3; 16]),
    };
    let k = EpochKey::from_bytes(&[9; 32]);
    let refs = [([5u8; 32], epoch_key_commitment(&k))];
    let blob = seal_epoch_keys(&mut rng, &ctx, &user.public(), 1, &[([5; 32], &k)]).unwrap();
    let two = [refs[0], ([6u8; 32], refs[0].1)];
    assert!(matches!(
        open_epoch_keys(&user, &ctx, &two, &blob),
        Err(SealError::Malformed(_))
    ));
    let mut aad = b"cloison epoch-keys v2\0".to_vec();
    aad.extend_from_slice(&[1; 32]);
    aad.extend_from_slice(&[2; 16]);
    aad.extend_from_slice(&[3; 16]);
    aad.extend_from_slice(&1u32.to_le_bytes());
    aad.extend_from_slice(&1u32.to_le_bytes());
    aad.extend_from_slice(&refs[0].0);
    aad.extend_from_slice(&refs[0].1);
    let ct = crate::trust::keys::seal_to(&mut rng, &user.public(), &aad, &[8; 32]).unwrap();
    let mut forged = vec![0x02];
    forged.extend_from_slice(&ct);
    assert_eq!(
        open_epoch_keys(&user, &ctx, &refs, &forged)
            .map(|_| ())
            .unwrap_err(),
        SealError::CommitmentMismatch
    );
}

/// `seal` is sans-IO: no runtime, network or storage crate, no clock, no ambient randomness.
#[test]
fn seal_sources_stay_sans_io() {
    let sources = [
        ("mod.rs", include_str!("mod.rs")),
        ("block.rs", include_str!("block.rs")),
        ("chunker.rs", include_str!("chunker.rs")),
        ("epoch.rs", include_str!("epoch.rs")),
        ("error.rs", include_str!("error.rs")),
        ("pad.rs", include_str!("pad.rs")),
        ("payload.rs", include_str!("payload.rs")),
    ];
    let forbidden = [
        ["tokio", "::"].concat(),
        ["libp2p", "::"].concat(),
        ["redb", "::"].concat(),
        ["Instant", "::now"].concat(),
        ["SystemTime", "::now"].concat(),
        ["thread", "_rng"].concat(),
        ["rand::", "rng()"].concat(),
        ["OsRng"].concat(),
        ["unsafe", " "].concat(),
    ];
    for (name, src) in sources {
        for f in &forbidden {
            assert!(!src.contains(f.as_str()), "{name} contains {f}");
        }
    }
}
