//! The enrolment commands of `cloison`: `invite`, `invitations`, `greet` (admin side, through
//! the daemon's control API) and `join` (the new device), and their output.
//!
//! Invariant: codes are printed on lines of their own and read from stdin, so a test (or a
//! script) can drive both sides through pipes; nothing else is read from stdin.

use cloison_node::control::enrol::InvitationInfo;

/// One invitation, as created.
pub fn invitation_text(i: &InvitationInfo) -> String {
    let mut t = format!(
        "invitation {} ({}{}), expires at {} (unix ms)\n",
        i.id,
        i.kind,
        i.email
            .as_ref()
            .map(|e| format!(" {e}, {}", i.profile.as_deref().unwrap_or("standard")))
            .unwrap_or_default(),
        i.expires_ms
    );
    if let Some(tok) = &i.token {
        t += "token (give it to the invitee; they run `cloison join TOKEN ...`):\n";
        t += tok;
        t += "\n";
    }
    t
}

/// The invitations table.
pub fn invitations_table(is: &[InvitationInfo]) -> String {
    let mut out = format!(
        "{:<12}  {:<6}  {:<28}  {:<9}  {:<9}  {}\n",
        "ID", "KIND", "E-MAIL", "PROFILE", "STATE", "EXPIRES (unix ms)"
    );
    for i in is {
        out += &format!(
            "{:<12}  {:<6}  {:<28}  {:<9}  {:<9}  {}\n",
            &i.id[..12.min(i.id.len())],
            i.kind,
            i.email.as_deref().unwrap_or("-"),
            i.profile.as_deref().unwrap_or("-"),
            i.state,
            i.expires_ms
        );
    }
    out
}
