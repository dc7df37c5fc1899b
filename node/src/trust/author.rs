//! Writing entries: creating an organization, and drafting certificates on an existing log.
//!
//! Everything here produces signed bytes that the caller then passes to
//! [`OrgLog::ingest`](super::OrgLog::ingest) like any received entry: there is one way into the
//! log, and our own entries go through the same admission as everybody else's.
//!
//! Invariants: the root key of a new organization exists only inside [`create_org`] and is
//! dropped (zeroized) before it returns; private parts are sealed under the organization key;
//! randomness and wall time come from the caller.

use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::entry::{
    self, Certificate, DeviceAdded, EntryBody, Genesis, InvitationRecorded, Invited,
    RelayAuthorized, UserAdded, UserKeyRotated,
};
use super::ids::{Clock, DeviceId, OrgId, Profile, UserId};
use super::keys::{self, DeviceKeys, KeyError, OrgKey, OrgKeys, UserSecret};
use super::log::OrgLog;
use super::pop;

/// Purpose strings of the org-key sealed private parts.
pub const PRIVATE_ORG: &str = "org";
/// See [`PRIVATE_ORG`].
pub const PRIVATE_USER: &str = "user";
/// See [`PRIVATE_ORG`].
pub const PRIVATE_DEVICE: &str = "device";
/// See [`PRIVATE_ORG`] (the subject is the invitation id; distinct from the purpose
/// `invitation` of the records kept in the inviting device's store).
pub const PRIVATE_INVITATION: &str = "invitation-email";

/// The private part of a recorded user invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationPrivate {
    /// The invited e-mail.
    pub email: String,
}

/// The private part of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgPrivate {
    /// Display name.
    pub name: String,
}

/// The private part of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPrivate {
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

/// The private part of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePrivate {
    /// Label chosen by its owner ("laptop", "ward-3 desktop").
    pub label: String,
}

/// Longest name, e-mail or label, in bytes.
pub const MAX_TEXT: usize = 256;

/// A text field out of bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty, too long, or with control characters.
    #[error("{field} must be 1 to {MAX_TEXT} bytes of printable text")]
    Invalid {
        /// Which field.
        field: &'static str,
    },
}

/// The one rule for a name, e-mail or label (here, in greeting messages, and in the command
/// line before anything is sent).
pub fn check_text(field: &'static str, s: &str) -> Result<(), TextError> {
    if s.is_empty() || s.len() > MAX_TEXT || s.chars().any(char::is_control) {
        return Err(TextError::Invalid { field });
    }
    Ok(())
}

fn seal_private<R: CryptoRng + ?Sized, T: Serialize>(
    rng: &mut R,
    key: &OrgKey,
    org: &OrgId,
    purpose: &str,
    subject: &[u8],
    value: &T,
) -> Vec<u8> {
    let plain = Zeroizing::new(postcard::to_stdvec(value).unwrap_or_default());
    key.seal(rng, org, purpose, subject, &plain)
}

/// Opens and decodes a private part.
pub fn open_private<T: for<'de> Deserialize<'de>>(
    key: &dyn OrgKeys,
    org: &OrgId,
    purpose: &str,
    subject: &[u8],
    sealed: &[u8],
) -> Result<T, KeyError> {
    let plain = key.open(org, purpose, subject, sealed)?;
    match postcard::take_from_bytes::<T>(&plain) {
        Ok((v, [])) => Ok(v),
        _ => Err(KeyError::Malformed),
    }
}

/// Everything the first device of a new organization holds.
pub struct NewOrg {
    /// The organization id (the root verifying key).
    pub org: OrgId,
    /// The signed genesis entry.
    pub genesis: Vec<u8>,
    /// The organization key.
    pub org_key: OrgKey,
    /// The first admin.
    pub user: UserId,
    /// The first admin's user key, generation 0.
    pub user_secret: UserSecret,
    /// The first device's keys.
    pub device: DeviceKeys,
}

/// What a new user or device brings to be certified.
pub struct Newcomer<'a> {
    /// User name.
    pub name: &'a str,
    /// E-mail.
    pub email: &'a str,
    /// First device label.
    pub device_label: &'a str,
}

