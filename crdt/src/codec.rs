//! Byte encodings of the values stored in the automerge documents.
//!
//! Every stored value is `Bytes` with a leading format byte. Decoding is total: hostile or
//! corrupt bytes give `None` (the value is then ignored, the same way on every replica) and never
//! panic. Integers are big-endian. Layouts:
//! - place `p`: `1 | kind u8 (0 file, 1 folder) | parent [16] | previous parent [16] | time i64`
//! - name `n`: `1 | time i64 | name UTF-8`
//! - version `v/<vid>`: `1 | size u64 | content hash [32] | modified i64 | device [32] |
//!   user u16-len | label u16-len | preds u16-count [16].. | restored 0/1 [16]? |
//!   chunks u32-count (id [32] | key [32] | len u32)..` (68 bytes per chunk); a version that
//!   carries permission bits starts with `2` instead and has `mode u32` (at most `0o7777`) just
//!   before the chunk count. A version without them is still written in format 1, byte for byte.
//! - retention: `1 | time i64 | tag u8 (0 all, 1 days, 2 last-k) | n u32`
//! - title: `1 | time i64 | title UTF-8` (1..=255 bytes, no control characters)

use crate::ids::{EntryId, ID_LEN, VersionId};
use crate::limits;
use crate::model::{Author, ChunkRef, Kind, Manifest, Retention, Version};

const FORMAT: u8 = 1;
/// The version format with permission bits.
const FORMAT_MODE: u8 = 2;

/// Encoded size of one chunk of a version value: `id [32] | key [32] | len u32`.
pub(crate) const CHUNK_BYTES: usize = 32 + 32 + 4;

// A version at the chunk limit (plus its fixed fields and automerge's change overhead, well
// under 64 KiB) must fit one change that peers accept.
const _: () = assert!(limits::MAX_CHUNKS * CHUNK_BYTES + (64 << 10) <= limits::MAX_CHANGE_BYTES);

/// A decoded `p` value: the entry's kind and place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Place {
    pub time: i64,
    pub kind: Kind,
    pub parent: EntryId,
    pub prev: EntryId,
}

/// A decoded `n` value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Named {
    pub time: i64,
    pub name: String,
}

pub(crate) fn encode_place(p: &Place) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 * ID_LEN + 8);
    out.push(FORMAT);
    out.push(match p.kind {
        Kind::File => 0,
        Kind::Folder => 1,
    });
    out.extend_from_slice(&p.parent.0);
    out.extend_from_slice(&p.prev.0);
    out.extend_from_slice(&p.time.to_be_bytes());
    out
}

pub(crate) fn decode_place(b: &[u8]) -> Option<Place> {
    let mut r = Reader(b);
    r.format()?;
    let kind = match r.u8()? {
        0 => Kind::File,
        1 => Kind::Folder,
        _ => return None,
    };
    let parent = EntryId(r.array()?);
    let prev = EntryId(r.array()?);
    let time = r.i64()?;
    r.end()?;
    Some(Place {
        time,
        kind,
        parent,
        prev,
    })
}

pub(crate) fn encode_name(n: &Named) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + n.name.len());
    out.push(FORMAT);
    out.extend_from_slice(&n.time.to_be_bytes());
    out.extend_from_slice(n.name.as_bytes());
    out
}

pub(crate) fn decode_name(b: &[u8]) -> Option<Named> {
    let mut r = Reader(b);
    r.format()?;
    let time = r.i64()?;
    let rest = r.0;
    if rest.len() > limits::MAX_NAME {
        return None;
    }
    Some(Named {
        time,
        name: std::str::from_utf8(rest).ok()?.to_owned(),
    })
}

