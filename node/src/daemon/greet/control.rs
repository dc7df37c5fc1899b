//! The enrolment control requests in the daemon: `invite_create` (starts the greeting swarm and
//! puts its addresses in the token), `invitations`, `invite_cancel`, and the greeting steps
//! `greet_wait`, `greet_confirm`, `greet_abort`, each waiting at most [`MAX_WAIT`] while the
//! daemon keeps running.

use std::time::Duration;

use super::super::Io;
use super::{Greeting, MAX_WAIT};
use crate::control::enrol::{ClaimerInfo, GreetStep};
use crate::control::{Request, Response};
use crate::enroll::{self, GreetMsg, InvitationId};
use crate::net::greet::GreetEvent;
use crate::node::enrol::InviteState;
use crate::node::{Node, NodeError};

impl Greeting {
    /// The step, marked as reported when it is an end (see `GreetWait`).
    fn report(&mut self, id: &InvitationId) -> GreetStep {
        let st = self.step(id);
        if matches!(st.state.as_str(), "done" | "aborted")
            && let Some(s) = self.sessions.get_mut(id)
        {
            s.reported = true;
        }
        st
    }

    fn step(&self, id: &InvitationId) -> GreetStep {
        let mut st = GreetStep {
            id: id.to_string(),
            state: "waiting".into(),
            greeter_code: None,
            claimer_choices: Vec::new(),
            claimer: None,
            reason: None,
            user: None,
            device: None,
        };
        let Some(s) = self.sessions.get(id) else {
            return st;
        };
        st.claimer = s.claim.as_ref().map(|c| ClaimerInfo {
            name: c.user.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
            device_label: c.device_label.clone(),
        });
        if let Some(c) = &s.codes {
            st.greeter_code = Some(c.greeter.clone());
            st.claimer_choices = s.choices.clone();
            st.state = if s.admin_ok { "confirmed" } else { "codes" }.into();
        }
        if s.done {
            st.state = "done".into();
            st.user = s.user.map(|u| u.to_string());
            st.device = s.claim.as_ref().map(|c| c.device.to_string());
        } else if let Some(r) = &s.aborted {
            st.state = "aborted".into();
            st.reason = Some(r.clone());
        }
        st
    }
}