/// Creates an organization: a fresh root key signs the genesis and is destroyed.
pub fn create_org<R: CryptoRng + ?Sized>(
    rng: &mut R,
    now_ms: u64,
    clock: &mut Clock,
    org_name: &str,
    admin: &Newcomer<'_>,
) -> Result<NewOrg, TextError> {
    check_text("organization name", org_name)?;
    check_text("user name", admin.name)?;
    check_text("e-mail", admin.email)?;
    check_text("device label", admin.device_label)?;
    let root = DeviceKeys::generate(rng);
    let org = OrgId(root.id().0);
    let org_key = OrgKey::generate(rng);
    let device = DeviceKeys::generate(rng);
    let user_secret = UserSecret::generate(0, rng);
    let claim = claim_first(&device, &org, &user_secret.public());
    let user = claim.first_user(&org);
    let body = EntryBody {
        org,
        parents: Vec::new(),
        author: root.id(),
        time: clock.tick(now_ms),
        cert: Certificate::Genesis(Genesis {
            private: seal_private(
                rng,
                &org_key,
                &org,
                PRIVATE_ORG,
                &org.0,
                &OrgPrivate {
                    name: org_name.to_owned(),
                },
            ),
            admin: user_cert(
                rng,
                &org_key,
                &org,
                Profile::Admin,
                &user_secret.public(),
                &claim,
                admin,
            ),
        }),
    };
    let genesis = entry::sign(&root, &body);
    drop(root);
    Ok(NewOrg {
        org,
        genesis,
        org_key,
        user,
        user_secret,
        device,
    })
}

/// A device's consent to be certified: its keys and its proof of possession, signed by the
/// device itself (see `entry::pop_message`). Made on the new device, carried to the certifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The device.
    pub device: DeviceId,
    /// Its exchange key.
    pub exchange_key: [u8; 32],
    /// Its signature over the certificate's contents.
    pub pop: Vec<u8>,
}

/// The consent of a new user's first device; the user id is derived from the device key.
pub fn claim_first(device: &DeviceKeys, org: &OrgId, user_key: &[u8; 32]) -> Claimed {
    let user = UserId::derive(org, &device.id());
    Claimed {
        device: device.id(),
        exchange_key: device.exchange_public(),
        pop: pop::sign_pop(
            device,
            org,
            pop::PopFor::First {
                user: &user,
                user_key,
            },
        ),
    }
}

/// The consent of a new device to be added by `certifier` to the certifier's user.
pub fn claim_device(device: &DeviceKeys, org: &OrgId, certifier: &DeviceId) -> Claimed {
    Claimed {
        device: device.id(),
        exchange_key: device.exchange_public(),
        pop: pop::sign_pop(device, org, pop::PopFor::By { certifier }),
    }
}

impl Claimed {
    /// The user this device starts, as a first device ([`UserId::derive`]).
    pub fn first_user(&self, org: &OrgId) -> UserId {
        UserId::derive(org, &self.device)
    }
}

fn user_cert<R: CryptoRng + ?Sized>(
    rng: &mut R,
    org_key: &OrgKey,
    org: &OrgId,
    profile: Profile,
    user_key: &[u8; 32],
    claim: &Claimed,
    who: &Newcomer<'_>,
) -> UserAdded {
    let user = claim.first_user(org);
    UserAdded {
        user,
        profile,
        user_key: *user_key,
        private: seal_private(
            rng,
            org_key,
            org,
            PRIVATE_USER,
            &user.0,
            &UserPrivate {
                name: who.name.to_owned(),
                email: who.email.to_owned(),
            },
        ),
        device: device_cert(rng, org_key, org, user, claim, who.device_label),
    }
}

fn device_cert<R: CryptoRng + ?Sized>(
    rng: &mut R,
    org_key: &OrgKey,
    org: &OrgId,
    user: UserId,
    claim: &Claimed,
    label: &str,
) -> DeviceAdded {
    DeviceAdded {
        user,
        device: claim.device,
        exchange_key: claim.exchange_key,
        private: seal_private(
            rng,
            org_key,
            org,
            PRIVATE_DEVICE,
            &claim.device.0,
            &DevicePrivate {
                label: label.to_owned(),
            },
        ),
        pop: claim.pop.clone(),
    }
}

/// A device writing entries on its log.
pub struct Writer<'a> {
    /// The writing device.
    pub keys: &'a DeviceKeys,
    /// The organization key (for private parts).
    pub org_key: &'a OrgKey,
    /// The device's clock.
    pub clock: &'a mut Clock,
}

/// Signs `cert` by `keys` on top of the log's kept heads (at most [`entry::MAX_PARENTS`] of
/// them, chosen by [`OrgLog::draft_parents`], so that no number of heads blocks a writer). A
/// certificate already made needs no organization key to be signed.
pub fn draft(
    keys: &DeviceKeys,
    clock: &mut Clock,
    log: &OrgLog,
    now_ms: u64,
    cert: Certificate,
) -> Vec<u8> {
    let parents = log.draft_parents(&keys.id());
    clock.observe(log.max_time(&parents));
    let body = EntryBody {
        org: log.org(),
        parents,
        author: keys.id(),
        time: clock.tick(now_ms),
        cert,
    };
    entry::sign(keys, &body)
}