pub(crate) fn encode_version(v: &Version) -> Vec<u8> {
    let m = &v.manifest;
    let mut out = Vec::with_capacity(164 + m.chunks.len() * CHUNK_BYTES);
    out.push(if m.mode.is_some() {
        FORMAT_MODE
    } else {
        FORMAT
    });
    out.extend_from_slice(&m.size.to_be_bytes());
    out.extend_from_slice(&m.content_hash);
    out.extend_from_slice(&m.modified_ms.to_be_bytes());
    out.extend_from_slice(&v.author.device);
    for s in [&v.author.user_name, &v.author.device_label] {
        // Lengths are bounded by `Author::validate` (64 bytes) before encoding.
        out.extend_from_slice(&(s.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&(v.preds.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    for p in &v.preds {
        out.extend_from_slice(&p.0);
    }
    match v.restored_from {
        None => out.push(0),
        Some(r) => {
            out.push(1);
            out.extend_from_slice(&r.0);
        }
    }
    if let Some(mode) = m.mode {
        out.extend_from_slice(&mode.to_be_bytes());
    }
    out.extend_from_slice(&(m.chunks.len() as u32).to_be_bytes());
    for c in &m.chunks {
        out.extend_from_slice(&c.id);
        out.extend_from_slice(&c.key);
        out.extend_from_slice(&c.len.to_be_bytes());
    }
    out
}

pub(crate) fn decode_version(id: VersionId, b: &[u8]) -> Option<Version> {
    let mut r = Reader(b);
    let with_mode = match r.u8()? {
        FORMAT => false,
        FORMAT_MODE => true,
        _ => return None,
    };
    let size = r.u64()?;
    let content_hash = r.array()?;
    let modified_ms = r.i64()?;
    let device = r.array()?;
    let user_name = r.label()?;
    let device_label = r.label()?;
    let npreds = usize::from(r.u16()?);
    let mut preds = Vec::with_capacity(npreds.min(64));
    for _ in 0..npreds {
        preds.push(VersionId(r.array()?));
    }
    let restored_from = match r.u8()? {
        0 => None,
        1 => Some(VersionId(r.array()?)),
        _ => return None,
    };
    let mode = if with_mode { Some(r.u32()?) } else { None };
    let nchunks = r.u32()? as usize;
    if nchunks > limits::MAX_CHUNKS || nchunks.checked_mul(CHUNK_BYTES)? != r.0.len() {
        return None;
    }
    let mut chunks = Vec::with_capacity(nchunks);
    for _ in 0..nchunks {
        chunks.push(ChunkRef {
            id: r.array()?,
            key: r.array()?,
            len: r.u32()?,
        });
    }
    r.end()?;
    let manifest = Manifest {
        size,
        chunks,
        content_hash,
        modified_ms,
        mode,
    };
    manifest.validate().ok()?;
    let author = Author {
        device,
        user_name,
        device_label,
    };
    author.validate().ok()?;
    Some(Version {
        id,
        manifest,
        author,
        preds,
        restored_from,
    })
}

pub(crate) fn encode_retention(time: i64, r: Retention) -> Vec<u8> {
    let (tag, n) = match r {
        Retention::KeepAll => (0u8, 0u32),
        Retention::NewerThanDays(d) => (1, d),
        Retention::LastK(k) => (2, k),
    };
    let mut out = vec![FORMAT];
    out.extend_from_slice(&time.to_be_bytes());
    out.push(tag);
    out.extend_from_slice(&n.to_be_bytes());
    out
}

pub(crate) fn decode_retention(b: &[u8]) -> Option<(i64, Retention)> {
    let mut r = Reader(b);
    r.format()?;
    let time = r.i64()?;
    let tag = r.u8()?;
    let n = r.u32()?;
    r.end()?;
    let ret = match tag {
        0 => Retention::KeepAll,
        1 => Retention::NewerThanDays(n),
        2 => Retention::LastK(n),
        _ => return None,
    };
    Some((time, ret))
}

pub(crate) fn encode_title(time: i64, title: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + title.len());
    out.push(FORMAT);
    out.extend_from_slice(&time.to_be_bytes());
    out.extend_from_slice(title.as_bytes());
    out
}

/// A stored title; `None` unless it follows the title rules ([`crate::names::check_title`]).
pub(crate) fn decode_title(b: &[u8]) -> Option<(i64, String)> {
    let mut r = Reader(b);
    r.format()?;
    let time = r.i64()?;
    let title = std::str::from_utf8(r.0).ok()?;
    crate::names::check_title(title).ok()?;
    Some((time, title.to_owned()))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.array()?))
    }
    fn format(&mut self) -> Option<()> {
        (self.u8()? == FORMAT).then_some(())
    }
    fn label(&mut self) -> Option<String> {
        let n = usize::from(self.u16()?);
        if n > limits::MAX_LABEL {
            return None;
        }
        Some(std::str::from_utf8(self.take(n)?).ok()?.to_owned())
    }
    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> Version {
        Version {
            id: VersionId([3; 16]),
            manifest: Manifest {
                size: 10,
                chunks: vec![
                    ChunkRef {
                        id: [1; 32],
                        key: [0x11; 32],
                        len: 4,
                    },
                    ChunkRef {
                        id: [2; 32],
                        key: [0x22; 32],
                        len: 6,
                    },
                ],
                content_hash: [9; 32],
                modified_ms: 1_700_000_000_000,
                mode: None,
            },
            author: Author {
                device: [5; 32],
                user_name: "ann".into(),
                device_label: "laptop".into(),
            },
            preds: vec![VersionId([1; 16])],
            restored_from: Some(VersionId([2; 16])),
        }
    }

    #[test]
    fn permission_bits_use_format_2_and_leave_format_1_unchanged() {
        let plain = version();
        let v1 = encode_version(&plain);
        assert_eq!(v1[0], 1);
        let mut with = plain.clone();
        with.manifest.mode = Some(0o755);
        let v2 = encode_version(&with);
        assert_eq!(v2[0], 2);
        assert_eq!(v2.len(), v1.len() + 4);
        assert_eq!(decode_version(with.id, &v2), Some(with.clone()));
        // Frozen: the whole format-2 encoding of the test version with mode 0o755.
        assert_eq!(hex(&v2), FROZEN_V2);
        // Bits above 0o7777, a wrong format byte, and trailing bytes are refused.
        let mut bad = v2.clone();
        let at = v2.len() - 4 - 2 * CHUNK_BYTES - 4;
        bad[at..at + 4].copy_from_slice(&0o10000u32.to_be_bytes());
        assert_eq!(decode_version(with.id, &bad), None);
        let mut bad = v2.clone();
        bad[0] = 3;
        assert_eq!(decode_version(with.id, &bad), None);
        let mut bad = v2;
        bad.push(0);
        assert_eq!(decode_version(with.id, &bad), None);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    const FROZEN_V2: &str = concat!(
        "02000000000000000a0909090909090909090909090909090909090909090909090909090909090909000001",
        "8bcfe5680005050505050505050505050505050505050505050505050505050505050505050003616e6e0006",
        "6c6170746f700001010101010101010101010101010101010102020202020202020202020202020202000001",
        "ed00000002010101010101010101010101010101010101010101010101010101010101010111111111111111",
        "1111111111111111111111111111111111111111111111111100000004020202020202020202020202020202",
        "0202020202020202020202020202020202222222222222222222222222222222222222222222222222222222",
        "222222222200000006",
    );

    #[test]
    fn values_round_trip() {
        let v = version();
        assert_eq!(decode_version(v.id, &encode_version(&v)), Some(v));
        let p = Place {
            time: -5,
            kind: Kind::Folder,
            parent: EntryId([1; 16]),
            prev: EntryId::ROOT,
        };
        assert_eq!(decode_place(&encode_place(&p)), Some(p));
        let n = Named {
            time: 7,
            name: "é.txt".into(),
        };
        assert_eq!(decode_name(&encode_name(&n)), Some(n));
        assert_eq!(
            decode_retention(&encode_retention(3, Retention::LastK(4))),
            Some((3, Retention::LastK(4)))
        );
        assert_eq!(
            decode_title(&encode_title(-2, "Équipe / docs")),
            Some((-2, "Équipe / docs".to_owned()))
        );
    }

    #[test]
    fn titles_breaking_the_rules_do_not_decode() {
        assert_eq!(decode_title(&encode_title(1, "")), None);
        assert_eq!(decode_title(&encode_title(1, "a\nb")), None);
        assert_eq!(decode_title(&encode_title(1, &"x".repeat(256))), None);
        let mut bad_utf8 = encode_title(1, "ok");
        bad_utf8.push(0xff);
        assert_eq!(decode_title(&bad_utf8), None);
        let mut wrong_format = encode_title(1, "ok");
        wrong_format[0] = 2;
        assert_eq!(decode_title(&wrong_format), None);
        assert_eq!(decode_title(&[1, 0, 0]), None);
    }

    #[test]
    fn truncated_or_padded_values_are_rejected() {
        let v = version();
        let bytes = encode_version(&v);
        for cut in 0..bytes.len() {
            assert_eq!(decode_version(v.id, &bytes[..cut]), None, "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode_version(v.id, &long), None);
        assert_eq!(decode_place(&[1, 7]), None);
    }

    #[test]
    fn chunk_keys_round_trip_and_sit_between_id_and_length() {
        let v = version();
        let bytes = encode_version(&v);
        let decoded = decode_version(v.id, &bytes).unwrap();
        assert_eq!(decoded.manifest.chunks, v.manifest.chunks);
        assert_eq!(decoded.manifest.chunks[1].key, [0x22; 32]);
        // The chunk list is the tail: count, then `id | key | len` per chunk.
        let tail = &bytes[bytes.len() - 4 - 2 * CHUNK_BYTES..];
        assert_eq!(tail[..4], 2u32.to_be_bytes());
        assert_eq!(tail[4..36], [1; 32]);
        assert_eq!(tail[36..68], [0x11; 32]);
        assert_eq!(tail[68..72], 4u32.to_be_bytes());
        assert_eq!(tail[72..104], [2; 32]);
    }

    #[test]
    fn chunk_lists_of_the_wrong_length_are_rejected() {
        let v = version();
        let bytes = encode_version(&v);
        // Bytes missing or over (down to an old 36-byte chunk, or a whole 68-byte chunk), with
        // the count and the sizes left as they are.
        for cut in [1, 4, 36, CHUNK_BYTES] {
            assert_eq!(
                decode_version(v.id, &bytes[..bytes.len() - cut]),
                None,
                "cut {cut}"
            );
        }
        for extra in [36, CHUNK_BYTES] {
            let mut long = bytes.clone();
            long.extend(std::iter::repeat_n(0, extra));
            assert_eq!(decode_version(v.id, &long), None, "extra {extra}");
        }
        // A count that disagrees with the bytes that follow.
        let count_at = bytes.len() - 4 - 2 * CHUNK_BYTES;
        for count in [1u32, 3, u32::MAX] {
            let mut wrong = bytes.clone();
            wrong[count_at..count_at + 4].copy_from_slice(&count.to_be_bytes());
            assert_eq!(decode_version(v.id, &wrong), None, "count {count}");
        }
        // The same content in the old 36-byte layout does not decode either.
        let mut old = bytes[..count_at + 4].to_vec();
        for c in &v.manifest.chunks {
            old.extend_from_slice(&c.id);
            old.extend_from_slice(&c.len.to_be_bytes());
        }
        assert_eq!(decode_version(v.id, &old), None);
    }

    #[test]
    fn a_version_at_the_chunk_limit_round_trips_within_the_change_limit() {
        let mut v = version();
        v.manifest = Manifest::synthetic(7, &vec![1; limits::MAX_CHUNKS], 5);
        let bytes = encode_version(&v);
        assert!(bytes.len() + (64 << 10) <= limits::MAX_CHANGE_BYTES);
        assert_eq!(decode_version(v.id, &bytes), Some(v.clone()));
        v.manifest = Manifest::synthetic(7, &vec![1; limits::MAX_CHUNKS + 1], 5);
        assert_eq!(decode_version(v.id, &encode_version(&v)), None);
    }
}
