//! The relay's own messages, beside the sync protocol on the same `/cloison/msg/1` stream:
//! a device introduces itself (its organization), the relay welcomes it, refuses it, or first
//! asks for the part of the organization log it lacks, devices offer blocks, and the relay says
//! when a quota is reached.
//!
//! Wire format (version 2): `0xC2 || postcard(RelayMsg)`, consumed exactly. The first byte tells
//! these apart from sync messages (which start with their version byte, `0x01`): every byte
//! `0xC0..=0xCF` is a relay message, and one of another version than this build's is refused
//! as [`RelayWireError::UnknownVersion`] (version 1 sent the whole log in every `Intro`).
//!
//! Invariants: bounded lists ([`MAX_LOG_PART_ENTRIES`], [`MAX_WANTED_HEADS`],
//! [`MAX_OFFER_IDS`]) and parts of at most [`LOG_PART_BYTES`] of entries; decoding never
//! panics, rejects other leading bytes and trailing bytes. Nothing here is secret: the log
//! travels as signed and sealed by its authors.

use serde::{Deserialize, Serialize};

use crate::workspace::WorkspaceId;

/// First byte of every relay message (version 2).
pub const RELAY_V2: u8 = 0xC2;
/// First bytes reserved for relay messages, whatever their version.
const RELAY_FAMILY: std::ops::RangeInclusive<u8> = 0xC0..=0xCF;
/// Most organization-log entries in one [`RelayMsg::LogPart`].
pub const MAX_LOG_PART_ENTRIES: usize = 16 * 1024;
/// Bytes of entries a device puts in one [`RelayMsg::LogPart`] (an entry alone may pass it;
/// entries are at most 64 KiB, so a part stays far under the 8 MiB message limit).
pub const LOG_PART_BYTES: usize = 2 * 1024 * 1024;
/// Most heads in a [`RelayMsg::LogWanted`] (the relay sends none, asking for the whole log,
/// when its log has more).
pub const MAX_WANTED_HEADS: usize = 1024;
/// Most block ids in one offer.
pub const MAX_OFFER_IDS: usize = 16 * 1024;

/// Why a relay refuses a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The organization log has no `RelayAuthorized` entry for this relay.
    NotAuthorized,
    /// The device is not an active device of the organization (unknown, or revoked).
    NotActive,
    /// The introduction did not decode or its log did not verify.
    BadIntro,
    /// The log sent is larger than the relay takes from one device at once, or too many
    /// devices are sending theirs.
    LogTooLarge,
    /// The organization log revokes this relay (`RelayRevoked`): it serves the organization
    /// no more.
    RelayRevoked,
}

impl Refusal {
    /// A stable label, for logs and counters.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotAuthorized => "relay_not_authorized",
            Refusal::NotActive => "device_not_active",
            Refusal::BadIntro => "bad_intro",
            Refusal::LogTooLarge => "log_too_large",
            Refusal::RelayRevoked => "relay_revoked",
        }
    }
}

/// Which quota was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quota {
    /// Bytes stored for the organization (envelopes and blocks).
    Bytes,
    /// Envelopes stored for the organization.
    Envelopes,
}

/// A relay message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayMsg {
    /// Device → relay, first thing on a connection: the organization and the device's log
    /// heads. The relay welcomes a device that is active in the log it holds and names only
    /// heads it holds; otherwise it asks for the log with [`RelayMsg::LogWanted`] and judges
    /// the device once the log is in.
    Intro {
        /// The organization id (its root verifying key).
        org: [u8; 32],
        /// The device's organization heads (at most [`MAX_WANTED_HEADS`]; a hint: a device
        /// with more sends some of them).
        heads: Vec<[u8; 32]>,
    },
    /// Relay → device: introduction accepted; sync may start.
    Welcome,
    /// Relay → device: refused; the relay closes the connection.
    Refused {
        /// Why.
        reason: Refusal,
    },
    /// Device → relay: blocks of a workspace the device holds; the relay asks (with the sync
    /// protocol's `BlockWant`) for those it lacks.
    BlockOffer {
        /// The workspace.
        workspace: WorkspaceId,
        /// Block ids.
        ids: Vec<[u8; 32]>,
    },
    /// Relay → device: a quota is reached; nothing more of that kind is accepted (what was
    /// accepted is kept).
    QuotaExceeded {
        /// Which.
        quota: Quota,
        /// The limit.
        limit: u64,
        /// What is stored.
        used: u64,
    },
    /// Relay → device, after an `Intro` it could not welcome at once: send the entries of your
    /// organization log that are not in the causal past of these heads (the relay's; those
    /// the device does not know are ignored). No heads: the whole log (an organization the
    /// relay does not serve yet, or a log with too many heads).
    LogWanted {
        /// The relay's organization heads.
        heads: Vec<[u8; 32]>,
    },
    /// Device → relay, the answer to [`RelayMsg::LogWanted`], in parts (entries as signed,
    /// parents first); the relay judges the introduction after the `last` one.
    LogPart {
        /// Entries.
        entries: Vec<Vec<u8>>,
        /// Whether this is the last part.
        last: bool,
    },
}

