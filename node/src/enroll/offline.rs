//! Air-gapped enrolment: the greeting carried in two files, a request and an answer.
//!
//! Files travel once each way, so the pattern is the two-message
//! `Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`: the same primitives, the same PSK (from the token
//! secret) and the same prologue (organization, greeter, claimer) as the online
//! `Noise_XXpsk3`, without static keys (the claim carries the new device's keys, authenticated
//! by the PSK).
//!
//! ```text
//! request = "CLOISONQ" || 0x01 || invitation id (16) || claimer device (32) || Noise msg 1
//!           msg 1 = psk, e; payload Claim            → claimer code from the hash after it
//! answer  = "CLOISONA" || 0x01 || Frames packet [msg 2 (e, ee), transport(Welcome) ...]
//!           → greeter code from the hash after msg 2
//! ```
//!
//! The claimer reads its code to the admin, who types it before the greeter signs anything;
//! the admin reads the greeter's code back, and the claimer types it before it stores anything
//! from the answer. The claimer rebuilds its side from the same seed (randomness is an input),
//! so nothing but the seed and its keys need be kept between the two steps.
//!
//! Invariants: bounded sizes, exact parsing (magic, version, no trailing bytes), typed errors.

use snow::HandshakeState;
use snow::params::NoiseParams;
use zeroize::Zeroizing;

use super::handshake::{prologue, resolver};
use super::msg::{Claim, GreetMsg, MAX_PACKET, Packet};
use super::token::{InvitationId, InvitationSecret, Token};
use super::{Codes, EnrollError};
use crate::trust::{DeviceId, OrgId};

/// The offline Noise protocol.
pub const OFFLINE_PARAMS: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
/// Magic of a request file.
pub const REQUEST_MAGIC: &[u8; 8] = b"CLOISONQ";
/// Magic of an answer file.
pub const ANSWER_MAGIC: &[u8; 8] = b"CLOISONA";
const V1: u8 = 0x01;
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

/// The claimer between its request and the answer.
pub struct OfflineClaimer {
    hs: HandshakeState,
    code: String,
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
        let code = Codes::from_hash(hs.get_handshake_hash()).claimer;
        let mut file = REQUEST_MAGIC.to_vec();
        file.push(V1);
        file.extend_from_slice(&token.secret.id().0);
        file.extend_from_slice(&claim.device.0);
        file.extend_from_slice(&buf[..n]);
        Ok((OfflineClaimer { hs, code }, file))
    }

    /// The code the claimer reads to the admin.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Reads the answer: the greeter's code (the claimer must type it before using the
    /// welcome) and the welcome, or the greeter's abort.
    pub fn read_answer(mut self, answer: &[u8]) -> Result<(String, GreetMsg), EnrollError> {
        if answer.len() > MAX_PACKET + 9 {
            return Err(EnrollError::Malformed("answer too large"));
        }
        let rest = answer
            .strip_prefix(ANSWER_MAGIC.as_slice())
            .and_then(|r| r.strip_prefix(&[V1]))
            .ok_or(EnrollError::Malformed("not an answer file (v1)"))?;
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

/// What a request file names before it is opened.
pub fn request_header(file: &[u8]) -> Result<(InvitationId, DeviceId), EnrollError> {
    let rest = file
        .strip_prefix(REQUEST_MAGIC.as_slice())
        .and_then(|r| r.strip_prefix(&[V1]))
        .ok_or(EnrollError::Malformed("not a request file (v1)"))?;
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
    /// The codes: `claimer` is known now; `greeter` once the answer is written.
    pub claimer_code: String,
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
        let claimer_code = Codes::from_hash(hs.get_handshake_hash()).claimer;
        Ok((OfflineGreeter { hs, claimer_code }, claim))
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
        file.push(V1);
        file.extend_from_slice(&Packet::Frames(frames).encode());
        Ok((file, code))
    }
}
