//! Why an envelope was refused.
//!
//! Invariant: one variant per reason, each with a stable [`Refusal::label`]; a refused envelope is
//! never stored.

use super::envelope::Kind;
use super::ids::{EnvelopeId, Role};
use crate::trust::{DeviceId, UserId};

/// A typed reason for refusing an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Bigger than the limit.
    #[error("{size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Ends early.
    #[error("truncated envelope")]
    Truncated,
    /// Unknown format version.
    #[error("unknown envelope format version {0:#04x}")]
    UnknownVersion(u8),
    /// Does not decode.
    #[error("malformed envelope")]
    Malformed,
    /// Bytes after a structure.
    #[error("trailing bytes")]
    TrailingBytes,
    /// Author key invalid or of small order.
    #[error("invalid author key")]
    BadKey,
    /// Signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Another organization or workspace.
    #[error("envelope of another organization or workspace")]
    WrongWorkspace,
    /// Parents unsorted, repeated or too many; or a non-creation without parents.
    #[error("bad parents")]
    BadParents,
    /// Organization heads empty, unsorted or too many.
    #[error("bad organization heads")]
    BadOrgHeads,
    /// Time out of range.
    #[error("timestamp out of range")]
    TimeOutOfRange,
    /// Time not after a parent's.
    #[error("timestamp not after its parents'")]
    TimeNotAfterParents,
    /// Payload inconsistent with the kind.
    #[error("malformed {kind:?} payload")]
    BadShape {
        /// Kind.
        kind: Kind,
    },
    /// A second creation, or a creation that is not the first envelope.
    #[error("bad workspace creation")]
    BadCreation,
    /// Too many envelopes waiting.
    #[error("too many envelopes waiting for their parents")]
    PendingFull,
    /// A parent was refused.
    #[error("parent {parent:?} was refused")]
    ParentRefused {
        /// The parent.
        parent: EnvelopeId,
    },
    /// The author is not an active device at the organization heads it names.
    #[error("author {device:?} is not an active device of the organization")]
    AuthorNotActive {
        /// Author.
        device: DeviceId,
    },
    /// The author's user may not create workspaces (OUTSIDER).
    #[error("outsiders cannot create workspaces")]
    OutsiderCannotCreate,
    /// The author's role is too low.
    #[error("needs role {needed}, author has {had:?}")]
    RoleTooLow {
        /// Needed.
        needed: Role,
        /// Had (None: not a member).
        had: Option<Role>,
    },
    /// A user named is not an active user of the organization.
    #[error("user {user:?} is not an active user of the organization")]
    UserNotActive {
        /// The user.
        user: UserId,
    },
    /// OUTSIDER users cap at CONTRIBUTOR.
    #[error("outsider {user:?} cannot be {role}")]
    OutsiderCap {
        /// The user.
        user: UserId,
        /// The role asked.
        role: Role,
    },
    /// Removing someone who is not a member.
    #[error("user {user:?} is not a member")]
    NotMember {
        /// The user.
        user: UserId,
    },
    /// Keys sealed to a non-member, to the wrong key generation, or a new epoch that misses a
    /// member.
    #[error("epoch keys do not match the membership: {why}")]
    BadRecipients {
        /// What is wrong.
        why: &'static str,
    },
    /// Content under an epoch that is not the current one of its causal past.
    #[error("content sealed under a stale or unknown epoch")]
    WrongEpoch,
    /// A share of epoch keys names an epoch not opened in its causal past.
    #[error("keys shared for epoch {epoch:?}, not opened in the envelope's causal past")]
    UnknownEpoch {
        /// The epoch named.
        epoch: EnvelopeId,
    },
    /// A `Keys` payload in a format version this device does not accept.
    #[error(
        "Keys payload format version {0:#04x} is not accepted (expected 0x02: epoch keys are committed since issue 14)"
    )]
    KeysVersion(u8),
}

impl Refusal {
    /// A stable label for counters and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::TooLarge { .. } => "too_large",
            Refusal::Truncated => "truncated",
            Refusal::UnknownVersion(_) => "unknown_version",
            Refusal::Malformed => "malformed",
            Refusal::TrailingBytes => "trailing_bytes",
            Refusal::BadKey => "bad_key",
            Refusal::BadSignature => "bad_signature",
            Refusal::WrongWorkspace => "wrong_workspace",
            Refusal::BadParents => "bad_parents",
            Refusal::BadOrgHeads => "bad_org_heads",
            Refusal::TimeOutOfRange => "time_out_of_range",
            Refusal::TimeNotAfterParents => "time_not_after_parents",
            Refusal::BadShape { .. } => "bad_shape",
            Refusal::BadCreation => "bad_creation",
            Refusal::PendingFull => "pending_full",
            Refusal::ParentRefused { .. } => "parent_refused",
            Refusal::AuthorNotActive { .. } => "author_not_active",
            Refusal::OutsiderCannotCreate => "outsider_cannot_create",
            Refusal::RoleTooLow { .. } => "role_too_low",
            Refusal::UserNotActive { .. } => "user_not_active",
            Refusal::OutsiderCap { .. } => "outsider_cap",
            Refusal::NotMember { .. } => "not_member",
            Refusal::BadRecipients { .. } => "bad_recipients",
            Refusal::WrongEpoch => "wrong_epoch",
            Refusal::UnknownEpoch { .. } => "unknown_epoch",
            Refusal::KeysVersion(_) => "keys_version",
        }
    }
}
