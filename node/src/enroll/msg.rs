//! Wire formats of the greeting (version 1, frozen by `enroll/vectors/`): the packets carried by
//! `/cloison/greet/1` (and the offline files), and what the Noise messages carry.
//!
//! ```text
//! packet  = 0x01 || kind u8 || ...
//!   kind 1 Hello    : invitation id (16) || Noise message 1 (`e`, 48 bytes: psk3 keys the empty payload)
//!   kind 2 Frames   : (u16be length || Noise message)*       at most MAX_FRAMES
//!   kind 3 Refused  : status u8 (1 unknown, 2 expired, 3 cancelled, 4 used, 5 burned, 6 busy)
//! inside Noise: Claim = 0x01 || postcard(Claim); GreetMsg = 0x02 || postcard(GreetMsg)
//! ```
//!
//! `GreetMsg` is at version 2: its `Welcome` carries the greeter's own sync addresses
//! ([`Welcome::peers`]), so a new device knows where to dial without mDNS; a version-1 message
//! is refused by name.
//!
//! Invariants: every decode is bounded ([`MAX_PACKET`], [`MAX_FRAMES`], text limits), consumes
//! its input exactly, and fails with a typed error; secrets in a `Welcome` zeroize on drop.

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::EnrollError;
use super::token::InvitationId;
use crate::trust::author::{self, Claimed};
use crate::trust::{DeviceId, DeviceKeys, OrgId, UserId};

/// Version byte of every greeting format but [`GreetMsg`].
pub const GREET_V1: u8 = 0x01;
/// Version byte of [`GreetMsg`].
pub const GREET_MSG_V2: u8 = 0x02;
/// Most addresses in [`Welcome::peers`].
pub const MAX_WELCOME_PEERS: usize = 16;
/// Longest address in [`Welcome::peers`].
pub const MAX_PEER_ADDR: usize = 256;
/// Largest packet (a `Welcome` carries the organization log).
pub const MAX_PACKET: usize = 32 << 20;
/// Most Noise messages in one packet.
pub const MAX_FRAMES: usize = 1024;
/// Longest name, label or reason.
pub const MAX_TEXT: usize = author::MAX_TEXT;

/// Why a greeter refused a hello (sent in clear, before any secret is proven: it says nothing
/// about the organization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseStatus {
    /// No such invitation here.
    Unknown,
    /// It expired.
    Expired,
    /// It was cancelled.
    Cancelled,
    /// It was used.
    Used,
    /// A wrong code burned it.
    Burned,
    /// Another claimer is being greeted on it.
    Busy,
}

impl RefuseStatus {
    fn byte(self) -> u8 {
        match self {
            RefuseStatus::Unknown => 1,
            RefuseStatus::Expired => 2,
            RefuseStatus::Cancelled => 3,
            RefuseStatus::Used => 4,
            RefuseStatus::Burned => 5,
            RefuseStatus::Busy => 6,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => RefuseStatus::Unknown,
            2 => RefuseStatus::Expired,
            3 => RefuseStatus::Cancelled,
            4 => RefuseStatus::Used,
            5 => RefuseStatus::Burned,
            6 => RefuseStatus::Busy,
            _ => return None,
        })
    }

    /// What to tell the claimer.
    pub fn message(self) -> &'static str {
        match self {
            RefuseStatus::Unknown => "the greeter knows no such invitation",
            RefuseStatus::Expired => "this invitation has expired; ask for a new one",
            RefuseStatus::Cancelled => "this invitation was cancelled",
            RefuseStatus::Used => "this invitation was already used",
            RefuseStatus::Burned => "this invitation was burned by a wrong code; ask for a new one",
            RefuseStatus::Busy => "someone else is being greeted on this invitation",
        }
    }
}

/// What crosses `/cloison/greet/1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// The claimer's first message.
    Hello {
        /// Which invitation.
        id: InvitationId,
        /// Noise message 1.
        noise: Vec<u8>,
    },
    /// Noise messages.
    Frames(Vec<Vec<u8>>),
    /// A refusal.
    Refused(RefuseStatus),
}

