//! The device key file: every secret of this device, encrypted under a passphrase.
//!
//! Format (version 1):
//!
//! ```text
//! file   = header || XChaCha20-Poly1305(kek, postcard(KeyMaterial), aad = header)
//! header = 0x01 || m_kib u32le || t u32le || p u32le || salt (16) || nonce (24)
//! kek    = Argon2id(passphrase, salt, m_kib, t, p) -> 32 bytes
//! ```
//!
//! Invariants: secrets live in zeroizing buffers and are never logged; a wrong passphrase is
//! [`KeystoreError::WrongPassphrase`], never a panic or a fallback; hostile Argon2 parameters in
//! the header are bounded before use; the file is replaced atomically (temp file, fsync, rename)
//! with owner-only permissions, so a crash leaves the old or the new file, never half of one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::trust::{DeviceKeys, OrgId, OrgKey, UserId, UserSecret};

const VERSION: u8 = 0x01;
const HEADER: usize = 1 + 12 + 16 + 24;
/// Largest key file accepted.
const MAX_FILE: usize = 64 * 1024;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// The default: 64 MiB, 3 passes, 1 lane (about 0.2 s on this kind of machine).
    pub const DEFAULT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };
    /// A cheap setting for tests only (8 MiB, 1 pass). The CLI prints a warning when it is used.
    pub const TEST_ONLY: KdfParams = KdfParams {
        m_kib: 8 * 1024,
        t: 1,
        p: 1,
    };

    pub(crate) fn check(self) -> Result<(), KeystoreError> {
        let ok = (8 * 1024..=1024 * 1024).contains(&self.m_kib)
            && (1..=16).contains(&self.t)
            && (1..=8).contains(&self.p);
        if ok {
            Ok(())
        } else {
            Err(KeystoreError::Corrupt("Argon2 parameters out of bounds"))
        }
    }
}

/// Failures of the key file.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// No key file at this path.
    #[error("no device key file at {0}")]
    Missing(PathBuf),
    /// The passphrase does not open the file.
    #[error("wrong passphrase for the device key file at {0}")]
    WrongPassphrase(PathBuf),
    /// The file is damaged or of an unknown format.
    #[error("device key file is damaged or of an unknown format: {0}")]
    Corrupt(&'static str),
    /// Reading or writing failed.
    #[error("device key file {path}: {err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        err: std::io::Error,
    },
}

/// The secrets of one device.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct KeyMaterial {
    org: [u8; 32],
    user: [u8; 16],
    device_sign: [u8; 32],
    device_exchange: [u8; 32],
    org_key: [u8; 32],
    /// Every user-key generation this device holds, ascending.
    user_keys: Vec<(u32, [u8; 32])>,
}

/// An opened key file: the secrets, and the key that re-encrypts them after a change.
pub struct Keystore {
    path: PathBuf,
    params: KdfParams,
    salt: [u8; 16],
    kek: Zeroizing<[u8; 32]>,
    material: KeyMaterial,
}

impl Keystore {
    /// Writes a new key file (refusing to overwrite one).
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        path: &Path,
        passphrase: &[u8],
        params: KdfParams,
        org: OrgId,
        user: UserId,
        device: &DeviceKeys,
        org_key: &OrgKey,
        user_secret: &UserSecret,
    ) -> Result<Keystore, KeystoreError> {
        params.check()?;
        if path.exists() {
            return Err(KeystoreError::Io {
                path: path.to_owned(),
                err: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
            });
        }
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let kek = derive(passphrase, &salt, params)?;
        let (sign, exchange) = device.secrets();
        let ks = Keystore {
            path: path.to_owned(),
            params,
            salt,
            kek,
            material: KeyMaterial {
                org: org.0,
                user: user.0,
                device_sign: *sign,
                device_exchange: *exchange,
                org_key: *org_key.as_bytes(),
                user_keys: vec![(user_secret.generation, *user_secret.secret_bytes())],
            },
        };
        ks.save()?;
        Ok(ks)
    }

    /// Opens a key file with its passphrase.
    pub fn open(path: &Path, passphrase: &[u8]) -> Result<Keystore, KeystoreError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeystoreError::Missing(path.to_owned()));
            }
            Err(err) => {
                return Err(KeystoreError::Io {
                    path: path.to_owned(),
                    err,
                });
            }
        };
        Self::open_bytes(path, &bytes, passphrase)
    }

    /// Opens a key file's `bytes` (read from `path`, named in errors) with its passphrase: what
    /// [`Keystore::open`] does once the file is read, public so that the fuzz targets (`fuzz/`)
    /// reach it without a file. Bounds the size and the Argon2 parameters before any work.
    pub fn open_bytes(
        path: &Path,
        bytes: &[u8],
        passphrase: &[u8],
    ) -> Result<Keystore, KeystoreError> {
        if bytes.len() > MAX_FILE {
            return Err(KeystoreError::Corrupt("file too large"));
        }
        if bytes.len() < HEADER + 16 {
            return Err(KeystoreError::Corrupt("file too short"));
        }
        if bytes[0] != VERSION {
            return Err(KeystoreError::Corrupt("unknown format version"));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let params = KdfParams {
            m_kib: u32_at(1),
            t: u32_at(5),
            p: u32_at(9),
        };
        params.check()?;
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&bytes[13..29]);
        let nonce =
            XNonce::try_from(&bytes[29..HEADER]).map_err(|_| KeystoreError::Corrupt("nonce"))?;
        let kek = derive(passphrase, &salt, params)?;
        let plain = XChaCha20Poly1305::new((&*kek).into())
            .decrypt(
                &nonce,
                Payload {
                    msg: &bytes[HEADER..],
                    aad: &bytes[..HEADER],
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| KeystoreError::WrongPassphrase(path.to_owned()))?;
        let material = match postcard::take_from_bytes::<KeyMaterial>(&plain) {
            Ok((m, [])) => m,
            _ => return Err(KeystoreError::Corrupt("content does not decode")),
        };
        Ok(Keystore {
            path: path.to_owned(),
            params,
            salt,
            kek,
            material,
        })
    }

    fn save(&self) -> Result<(), KeystoreError> {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(512);
        out.push(VERSION);
        out.extend_from_slice(&self.params.m_kib.to_le_bytes());
        out.extend_from_slice(&self.params.t.to_le_bytes());
        out.extend_from_slice(&self.params.p.to_le_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&nonce);
        let plain = Zeroizing::new(
            postcard::to_stdvec(&self.material).map_err(|_| KeystoreError::Corrupt("encode"))?,
        );
        let ct = XChaCha20Poly1305::new((&*self.kek).into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: &out,
                },
            )
            .map_err(|_| KeystoreError::Corrupt("encrypt"))?;
        out.extend_from_slice(&ct);
        write_atomic(&self.path, &out).map_err(|err| KeystoreError::Io {
            path: self.path.clone(),
            err,
        })
    }

    /// The organization.
    pub fn org(&self) -> OrgId {
        OrgId(self.material.org)
    }
    /// This device's user.
    pub fn user(&self) -> UserId {
        UserId(self.material.user)
    }
    /// This device's keys.
    pub fn device(&self) -> DeviceKeys {
        DeviceKeys::from_secrets(&self.material.device_sign, &self.material.device_exchange)
    }
    /// The organization key.
    pub fn org_key(&self) -> OrgKey {
        OrgKey::from_bytes(&self.material.org_key)
    }
    /// The newest user-key generation held.
    pub fn user_secret(&self) -> Option<UserSecret> {
        self.material
            .user_keys
            .iter()
            .max_by_key(|(g, _)| *g)
            .map(|(g, k)| UserSecret::from_bytes(*g, k))
    }
    /// A given user-key generation, if held.
    pub fn user_secret_gen(&self, generation: u32) -> Option<UserSecret> {
        self.material
            .user_keys
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(g, k)| UserSecret::from_bytes(*g, k))
    }

    /// Adds user-key generations and rewrites the file.
    pub fn add_user_secrets(&mut self, secrets: &[UserSecret]) -> Result<(), KeystoreError> {
        for s in secrets {
            if self.user_secret_gen(s.generation).is_none() {
                self.material
                    .user_keys
                    .push((s.generation, *s.secret_bytes()));
            }
        }
        self.material.user_keys.sort_by_key(|(g, _)| *g);
        self.save()
    }
}

