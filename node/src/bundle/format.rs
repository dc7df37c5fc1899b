//! The bundle and receipt formats (see the module doc of [`crate::bundle`]).
//!
//! Invariants: nothing is returned from a bundle before its trailer checked; lengths are bounded
//! before allocation; trailing bytes after the trailer are impossible by construction (the
//! trailer is the file's last 96 bytes and the item stream must end exactly at it).

use std::io::{self, Read, Write};

use curve25519_dalek::edwards::CompressedEdwardsY;
use serde::{Deserialize, Serialize};

use crate::trust::{DeviceId, DeviceKeys, OrgId, sigcheck};
use crate::workspace::WorkspaceId;

/// First bytes of a bundle.
pub const BUNDLE_MAGIC: &[u8; 8] = b"CLOISONB";
/// First bytes of a receipt.
pub const RECEIPT_MAGIC: &[u8; 8] = b"CLOISONR";
/// Format version.
pub const VERSION: u8 = 1;
/// Signing domain of a bundle's trailer.
pub const BUNDLE_DOMAIN: &[u8] = b"cloison/bundle/v1\0";
/// Signing domain of a receipt.
pub const RECEIPT_DOMAIN: &[u8] = b"cloison/receipt/v1\0";
/// Largest header.
pub const MAX_HEADER: usize = 64 << 10;
/// Largest item body (a block is at most about 4.2 MiB; an envelope 2 MiB).
pub const MAX_ITEM: usize = 8 << 20;
/// Largest receipt.
pub const MAX_RECEIPT: usize = 256 << 20;
const TRAILER: usize = 32 + 64;

/// A bundle's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The organization.
    pub org: OrgId,
    /// The device that wrote and signed it.
    pub creator: DeviceId,
    /// When (unix ms).
    pub created_ms: u64,
    /// BLAKE3 of the receipt it was made for, if any (its items are what that receipt lacked).
    pub for_receipt: Option<[u8; 32]>,
    /// Organization-log heads of the receipt (what the destination was known to have).
    pub known_heads: Vec<[u8; 32]>,
}

/// One item of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An organization-log entry.
    Entry(Vec<u8>),
    /// A workspace envelope.
    Envelope(WorkspaceId, Vec<u8>),
    /// A block of a workspace.
    Block(WorkspaceId, Vec<u8>),
}

/// What a destination holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Receipt {
    /// The organization.
    pub org: OrgId,
    /// The device that holds these.
    pub device: DeviceId,
    /// When (unix ms).
    pub created_ms: u64,
    /// Its organization-log heads.
    pub heads: Vec<[u8; 32]>,
    /// Every organization-log entry id it holds.
    pub entries: Vec<[u8; 32]>,
    /// Every envelope id it holds.
    pub envelopes: Vec<[u8; 32]>,
    /// Every block id it holds.
    pub blocks: Vec<[u8; 32]>,
}

