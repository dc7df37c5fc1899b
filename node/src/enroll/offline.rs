//! Air-gapped enrolment: the greeting carried in two files, a request and an answer, and three
//! short codes said aloud.
//!
//! Files travel once each way, so the pattern is the two-message
//! `Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`: the same primitives, the same PSK (from the token
//! secret) and the same prologue (organization, greeter, claimer) as the online
//! `Noise_XXpsk3`, without static keys (the claim carries the new device's keys, authenticated
//! by the PSK).
//!
//! ```text
//! request = "CLOISONQ" || 0x02 || invitation id (16) || claimer device (32) || Noise msg 1
//!           msg 1 = psk, e; payload Claim            → h1, the handshake hash after it
//! admin:    reads the request, then draws the challenge nB (6 digits) and says it
//! claimer:  claimer code = code(h1 || nB), said back; the admin types it, then the greeter signs
//! answer  = "CLOISONA" || 0x02 || Frames packet [msg 2 (e, ee), transport(Welcome) ...]
//!           → greeter code from the hash after msg 2, said to the claimer, who types it
//! ```
//!
//! **Commit before reveal.** In version 1 the claimer's code came from `h1` alone, which the
//! request fixes: anyone holding the token who intercepted a request could grind a substitute
//! (its own device, its own ephemeral key) to the same code in about a million tries, offline.
//! Now the code also depends on the [`Challenge`], which the greeter draws *after* it read the
//! request it will sign for: a substitute is fixed before its challenge exists, so it matches the
//! code the real claimer reads back with probability 10⁻⁶, and a wrong code burns the invitation
//! (one try per invitation). The challenge needs no secrecy, only freshness. The answer needs no
//! such step: an answer is worth something only if its `Welcome` makes the new device active in
//! the token's organization, certified by the token's greeter device (`Node::join` checks both),
//! which nobody but that device can sign.
//!
//! The claimer rebuilds its side from the same seed (randomness is an input), so nothing but
//! the seed and its keys need be kept between its steps; the greeter's challenge is an input too.
//!
//! Invariants: bounded sizes, exact parsing (magic, version, no trailing bytes), typed errors;
//! a version 1 file is refused as such.

use snow::HandshakeState;
use snow::params::NoiseParams;
use zeroize::Zeroizing;

use super::handshake::{prologue, resolver};
use super::msg::{Claim, GreetMsg, MAX_PACKET, Packet};
use super::token::{InvitationId, InvitationSecret, Token};
use super::{Codes, EnrollError, code_of};
use crate::trust::{DeviceId, OrgId};

/// The offline Noise protocol.
pub const OFFLINE_PARAMS: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
/// Magic of a request file.
pub const REQUEST_MAGIC: &[u8; 8] = b"CLOISONQ";
/// Magic of an answer file.
pub const ANSWER_MAGIC: &[u8; 8] = b"CLOISONA";
/// Version of both files: 2 since the claimer's code depends on the greeter's challenge.
pub const OFFLINE_V2: u8 = 0x02;
/// The version before the challenge, refused.
const OFFLINE_V1: u8 = 0x01;
const NOISE_MAX: usize = 65_535;

fn build(
    secret: &InvitationSecret,
    prologue: &[u8],
    seed: [u8; 32],
    initiator: bool,
) -> Result<HandshakeState, EnrollError> {
    let params: NoiseParams = OFFLINE_PARAMS.parse().map_err(|_| EnrollError::Noise)?;
    let psk = secret.psk();
    let b = snow::Builder::with_resolver(params, resolver(seed))
        .psk(0, &psk)?
        .prologue(prologue)?;
    Ok(if initiator {
        b.build_initiator()?
    } else {
        b.build_responder()?
    })
}

/// The greeter's challenge (nB): six digits drawn after the request was read, said to the
/// claimer, and mixed into the claimer's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge(String);

impl Challenge {
    /// The challenge from fresh randomness (the caller draws it after reading the request).
    pub fn from_random(random: [u8; 8]) -> Challenge {
        Challenge(format!("{:06}", u64::from_le_bytes(random) % 1_000_000))
    }

    /// A challenge as typed: six digits (spaces, dashes and the like are ignored).
    pub fn parse(typed: &str) -> Result<Challenge, EnrollError> {
        let d = super::normalize_code(typed);
        if d.len() != 6 {
            return Err(EnrollError::Malformed("the admin's code has six digits"));
        }
        Ok(Challenge(d))
    }

    /// The six digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The claimer's code: the handshake hash after message 1 and the challenge.
fn claimer_code(h1: &[u8], challenge: &Challenge) -> String {
    let mut input = h1.to_vec();
    input.extend_from_slice(challenge.0.as_bytes());
    code_of("cloison 2026 offline claimer code v2", &input)
}

/// The claimer between its request and the answer.
pub struct OfflineClaimer {
    hs: HandshakeState,
    h1: Vec<u8>,
}

impl OfflineClaimer {
    /// Writes the request. The same inputs (seed included) give the same request and state, so
    /// the claimer calls this again to read the answer.
    pub fn request(
        token: &Token,
        claim: &Claim,
        seed: [u8; 32],
    ) -> Result<(OfflineClaimer, Vec<u8>), EnrollError> {
        let p = prologue(&token.org, &token.greeter, &claim.device);
        let mut hs = build(&token.secret, &p, seed, true)?;
        let plain = Zeroizing::new(claim.encode()?);
        let mut buf = vec![0u8; NOISE_MAX];
        let n = hs.write_message(&plain, &mut buf)?;
        let h1 = hs.get_handshake_hash().to_vec();
        let mut file = REQUEST_MAGIC.to_vec();
        file.push(OFFLINE_V2);
        file.extend_from_slice(&token.secret.id().0);
        file.extend_from_slice(&claim.device.0);
        file.extend_from_slice(&buf[..n]);
        Ok((OfflineClaimer { hs, h1 }, file))
    }