impl Writer<'_> {
    /// [`draft`] by this writer's device and clock.
    pub fn draft(&mut self, log: &OrgLog, now_ms: u64, cert: Certificate) -> Vec<u8> {
        draft(self.keys, self.clock, log, now_ms, cert)
    }

    /// Certificate for a new user whose key pair and first device the newcomer generated; the
    /// device's consent ([`claim_first`]) carries the derived user id.
    pub fn user_added<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        org: &OrgId,
        profile: Profile,
        user_public: &UserSecretPublic,
        claim: &Claimed,
        who: &Newcomer<'_>,
    ) -> Result<Certificate, TextError> {
        check_text("user name", who.name)?;
        check_text("e-mail", who.email)?;
        check_text("device label", who.device_label)?;
        Ok(Certificate::UserAdded(user_cert(
            rng,
            self.org_key,
            org,
            profile,
            &user_public.0,
            claim,
            who,
        )))
    }

    /// Certificate for a new device of the writer's own user `user`, given the device's consent
    /// to be certified by this writer ([`claim_device`]).
    pub fn device_added<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        org: &OrgId,
        user: UserId,
        claim: &Claimed,
        label: &str,
    ) -> Result<Certificate, TextError> {
        check_text("device label", label)?;
        Ok(Certificate::DeviceAdded(device_cert(
            rng,
            self.org_key,
            org,
            user,
            claim,
            label,
        )))
    }
}

impl Writer<'_> {
    /// Records an invitation made by this device: for a user invitation (`email` given) the
    /// e-mail is sealed under the organization key, bound to the purpose and the invitation id.
    pub fn invitation_recorded<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        org: &OrgId,
        id: [u8; 16],
        invited: Invited,
        expires_ms: u64,
        email: Option<&str>,
    ) -> Result<Certificate, TextError> {
        let private = match email {
            Some(email) => {
                check_text("e-mail", email)?;
                seal_private(
                    rng,
                    self.org_key,
                    org,
                    PRIVATE_INVITATION,
                    &id,
                    &InvitationPrivate {
                        email: email.to_owned(),
                    },
                )
            }
            None => Vec::new(),
        };
        Ok(Certificate::InvitationRecorded(InvitationRecorded {
            id,
            invited,
            expires_ms,
            greeter: self.keys.id(),
            private,
        }))
    }
}

/// A user's public key, as a newcomer hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSecretPublic(pub [u8; 32]);

/// A rotation of `user`'s key to `next`, sealed to `recipients` (device id, exchange key).
pub fn rotation<R: CryptoRng + ?Sized>(
    rng: &mut R,
    org: &OrgId,
    user: UserId,
    prev: &UserSecret,
    next: &UserSecret,
    recipients: &[(DeviceId, [u8; 32])],
) -> Result<Certificate, KeyError> {
    let mut sealed = Vec::with_capacity(recipients.len());
    for (device, exchange) in recipients {
        let aad = keys::user_key_aad(org, &user, next.generation, device);
        sealed.push((
            *device,
            keys::seal_to_device(rng, exchange, &aad, next.secret_bytes())?,
        ));
    }
    sealed.sort_by_key(|(d, _)| *d);
    Ok(Certificate::UserKeyRotated(UserKeyRotated {
        user,
        generation: next.generation,
        key: next.public(),
        sealed,
        prev: keys::chain_prev(rng, &user, next, prev),
    }))
}

/// Opens the secret a rotation sealed to `device`.
pub fn open_rotation(
    org: &OrgId,
    device: &DeviceKeys,
    r: &UserKeyRotated,
) -> Result<UserSecret, KeyError> {
    let me = device.id();
    let (_, sealed) = r
        .sealed
        .iter()
        .find(|(d, _)| *d == me)
        .ok_or(KeyError::Open)?;
    let aad = keys::user_key_aad(org, &r.user, r.generation, &me);
    let plain = device.open_sealed(&aad, sealed)?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Malformed)?;
    let s = UserSecret::from_bytes(r.generation, &bytes);
    if s.public() != r.key {
        return Err(KeyError::Malformed);
    }
    Ok(s)
}

/// A relay authorization certificate.
pub fn relay_authorized(relay: DeviceId, addrs: Vec<String>) -> Certificate {
    Certificate::RelayAuthorized(RelayAuthorized { relay, addrs })
}

/// A relay revocation certificate (final: no later authorization of that relay counts).
pub fn relay_revoked(relay: DeviceId) -> Certificate {
    Certificate::RelayRevoked { relay }
}