/// Why a bundle or receipt is refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Not a bundle (or receipt) of a known version.
    #[error("not a Cloison {0} of a known version")]
    NotABundle(&'static str),
    /// Shorter than its structure says.
    #[error("truncated: the file ends before its {0}")]
    Truncated(&'static str),
    /// A frame does not parse or exceeds its limit.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The hash in the trailer does not match the content.
    #[error("the content does not match its hash: the file was altered or is incomplete")]
    HashMismatch,
    /// The signature does not check under the creator's key.
    #[error("the signature does not check under the creator's key")]
    BadSignature,
    /// Another organization.
    #[error("this {what} belongs to organization {found}, not {expected}")]
    WrongOrg {
        /// Bundle or receipt.
        what: &'static str,
        /// Ours.
        expected: OrgId,
        /// Theirs.
        found: OrgId,
    },
    /// The creator is not a device this node knows.
    #[error("the creator device {0} is not in this organization's log")]
    UnknownCreator(String),
}

fn verify(key: &DeviceId, domain: &[u8], msg: &[u8], sig: &[u8; 64]) -> bool {
    let Some(point) = CompressedEdwardsY(key.0).decompress() else {
        return false;
    };
    if point.is_small_order() {
        return false;
    }
    sigcheck::verify(&[sigcheck::Item {
        key_bytes: &key.0,
        key: &point,
        domain,
        msg,
        sig,
    }])
}

/// A `Write` that hashes what passes.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a bundle item by item; [`BundleWriter::finish`] signs it.
pub struct BundleWriter<W: Write> {
    out: Hashing<W>,
    /// Items written, by kind (entries, envelopes, blocks).
    pub counts: [u64; 3],
}

impl<W: Write> BundleWriter<W> {
    /// Starts a bundle.
    pub fn new(out: W, header: &Header) -> Result<Self, BundleError> {
        let mut out = Hashing {
            inner: out,
            hasher: blake3::Hasher::new(),
        };
        out.write_all(BUNDLE_MAGIC)?;
        out.write_all(&[VERSION])?;
        let h = postcard::to_stdvec(header).map_err(|_| BundleError::Malformed("header"))?;
        out.write_all(&(h.len() as u32).to_le_bytes())?;
        out.write_all(&h)?;
        Ok(BundleWriter {
            out,
            counts: [0; 3],
        })
    }

    /// Appends one item.
    pub fn item(&mut self, item: &Item) -> Result<(), BundleError> {
        let (kind, ws, body): (u8, Option<&WorkspaceId>, &[u8]) = match item {
            Item::Entry(b) => (1, None, b),
            Item::Envelope(w, b) => (2, Some(w), b),
            Item::Block(w, b) => (3, Some(w), b),
        };
        let len = body.len() + ws.map_or(0, |_| 16);
        if len > MAX_ITEM {
            return Err(BundleError::Malformed("item (too large)"));
        }
        self.out.write_all(&[kind])?;
        self.out.write_all(&(len as u32).to_le_bytes())?;
        if let Some(w) = ws {
            self.out.write_all(&w.0)?;
        }
        self.out.write_all(body)?;
        self.counts[usize::from(kind - 1)] += 1;
        Ok(())
    }

    /// Ends the item stream and writes the signed trailer; returns the writer.
    pub fn finish(mut self, keys: &DeviceKeys) -> Result<W, BundleError> {
        self.out.write_all(&[0])?;
        let hash = *self.out.hasher.finalize().as_bytes();
        let sig = keys.sign(BUNDLE_DOMAIN, &hash);
        let mut inner = self.out.inner;
        inner.write_all(&hash)?;
        inner.write_all(&sig)?;
        inner.flush()?;
        Ok(inner)
    }
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], what: &'static str) -> Result<(), BundleError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            BundleError::Truncated(what)
        } else {
            BundleError::Io(e)
        }
    })
}

/// Reads a bundle from a seekable source of `len` bytes: first checks the trailer (hash over the
/// whole content, then the signature under the key `creator_key` returns for the header's
/// creator), then streams the items to `on_item`. Returns the header and item counts.
pub fn read_bundle<R: Read + io::Seek>(
    mut r: R,
    len: u64,
    org: OrgId,
    creator_key: impl Fn(&DeviceId) -> bool,
    mut on_item: impl FnMut(Item) -> Result<(), BundleError>,
) -> Result<(Header, [u64; 3]), BundleError> {
    let min = (BUNDLE_MAGIC.len() + 1 + 4 + 1 + TRAILER) as u64;
    if len < min {
        return Err(BundleError::Truncated("header"));
    }
    let body_len = len - TRAILER as u64;
    // Pass 1: the header, then the hash of everything before the trailer.
    let header = read_header(&mut r)?;
    if header.org != org {
        return Err(BundleError::WrongOrg {
            what: "bundle",
            expected: org,
            found: header.org,
        });
    }
    if !creator_key(&header.creator) {
        return Err(BundleError::UnknownCreator(header.creator.short()));
    }
    r.seek(io::SeekFrom::Start(0))?;
    let mut hasher = blake3::Hasher::new();
    let mut left = body_len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        read_exact_or(&mut r, &mut buf[..n], "trailer")?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let mut trailer = [0u8; TRAILER];
    read_exact_or(&mut r, &mut trailer, "trailer")?;
    if hasher.finalize().as_bytes() != &trailer[..32] {
        return Err(BundleError::HashMismatch);
    }
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&trailer[32..]);
    if !verify(&header.creator, BUNDLE_DOMAIN, &trailer[..32], &sig) {
        return Err(BundleError::BadSignature);
    }
    // Pass 2: the items, now known to be what the creator signed.
    r.seek(io::SeekFrom::Start(0))?;
    let mut r = io::BufReader::with_capacity(1 << 20, r.take(body_len));
    read_header(&mut r)?;
    let mut counts = [0u64; 3];
    loop {
        let mut kind = [0u8; 1];
        read_exact_or(&mut r, &mut kind, "end of the items")?;
        if kind[0] == 0 {
            break;
        }
        if !(1..=3).contains(&kind[0]) {
            return Err(BundleError::Malformed("item kind"));
        }
        let mut l = [0u8; 4];
        read_exact_or(&mut r, &mut l, "item length")?;
        let l = u32::from_le_bytes(l) as usize;
        if l > MAX_ITEM || (kind[0] != 1 && l < 16) {
            return Err(BundleError::Malformed("item length"));
        }
        let mut body = vec![0u8; l];
        read_exact_or(&mut r, &mut body, "item")?;
        counts[usize::from(kind[0] - 1)] += 1;
        let item = if kind[0] == 1 {
            Item::Entry(body)
        } else {
            let mut w = [0u8; 16];
            w.copy_from_slice(&body[..16]);
            let rest = body.split_off(16);
            if kind[0] == 2 {
                Item::Envelope(WorkspaceId(w), rest)
            } else {
                Item::Block(WorkspaceId(w), rest)
            }
        };
        on_item(item)?;
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra)? != 0 {
        return Err(BundleError::Malformed("bytes after the end of the items"));
    }
    Ok((header, counts))
}

