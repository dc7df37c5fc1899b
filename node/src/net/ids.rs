//! Conversions between Cloison's [`DeviceId`] and libp2p's `PeerId`, and the libp2p identity of a
//! device.
//!
//! Invariants: a device's libp2p identity is its Ed25519 device key (the same 32-byte seed), so
//! `peer_id(keys.id()) == keypair(keys).public().to_peer_id()`; a `PeerId` maps back to a
//! `DeviceId` only if it inlines an Ed25519 public key (identity multihash) and round-trips
//! exactly. Every other kind of peer (RSA, secp256k1, ECDSA, hashed keys) has no device id and is
//! refused by the gate.

use libp2p::{PeerId, identity};

use crate::trust::{ids::DeviceId, keys::DeviceKeys};

use super::NetError;

/// Multihash code of the identity hash: the public key is inlined in the `PeerId`.
const IDENTITY_MULTIHASH: u64 = 0;

/// The libp2p keypair of a device: its Ed25519 signing key.
pub(crate) fn keypair(keys: &DeviceKeys) -> Result<identity::Keypair, NetError> {
    let (mut seed, _exchange) = keys.secrets();
    // `ed25519_from_bytes` zeroizes the buffer it is given; `Zeroizing` covers the error path.
    let kp = identity::Keypair::ed25519_from_bytes(&mut *seed)
        .map_err(|e| NetError::Identity(e.to_string()))?;
    if device_id(&kp.public().to_peer_id()) != Some(keys.id()) {
        return Err(NetError::Identity(
            "libp2p identity does not match the device id".into(),
        ));
    }
    Ok(kp)
}

/// The `PeerId` of a device, or `None` if the id is not a valid Ed25519 public key.
pub fn peer_id(device: &DeviceId) -> Option<PeerId> {
    let pk = identity::ed25519::PublicKey::try_from_bytes(&device.0).ok()?;
    Some(identity::PublicKey::from(pk).to_peer_id())
}

/// The device behind a `PeerId`, or `None` if the peer is not an inlined Ed25519 key.
pub fn device_id(peer: &PeerId) -> Option<DeviceId> {
    let mh: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if mh.code() != IDENTITY_MULTIHASH {
        return None;
    }
    let pk = identity::PublicKey::try_decode_protobuf(mh.digest()).ok()?;
    let device = DeviceId(pk.try_into_ed25519().ok()?.to_bytes());
    // Only the canonical encoding maps back, so one device has exactly one PeerId.
    (peer_id(&device).as_ref() == Some(peer)).then_some(device)
}

/// The device (or relay) named by the last `/p2p/<PeerId>` of an address, if it is an Ed25519
/// key. `None` when the address has no such part or names another kind of peer.
pub fn addr_peer(addr: &libp2p::Multiaddr) -> Option<DeviceId> {
    addr.iter().fold(None, |last, p| match p {
        libp2p::multiaddr::Protocol::P2p(peer) => device_id(&peer),
        _ => last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_and_peer_ids_round_trip() {
        let keys = DeviceKeys::generate(&mut rand::rng());
        let kp = keypair(&keys).unwrap();
        let peer = kp.public().to_peer_id();
        assert_eq!(peer_id(&keys.id()), Some(peer));
        assert_eq!(device_id(&peer), Some(keys.id()));
    }

    #[test]
    fn non_ed25519_peers_have_no_device_id() {
        // A random identity multihash that is not a protobuf-encoded key.
        assert_eq!(device_id(&PeerId::random()), None);
        // A hashed (sha2-256) multihash.
        let mh = libp2p::multihash::Multihash::<64>::wrap(0x12, &[7; 32]).unwrap();
        assert_eq!(device_id(&PeerId::from_multihash(mh).unwrap()), None);
    }

    #[test]
    fn an_invalid_point_has_no_peer_id() {
        // About half of all y coordinates do not decompress to a curve point.
        let bad = (2u8..=255)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
            .unwrap();
        assert_eq!(peer_id(&DeviceId(bad)), None);
    }
}
