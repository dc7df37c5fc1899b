//! Why an organization-log entry was refused.
//!
//! Invariant: every refusal has exactly one variant here, with the ids that explain it; each
//! variant's [`Rejection::label`] is a stable metric label. A refused entry is never stored.

use super::ids::{DeviceId, UserId};

/// A typed reason for refusing an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Bigger than the limit.
    #[error("entry of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Size received.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// The bytes end before the entry does.
    #[error("truncated entry")]
    Truncated,
    /// A format version this build does not know.
    #[error("unknown entry format version {0:#04x}")]
    UnknownVersion(u8),
    /// A format version this build no longer admits (written before a security fix).
    #[error(
        "entry format version {0} is retired: this organization log was written by an older Cloison and must be recreated"
    )]
    RetiredVersion(u8),
    /// A device certificate whose proof of possession does not verify under the device's key.
    #[error("the device key did not sign its own certificate (proof of possession)")]
    BadProofOfPossession,
    /// Too many entries are dated in the future and waiting for the wall clock.
    #[error("too many entries are dated in the future")]
    FutureFull,
    /// The body does not decode.
    #[error("malformed entry body")]
    Malformed,
    /// Bytes after the body.
    #[error("trailing bytes after the entry body")]
    TrailingBytes,
    /// The author key is not a valid, strong Ed25519 key.
    #[error("invalid author key")]
    BadKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The entry belongs to another organization.
    #[error("entry of another organization")]
    WrongOrg,
    /// More parents than allowed.
    #[error("{count} parents (limit {limit})", limit = super::entry::MAX_PARENTS)]
    TooManyParents {
        /// Count received.
        count: usize,
    },
    /// Parents not strictly increasing.
    #[error("parents not sorted or repeated")]
    UnsortedParents,
    /// Time beyond the representable range.
    #[error("timestamp out of range")]
    TimeOutOfRange,
    /// Time not after a parent's.
    #[error("timestamp not after its parents'")]
    TimeNotAfterParents,
    /// A genesis with parents, a non-genesis without, or a genesis not signed by the root.
    #[error("genesis rules broken (only the first entry has no parents, signed by the root key)")]
    GenesisShape,
    /// A second genesis, or a genesis for a log that has one.
    #[error("the organization already has a genesis")]
    SecondGenesis,
    /// A certificate field out of bounds or inconsistent.
    #[error("malformed {kind} certificate")]
    BadShape {
        /// Certificate kind.
        kind: &'static str,
    },
    /// A parent of the entry was refused, so the entry can never be admitted.
    #[error("parent {parent:?} was refused")]
    ParentRefused {
        /// The refused parent.
        parent: super::ids::EntryId,
    },
    /// The log holds too many entries waiting for their parents.
    #[error("too many entries waiting for their parents")]
    PendingFull,
    /// The author is not an active device in the entry's causal past.
    #[error("author device {device:?} unknown in the entry's causal past")]
    UnknownAuthor {
        /// The author.
        device: DeviceId,
    },
    /// The author device does not count: revoked (itself or its user) in the current state
    /// (`OrgLog::may_write`), or certified to two users (admission).
    #[error("author device {device:?} is revoked or certified twice")]
    AuthorRevoked {
        /// The author.
        device: DeviceId,
    },
    /// The author's user is not an admin.
    #[error("author device {device:?} is not an admin's")]
    NotAdmin {
        /// The author.
        device: DeviceId,
    },
    /// The author may not act on this user.
    #[error("author device {device:?} may not act on user {user:?}")]
    NotOwner {
        /// The author.
        device: DeviceId,
        /// The user acted on.
        user: UserId,
    },
    /// The user named does not exist in the entry's causal past.
    #[error("unknown user {user:?}")]
    UnknownUser {
        /// The user.
        user: UserId,
    },
    /// The user id is taken.
    #[error("user {user:?} already exists")]
    UserExists {
        /// The user.
        user: UserId,
    },
    /// The device named does not exist in the entry's causal past.
    #[error("unknown device {device:?}")]
    UnknownDevice {
        /// The device.
        device: DeviceId,
    },
    /// The device id is taken.
    #[error("device {device:?} already exists")]
    DeviceExists {
        /// The device.
        device: DeviceId,
    },
    /// A rotation whose generation is not the next one.
    #[error("user-key generation {got} where {expected} was expected")]
    BadGeneration {
        /// Expected generation.
        expected: u32,
        /// Generation received.
        got: u32,
    },
    /// A rotation sealed to a device that is not an active device of the user.
    #[error("rotation sealed to {device:?}, not an active device of the user")]
    BadRecipient {
        /// The device.
        device: DeviceId,
    },
    /// An invitation with this id is already recorded.
    #[error("invitation {} already recorded", hex::encode(id))]
    InvitationExists {
        /// The invitation id.
        id: [u8; 16],
    },
    /// Closing an invitation that is not recorded in the causal past.
    #[error("invitation {} is not recorded", hex::encode(id))]
    UnknownInvitation {
        /// The invitation id.
        id: [u8; 16],
    },
    /// Closing an invitation already closed in the causal past.
    #[error("invitation {} is already closed", hex::encode(id))]
    InvitationAlreadyClosed {
        /// The invitation id.
        id: [u8; 16],
    },
    /// The user already has as many devices as one user may (in the entry's causal past).
    #[error(
        "user {user:?} has {active} devices and {certs} device certificates: at most {} devices and {} certificates per user; revoke a device first",
        super::admission::MAX_USER_DEVICES,
        super::admission::MAX_USER_DEVICE_CERTS
    )]
    TooManyDevices {
        /// The user.
        user: UserId,
        /// Its devices not revoked in that past.
        active: usize,
        /// Its device certificates in that past.
        certs: usize,
    },
    /// The author's user has as many open invitations as one user may.
    #[error(
        "{open} invitations are open (at most {} per user): cancel some or let them expire",
        super::admission::MAX_PENDING_INVITATIONS
    )]
    TooManyInvitations {
        /// Open invitations in the entry's causal past.
        open: usize,
    },
    /// Revoking a relay that no entry in the causal past authorizes.
    #[error("relay {relay:?} is not authorized in this entry's past")]
    UnknownRelay {
        /// The relay.
        relay: DeviceId,
    },
    /// More shares of an organization key whose rotation by the same author is not in the
    /// causal past.
    #[error("no rotation to organization key {key_id:02x?} by this author in this entry's past")]
    UnknownOrgKey {
        /// The key id.
        key_id: [u8; 8],
    },
    /// A user given a second share of one organization key.
    #[error("user {user:?} already has a share of this organization key")]
    DuplicateShare {
        /// The user.
        user: UserId,
    },
}