fn read_header(r: &mut impl Read) -> Result<Header, BundleError> {
    let mut magic = [0u8; 9];
    read_exact_or(r, &mut magic, "header")?;
    if &magic[..8] != BUNDLE_MAGIC || magic[8] != VERSION {
        return Err(BundleError::NotABundle("bundle"));
    }
    let mut l = [0u8; 4];
    read_exact_or(r, &mut l, "header")?;
    let l = u32::from_le_bytes(l) as usize;
    if l > MAX_HEADER {
        return Err(BundleError::Malformed("header (too large)"));
    }
    let mut h = vec![0u8; l];
    read_exact_or(r, &mut h, "header")?;
    match postcard::take_from_bytes::<Header>(&h) {
        Ok((h, [])) => Ok(h),
        _ => Err(BundleError::Malformed("header")),
    }
}

/// Writes a signed receipt.
pub fn write_receipt(
    mut out: impl Write,
    keys: &DeviceKeys,
    r: &Receipt,
) -> Result<(), BundleError> {
    let body = postcard::to_stdvec(r).map_err(|_| BundleError::Malformed("receipt"))?;
    let mut bytes = Vec::with_capacity(13 + body.len() + 64);
    bytes.extend_from_slice(RECEIPT_MAGIC);
    bytes.push(VERSION);
    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&body);
    let sig = keys.sign(RECEIPT_DOMAIN, &bytes);
    out.write_all(&bytes)?;
    out.write_all(&sig)?;
    out.flush()?;
    Ok(())
}

