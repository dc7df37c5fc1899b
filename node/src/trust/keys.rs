//! Key material of the trust core: device keys, per-user keys, the organization key, and the
//! three ways they protect data (the organization-key chain and shares are in `super::org_keys`).
//!
//! - A **device** has an Ed25519 signing key (its [`DeviceId`], later its libp2p identity) and an
//!   X25519 *exchange* key, certified together in its `DeviceAdded` entry, to which secrets are
//!   sealed for that device alone.
//! - A **user key** is an X25519 key pair shared by the user's devices, with a generation number.
//!   Workspace keys are sealed to it. Each new generation carries the previous secret encrypted
//!   under the new one ([`chain_prev`]), so a device that holds the newest secret recovers all.
//! - The **organization key** is a symmetric key every member holds; it seals the private part of
//!   log entries (names, e-mails, device labels) so a relay never learns who anyone is.
//!
//! Invariants: secrets zeroize on drop and have no `Debug` that prints them; every AEAD binds a
//! context (a purpose string and the ids the ciphertext belongs to) as associated data, so a
//! ciphertext cannot be moved to another entry; randomness comes from the caller (sans-IO).

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use ed25519_dalek::{Signer, SigningKey};
use hpke::{
    Deserializable, Kem, OpModeR, OpModeS, Serializable, aead::ChaCha20Poly1305, kdf::HkdfSha256,
    kem::X25519HkdfSha256,
};
use rand::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::ids::{DeviceId, OrgId, UserId};

/// Format byte of a sealed blob (org-key sealed private data under the genesis key, key chain
/// links).
const SEALED_V1: u8 = 0x01;
/// Format byte of org-private data sealed under a rotated organization key (carries its id).
const SEALED_V2: u8 = 0x02;
const NONCE: usize = 24;
const TAG: usize = 16;

/// A key could not open (or seal) a blob: wrong key, tampered bytes or wrong context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The AEAD tag did not verify: wrong key, wrong context, or altered bytes.
    #[error("cannot decrypt: wrong key, wrong context or altered bytes")]
    Open,
    /// The sealed blob is shorter than its fixed parts or has an unknown format byte.
    #[error("malformed sealed blob")]
    Malformed,
    /// HPKE refused the recipient key (for example a low-order point).
    #[error("invalid recipient key")]
    BadRecipient,
    /// The blob is sealed under an organization key this holder does not have.
    #[error("sealed under an organization key not held here")]
    UnknownKey,
}

/// A device's secret keys.
#[derive(ZeroizeOnDrop)]
pub struct DeviceKeys {
    signing: SigningKey,
    exchange: Zeroizing<[u8; 32]>,
}

impl DeviceKeys {
    /// Fresh keys from the caller's CSPRNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let signing = SigningKey::generate(rng);
        let mut exchange = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(exchange.as_mut());
        DeviceKeys { signing, exchange }
    }

    /// Rebuilds keys from their secret bytes (the keystore's content).
    pub fn from_secrets(signing: &[u8; 32], exchange: &[u8; 32]) -> Self {
        DeviceKeys {
            signing: SigningKey::from_bytes(signing),
            exchange: Zeroizing::new(*exchange),
        }
    }

    /// The secret bytes, for the keystore only.
    pub fn secrets(&self) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
        (
            Zeroizing::new(self.signing.to_bytes()),
            self.exchange.clone(),
        )
    }

    /// This device's id (its Ed25519 verifying key).
    pub fn id(&self) -> DeviceId {
        DeviceId(self.signing.verifying_key().to_bytes())
    }

    /// The public X25519 key secrets are sealed to.
    pub fn exchange_public(&self) -> [u8; 32] {
        x25519_public(&self.exchange)
    }

    /// Signs `domain || msg`. The domain separates our signed formats from each other and from
    /// anything else the same key signs (libp2p's handshake).
    pub fn sign(&self, domain: &[u8], msg: &[u8]) -> [u8; 64] {
        let mut m = Vec::with_capacity(domain.len() + msg.len());
        m.extend_from_slice(domain);
        m.extend_from_slice(msg);
        self.signing.sign(&m).to_bytes()
    }

    /// Opens a secret sealed to this device with [`seal_to_device`].
    pub fn open_sealed(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        hpke_open(&self.exchange, aad, sealed)
    }
}

/// One generation of a user's X25519 key pair.
#[derive(Clone, ZeroizeOnDrop)]
pub struct UserSecret {
    /// Generation number, 0 at creation, +1 per rotation.
    #[zeroize(skip)]
    pub generation: u32,
    secret: Zeroizing<[u8; 32]>,
}