impl Packet {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![GREET_V1];
        match self {
            Packet::Hello { id, noise } => {
                b.push(1);
                b.extend_from_slice(&id.0);
                b.extend_from_slice(noise);
            }
            Packet::Frames(frames) => {
                b.push(2);
                for f in frames {
                    b.extend_from_slice(&(f.len() as u16).to_be_bytes());
                    b.extend_from_slice(f);
                }
            }
            Packet::Refused(s) => {
                b.push(3);
                b.push(s.byte());
            }
        }
        b
    }

    /// Decodes, bounded.
    pub fn decode(b: &[u8]) -> Result<Packet, EnrollError> {
        if b.len() > MAX_PACKET {
            return Err(EnrollError::Malformed("packet too large"));
        }
        let [v, kind, rest @ ..] = b else {
            return Err(EnrollError::Malformed("packet too short"));
        };
        if *v != GREET_V1 {
            return Err(EnrollError::Malformed("unknown greeting version"));
        }
        match kind {
            1 => {
                if rest.len() < 16 + 32 || rest.len() > 16 + 96 {
                    return Err(EnrollError::Malformed("hello of the wrong size"));
                }
                let mut id = [0u8; 16];
                id.copy_from_slice(&rest[..16]);
                Ok(Packet::Hello {
                    id: InvitationId(id),
                    noise: rest[16..].to_vec(),
                })
            }
            2 => {
                let mut frames = Vec::new();
                let mut r = rest;
                while !r.is_empty() {
                    if frames.len() >= MAX_FRAMES || r.len() < 2 {
                        return Err(EnrollError::Malformed("bad frames"));
                    }
                    let n = u16::from_be_bytes([r[0], r[1]]) as usize;
                    if r.len() < 2 + n {
                        return Err(EnrollError::Malformed("truncated frame"));
                    }
                    frames.push(r[2..2 + n].to_vec());
                    r = &r[2 + n..];
                }
                if frames.is_empty() {
                    return Err(EnrollError::Malformed("no frames"));
                }
                Ok(Packet::Frames(frames))
            }
            3 => match rest {
                [s] => RefuseStatus::from_byte(*s)
                    .map(Packet::Refused)
                    .ok_or(EnrollError::Malformed("unknown refusal")),
                _ => Err(EnrollError::Malformed("bad refusal")),
            },
            _ => Err(EnrollError::Malformed("unknown packet kind")),
        }
    }
}

/// What the claimer says about itself, inside the last handshake message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The new device's Ed25519 key (its PeerId).
    pub device: DeviceId,
    /// The new device's X25519 exchange key (its Noise static key).
    pub exchange_key: [u8; 32],
    /// The new device's label.
    pub device_label: String,
    /// For a user invitation: the new user.
    pub user: Option<NewUser>,
    /// The device's proof of possession (`trust::entry::pop_message`): as the first device of
    /// the user derived from its key, or as a device added by the greeter.
    pub pop: Vec<u8>,
}

/// A new user, as the claimer describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Display name.
    pub name: String,
    /// Generation-0 public user key (the claimer generated the secret).
    pub user_key: [u8; 32],
}

impl Claim {
    /// The claim of `device` for an invitation of organization `org` greeted by `greeter`, with
    /// its proof of possession (one home for what the new device signs).
    pub fn new(
        device: &DeviceKeys,
        org: &OrgId,
        greeter: &DeviceId,
        device_label: String,
        user: Option<NewUser>,
    ) -> Claim {
        let claimed = match &user {
            Some(u) => author::claim_first(device, org, &u.user_key),
            None => author::claim_device(device, org, greeter),
        };
        Claim {
            device: device.id(),
            exchange_key: device.exchange_public(),
            device_label,
            user,
            pop: claimed.pop,
        }
    }

    /// The device's consent, as the certifier uses it.
    pub fn claimed(&self) -> Claimed {
        Claimed {
            device: self.device,
            exchange_key: self.exchange_key,
            pop: self.pop.clone(),
        }
    }

    /// Encodes.
    pub fn encode(&self) -> Result<Vec<u8>, EnrollError> {
        encode(self)
    }

