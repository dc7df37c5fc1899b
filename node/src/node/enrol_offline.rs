//! Air-gapped enrolment on a node: the greeter opens a request file and draws the challenge the
//! admin says to the claimer (after reading the request, never before: `enroll::offline`); once
//! the admin typed the claimer's code for that challenge, it certifies the claimer and writes the
//! answer. The challenge travels between the two calls with the caller (the admin's `cloison
//! greet`, which may run without a daemon), so nothing is kept between them here. The claimer
//! keeps its pending state (keys, seed, token) between its steps in a passphrase-sealed file.
//!
//! Pending file (`join-pending.cloison` in the new home, mode 0600):
//! `0x01 || m_kib u32le || t u32le || p u32le || salt (16) || sealed`, `sealed` = XChaCha20-
//! Poly1305 under the Argon2id key of the passphrase (as the key file), aad
//! `"cloison join pending v1"`, plaintext `postcard(PendingPlain)`.
//!
//! Invariants: the greeter signs nothing before the admin typed the right claimer code for the
//! challenge (a wrong one burns the invitation); the claimer stores nothing from an answer before its user
//! typed the right greeter code; secrets in the pending state zeroize.

use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::enrol::InviteState;
use super::{Node, NodeError};
use crate::enroll::{self, Challenge, Claim, GreetMsg, OfflineGreeter, Token};
use crate::keystore::{self, KdfParams, KeystoreError};
use crate::trust::keys::{open_sym, seal_sym};
use crate::trust::{DeviceKeys, UserSecret};

/// File name of the claimer's pending state.
pub const PENDING_FILE: &str = "join-pending.cloison";
const PENDING_AAD: &[u8] = b"cloison join pending v1";
const MAX_PENDING: usize = 16 * 1024;

/// What the greeter's `open` learns from a request.
pub struct OfflineOpened {
    /// The claim.
    pub claim: Claim,
    /// The challenge to say to the claimer (drawn now, after the request was read), and to pass
    /// back to [`Node::offline_answer`].
    pub challenge: Challenge,
    /// Four candidates for the claimer's code under that challenge, one right.
    pub choices: Vec<String>,
}

/// The outcome of answering a request.
pub enum OfflineOutcome {
    /// The answer file's bytes, the greeter's code, the new user and device ids.
    Answered {
        /// The answer file.
        answer: Vec<u8>,
        /// The code to read to the claimer.
        greeter_code: String,
        /// The user.
        user: String,
        /// The device.
        device: String,
    },
    /// A wrong code: the invitation is burned, no answer.
    WrongCode,
}

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    rand::rng().fill_bytes(&mut s);
    s
}

impl Node {
    fn offline_greeter(
        &self,
        query: &str,
        request: &[u8],
    ) -> Result<(super::enrol::InvitationRecord, OfflineGreeter, Claim), NodeError> {
        let rec = self.find_invitation(query)?;
        if let Some(r) = rec.refusal(super::now_ms()) {
            return Err(NodeError::Refused(r.message().into()));
        }
        let (g, claim) = OfflineGreeter::open(
            &self.org_id(),
            &self.device_id(),
            &rec.secret(),
            request,
            seed(),
        )
        .map_err(|e| NodeError::Invalid(format!("cannot open the request: {e}")))?;
        Ok((rec, g, claim))
    }

    /// Opens a request file: who claims, a fresh challenge (drawn after the request was read)
    /// and choices for the claimer's code under it.
    pub fn offline_open(&self, query: &str, request: &[u8]) -> Result<OfflineOpened, NodeError> {
        let (_, g, claim) = self.offline_greeter(query, request)?;
        let mut random = [0u8; 8];
        rand::rng().fill_bytes(&mut random);
        let challenge = Challenge::from_random(random);
        Ok(OfflineOpened {
            claim,
            choices: enroll::code_choices(&g.claimer_code(&challenge), seed()),
            challenge,
        })
    }

    /// Answers a request once the admin typed the claimer's code for `challenge` (the one
    /// [`Node::offline_open`] drew for this request): certifies the claimer (admitted at once:
    /// the answer travels alone) and returns the answer file. A wrong code burns the invitation.
    pub fn offline_answer(
        &mut self,
        query: &str,
        request: &[u8],
        challenge: &str,
        typed: &str,
    ) -> Result<OfflineOutcome, NodeError> {
        let challenge =
            Challenge::parse(challenge).map_err(|e| NodeError::Invalid(e.to_string()))?;
        let (rec, g, claim) = self.offline_greeter(query, request)?;
        if !enroll::code_matches(typed, &g.claimer_code(&challenge)) {
            self.set_invitation_state(&rec.id(), InviteState::Burned)?;
            return Ok(OfflineOutcome::WrongCode);
        }
        let (welcome, certs) = self.enrolment_welcome(&rec, &claim)?;
        let user = welcome.user.to_string();
        let (answer, greeter_code) = g
            .answer(&GreetMsg::Welcome(Box::new(welcome)))
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        self.admit_enrolment(certs)?;
        self.set_invitation_state(&rec.id(), InviteState::Used)?;
        Ok(OfflineOutcome::Answered {
            answer,
            greeter_code,
            user,
            device: claim.device.to_string(),
        })
    }
}