impl UserSecret {
    /// A fresh key pair of the given generation.
    pub fn generate<R: CryptoRng + ?Sized>(generation: u32, rng: &mut R) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        UserSecret { generation, secret }
    }
    /// Rebuilds a generation from its secret bytes.
    pub fn from_bytes(generation: u32, secret: &[u8; 32]) -> Self {
        UserSecret {
            generation,
            secret: Zeroizing::new(*secret),
        }
    }
    /// The secret bytes (keystore, sealing to a device).
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }
    /// The public half, certified in the organization log.
    pub fn public(&self) -> [u8; 32] {
        x25519_public(&self.secret)
    }
    /// Opens something sealed to this user key (for example a workspace epoch key).
    pub fn open_sealed(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        hpke_open(&self.secret, aad, sealed)
    }
}

/// The symmetric key that seals the private part of the organization log.
///
/// The genesis key seals version-1 blobs (`0x01 || nonce || ciphertext`, no key id: the frozen
/// format); a key made by a rotation (`Certificate::OrgKeyRotated`) seals version-2 blobs
/// (`0x02 || key id (8) || nonce || ciphertext`, the id also in the associated data), so that a
/// reader picks the key by the blob ([`OrgKeys`]).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct OrgKey {
    key: [u8; 32],
    /// Whether this is the genesis key (seals version-1 blobs).
    #[zeroize(skip)]
    genesis: bool,
}

/// The id of an organization key: the first 8 bytes of a derivation of the key.
pub type OrgKeyId = [u8; 8];

impl OrgKey {
    /// A fresh genesis key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        OrgKey {
            key: k,
            genesis: true,
        }
    }
    /// A fresh key for a rotation (seals version-2 blobs).
    pub fn generate_rotated<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = Self::generate(rng);
        k.genesis = false;
        k
    }
    /// Rebuilds the genesis key from its bytes.
    pub fn from_bytes(b: &[u8; 32]) -> Self {
        OrgKey {
            key: *b,
            genesis: true,
        }
    }
    /// Rebuilds a rotated key from its bytes.
    pub fn rotated_from_bytes(b: &[u8; 32]) -> Self {
        OrgKey {
            key: *b,
            genesis: false,
        }
    }
    /// The key bytes (keystore, enrolment).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }
    /// Whether this is the genesis key (version-1 blobs).
    pub fn is_genesis(&self) -> bool {
        self.genesis
    }
    /// The key's id: the first 8 bytes of `derive_key("cloison 2026 org-key id v1", key)`.
    pub fn id(&self) -> OrgKeyId {
        let d = blake3::derive_key("cloison 2026 org-key id v1", &self.key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        id
    }

    fn sealing_key(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key("cloison 2026 org-private v1", &self.key))
    }

    /// Seals `plain` for the subject `subject` (the id the data describes) of kind `purpose`.
    pub fn seal<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        org: &OrgId,
        purpose: &str,
        subject: &[u8],
        plain: &[u8],
    ) -> Vec<u8> {
        let key = self.sealing_key();
        let mut aad = private_aad(org, purpose, subject);
        if self.genesis {
            return seal_sym(rng, &key, &aad, plain);
        }
        let id = self.id();
        aad.extend_from_slice(&id);
        let mut header = [SEALED_V2; 9];
        header[1..].copy_from_slice(&id);
        seal_after(rng, &key, &aad, plain, &header)
    }

    /// Opens what [`OrgKey::seal`] sealed with the same key, org, purpose and subject; a blob
    /// of another key is [`KeyError::UnknownKey`].
    pub fn open(
        &self,
        org: &OrgId,
        purpose: &str,
        subject: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if blob_key(sealed)? != self.slot() {
            return Err(KeyError::UnknownKey);
        }
        let key = self.sealing_key();
        let mut aad = private_aad(org, purpose, subject);
        if self.genesis {
            return open_sym(&key, &aad, sealed);
        }
        aad.extend_from_slice(&sealed[1..9]);
        open_after(&key, &aad, sealed, 9)
    }

    /// Which blobs this key opens.
    pub fn slot(&self) -> BlobKey {
        if self.genesis {
            BlobKey::Genesis
        } else {
            BlobKey::Rotated(self.id())
        }
    }
}

/// The key an org-private blob names: the genesis key (version 1) or a rotated key by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlobKey {
    /// A version-1 blob.
    Genesis,
    /// A version-2 blob sealed under the key with this id.
    Rotated(OrgKeyId),
}

/// The key an org-private blob needs, read from its first bytes.
pub fn blob_key(sealed: &[u8]) -> Result<BlobKey, KeyError> {
    match sealed.first() {
        Some(&SEALED_V1) => Ok(BlobKey::Genesis),
        Some(&SEALED_V2) if sealed.len() >= 9 + NONCE + TAG => {
            let mut id = [0u8; 8];
            id.copy_from_slice(&sealed[1..9]);
            Ok(BlobKey::Rotated(id))
        }
        _ => Err(KeyError::Malformed),
    }
}

