//! The greeting handshake as a state machine over snow: `Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s`,
//! PSK derived from the invitation secret, prologue binding the organization and both devices.
//!
//! ```text
//! claimer (initiator, dials)                         greeter (responder, the admin's daemon)
//! Hello { id, -> e }                          ──►    finds the live invitation `id`
//!                                             ◄──    <- e, ee, s, es
//! -> s, se, psk  + payload Claim              ──►    PSK checked here; Claim read
//! both: codes from the handshake hash, one per direction, shown and typed
//! ```
//!
//! After the handshake both sides hold a [`Session`] (Noise transport) that carries
//! [`GreetMsg`]s: `Ready` (greeter: the PSK matched), `Confirm` / `Abort`, `Welcome`, `Stored`,
//! `Done`. Each side's static key is the new or greeting device's X25519 exchange key, so the
//! greeter learns the claimer's exchange key authenticated by the handshake.
//!
//! Invariants: randomness comes from a caller's 32-byte seed (a snow resolver that expands it
//! with BLAKE3), never from the environment; every input is bounded and every failure typed; a
//! wrong PSK fails on the greeter when it reads the third message, and the claimer learns it
//! because no `Ready` comes.

use snow::params::NoiseParams;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use snow::{HandshakeState, TransportState};
use zeroize::Zeroizing;

use super::msg::{Claim, GreetMsg, Packet};
use super::token::{InvitationSecret, Token};
use super::{Codes, EnrollError};
use crate::trust::{DeviceId, DeviceKeys, OrgId};

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
/// Prologue domain.
const PROLOGUE: &[u8] = b"cloison/greet/v1\0";
/// Largest Noise message.
const NOISE_MAX: usize = 65_535;
/// Largest plaintext in one Noise transport message.
const CHUNK: usize = NOISE_MAX - 16;

/// The prologue: binds the organization and both devices (their keys are their PeerIds).
pub fn prologue(org: &OrgId, greeter: &DeviceId, claimer: &DeviceId) -> Vec<u8> {
    let mut p = PROLOGUE.to_vec();
    p.extend_from_slice(&org.0);
    p.extend_from_slice(&greeter.0);
    p.extend_from_slice(&claimer.0);
    p
}

struct SeededRandom(blake3::OutputReader);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

/// snow's default primitives with randomness from a seed.
struct Resolver(Zeroizing<[u8; 32]>);

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        let key = blake3::derive_key("cloison 2026 greet rng v1", &*self.0);
        Some(Box::new(SeededRandom(
            blake3::Hasher::new_keyed(&key).finalize_xof(),
        )))
    }
    fn resolve_dh(&self, c: &snow::params::DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(c)
    }
    fn resolve_hash(&self, c: &snow::params::HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(c)
    }
    fn resolve_cipher(&self, c: &snow::params::CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(c)
    }
}

/// snow's primitives with randomness expanded from `seed`.
pub(crate) fn resolver(seed: [u8; 32]) -> Box<dyn CryptoResolver + Send> {
    Box::new(Resolver(Zeroizing::new(seed)))
}

fn build(
    secret: &InvitationSecret,
    keys: &DeviceKeys,
    prologue: &[u8],
    seed: [u8; 32],
    initiator: bool,
) -> Result<HandshakeState, EnrollError> {
    let params: NoiseParams = NOISE_PARAMS.parse().map_err(|_| EnrollError::Noise)?;
    let psk = secret.psk();
    let (_, exchange) = keys.secrets();
    let b = snow::Builder::with_resolver(params, resolver(seed))
        .local_private_key(&exchange[..])?
        .psk(3, &psk)?
        .prologue(prologue)?;
    Ok(if initiator {
        b.build_initiator()?
    } else {
        b.build_responder()?
    })
}

impl From<snow::Error> for EnrollError {
    fn from(_: snow::Error) -> Self {
        EnrollError::Noise
    }
}

/// The claimer before the greeter's reply.
pub struct Claimer {
    hs: HandshakeState,
}

impl Claimer {
    /// Starts: returns the `Hello` request.
    pub fn start(
        token: &Token,
        device: &DeviceKeys,
        seed: [u8; 32],
    ) -> Result<(Claimer, Vec<u8>), EnrollError> {
        let p = prologue(&token.org, &token.greeter, &device.id());
        let mut hs = build(&token.secret, device, &p, seed, true)?;
        let mut buf = vec![0u8; NOISE_MAX];
        let n = hs.write_message(&[], &mut buf)?;
        buf.truncate(n);
        let hello = Packet::Hello {
            id: token.secret.id(),
            noise: buf,
        };
        Ok((Claimer { hs }, hello.encode()))
    }

