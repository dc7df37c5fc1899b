//! A device's proof of possession: the signature by which a device key consents to its own
//! certificate (wire format in `entry`'s module doc and docs/protocol.md).
//!
//! Invariant: the signed message names the organization, both of the device's keys, and who the
//! device joins: as a first device, the user id derived from its key and that user's key; as a
//! later device, the device that certifies it (whose user it joins). So a proof can neither be
//! made without the key nor reused for another user or another certifier.

use super::ids::{DeviceId, OrgId, UserId};
use super::keys::DeviceKeys;

/// Signature domain of a device's proof of possession.
pub const POP_DOMAIN: &[u8] = b"cloison/device-pop/v1\0";

/// Who a device consents to be certified by (the last part of its proof of possession).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopFor<'a> {
    /// As the first device of `user` (derived from this device's key), with this user key.
    First {
        /// The user.
        user: &'a UserId,
        /// The user's generation-0 public key.
        user_key: &'a [u8; 32],
    },
    /// As a later device, added by `certifier` to the certifier's own user.
    By {
        /// The device that writes the certificate.
        certifier: &'a DeviceId,
    },
}

/// What a device signs to consent to its certificate: organization, its two keys, and who
/// certifies it for which user. Nobody else can produce it, and it cannot be reused for another
/// user: a first device's user id is derived from its key, a later device's user is its
/// certifier's.
pub fn pop_message(
    org: &OrgId,
    device: &DeviceId,
    exchange_key: &[u8; 32],
    for_: PopFor<'_>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + 32 + 32 + 1 + 48);
    m.extend_from_slice(&org.0);
    m.extend_from_slice(&device.0);
    m.extend_from_slice(exchange_key);
    match for_ {
        PopFor::First { user, user_key } => {
            m.push(1);
            m.extend_from_slice(&user.0);
            m.extend_from_slice(user_key);
        }
        PopFor::By { certifier } => {
            m.push(0);
            m.extend_from_slice(&certifier.0);
        }
    }
    m
}

/// The proof of possession a device signs for its certificate.
pub fn sign_pop(device: &DeviceKeys, org: &OrgId, for_: PopFor<'_>) -> Vec<u8> {
    let msg = pop_message(org, &device.id(), &device.exchange_public(), for_);
    device.sign(POP_DOMAIN, &msg).to_vec()
}