/// The answer to [`RelayMsg::LogWanted`]: `entries` (parents first) in parts of about
/// [`LOG_PART_BYTES`], the last one marked (one empty part when there is nothing to send).
pub fn log_parts<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<RelayMsg> {
    let mut parts = Vec::new();
    let mut cur: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for e in entries {
        if !cur.is_empty()
            && (bytes + e.len() > LOG_PART_BYTES || cur.len() >= MAX_LOG_PART_ENTRIES)
        {
            parts.push(RelayMsg::LogPart {
                entries: std::mem::take(&mut cur),
                last: false,
            });
            bytes = 0;
        }
        bytes += e.len();
        cur.push(e.to_vec());
    }
    parts.push(RelayMsg::LogPart {
        entries: cur,
        last: true,
    });
    parts
}

/// A relay message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayWireError {
    /// Not a relay message.
    #[error("not a relay message")]
    NotRelay,
    /// A relay message of a version this build does not speak.
    #[error(
        "relay message version {0:#04x}, this build speaks {RELAY_V2:#04x}: update the older side"
    )]
    UnknownVersion(u8),
    /// Malformed or with trailing bytes.
    #[error("malformed relay message")]
    Malformed,
    /// A list over its limit.
    #[error("relay message over its limits")]
    TooLarge,
}

/// Whether these bytes are a relay message, of any version (rather than a sync message).
pub fn is_relay_msg(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|b| RELAY_FAMILY.contains(b))
}

