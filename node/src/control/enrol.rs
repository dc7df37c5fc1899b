//! Control-API types of enrolment: invitations and the greeting steps a front end (the
//! `cloison greet` command, the TUI) runs on the admin's side.
//!
//! The greeting is driven as request/response steps, each bounded in time, so a UI never holds
//! the daemon for long: `greet_wait` until the claimer's handshake completes (state `codes`),
//! then `greet_confirm` with the code the claimer reads out (state `confirmed`, `done` or
//! `aborted`), then `greet_wait` again until `done` or `aborted` if the claimer had not confirmed
//! yet. Nothing is written to the organization log before both sides confirmed.

use serde::{Deserialize, Serialize};

/// Who an invitation is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Invitee {
    /// A new user (admins only).
    User {
        /// Their e-mail (sealed under the organization key wherever it is stored or recorded).
        email: String,
        /// `admin`, `standard` or `outsider`.
        profile: String,
    },
    /// A new device of the inviting device's own user.
    Device,
}

/// An invitation, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationInfo {
    /// Its id (hex; a prefix of at least 4 characters is accepted wherever an id is asked).
    pub id: String,
    /// `user` or `device`.
    pub kind: String,
    /// The invited e-mail (user invitations).
    pub email: Option<String>,
    /// The profile the new user gets (user invitations).
    pub profile: Option<String>,
    /// Unix ms of creation.
    pub created_ms: u64,
    /// Unix ms after which it is refused.
    pub expires_ms: u64,
    /// `live`, `used`, `cancelled`, `burned` (a wrong code; known only to the greeter) or
    /// `expired`.
    pub state: String,
    /// The token to hand to the invitee (only on the device that created it, while live).
    pub token: Option<String>,
    /// Whether the organization log records it (so every admin sees it).
    #[serde(default)]
    pub recorded: bool,
    /// The name of the user whose device recorded it (from the log).
    #[serde(default)]
    pub recorded_by_user: Option<String>,
    /// The device that recorded it (hex id, from the log).
    #[serde(default)]
    pub recorded_by_device: Option<String>,
}

/// Where a greeting stands, as returned by `greet_wait` and `greet_confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreetStep {
    /// The invitation.
    pub id: String,
    /// `waiting` (no claimer yet), `codes` (handshake done: say `greeter_code` to the claimer
    /// and ask for theirs), `confirmed` (our side confirmed, the claimer's not yet), `done`, or
    /// `aborted` (see `reason`; the invitation is burned).
    pub state: String,
    /// The code to read out to the claimer (from `codes` on).
    pub greeter_code: Option<String>,
    /// Four candidates for the claimer's code, exactly one right, for a UI that lets the admin
    /// pick instead of typing (from `codes` on).
    pub claimer_choices: Vec<String>,
    /// What the claimer says about itself (authenticated by the token, not yet by the codes).
    pub claimer: Option<ClaimerInfo>,
    /// Why it was aborted.
    pub reason: Option<String>,
    /// The new user's id (hex), once `done`.
    pub user: Option<String>,
    /// The new device's id (hex), once `done`.
    pub device: Option<String>,
}

/// What a claimer tells about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimerInfo {
    /// The user's name (user invitations; for a device invitation the existing user's).
    pub name: String,
    /// The new device's label.
    pub device_label: String,
}

/// Runs an enrolment request without a daemon (the daemon answers them all itself): listing
/// and cancelling work on the store; an invitation made without a daemon names no address (it
/// can be used offline); greeting needs the daemon.
pub fn execute(
    node: &mut crate::node::Node,
    request: super::Request,
) -> Result<super::Response, crate::node::NodeError> {
    use super::{Request, Response};
    use crate::node::NodeError;
    match request {
        Request::InviteCreate { invitee, ttl_s } => Ok(Response::Invitation(
            node.create_invitation(&invitee, ttl_s, Vec::new())?,
        )),
        Request::Invitations => Ok(Response::Invitations(node.invitations()?)),
        Request::InviteCancel { id } => Ok(Response::Invitation(node.cancel_invitation(&id)?)),
        Request::GreetOfflineOpen { id, request } => {
            let bytes = read_request(&request)?;
            let o = node.offline_open(&id, &bytes)?;
            let rec = node.find_invitation(&id)?;
            Ok(Response::Greeting(GreetStep {
                id: rec.id().to_string(),
                state: "codes".into(),
                greeter_code: Some(o.challenge.as_str().to_owned()),
                claimer_choices: o.choices,
                claimer: Some(claimer_info(&o.claim)),
                reason: None,
                user: None,
                device: None,
            }))
        }
        Request::GreetOfflineAnswer {
            id,
            request,
            challenge,
            code,
            out,
        } => {
            use crate::node::enrol_offline::OfflineOutcome;
            let bytes = read_request(&request)?;
            let rec = node.find_invitation(&id)?;
            let mut step = GreetStep {
                id: rec.id().to_string(),
                state: "aborted".into(),
                greeter_code: None,
                claimer_choices: Vec::new(),
                claimer: None,
                reason: None,
                user: None,
                device: None,
            };
            match node.offline_answer(&id, &bytes, &challenge, &code)? {
                OfflineOutcome::WrongCode => {
                    step.reason = Some("wrong code: the claimer's code did not match".into());
                }
                OfflineOutcome::Answered {
                    answer,
                    greeter_code,
                    user,
                    device,
                } => {
                    crate::keystore::write_atomic(&out, &answer).map_err(|err| NodeError::Io {
                        path: out.clone(),
                        err,
                    })?;
                    step.state = "done".into();
                    step.greeter_code = Some(greeter_code);
                    step.user = Some(user);
                    step.device = Some(device);
                }
            }
            Ok(Response::Greeting(step))
        }
        _ => Err(NodeError::Invalid(
            "greeting needs the running daemon of this device: start `cloison run`".into(),
        )),
    }
}

fn read_request(path: &std::path::Path) -> Result<Vec<u8>, crate::node::NodeError> {
    use std::io::Read;
    let io = |err| crate::node::NodeError::Io {
        path: path.to_owned(),
        err,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(64 * 1024).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

fn claimer_info(c: &crate::enroll::Claim) -> ClaimerInfo {
    ClaimerInfo {
        name: c.user.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
        device_label: c.device_label.clone(),
    }
}