/// Runs an enrolment control request in the daemon.
pub(crate) async fn call(
    node: &mut Node,
    io: &mut Io,
    req: Request,
) -> Result<Response, NodeError> {
    match req {
        Request::InviteCreate { invitee, ttl_s } => {
            io.greet.start(node, Vec::new()).await;
            let addrs = io.greet.token_addrs();
            if addrs.is_empty() {
                return Err(NodeError::Invalid(
                    "the greeting listener has no address; check --listen".into(),
                ));
            }
            Ok(Response::Invitation(
                node.create_invitation(&invitee, ttl_s, addrs)?,
            ))
        }
        Request::Invitations => Ok(Response::Invitations(node.invitations()?)),
        Request::InviteCancel { id } => {
            let info = node.cancel_invitation(&id)?;
            if let Ok(iid) = parse_id(&info.id)
                && let Some(s) = io.greet.sessions.get_mut(&iid)
                && !s.done
            {
                s.aborted = Some("the invitation was cancelled".into());
            }
            io.greet.stop_if_idle(node).await;
            Ok(Response::Invitation(info))
        }
        Request::GreetWait { id, timeout_s } => {
            let rec = node.find_invitation(&id)?;
            let iid = rec.id();
            // A session that ended (a dropped connection) and was reported, on an invitation
            // still live: a new claimer may come; wait for it rather than repeat the old end.
            if rec.refusal(crate::node::now_ms()).is_none()
                && io
                    .greet
                    .sessions
                    .get(&iid)
                    .is_some_and(|s| s.reported && !s.done)
            {
                io.greet.sessions.remove(&iid);
            }
            // No session and nothing more can come: say why instead of waiting.
            if let Some(r) = rec.refusal(crate::node::now_ms())
                && !io.greet.sessions.contains_key(&iid)
            {
                let mut st = io.greet.step(&iid);
                st.state = "aborted".into();
                st.reason = Some(r.message().into());
                return Ok(Response::Greeting(st));
            }
            wait(node, io, iid, timeout_s, |st| {
                !matches!(st.state.as_str(), "waiting" | "confirmed")
            })
            .await
        }
        Request::GreetConfirm {
            id,
            code,
            timeout_s,
        } => {
            let iid = node.find_invitation(&id)?.id();
            let peer = {
                let Some(s) = io.greet.sessions.get_mut(&iid) else {
                    return Err(NodeError::Invalid(
                        "no claimer is being greeted on this invitation; run greet_wait first"
                            .into(),
                    ));
                };
                let (Some(codes), None, false) = (&s.codes, &s.aborted, s.done) else {
                    return Ok(Response::Greeting(io.greet.report(&iid)));
                };
                if !enroll::code_matches(&code, &codes.claimer) {
                    tracing::warn!(invitation = %iid, "wrong claimer code; invitation burned");
                    node.set_invitation_state(&iid, InviteState::Burned)?;
                    s.aborted = Some("wrong code: the claimer's code did not match".into());
                    // Seal only for a held request: a sealed message never sent would
                    // desynchronize the channel's nonces.
                    if let (Some(r), Some(t)) = (s.pending.take(), s.session.as_mut())
                        && let Ok(b) = t.seal(&GreetMsg::Abort {
                            reason: "the admin typed a wrong code".into(),
                        })
                    {
                        io.greet.respond(r, b).await;
                    }
                    return Ok(Response::Greeting(io.greet.report(&iid)));
                }
                s.admin_ok = true;
                s.peer
            };
            if let Some((r, b)) = io.greet.complete(node, peer) {
                io.greet.respond(r, b).await;
            }
            wait(node, io, iid, timeout_s, |st| {
                matches!(st.state.as_str(), "done" | "aborted")
            })
            .await
        }
        Request::GreetAbort { id } => {
            let iid = node.find_invitation(&id)?.id();
            node.set_invitation_state(&iid, InviteState::Burned)?;
            if let Some(s) = io.greet.sessions.get_mut(&iid)
                && !s.done
            {
                s.aborted = Some("aborted by the admin".into());
                if let (Some(r), Some(t)) = (s.pending.take(), s.session.as_mut())
                    && let Ok(b) = t.seal(&GreetMsg::Abort {
                        reason: "the admin aborted".into(),
                    })
                {
                    io.greet.respond(r, b).await;
                }
            }
            Ok(Response::Greeting(io.greet.report(&iid)))
        }
        _ => Err(NodeError::Invalid("not an enrolment request".into())),
    }
}

fn parse_id(s: &str) -> Result<InvitationId, NodeError> {
    let b = hex::decode(s).map_err(|_| NodeError::Invalid("bad invitation id".into()))?;
    let a: [u8; 16] = b
        .try_into()
        .map_err(|_| NodeError::Invalid("bad invitation id".into()))?;
    Ok(InvitationId(a))
}

/// Waits (pumping the daemon) until `ready` holds for the invitation's step or the timeout.
async fn wait(
    node: &mut Node,
    io: &mut Io,
    id: InvitationId,
    timeout_s: u64,
    ready: impl Fn(&GreetStep) -> bool,
) -> Result<Response, NodeError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s).min(MAX_WAIT);
    loop {
        let st = io.greet.step(&id);
        if ready(&st) {
            return Ok(Response::Greeting(io.greet.report(&id)));
        }
        tokio::select! {
            ev = io.greet.recv() => io.greet.on_event(node, ev).await,
            ev = io.events.recv() => {
                if let Some(ev) = ev {
                    io.on_net(node, ev);
                    io.drain(node);
                }
            }
            _ = tokio::time::sleep_until(deadline) => return Ok(Response::Greeting(st)),
        }
        io.timers(node);
        io.turn(node).await;
    }
}

/// For the daemon's loop: handle a greeting event with the node.
pub(crate) async fn on_event(node: &mut Node, io: &mut Io, ev: Option<GreetEvent>) {
    io.greet.on_event(node, ev).await;
}