pub(crate) fn derive(
    passphrase: &[u8],
    salt: &[u8; 16],
    p: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(32))
        .map_err(|_| KeystoreError::Corrupt("Argon2 parameters"))?;
    let a2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = Zeroizing::new([0u8; 32]);
    a2.hash_password_into(passphrase, salt, kek.as_mut())
        .map_err(|_| KeystoreError::Corrupt("Argon2"))?;
    Ok(kek)
}

/// Writes `bytes` to `path` atomically with mode 0600: a temporary file of a fresh random name in
/// the same directory, created exclusively (`O_EXCL`, so a planted file or symlink of that name is
/// never opened or followed), fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> (PathBuf, DeviceKeys) {
        let mut rng = rand::rng();
        let path = dir.join("keys");
        let dev = DeviceKeys::generate(&mut rng);
        Keystore::create(
            &path,
            b"correct horse",
            KdfParams::TEST_ONLY,
            OrgId([1; 32]),
            UserId([2; 16]),
            &dev,
            &OrgKey::generate(&mut rng),
            &UserSecret::generate(0, &mut rng),
        )
        .unwrap();
        (path, dev)
    }

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let (path, dev) = sample(dir.path());
        let ks = Keystore::open(&path, b"correct horse").unwrap();
        assert_eq!(ks.device().id(), dev.id());
        assert_eq!(ks.user(), UserId([2; 16]));
        assert!(matches!(
            Keystore::open(&path, b"wrong"),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    /// A local attacker who plants a symlink where a fixed temporary name would be (the old
    /// `keys.tmp`) gets nothing written through it: the temporary name is fresh and opened with
    /// `O_EXCL`.
    #[cfg(unix)]
    #[test]
    fn a_planted_temporary_symlink_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"untouched").unwrap();
        let path = dir.path().join("keys");
        std::os::unix::fs::symlink(&victim, dir.path().join("keys.tmp")).unwrap();
        write_atomic(&path, b"new key file").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(fs::read(&path).unwrap(), b"new key file");
        let left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && n != "keys.tmp")
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
        // Writing again replaces the file, never the planted link's target.
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
    }

    #[test]
    fn tampered_or_hostile_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = sample(dir.path());
        let good = fs::read(&path).unwrap();
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 3] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert!(matches!(
            Keystore::open(&path, b"correct horse"),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        // A header asking for 4 TiB of memory is refused before Argon2 runs.
        let mut greedy = good.clone();
        greedy[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        fs::write(&path, &greedy).unwrap();
        assert!(matches!(
            Keystore::open(&path, b"correct horse"),
            Err(KeystoreError::Corrupt(_))
        ));
        fs::write(&path, &good[..20]).unwrap();
        assert!(matches!(
            Keystore::open(&path, b"correct horse"),
            Err(KeystoreError::Corrupt(_))
        ));
        assert!(matches!(
            Keystore::open(&dir.path().join("none"), b"x"),
            Err(KeystoreError::Missing(_))
        ));
    }
}