/// Something that opens org-private blobs: one key, or a device's ring of keys.
pub trait OrgKeys {
    /// Opens what [`OrgKey::seal`] sealed, with whichever key the blob names.
    fn open(
        &self,
        org: &OrgId,
        purpose: &str,
        subject: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError>;
}

impl OrgKeys for OrgKey {
    fn open(
        &self,
        org: &OrgId,
        purpose: &str,
        subject: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        OrgKey::open(self, org, purpose, subject, sealed)
    }
}

fn private_aad(org: &OrgId, purpose: &str, subject: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64 + purpose.len() + subject.len());
    aad.extend_from_slice(b"cloison private v1\0");
    aad.extend_from_slice(&org.0);
    aad.extend_from_slice(purpose.as_bytes());
    aad.push(0);
    aad.extend_from_slice(subject);
    aad
}

/// Encrypts the previous user secret under a key derived from the next one: the link that lets a
/// holder of generation `n` recover generation `n - 1`.
pub fn chain_prev<R: CryptoRng + ?Sized>(
    rng: &mut R,
    user: &UserId,
    next: &UserSecret,
    prev: &UserSecret,
) -> Vec<u8> {
    seal_link(
        rng,
        "cloison 2026 user-key chain v1",
        next.secret_bytes(),
        &chain_aad(user, next.generation),
        prev.secret_bytes(),
    )
}

/// Recovers generation `next.generation - 1` from its chain link.
pub fn unchain_prev(user: &UserId, next: &UserSecret, link: &[u8]) -> Result<UserSecret, KeyError> {
    let bytes = open_link(
        "cloison 2026 user-key chain v1",
        next.secret_bytes(),
        &chain_aad(user, next.generation),
        link,
    )?;
    let generation = next.generation.checked_sub(1).ok_or(KeyError::Malformed)?;
    Ok(UserSecret::from_bytes(generation, &bytes))
}

fn chain_aad(user: &UserId, generation: u32) -> Vec<u8> {
    let mut aad = b"cloison user-key chain v1\0".to_vec();
    aad.extend_from_slice(&user.0);
    aad.extend_from_slice(&generation.to_le_bytes());
    aad
}

/// The associated data binding a user secret sealed to a device.
pub fn user_key_aad(org: &OrgId, user: &UserId, generation: u32, device: &DeviceId) -> Vec<u8> {
    let mut aad = b"cloison user-key to device v1\0".to_vec();
    aad.extend_from_slice(&org.0);
    aad.extend_from_slice(&user.0);
    aad.extend_from_slice(&generation.to_le_bytes());
    aad.extend_from_slice(&device.0);
    aad
}

/// Seals `plain` to an X25519 public key with HPKE (RFC 9180, X25519-HKDF-SHA256,
/// ChaCha20-Poly1305, base mode): `enc (32) || ciphertext`.
pub fn seal_to<R: CryptoRng + ?Sized>(
    rng: &mut R,
    recipient: &[u8; 32],
    aad: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let pk = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(recipient)
        .map_err(|_| KeyError::BadRecipient)?;
    let mut rng = RngRef(rng);
    let (enc, ct) =
        hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeS::Base,
            &pk,
            HPKE_INFO,
            plain,
            aad,
            &mut rng,
        )
        .map_err(|_| KeyError::BadRecipient)?;
    let mut out = enc.to_bytes().to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Seals a secret to a device's exchange key.
pub fn seal_to_device<R: CryptoRng + ?Sized>(
    rng: &mut R,
    exchange_public: &[u8; 32],
    aad: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, KeyError> {
    seal_to(rng, exchange_public, aad, plain)
}

const HPKE_INFO: &[u8] = b"cloison 2026 hpke v1";

fn hpke_open(secret: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if sealed.len() < 32 + TAG {
        return Err(KeyError::Malformed);
    }
    let sk = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(secret)
        .map_err(|_| KeyError::Malformed)?;
    let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&sealed[..32])
        .map_err(|_| KeyError::Malformed)?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk,
        &enc,
        HPKE_INFO,
        &sealed[32..],
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| KeyError::Open)
}

fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
}

/// `0x01 || nonce (24) || XChaCha20-Poly1305(key, plain, aad)`.
pub(crate) fn seal_sym<R: CryptoRng + ?Sized>(
    rng: &mut R,
    key: &[u8; 32],
    aad: &[u8],
    plain: &[u8],
) -> Vec<u8> {
    seal_after(rng, key, aad, plain, &[SEALED_V1])
}