/// Reads and checks a receipt of `org` signed by a device `known` accepts. Returns it and its
/// BLAKE3 (named in the bundles made for it).
pub fn read_receipt(
    bytes: &[u8],
    org: OrgId,
    known: impl Fn(&DeviceId) -> bool,
) -> Result<(Receipt, [u8; 32]), BundleError> {
    if bytes.len() > MAX_RECEIPT {
        return Err(BundleError::Malformed("receipt (too large)"));
    }
    if bytes.len() < 13 + 64 {
        return Err(BundleError::Truncated("receipt"));
    }
    if &bytes[..8] != RECEIPT_MAGIC || bytes[8] != VERSION {
        return Err(BundleError::NotABundle("receipt"));
    }
    let mut l = [0u8; 4];
    l.copy_from_slice(&bytes[9..13]);
    let l = u32::from_le_bytes(l) as usize;
    if bytes.len() != 13 + l + 64 {
        return Err(BundleError::Malformed("receipt length"));
    }
    let r: Receipt = match postcard::take_from_bytes(&bytes[13..13 + l]) {
        Ok((r, [])) => r,
        _ => return Err(BundleError::Malformed("receipt")),
    };
    if r.org != org {
        return Err(BundleError::WrongOrg {
            what: "receipt",
            expected: org,
            found: r.org,
        });
    }
    if !known(&r.device) {
        return Err(BundleError::UnknownCreator(r.device.short()));
    }
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&bytes[13 + l..]);
    if !verify(&r.device, RECEIPT_DOMAIN, &bytes[..13 + l], &sig) {
        return Err(BundleError::BadSignature);
    }
    Ok((r, *blake3::hash(bytes).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(keys: &DeviceKeys) -> Vec<u8> {
        let header = Header {
            org: OrgId([7; 32]),
            creator: keys.id(),
            created_ms: 1,
            for_receipt: None,
            known_heads: vec![],
        };
        let mut w = BundleWriter::new(Vec::new(), &header).unwrap();
        w.item(&Item::Entry(vec![1, 2, 3])).unwrap();
        w.item(&Item::Envelope(WorkspaceId([2; 16]), vec![4; 100]))
            .unwrap();
        w.item(&Item::Block(WorkspaceId([2; 16]), vec![5; 1000]))
            .unwrap();
        w.finish(keys).unwrap()
    }

    fn read(bytes: &[u8], keys: &DeviceKeys) -> Result<Vec<Item>, BundleError> {
        let mut items = Vec::new();
        read_bundle(
            io::Cursor::new(bytes),
            bytes.len() as u64,
            OrgId([7; 32]),
            |d| *d == keys.id(),
            |i| {
                items.push(i);
                Ok(())
            },
        )?;
        Ok(items)
    }

    #[test]
    fn a_bundle_round_trips_and_every_corruption_is_refused_before_any_item() {
        let keys = DeviceKeys::generate(&mut rand::rng());
        let b = sample(&keys);
        let items = read(&b, &keys).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1], Item::Envelope(WorkspaceId([2; 16]), vec![4; 100]));
        // Truncation anywhere, and every single-bit flip: refused, and no item came out.
        for cut in 0..b.len() {
            assert!(read(&b[..cut], &keys).is_err(), "cut at {cut}");
        }
        for i in 0..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0x10;
            assert!(read(&bad, &keys).is_err(), "flip at {i}");
        }
        // Two items swapped: the same bytes in another order are not what was signed.
        let header_end = 9 + 4 + u32::from_le_bytes(b[9..13].try_into().unwrap()) as usize;
        let first = 1 + 4 + 3; // the entry item
        let second = 1 + 4 + 16 + 100; // the envelope item
        let mut swapped = b[..header_end].to_vec();
        swapped.extend_from_slice(&b[header_end + first..header_end + first + second]);
        swapped.extend_from_slice(&b[header_end..header_end + first]);
        swapped.extend_from_slice(&b[header_end + first + second..]);
        assert_eq!(swapped.len(), b.len());
        assert!(matches!(
            read(&swapped, &keys),
            Err(BundleError::HashMismatch)
        ));
        // Another creator's key, another organization.
        let other = DeviceKeys::generate(&mut rand::rng());
        assert!(matches!(
            read(&b, &other),
            Err(BundleError::UnknownCreator(_))
        ));
        let mut items = 0;
        let r = read_bundle(
            io::Cursor::new(&b),
            b.len() as u64,
            OrgId([8; 32]),
            |_| true,
            |_| {
                items += 1;
                Ok(())
            },
        );
        assert!(matches!(r, Err(BundleError::WrongOrg { .. })));
        assert_eq!(items, 0);
    }

    #[test]
    fn receipts_are_signed_and_checked() {
        let keys = DeviceKeys::generate(&mut rand::rng());
        let r = Receipt {
            org: OrgId([7; 32]),
            device: keys.id(),
            created_ms: 5,
            heads: vec![[1; 32]],
            entries: vec![[1; 32]],
            envelopes: vec![],
            blocks: vec![[9; 32]],
        };
        let mut bytes = Vec::new();
        write_receipt(&mut bytes, &keys, &r).unwrap();
        let (back, _) = read_receipt(&bytes, OrgId([7; 32]), |d| *d == keys.id()).unwrap();
        assert_eq!(back, r);
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(read_receipt(&bad, OrgId([7; 32]), |_| true).is_err());
        assert!(read_receipt(&bytes[..bytes.len() - 1], OrgId([7; 32]), |_| true).is_err());
        assert!(matches!(
            read_receipt(&bytes, OrgId([6; 32]), |_| true),
            Err(BundleError::WrongOrg { .. })
        ));
    }
}