    /// The code the claimer reads to the admin, once the admin said the `challenge`.
    pub fn code(&self, challenge: &Challenge) -> String {
        claimer_code(&self.h1, challenge)
    }

    /// Reads the answer: the greeter's code (the claimer must type it before using the
    /// welcome) and the welcome, or the greeter's abort.
    pub fn read_answer(mut self, answer: &[u8]) -> Result<(String, GreetMsg), EnrollError> {
        if answer.len() > MAX_PACKET + 9 {
            return Err(EnrollError::Malformed("answer too large"));
        }
        let rest = versioned(answer, ANSWER_MAGIC, ("answer", "not an answer file"))?;
        let Packet::Frames(frames) = Packet::decode(rest)? else {
            return Err(EnrollError::Malformed("answer without frames"));
        };
        let (first, more) = frames
            .split_first()
            .ok_or(EnrollError::Malformed("empty answer"))?;
        let mut payload = vec![0u8; NOISE_MAX];
        self.hs.read_message(first, &mut payload)?;
        let code = Codes::from_hash(self.hs.get_handshake_hash()).greeter;
        let mut t = self.hs.into_transport_mode()?;
        let mut plain = Zeroizing::new(Vec::new());
        let mut buf = Zeroizing::new(vec![0u8; NOISE_MAX]);
        for f in more {
            let n = t.read_message(f, &mut buf)?;
            plain.extend_from_slice(&buf[..n]);
        }
        Ok((code, GreetMsg::decode(&plain)?))
    }
}

/// The body of a file after its magic and version (2; version 1 is refused as such).
fn versioned<'a>(
    file: &'a [u8],
    magic: &[u8; 8],
    (what, not): (&'static str, &'static str),
) -> Result<&'a [u8], EnrollError> {
    let rest = file
        .strip_prefix(magic.as_slice())
        .ok_or(EnrollError::Malformed(not))?;
    match rest.split_first() {
        Some((&OFFLINE_V2, body)) => Ok(body),
        Some((&OFFLINE_V1, _)) => Err(EnrollError::OldOffline(what)),
        _ => Err(EnrollError::Malformed(
            "unknown version of an air-gapped file",
        )),
    }
}

/// What a request file names before it is opened.
pub fn request_header(file: &[u8]) -> Result<(InvitationId, DeviceId), EnrollError> {
    let rest = versioned(file, REQUEST_MAGIC, ("request", "not a request file"))?;
    if rest.len() < 48 + 48 || rest.len() > 48 + 4096 {
        return Err(EnrollError::Malformed("request of the wrong size"));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&rest[..16]);
    let mut dev = [0u8; 32];
    dev.copy_from_slice(&rest[16..48]);
    Ok((InvitationId(id), DeviceId(dev)))
}

/// The greeter after reading a request.
pub struct OfflineGreeter {
    hs: HandshakeState,
    h1: Vec<u8>,
}

impl OfflineGreeter {
    /// Opens a request with the invitation's secret.
    pub fn open(
        org: &OrgId,
        greeter: &DeviceId,
        secret: &InvitationSecret,
        file: &[u8],
        seed: [u8; 32],
    ) -> Result<(OfflineGreeter, Claim), EnrollError> {
        let (id, claimer) = request_header(file)?;
        if id != secret.id() {
            return Err(EnrollError::Malformed(
                "the request is for another invitation",
            ));
        }
        let p = prologue(org, greeter, &claimer);
        let mut hs = build(secret, &p, seed, false)?;
        let mut payload = Zeroizing::new(vec![0u8; NOISE_MAX]);
        let n = hs.read_message(&file[9 + 48..], &mut payload)?;
        let claim = Claim::decode(&payload[..n])?;
        if claim.device != claimer {
            return Err(EnrollError::Malformed("the claim names another device"));
        }
        let h1 = hs.get_handshake_hash().to_vec();
        Ok((OfflineGreeter { hs, h1 }, claim))
    }

    /// The code the claimer of this request reads back for `challenge` (drawn after `open`).
    pub fn claimer_code(&self, challenge: &Challenge) -> String {
        claimer_code(&self.h1, challenge)
    }

    /// Writes the answer carrying `msg` (a welcome, or an abort); returns it with the greeter's
    /// code.
    pub fn answer(mut self, msg: &GreetMsg) -> Result<(Vec<u8>, String), EnrollError> {
        let mut buf = vec![0u8; NOISE_MAX];
        let n = self.hs.write_message(&[], &mut buf)?;
        buf.truncate(n);
        let code = Codes::from_hash(self.hs.get_handshake_hash()).greeter;
        let mut t = self.hs.into_transport_mode()?;
        let plain = Zeroizing::new(msg.encode()?);
        let mut frames = vec![buf];
        for chunk in plain.chunks(NOISE_MAX - 16) {
            let mut b = vec![0u8; NOISE_MAX];
            let n = t.write_message(chunk, &mut b)?;
            b.truncate(n);
            frames.push(b);
        }
        let mut file = ANSWER_MAGIC.to_vec();
        file.push(OFFLINE_V2);
        file.extend_from_slice(&Packet::Frames(frames).encode());
        Ok((file, code))
    }
}

#[cfg(test)]
#[path = "offline_tests.rs"]
mod tests;