/// The claimer's state between writing its request and reading the answer.
pub struct PendingJoin {
    /// The token.
    pub token: Token,
    /// The new device's keys.
    pub device: DeviceKeys,
    /// The new user's key (user invitations).
    pub user_secret: Option<UserSecret>,
    /// The claim sent.
    pub claim: Claim,
    /// The seed the request was made from.
    pub seed: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct PendingPlain {
    token: Vec<u8>,
    sign: [u8; 32],
    exchange: [u8; 32],
    user_secret: Option<[u8; 32]>,
    claim: Vec<u8>,
    seed: [u8; 32],
}

impl Drop for PendingPlain {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.token.zeroize();
        self.sign.zeroize();
        self.exchange.zeroize();
        self.user_secret.zeroize();
        self.seed.zeroize();
    }
}

impl PendingJoin {
    /// Writes the pending state into `home` (created if missing; refused if it holds a device).
    pub fn save(&self, home: &Path, passphrase: &[u8], kdf: KdfParams) -> Result<(), NodeError> {
        super::prepare_home(home)?;
        let (sign, exchange) = self.device.secrets();
        let plain = PendingPlain {
            token: self
                .token
                .to_bytes()
                .map_err(|e| NodeError::Invalid(e.to_string()))?,
            sign: *sign,
            exchange: *exchange,
            user_secret: self.user_secret.as_ref().map(|s| *s.secret_bytes()),
            claim: self
                .claim
                .encode()
                .map_err(|e| NodeError::Invalid(e.to_string()))?,
            seed: self.seed,
        };
        let bytes = Zeroizing::new(
            postcard::to_stdvec(&plain).map_err(|_| NodeError::Invalid("cannot encode".into()))?,
        );
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let kek = keystore::derive(passphrase, &salt, kdf)?;
        let mut file = vec![0x01];
        for v in [kdf.m_kib, kdf.t, kdf.p] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        file.extend_from_slice(&salt);
        file.extend_from_slice(&seal_sym(&mut rand::rng(), &kek, PENDING_AAD, &bytes));
        keystore::write_atomic(&home.join(PENDING_FILE), &file).map_err(|err| NodeError::Io {
            path: home.join(PENDING_FILE),
            err,
        })
    }

    /// Reads the pending state of `home`.
    pub fn load(home: &Path, passphrase: &[u8]) -> Result<PendingJoin, NodeError> {
        let path = home.join(PENDING_FILE);
        let file = std::fs::read(&path).map_err(|err| NodeError::Io {
            path: path.clone(),
            err,
        })?;
        let bad = || NodeError::Invalid(format!("{} is damaged", path.display()));
        if file.len() < 29 || file.len() > MAX_PENDING || file[0] != 0x01 {
            return Err(bad());
        }
        let u = |i: usize| u32::from_le_bytes([file[i], file[i + 1], file[i + 2], file[i + 3]]);
        let kdf = KdfParams {
            m_kib: u(1),
            t: u(5),
            p: u(9),
        };
        kdf.check()?;
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&file[13..29]);
        let kek = keystore::derive(passphrase, &salt, kdf)?;
        let plain = open_sym(&kek, PENDING_AAD, &file[29..])
            .map_err(|_| NodeError::Keystore(KeystoreError::WrongPassphrase(path.clone())))?;
        let p: PendingPlain = match postcard::take_from_bytes(&plain) {
            Ok((p, [])) => p,
            _ => return Err(bad()),
        };
        let token = Token::from_bytes(&p.token).map_err(|_| bad())?;
        Ok(PendingJoin {
            token,
            device: DeviceKeys::from_secrets(&p.sign, &p.exchange),
            user_secret: p.user_secret.map(|s| UserSecret::from_bytes(0, &s)),
            claim: Claim::decode(&p.claim).map_err(|_| bad())?,
            seed: p.seed,
        })
    }

    /// Removes the pending state.
    pub fn remove(home: &Path) {
        let _ = std::fs::remove_file(home.join(PENDING_FILE));
    }
}

#[cfg(test)]
#[path = "enrol_offline_tests.rs"]
mod tests;