impl Rejection {
    /// A stable label for counters and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::TooLarge { .. } => "too_large",
            Rejection::Truncated => "truncated",
            Rejection::UnknownVersion(_) => "unknown_version",
            Rejection::RetiredVersion(_) => "retired_version",
            Rejection::BadProofOfPossession => "bad_proof_of_possession",
            Rejection::FutureFull => "future_full",
            Rejection::Malformed => "malformed",
            Rejection::TrailingBytes => "trailing_bytes",
            Rejection::BadKey => "bad_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::WrongOrg => "wrong_org",
            Rejection::TooManyParents { .. } => "too_many_parents",
            Rejection::UnsortedParents => "unsorted_parents",
            Rejection::TimeOutOfRange => "time_out_of_range",
            Rejection::TimeNotAfterParents => "time_not_after_parents",
            Rejection::GenesisShape => "genesis_shape",
            Rejection::SecondGenesis => "second_genesis",
            Rejection::BadShape { .. } => "bad_shape",
            Rejection::ParentRefused { .. } => "parent_refused",
            Rejection::PendingFull => "pending_full",
            Rejection::UnknownAuthor { .. } => "unknown_author",
            Rejection::AuthorRevoked { .. } => "author_revoked",
            Rejection::NotAdmin { .. } => "not_admin",
            Rejection::NotOwner { .. } => "not_owner",
            Rejection::UnknownUser { .. } => "unknown_user",
            Rejection::UserExists { .. } => "user_exists",
            Rejection::UnknownDevice { .. } => "unknown_device",
            Rejection::DeviceExists { .. } => "device_exists",
            Rejection::BadGeneration { .. } => "bad_generation",
            Rejection::BadRecipient { .. } => "bad_recipient",
            Rejection::InvitationExists { .. } => "invitation_exists",
            Rejection::UnknownInvitation { .. } => "unknown_invitation",
            Rejection::InvitationAlreadyClosed { .. } => "invitation_already_closed",
            Rejection::TooManyDevices { .. } => "too_many_devices",
            Rejection::TooManyInvitations { .. } => "too_many_invitations",
            Rejection::UnknownRelay { .. } => "unknown_relay",
            Rejection::UnknownOrgKey { .. } => "unknown_org_key",
            Rejection::DuplicateShare { .. } => "duplicate_share",
        }
    }
}
