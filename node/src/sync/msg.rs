//! Sync messages between two devices (or a device and a relay): their wire format and limits.
//!
//! Wire format (version 1): `0x01 || postcard(Msg)`, consumed exactly. Items (organization-log
//! entries, envelopes) travel as their signed bytes, unchanged; the receiver's logs check them.
//!
//! Invariants: every message and list is bounded ([`MAX_MESSAGE`], [`MAX_IDS`], [`MAX_HEADS`]);
//! decoding never panics and rejects unknown versions and trailing bytes.

use serde::{Deserialize, Serialize};

use crate::workspace::WorkspaceId;

/// Format version byte.
pub const MSG_V1: u8 = 0x01;
/// Largest message, in bytes.
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// Most ids in one `Want`.
pub const MAX_IDS: usize = 16 * 1024;
/// Most heads announced per document; past it a peer announces none and reconciliation decides.
pub const MAX_HEADS: usize = 64;
/// Target size of one `Items` message (several are sent when needed).
pub const ITEMS_TARGET: usize = 1024 * 1024;

/// Most block ids in one `BlockWant` or `BlockMissing`.
pub const MAX_BLOCK_IDS: usize = 256;

/// A replicated document: the organization log or one workspace's DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DocId {
    /// The organization log.
    Org,
    /// A workspace.
    Workspace(WorkspaceId),
}

/// The heads of one document as announced in a `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heads {
    /// The document.
    pub doc: DocId,
    /// Number of items the sender holds.
    pub count: u64,
    /// The heads (empty with `count > 0` when there are more than [`MAX_HEADS`]).
    pub heads: Vec<[u8; 32]>,
}

/// A sync message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// The documents the sender shares with the receiver, and its heads.
    Hello {
        /// One per document.
        docs: Vec<Heads>,
    },
    /// A range-based set reconciliation message (negentropy v1), initiator to responder.
    Reconcile {
        /// The document.
        doc: DocId,
        /// The negentropy message.
        body: Vec<u8>,
    },
    /// The responder's answer.
    ReconcileReply {
        /// The document.
        doc: DocId,
        /// The negentropy message.
        body: Vec<u8>,
    },
    /// Ids the sender holds and the receiver may lack (found by reconciliation, or just
    /// admitted and passed on): the receiver `Want`s those it neither holds nor awaits.
    Offer {
        /// The document.
        doc: DocId,
        /// Item ids.
        ids: Vec<[u8; 32]>,
    },
    /// Ids the sender lacks and asks for.
    Want {
        /// The document.
        doc: DocId,
        /// Item ids.
        ids: Vec<[u8; 32]>,
    },
    /// Items, as signed bytes (answers to `Want`, what reconciliation found the receiver lacks,
    /// or new local items pushed at once).
    Items {
        /// The document.
        doc: DocId,
        /// Items, parents first.
        items: Vec<Vec<u8>>,
    },
    /// Blocks the sender asks for.
    BlockWant {
        /// The workspace they belong to.
        doc: DocId,
        /// Block ids (BLAKE3 of the block bytes).
        ids: Vec<[u8; 32]>,
    },
    /// One block, as stored (sealed).
    Block {
        /// The workspace.
        doc: DocId,
        /// Its id.
        id: [u8; 32],
        /// Its bytes (serialized as bytes: the same postcard encoding as a sequence of `u8`,
        /// without a call per byte).
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Blocks the sender does not have.
    BlockMissing {
        /// The workspace.
        doc: DocId,
        /// Block ids.
        ids: Vec<[u8; 32]>,
    },
    /// Several blocks, as stored (small blocks travel packed: one message per about
    /// [`ITEMS_TARGET`] bytes instead of one per block).
    Blocks {
        /// The workspace.
        doc: DocId,
        /// The blocks.
        blocks: Vec<PackedBlock>,
    },
}

/// One block inside [`Msg::Blocks`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedBlock {
    /// Its id.
    pub id: [u8; 32],
    /// Its bytes.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    /// Larger than [`MAX_MESSAGE`].
    #[error("message of {0} bytes is too large")]
    TooLarge(usize),
    /// Unknown version byte.
    #[error("unknown sync message version {0:#04x}")]
    UnknownVersion(u8),
    /// Does not decode, or has trailing bytes.
    #[error("malformed sync message")]
    Malformed,
    /// A list over its limit.
    #[error("sync message over a list limit")]
    OverLimit,
}

impl Msg {
    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![MSG_V1];
        // Serializing plain data into a Vec cannot fail.
        out.extend_from_slice(&postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    /// Decodes and bounds-checks a message.
    pub fn decode(bytes: &[u8]) -> Result<Msg, MsgError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(MsgError::TooLarge(bytes.len()));
        }
        match bytes.first() {
            Some(&MSG_V1) => {}
            Some(v) => return Err(MsgError::UnknownVersion(*v)),
            None => return Err(MsgError::Malformed),
        }
        let msg = match postcard::take_from_bytes::<Msg>(&bytes[1..]) {
            Ok((m, [])) => m,
            _ => return Err(MsgError::Malformed),
        };
        let ok = match &msg {
            Msg::Hello { docs } => {
                docs.len() <= 100_000 && docs.iter().all(|d| d.heads.len() <= MAX_HEADS)
            }
            Msg::Want { ids, .. } | Msg::Offer { ids, .. } => ids.len() <= MAX_IDS,
            Msg::BlockWant { ids, .. } | Msg::BlockMissing { ids, .. } => {
                ids.len() <= MAX_BLOCK_IDS
            }
            Msg::Blocks { blocks, .. } => blocks.len() <= MAX_BLOCK_IDS,
            _ => true,
        };
        if ok {
            Ok(msg)
        } else {
            Err(MsgError::OverLimit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hostile_bytes() {
        let m = Msg::Want {
            doc: DocId::Workspace(WorkspaceId([1; 16])),
            ids: vec![[2; 32]],
        };
        let b = m.encode();
        assert_eq!(Msg::decode(&b), Ok(m));
        let mut trailing = b.clone();
        trailing.push(0);
        assert_eq!(Msg::decode(&trailing), Err(MsgError::Malformed));
        assert_eq!(Msg::decode(&[]), Err(MsgError::Malformed));
        assert_eq!(Msg::decode(&[2, 0]), Err(MsgError::UnknownVersion(2)));
        assert_eq!(Msg::decode(&b[..b.len() - 1]), Err(MsgError::Malformed));
        let many = Msg::Want {
            doc: DocId::Org,
            ids: vec![[0; 32]; MAX_IDS + 1],
        };
        assert_eq!(Msg::decode(&many.encode()), Err(MsgError::OverLimit));
    }

    #[test]
    fn block_bytes_encode_as_a_plain_byte_sequence() {
        // serde_bytes must not change the wire format: varint length, then the bytes.
        let m = Msg::Block {
            doc: DocId::Org,
            id: [9; 32],
            bytes: vec![1, 2, 3],
        };
        let mut want = vec![MSG_V1, 7, 0];
        want.extend_from_slice(&[9; 32]);
        want.extend_from_slice(&[3, 1, 2, 3]);
        assert_eq!(m.encode(), want);
        assert_eq!(Msg::decode(&want), Ok(m));
    }

    #[test]
    fn frozen_hello_vector() {
        let m = Msg::Hello {
            docs: vec![Heads {
                doc: DocId::Org,
                count: 3,
                heads: vec![[7; 32]],
            }],
        };
        assert_eq!(
            hex::encode(m.encode()),
            "0100010003010707070707070707070707070707070707070707070707070707070707070707"
        );
    }
}
