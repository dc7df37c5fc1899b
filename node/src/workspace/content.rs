//! The plaintext of a content envelope: workspace-document changes, each bound to the device that
//! signed the envelope.
//!
//! Format (version 1), inside the sealed payload: `0x01 || postcard(Vec<(shard u16, change bytes)>)`,
//! consumed exactly. A device writes the workspace document with the actor id [`actor_of`] its
//! device id; automerge does not authenticate actors, so [`open_changes`] refuses a payload
//! carrying a change by any other actor (DESIGN §3: "every automerge change inside carries the
//! actor id bound to the signing device").
//!
//! Invariants: bounded (at most [`MAX_CHANGES`] changes); hostile bytes give a typed error.

use cloison_crdt::{RemoteChange, Workspace};

use crate::trust::DeviceId;

/// Format version byte.
pub const CONTENT_V1: u8 = 0x01;
/// Most changes in one envelope.
pub const MAX_CHANGES: usize = 4096;

/// Why a content payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Does not decode, unknown version or trailing bytes.
    #[error("malformed content payload")]
    Malformed,
    /// Too many changes.
    #[error("too many changes in one envelope")]
    TooMany,
    /// A change is not a valid automerge change.
    #[error("change {index} is not a valid change")]
    BadChange {
        /// Which.
        index: usize,
    },
    /// A change was written by an actor other than the signing device.
    #[error("change {index} was written by another actor than the signing device")]
    ActorMismatch {
        /// Which.
        index: usize,
    },
}

/// The actor id a device writes the workspace document with: its device id.
pub fn actor_of(device: &DeviceId) -> Vec<u8> {
    device.0.to_vec()
}

/// Encodes changes for a content envelope.
pub fn encode_changes(changes: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![CONTENT_V1];
    // Serializing plain data into a Vec cannot fail.
    out.extend_from_slice(&postcard::to_stdvec(changes).unwrap_or_default());
    out
}

/// Decodes a content payload opened from an envelope signed by `author`, checking that every
/// change was written by `author`.
pub fn open_changes(plain: &[u8], author: &DeviceId) -> Result<Vec<RemoteChange>, ContentError> {
    if plain.first() != Some(&CONTENT_V1) {
        return Err(ContentError::Malformed);
    }
    let changes: Vec<(u16, Vec<u8>)> = match postcard::take_from_bytes(&plain[1..]) {
        Ok((c, [])) => c,
        _ => return Err(ContentError::Malformed),
    };
    if changes.len() > MAX_CHANGES {
        return Err(ContentError::TooMany);
    }
    let me = actor_of(author);
    let mut out = Vec::with_capacity(changes.len());
    for (index, (shard, bytes)) in changes.into_iter().enumerate() {
        let actor =
            Workspace::change_actor(&bytes).map_err(|_| ContentError::BadChange { index })?;
        if actor != me {
            return Err(ContentError::ActorMismatch { index });
        }
        out.push(RemoteChange { shard, bytes });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloison_crdt::{EntryId, SeededIds};

    fn changes_by(actor: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut ids = SeededIds::new(1);
        let mut ws = Workspace::create(actor, 8, 0).unwrap();
        ws.create_folder(&mut ids, EntryId::ROOT, "reports", 1_000)
            .unwrap();
        ws.commit_local()
            .into_iter()
            .map(|c| (c.shard, c.bytes))
            .collect()
    }

    #[test]
    fn changes_by_the_signing_device_pass_and_others_are_refused() {
        let a = DeviceId([1; 32]);
        let b = DeviceId([2; 32]);
        let mine = encode_changes(&changes_by(&actor_of(&a)));
        let got = open_changes(&mine, &a).unwrap();
        let mut replica = Workspace::join(b"reader", 8).unwrap();
        replica.apply_remote(got).unwrap();
        assert!(replica.resolve("reports").is_some());
        // The same payload signed by another device: a forged actor.
        assert_eq!(
            open_changes(&mine, &b),
            Err(ContentError::ActorMismatch { index: 0 })
        );
        // Hostile bytes.
        assert_eq!(open_changes(&[], &a), Err(ContentError::Malformed));
        assert_eq!(open_changes(&[2, 0], &a), Err(ContentError::Malformed));
        let mut trailing = mine.clone();
        trailing.push(0);
        assert_eq!(open_changes(&trailing, &a), Err(ContentError::Malformed));
        let junk = encode_changes(&[(0, vec![1, 2, 3])]);
        assert_eq!(
            open_changes(&junk, &a),
            Err(ContentError::BadChange { index: 0 })
        );
    }
}
