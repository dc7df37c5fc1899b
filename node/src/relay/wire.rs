//! The relay's own messages, beside the sync protocol on the same `/cloison/msg/1` stream:
//! a device introduces itself (its organization log), the relay welcomes or refuses it, devices
//! offer blocks, and the relay says when a quota is reached.
//!
//! Wire format (version 1): `0xC1 || postcard(RelayMsg)`, consumed exactly. The first byte tells
//! these apart from sync messages (which start with their version byte, `0x01`).
//!
//! Invariants: bounded lists ([`MAX_INTRO_ENTRIES`], [`MAX_OFFER_IDS`]); decoding never panics,
//! rejects other leading bytes and trailing bytes. Nothing here is secret: an introduction
//! carries the organization log as signed and sealed by its authors.

use serde::{Deserialize, Serialize};

use crate::workspace::WorkspaceId;

/// First byte of every relay message (version 1).
pub const RELAY_V1: u8 = 0xC1;
/// Most organization-log entries in one introduction.
pub const MAX_INTRO_ENTRIES: usize = 200_000;
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
    /// Device → relay, first thing on a connection: the organization and its log (entries as
    /// signed, any order). The relay serves the device only if the log authorizes the relay and
    /// the device is active in it.
    Intro {
        /// The organization id (its root verifying key).
        org: [u8; 32],
        /// Entries.
        entries: Vec<Vec<u8>>,
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
}

/// A relay message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayWireError {
    /// Not a relay message (or another version).
    #[error("not a relay message")]
    NotRelay,
    /// Malformed or with trailing bytes.
    #[error("malformed relay message")]
    Malformed,
    /// A list over its limit.
    #[error("relay message over its limits")]
    TooLarge,
}

/// Whether these bytes are a relay message (rather than a sync message).
pub fn is_relay_msg(bytes: &[u8]) -> bool {
    bytes.first() == Some(&RELAY_V1)
}

impl RelayMsg {
    /// `0xC1 || postcard(self)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RELAY_V1];
        // Serializing into a Vec cannot fail for these types.
        if let Ok(b) = postcard::to_allocvec(self) {
            out.extend(b);
        }
        out
    }

    /// Decodes, exactly.
    pub fn decode(bytes: &[u8]) -> Result<RelayMsg, RelayWireError> {
        let Some((&RELAY_V1, body)) = bytes.split_first() else {
            return Err(RelayWireError::NotRelay);
        };
        let (m, rest): (RelayMsg, &[u8]) =
            postcard::take_from_bytes(body).map_err(|_| RelayWireError::Malformed)?;
        if !rest.is_empty() {
            return Err(RelayWireError::Malformed);
        }
        let ok = match &m {
            RelayMsg::Intro { entries, .. } => entries.len() <= MAX_INTRO_ENTRIES,
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
            entries: vec![vec![1, 2, 3]],
        };
        let mut want = vec![0xC1, 0x00];
        want.extend([7u8; 32]);
        want.extend([0x01, 0x03, 1, 2, 3]);
        assert_eq!(intro.encode(), want);
        assert_eq!(RelayMsg::Welcome.encode(), vec![0xC1, 0x01]);
        assert_eq!(
            RelayMsg::Refused {
                reason: Refusal::NotActive
            }
            .encode(),
            vec![0xC1, 0x02, 0x01]
        );
        assert_eq!(
            RelayMsg::Refused {
                reason: Refusal::RelayRevoked
            }
            .encode(),
            vec![0xC1, 0x02, 0x03]
        );
        assert_eq!(
            RelayMsg::QuotaExceeded {
                quota: Quota::Envelopes,
                limit: 300,
                used: 5
            }
            .encode(),
            vec![0xC1, 0x04, 0x01, 0xAC, 0x02, 0x05]
        );
        for m in [intro, RelayMsg::Welcome] {
            assert_eq!(RelayMsg::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn hostile_bytes_are_refused() {
        assert_eq!(RelayMsg::decode(&[]), Err(RelayWireError::NotRelay));
        assert_eq!(
            RelayMsg::decode(&[0x01, 0x01]),
            Err(RelayWireError::NotRelay)
        );
        assert_eq!(RelayMsg::decode(&[0xC1]), Err(RelayWireError::Malformed));
        assert_eq!(
            RelayMsg::decode(&[0xC1, 0x01, 0x00]),
            Err(RelayWireError::Malformed)
        );
        assert_eq!(
            RelayMsg::decode(&[0xC1, 0x09]),
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
    }

    #[test]
    fn never_confused_with_sync_messages() {
        assert!(is_relay_msg(&RelayMsg::Welcome.encode()));
        let hello = crate::sync::Msg::Hello { docs: vec![] }.encode();
        assert!(!is_relay_msg(&hello));
    }
}