/// `header || nonce || XChaCha20-Poly1305(key, nonce, aad, plain)`: the one sealing of every
/// symmetric blob (the header names its format, and for a rotated organization key its id).
fn seal_after<R: CryptoRng + ?Sized>(
    rng: &mut R,
    key: &[u8; 32],
    aad: &[u8],
    plain: &[u8],
    header: &[u8],
) -> Vec<u8> {
    let mut nonce = [0u8; NONCE];
    rng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.into());
    // Encryption with a 32-byte key and a 24-byte nonce cannot fail for inputs below 256 GiB.
    let ct = cipher
        .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(header.len() + NONCE + ct.len());
    out.extend_from_slice(header);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens [`seal_sym`]'s output.
pub(crate) fn open_sym(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if sealed.first() != Some(&SEALED_V1) {
        return Err(KeyError::Malformed);
    }
    open_after(key, aad, sealed, 1)
}

/// Opens what [`seal_after`] sealed after a header of `header_len` bytes (checked by the
/// caller).
fn open_after(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
    header_len: usize,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if sealed.len() < header_len + NONCE + TAG {
        return Err(KeyError::Malformed);
    }
    let body = &sealed[header_len..];
    let nonce = XNonce::try_from(&body[..NONCE]).map_err(|_| KeyError::Malformed)?;
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            &nonce,
            Payload {
                msg: &body[NONCE..],
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Open)
}

/// A chain link: the 32-byte `prev` sealed under a key derived (`context`) from `next`, so
/// that whoever holds `next` recovers `prev` (user keys and organization keys).
pub(crate) fn seal_link<R: CryptoRng + ?Sized>(
    rng: &mut R,
    context: &str,
    next: &[u8; 32],
    aad: &[u8],
    prev: &[u8; 32],
) -> Vec<u8> {
    let key = Zeroizing::new(blake3::derive_key(context, next));
    seal_sym(rng, &key, aad, prev)
}

/// Opens a [`seal_link`] link.
pub(crate) fn open_link(
    context: &str,
    next: &[u8; 32],
    aad: &[u8],
    link: &[u8],
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let key = Zeroizing::new(blake3::derive_key(context, next));
    let plain = open_sym(&key, aad, link)?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Malformed)?;
    Ok(Zeroizing::new(bytes))
}

/// Adapts `&mut R` (possibly unsized) to the `impl CryptoRng` that hpke asks for.
struct RngRef<'a, R: ?Sized>(&'a mut R);

impl<R: CryptoRng + ?Sized> rand::TryRng for RngRef<'_, R> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}
impl<R: CryptoRng + ?Sized> rand::TryCryptoRng for RngRef<'_, R> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpke_seal_opens_only_with_the_right_key_and_context() {
        let mut rng = rand::rng();
        let d = DeviceKeys::generate(&mut rng);
        let other = DeviceKeys::generate(&mut rng);
        let sealed = seal_to_device(&mut rng, &d.exchange_public(), b"ctx", b"secret").unwrap();
        assert_eq!(
            d.open_sealed(b"ctx", &sealed).unwrap().as_slice(),
            b"secret"
        );
        assert_eq!(d.open_sealed(b"other", &sealed), Err(KeyError::Open));
        assert_eq!(other.open_sealed(b"ctx", &sealed), Err(KeyError::Open));
        assert_eq!(
            d.open_sealed(b"ctx", &sealed[..10]),
            Err(KeyError::Malformed)
        );
    }

    #[test]
    fn org_key_binds_purpose_and_subject() {
        let mut rng = rand::rng();
        let k = OrgKey::generate(&mut rng);
        let org = OrgId([1; 32]);
        let s = k.seal(&mut rng, &org, "user", b"alice-id", b"Alice");
        assert_eq!(
            k.open(&org, "user", b"alice-id", &s).unwrap().as_slice(),
            b"Alice"
        );
        assert!(k.open(&org, "user", b"bob-id", &s).is_err());
        assert!(k.open(&org, "device", b"alice-id", &s).is_err());
        assert!(
            OrgKey::generate(&mut rng)
                .open(&org, "user", b"alice-id", &s)
                .is_err()
        );
    }

    #[test]
    fn key_chain_recovers_the_previous_generation() {
        let mut rng = rand::rng();
        let user = UserId([3; 16]);
        let g0 = UserSecret::generate(0, &mut rng);
        let g1 = UserSecret::generate(1, &mut rng);
        let link = chain_prev(&mut rng, &user, &g1, &g0);
        let back = unchain_prev(&user, &g1, &link).unwrap();
        assert_eq!(back.generation, 0);
        assert_eq!(back.public(), g0.public());
        assert!(unchain_prev(&UserId([4; 16]), &g1, &link).is_err());
    }
}