impl RelayMsg {
    /// `0xC2 || postcard(self)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RELAY_V2];
        // Serializing into a Vec cannot fail for these types.
        if let Ok(b) = postcard::to_allocvec(self) {
            out.extend(b);
        }
        out
    }

    /// Decodes, exactly.
    pub fn decode(bytes: &[u8]) -> Result<RelayMsg, RelayWireError> {
        let (&v, body) = bytes.split_first().ok_or(RelayWireError::NotRelay)?;
        if !RELAY_FAMILY.contains(&v) {
            return Err(RelayWireError::NotRelay);
        }
        if v != RELAY_V2 {
            return Err(RelayWireError::UnknownVersion(v));
        }
        let (m, rest): (RelayMsg, &[u8]) =
            postcard::take_from_bytes(body).map_err(|_| RelayWireError::Malformed)?;
        if !rest.is_empty() {
            return Err(RelayWireError::Malformed);
        }
        let ok = match &m {
            RelayMsg::LogPart { entries, .. } => entries.len() <= MAX_LOG_PART_ENTRIES,
            RelayMsg::LogWanted { heads } | RelayMsg::Intro { heads, .. } => {
                heads.len() <= MAX_WANTED_HEADS
            }
            RelayMsg::BlockOffer { ids, .. } => ids.len() <= MAX_OFFER_IDS,
            _ => true,
        };
        if ok {
            Ok(m)
        } else {
            Err(RelayWireError::TooLarge)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frozen bytes: changing the format must change this test (and docs/protocol.md).
    #[test]
    fn frozen_vectors() {
        let intro = RelayMsg::Intro {
            org: [7; 32],
            heads: vec![[8; 32]],
        };
        let mut want = vec![0xC2, 0x00];
        want.extend([7u8; 32]);
        want.push(0x01);
        want.extend([8u8; 32]);
        assert_eq!(intro.encode(), want);
        assert_eq!(RelayMsg::Welcome.encode(), vec![0xC2, 0x01]);
        assert_eq!(
            RelayMsg::Refused {
                reason: Refusal::LogTooLarge
            }
            .encode(),
            vec![0xC2, 0x02, 0x03]
        );
        assert_eq!(
            RelayMsg::Refused {
                reason: Refusal::RelayRevoked
            }
            .encode(),
            vec![0xC2, 0x02, 0x04]
        );
        assert_eq!(
            RelayMsg::QuotaExceeded {
                quota: Quota::Envelopes,
                limit: 300,
                used: 5
            }
            .encode(),
            vec![0xC2, 0x04, 0x01, 0xAC, 0x02, 0x05]
        );
        let wanted = RelayMsg::LogWanted {
            heads: vec![[9; 32]],
        };
        let mut want = vec![0xC2, 0x05, 0x01];
        want.extend([9u8; 32]);
        assert_eq!(wanted.encode(), want);
        let part = RelayMsg::LogPart {
            entries: vec![vec![1, 2, 3]],
            last: true,
        };
        assert_eq!(part.encode(), vec![0xC2, 0x06, 0x01, 0x03, 1, 2, 3, 0x01]);
        for m in [intro, RelayMsg::Welcome, wanted, part] {
            assert_eq!(RelayMsg::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn version_1_is_refused_by_name_and_never_taken_for_a_sync_message() {
        // A version-1 `Intro` (whole log inside).
        let mut v1 = vec![0xC1, 0x00];
        v1.extend([7u8; 32]);
        v1.extend([0x01, 0x03, 1, 2, 3]);
        assert!(is_relay_msg(&v1));
        assert_eq!(
            RelayMsg::decode(&v1),
            Err(RelayWireError::UnknownVersion(0xC1))
        );
    }

    #[test]
    fn a_log_goes_in_bounded_parts_parents_first_the_last_marked() {
        let entries: Vec<Vec<u8>> = (0..40u32).map(|i| vec![i as u8; 200 * 1024]).collect();
        let parts = log_parts(entries.iter().map(Vec::as_slice));
        assert!(parts.len() >= 4);
        let mut again = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let RelayMsg::LogPart { entries, last } = p else {
                panic!("not a part")
            };
            assert_eq!(*last, i + 1 == parts.len());
            assert!(entries.iter().map(Vec::len).sum::<usize>() <= LOG_PART_BYTES);
            assert!(p.encode().len() <= crate::sync::msg::MAX_MESSAGE);
            again.extend(entries.iter().cloned());
        }
        assert_eq!(again, entries);
        assert_eq!(
            log_parts(std::iter::empty()),
            vec![RelayMsg::LogPart {
                entries: vec![],
                last: true
            }]
        );
    }

    #[test]
    fn hostile_bytes_are_refused() {
        assert_eq!(RelayMsg::decode(&[]), Err(RelayWireError::NotRelay));
        assert_eq!(
            RelayMsg::decode(&[0x01, 0x01]),
            Err(RelayWireError::NotRelay)
        );
        assert_eq!(RelayMsg::decode(&[0xC2]), Err(RelayWireError::Malformed));
        assert_eq!(
            RelayMsg::decode(&[0xC2, 0x01, 0x00]),
            Err(RelayWireError::Malformed)
        );
        assert_eq!(
            RelayMsg::decode(&[0xC2, 0x09]),
            Err(RelayWireError::Malformed)
        );
        let big = RelayMsg::BlockOffer {
            workspace: WorkspaceId([0; 16]),
            ids: vec![[0; 32]; MAX_OFFER_IDS + 1],
        };
        assert_eq!(
            RelayMsg::decode(&big.encode()),
            Err(RelayWireError::TooLarge)
        );
        let heads = RelayMsg::LogWanted {
            heads: vec![[0; 32]; MAX_WANTED_HEADS + 1],
        };
        assert_eq!(
            RelayMsg::decode(&heads.encode()),
            Err(RelayWireError::TooLarge)
        );
    }

    #[test]
    fn never_confused_with_sync_messages() {
        assert!(is_relay_msg(&RelayMsg::Welcome.encode()));
        let hello = crate::sync::Msg::Hello { docs: vec![] }.encode();
        assert!(!is_relay_msg(&hello));
    }
}
