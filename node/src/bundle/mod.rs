//! Sneakernet bundles and receipts: the file formats that carry what an air-gapped site lacks
//! (organization-log entries, workspace envelopes, blocks) and, back, what it has.
//!
//! Bundle (version 1):
//!
//! ```text
//! bundle  = magic "CLOISONB" || 0x01 || header || item* || end || trailer
//! header  = u32le length || postcard(Header)
//! item    = kind u8 (1 entry, 2 envelope, 3 block) || u32le length || body
//!           body: an entry's bytes; workspace id (16) || an envelope's bytes; workspace id (16)
//!           || a block's bytes (each exactly as stored)
//! end     = 0x00
//! trailer = BLAKE3(everything before the trailer) (32) || Ed25519(creator,
//!           "cloison/bundle/v1\0" || that hash) (64)
//! ```
//!
//! Receipt (version 1): `magic "CLOISONR" || 0x01 || u32le length || postcard(Receipt) ||
//! Ed25519(device, "cloison/receipt/v1\0" || everything before)`. A receipt lists every item id
//! its device holds, so an export for it carries exactly what it lacks.
//!
//! Invariants: [`BundleWriter`] streams (memory does not grow with the bundle); [`read_bundle`]
//! checks the trailer over the whole file before it returns a single item, so a truncated,
//! tampered or unsigned bundle yields an error and nothing else; every length is bounded; the
//! signature is checked with the same cofactored equation as everything else
//! (`trust::sigcheck`). Sans-IO except for the `Read`/`Write` it is given.

pub mod format;

pub use format::{
    BUNDLE_MAGIC, BundleError, BundleWriter, Header, Item, RECEIPT_MAGIC, Receipt, read_bundle,
    read_receipt, write_receipt,
};