    /// Reads the greeter's reply and writes the last handshake message carrying `claim`.
    pub fn finish(
        mut self,
        reply: &[u8],
        claim: &Claim,
    ) -> Result<(Session, Vec<u8>), EnrollError> {
        let noise = match Packet::decode(reply)? {
            Packet::Frames(mut f) if f.len() == 1 => f.remove(0),
            Packet::Refused(s) => return Err(EnrollError::Refused(s)),
            _ => return Err(EnrollError::Malformed("expected the handshake reply")),
        };
        let mut payload = vec![0u8; NOISE_MAX];
        self.hs.read_message(&noise, &mut payload)?;
        let plain = Zeroizing::new(claim.encode()?);
        if plain.len() > CHUNK - 64 {
            return Err(EnrollError::Malformed("claim too large"));
        }
        let mut buf = vec![0u8; NOISE_MAX];
        let n = self.hs.write_message(&plain, &mut buf)?;
        buf.truncate(n);
        let codes = Codes::from_hash(self.hs.get_handshake_hash());
        let t = self.hs.into_transport_mode()?;
        Ok((Session { t, codes }, Packet::Frames(vec![buf]).encode()))
    }
}

/// The greeter between its reply and the claimer's last handshake message.
pub struct Greeter {
    hs: HandshakeState,
    claimer: DeviceId,
}

impl Greeter {
    /// Answers a `Hello` (the caller found the live invitation by [`Packet::Hello`]'s id).
    pub fn respond(
        org: &OrgId,
        secret: &InvitationSecret,
        greeter: &DeviceKeys,
        claimer: DeviceId,
        seed: [u8; 32],
        hello: &[u8],
    ) -> Result<(Greeter, Vec<u8>), EnrollError> {
        let noise = match Packet::decode(hello)? {
            Packet::Hello { id, noise } if id == secret.id() => noise,
            _ => {
                return Err(EnrollError::Malformed(
                    "expected a hello for this invitation",
                ));
            }
        };
        let p = prologue(org, &greeter.id(), &claimer);
        let mut hs = build(secret, greeter, &p, seed, false)?;
        let mut payload = vec![0u8; NOISE_MAX];
        hs.read_message(&noise, &mut payload)?;
        let mut buf = vec![0u8; NOISE_MAX];
        let n = hs.write_message(&[], &mut buf)?;
        buf.truncate(n);
        Ok((Greeter { hs, claimer }, Packet::Frames(vec![buf]).encode()))
    }

    /// Reads the claimer's last handshake message: fails if the claimer lacks the PSK.
    /// The claim's keys are checked against the handshake (static key) and the transport
    /// (device id).
    pub fn finish(mut self, msg: &[u8]) -> Result<(Session, Claim), EnrollError> {
        let noise = match Packet::decode(msg)? {
            Packet::Frames(mut f) if f.len() == 1 => f.remove(0),
            _ => {
                return Err(EnrollError::Malformed(
                    "expected the last handshake message",
                ));
            }
        };
        let mut payload = Zeroizing::new(vec![0u8; NOISE_MAX]);
        let n = self.hs.read_message(&noise, &mut payload)?;
        let claim = Claim::decode(&payload[..n])?;
        let remote = self.hs.get_remote_static().ok_or(EnrollError::Noise)?;
        if remote != claim.exchange_key.as_slice() || claim.device != self.claimer {
            return Err(EnrollError::Malformed(
                "the claim's keys are not the handshake's",
            ));
        }
        let codes = Codes::from_hash(self.hs.get_handshake_hash());
        let t = self.hs.into_transport_mode()?;
        Ok((Session { t, codes }, claim))
    }
}

/// A completed handshake: the codes, and the encrypted channel for [`GreetMsg`]s.
pub struct Session {
    t: TransportState,
    codes: Codes,
}

impl Session {
    /// Both codes.
    pub fn codes(&self) -> &Codes {
        &self.codes
    }

    /// Encrypts a message as a packet (split into Noise messages).
    pub fn seal(&mut self, m: &GreetMsg) -> Result<Vec<u8>, EnrollError> {
        let plain = Zeroizing::new(m.encode()?);
        let mut frames = Vec::new();
        for chunk in plain.chunks(CHUNK) {
            let mut buf = vec![0u8; NOISE_MAX];
            let n = self.t.write_message(chunk, &mut buf)?;
            buf.truncate(n);
            frames.push(buf);
        }
        if frames.is_empty() {
            let mut buf = vec![0u8; NOISE_MAX];
            let n = self.t.write_message(&[], &mut buf)?;
            buf.truncate(n);
            frames.push(buf);
        }
        Ok(Packet::Frames(frames).encode())
    }

    /// Decrypts a packet into a message. A `Refused` packet is an error with its status.
    pub fn open(&mut self, packet: &[u8]) -> Result<GreetMsg, EnrollError> {
        let frames = match Packet::decode(packet)? {
            Packet::Frames(f) => f,
            Packet::Refused(s) => return Err(EnrollError::Refused(s)),
            Packet::Hello { .. } => return Err(EnrollError::Malformed("unexpected hello")),
        };
        let mut plain = Zeroizing::new(Vec::new());
        let mut buf = Zeroizing::new(vec![0u8; NOISE_MAX]);
        for f in frames {
            let n = self.t.read_message(&f, &mut buf)?;
            plain.extend_from_slice(&buf[..n]);
        }
        GreetMsg::decode(&plain)
    }
}