    /// Decodes and [`check`](Claim::check)s.
    pub fn decode(b: &[u8]) -> Result<Claim, EnrollError> {
        let c: Claim = decode(b)?;
        c.check()?;
        if c.pop.len() != 64 {
            return Err(EnrollError::Malformed(
                "proof of possession is not 64 bytes",
            ));
        }
        Ok(c)
    }

    /// Checks the text fields (`author::check_text`): what the greeter does with a claim it
    /// receives, and what a claimer does before it sends one, so a bad name is reported as such.
    pub fn check(&self) -> Result<(), EnrollError> {
        author::check_text("the device label", &self.device_label)?;
        if let Some(u) = &self.user {
            author::check_text("the user name", &u.name)?;
        }
        Ok(())
    }
}

/// A 32-byte secret that zeroizes on drop and never prints.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, zeroize::ZeroizeOnDrop)]
pub struct Secret32(pub [u8; 32]);

impl std::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret32(..)")
    }
}

/// What the greeter sends once both codes are confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The user the new device belongs to.
    pub user: UserId,
    /// The organization key (sealing names, e-mails and labels).
    pub org_key: Secret32,
    /// For a device invitation: each user-key generation the greeter holds, sealed to the new
    /// device (HPKE, as in a rotation). Empty for a user invitation.
    pub user_keys: Vec<(u32, Vec<u8>)>,
    /// The organization log, parents first, ending with the new certificates.
    pub entries: Vec<Vec<u8>>,
    /// Where the greeter's daemon listens for sync (`…/p2p/<peer id>`; empty when it greets
    /// without one): the new device remembers them and dials them when its daemon starts.
    pub peers: Vec<String>,
}

/// Messages after the handshake, inside the Noise transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GreetMsg {
    /// Greeter: the PSK matched, codes are shown.
    Ready,
    /// This side's person typed the other side's code correctly.
    Confirm,
    /// Stop: the invitation is burned.
    Abort {
        /// Why.
        reason: String,
    },
    /// Greeter: the certificates and what the new device needs.
    Welcome(Box<Welcome>),
    /// Claimer: the new device's home is written.
    Stored,
    /// Greeter: the certificates are admitted.
    Done,
}

impl GreetMsg {
    /// Encodes.
    pub fn encode(&self) -> Result<Vec<u8>, EnrollError> {
        encode_as(GREET_MSG_V2, self)
    }

    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<GreetMsg, EnrollError> {
        if b.first() == Some(&GREET_V1) {
            return Err(EnrollError::Malformed(
                "greeting message version 1: the other side runs an older cloison, update it",
            ));
        }
        let m: GreetMsg = decode_as(GREET_MSG_V2, b)?;
        match &m {
            GreetMsg::Abort { reason } if reason.len() > MAX_TEXT => {
                Err(EnrollError::Malformed("reason too long"))
            }
            GreetMsg::Welcome(w)
                if w.peers.len() > MAX_WELCOME_PEERS
                    || w.peers.iter().any(|a| a.len() > MAX_PEER_ADDR) =>
            {
                Err(EnrollError::Malformed(
                    "too many or too long peer addresses",
                ))
            }
            _ => Ok(m),
        }
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, EnrollError> {
    encode_as(GREET_V1, v)
}

fn decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, EnrollError> {
    decode_as(GREET_V1, b)
}

fn encode_as<T: Serialize>(version: u8, v: &T) -> Result<Vec<u8>, EnrollError> {
    let mut b = vec![version];
    postcard::to_io(v, &mut b).map_err(|_| EnrollError::Malformed("cannot encode"))?;
    Ok(b)
}

fn decode_as<T: for<'de> Deserialize<'de>>(version: u8, b: &[u8]) -> Result<T, EnrollError> {
    let Some((_, rest)) = b.split_first().filter(|(v, _)| **v == version) else {
        return Err(EnrollError::Malformed("unknown message version"));
    };
    match postcard::take_from_bytes::<T>(rest) {
        Ok((v, [])) => Ok(v),
        Ok(_) => Err(EnrollError::Malformed("trailing bytes")),
        Err(_) => Err(EnrollError::Malformed("does not decode")),
    }
}
