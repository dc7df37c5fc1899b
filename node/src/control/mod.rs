//! The control API: how the `cloison` command (and later the TUI) talks to a running daemon,
//! over a Unix socket inside the home directory (mode 0600 from its first moment, and the
//! peer's uid checked on every connection, so only the device's owner gets in: [`socket`]).
//!
//! Wire format (version [`VERSION`]): frames of `u32` big-endian length then that many bytes of
//! JSON, at most [`MAX_FRAME`] bytes. The client sends one [`RequestFrame`] per connection; the
//! daemon answers with zero or more [`Frame::Progress`] frames, then exactly one
//! [`Frame::Ok`] or [`Frame::Err`], and closes. A request of another version is answered with
//! [`Frame::Err`] of kind `version`.
//!
//! The same [`Request`]s run without a daemon: [`exec::execute`] is what the daemon calls and
//! what the command calls on a node it opened itself, so the two paths cannot drift apart.
//!
//! Invariants: frames over the limit are refused before allocation; anything that does not
//! decode is answered with a typed error, never a panic.

pub mod client;
pub mod enrol;
pub mod exec;
pub mod shown;
pub mod socket;
pub mod wire;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::node::{
    BundleReport, DeviceInfo, EntryInfo, FindReport, MemberInfo, OrgInfo, Progress, PutReport,
    UserInfo, VersionRow, WorkspaceInfo,
};

/// Protocol version.
pub const VERSION: u32 = 1;
/// Largest frame, either way.
pub const MAX_FRAME: usize = 16 << 20;
/// File name of the socket in the home directory.
pub const SOCKET: &str = "control.sock";

/// A request with its protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame {
    /// [`VERSION`].
    pub v: u32,
    /// What to do.
    pub request: Request,
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The organization.
    OrgShow,
    /// Users.
    Users,
    /// Devices.
    Devices,
    /// Revoke a device (id, prefix or label).
    RevokeDevice {
        /// The device.
        query: String,
    },
    /// Revoke a user (id, prefix, e-mail or name).
    RevokeUser {
        /// The user.
        query: String,
    },
    /// Create a workspace.
    WorkspaceCreate {
        /// Its name.
        name: String,
    },
    /// List workspaces.
    WorkspaceList,
    /// Rename a workspace (owners).
    WorkspaceRename {
        /// The workspace.
        ws: String,
        /// Its new name.
        name: String,
    },
    /// Share a workspace.
    WorkspaceShare {
        /// The workspace (name or id prefix).
        ws: String,
        /// The user (e-mail, name or id prefix).
        user: String,
        /// The role.
        role: String,
    },
    /// Unshare a workspace.
    WorkspaceUnshare {
        /// The workspace.
        ws: String,
        /// The user.
        user: String,
    },
    /// Members of a workspace.
    WorkspaceMembers {
        /// The workspace.
        ws: String,
    },
    /// Put a local file or directory.
    Put {
        /// The workspace.
        ws: String,
        /// Local path (absolute).
        local: PathBuf,
        /// Path in the workspace.
        remote: String,
    },
    /// Get a file or folder.
    Get {
        /// The workspace.
        ws: String,
        /// Path in the workspace.
        remote: String,
        /// Local destination (absolute).
        local: PathBuf,
        /// Seconds to wait for blocks that have not arrived yet (a daemon fetches them).
        #[serde(default)]
        wait_s: u64,
    },
    /// List a folder.
    Ls {
        /// The workspace.
        ws: String,
        /// The folder.
        path: String,
        /// Every entry under it, each with its full path (`ls -R`).
        #[serde(default)]
        recursive: bool,
    },
    /// Names matching a pattern (a glob, or a part of the name; case-insensitive) in every
    /// workspace this device can read, or in one. Answered from local documents only.
    Find {
        /// The pattern.
        pattern: String,
        /// Only this workspace.
        ws: Option<String>,
    },
    /// Move or rename.
    Mv {
        /// The workspace.
        ws: String,
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// Remove.
    Rm {
        /// The workspace.
        ws: String,
        /// The path.
        path: String,
    },
    /// Versions of a file.
    History {
        /// The workspace.
        ws: String,
        /// The path.
        path: String,
    },
    /// Restore a file or a version.
    Restore {
        /// The workspace.
        ws: String,
        /// The path.
        path: String,
        /// Version id prefix.
        version: Option<String>,
    },
    /// Sync status.
    Status,
    /// Peers (daemon only).
    Peers,
    /// Dial an address now and remember it.
    Connect {
        /// The multiaddress.
        addr: String,
    },
    /// Stop the daemon (daemon only).
    Shutdown,
    /// Write a bundle for an air-gapped site.
    BundleExport {
        /// The bundle file (absolute).
        out: PathBuf,
        /// Workspaces (names or id prefixes); all held if empty.
        workspaces: Vec<String>,
        /// A receipt from the destination: only what it lacks is carried.
        receipt: Option<PathBuf>,
    },
    /// Import a bundle.
    BundleImport {
        /// The bundle file (absolute).
        file: PathBuf,
    },
    /// Check a bundle and say what it holds.
    BundleInspect {
        /// The bundle file (absolute).
        file: PathBuf,
    },
    /// Write a receipt of what this device holds.
    BundleReceipt {
        /// The receipt file (absolute).
        out: PathBuf,
    },
    /// Create an invitation; answers [`Response::Invitation`] with its token.
    InviteCreate {
        /// For whom.
        invitee: enrol::Invitee,
        /// Lifetime in seconds (default 24 h, at most 30 days).
        ttl_s: Option<u64>,
    },
    /// Invitations known to this device (its own, and those recorded by other admins).
    Invitations,
    /// Cancel a live invitation (id or prefix).
    InviteCancel {
        /// The invitation.
        id: String,
    },
    /// Greeting, step 1 (and 3): wait at most `timeout_s` (capped at 30) for the next step of
    /// the greeting on invitation `id` (daemon only). Answers [`Response::Greeting`]; state
    /// `waiting` after the timeout is not an error: call again.
    GreetWait {
        /// The invitation.
        id: String,
        /// Seconds to wait, at most 30.
        timeout_s: u64,
    },
    /// Greeting, step 2: the code the claimer reads out. A wrong code aborts both sides and
    /// burns the invitation. Waits at most `timeout_s` (capped at 30) for the claimer's own
    /// confirmation; answers state `done`, `aborted` or `confirmed` (then `greet_wait`).
    GreetConfirm {
        /// The invitation.
        id: String,
        /// The claimer's code, as typed or picked.
        code: String,
        /// Seconds to wait for the claimer, at most 30.
        timeout_s: u64,
    },
    /// Abort a greeting in progress (the invitation is burned).
    GreetAbort {
        /// The invitation.
        id: String,
    },
    /// Air-gapped greeting, step 1: open a claimer's request file. Answers
    /// [`Response::Greeting`] in state `codes`: the claimer, `greeter_code` (the challenge,
    /// drawn after the request was read: say it to the claimer, who reads back their code) and
    /// `claimer_choices` (under that challenge).
    GreetOfflineOpen {
        /// The invitation.
        id: String,
        /// The request file (absolute).
        request: PathBuf,
    },
    /// Air-gapped greeting, step 2: with the claimer's code (told out of band) for the
    /// challenge of step 1, certify the claimer and write the answer file. State `done` with
    /// `greeter_code` to tell the claimer, or `aborted` (a wrong code burns the invitation; no
    /// file is written).
    GreetOfflineAnswer {
        /// The invitation.
        id: String,
        /// The request file (absolute).
        request: PathBuf,
        /// The challenge step 1 returned for this request (as `greeter_code`).
        challenge: String,
        /// The claimer's code.
        code: String,
        /// The answer file to write (absolute).
        out: PathBuf,
    },
    /// Authorize a relay (its multiaddress ends in `/p2p/<PeerId>`).
    RelayAdd {
        /// The address.
        addr: String,
    },
    /// Revoke a relay (admins; final).
    RelayRevoke {
        /// Its id, PeerId, address ending in `/p2p/<PeerId>`, or a prefix of its id or PeerId.
        relay: String,
    },
    /// The authorized relays, then the revoked ones.
    RelayList,
    /// Mirror a local directory to a workspace (kept across daemon restarts).
    SyncAdd {
        /// The workspace.
        ws: String,
        /// The directory (absolute).
        dir: PathBuf,
    },
    /// The folder mirrors and how their last round went.
    SyncList,
    /// Stop mirroring a workspace (the directory and the workspace stay as they are).
    SyncStop {
        /// The workspace.
        ws: String,
    },
}

/// A frame from the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum Frame {
    /// A long operation progressed.
    Progress {
        /// Where it is.
        progress: Progress,
    },
    /// The operation succeeded.
    Ok {
        /// Its result.
        response: Box<Response>,
    },
    /// The operation failed.
    Err {
        /// A stable label (`not_found`, `invalid`, `forbidden`, `version`, `daemon`, ...).
        kind: String,
        /// What to tell the user.
        message: String,
    },
}

/// What a request returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Response {
    /// Nothing to say.
    Done,
    /// A message for the user.
    Message(String),
    /// The organization.
    Org(OrgInfo),
    /// Users.
    Users(Vec<UserInfo>),
    /// Devices.
    Devices(Vec<DeviceInfo>),
    /// One workspace.
    Workspace(WorkspaceInfo),
    /// Workspaces.
    Workspaces(Vec<WorkspaceInfo>),
    /// Members.
    Members(Vec<MemberInfo>),
    /// A put.
    Put(PutReport),
    /// A get.
    Got(Progress),
    /// A listing.
    Entries(Vec<EntryInfo>),
    /// What `find` found.
    Found(FindReport),
    /// A history.
    History(Vec<VersionRow>),
    /// The version made current by a restore.
    Restored(String),
    /// Status.
    Status(StatusInfo),
    /// Peers.
    Peers(Vec<PeerInfo>),
    /// A bundle exported, imported or inspected.
    Bundle(BundleReport),
    /// An invitation (created: with its token).
    Invitation(enrol::InvitationInfo),
    /// Invitations.
    Invitations(Vec<enrol::InvitationInfo>),
    /// Where a greeting stands.
    Greeting(enrol::GreetStep),
    /// Authorized relays.
    Relays(Vec<RelayInfo>),
    /// Folder mirrors.
    Mirrors(Vec<MirrorInfo>),
}

/// A relay, for `cloison relay list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayInfo {
    /// Its id (hex of its Ed25519 key).
    pub id: String,
    /// Its libp2p PeerId.
    pub peer_id: String,
    /// Its addresses.
    pub addrs: Vec<String>,
    /// The authorizing entry (short; empty for a revoked relay).
    pub authorized_by: String,
    /// `authorized` or `revoked`.
    #[serde(default)]
    pub status: String,
    /// The revoking entry (short), for a revoked relay.
    #[serde(default)]
    pub revoked_by: Option<String>,
}

impl RelayInfo {
    /// [`RelayInfo::status`] of a relay devices use.
    pub const AUTHORIZED: &'static str = "authorized";
    /// [`RelayInfo::status`] of a revoked relay (never used again).
    pub const REVOKED: &'static str = "revoked";
}

/// A folder mirror, as `sync --list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorInfo {
    /// Workspace id (hex).
    pub ws: String,
    /// Workspace name.
    pub name: String,
    /// The local directory.
    pub dir: String,
    /// Whether a daemon runs it now.
    pub running: bool,
    /// Read-only (we are a READER: local edits are not uploaded).
    pub read_only: bool,
    /// Unix ms of the last round, if one ran.
    pub last_round_ms: Option<u64>,
    /// Totals since the mirror started in this daemon.
    pub totals: crate::node::folder::RoundReport,
}

/// The node's sync status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// This device (hex).
    pub device: String,
    /// Whether a daemon answered.
    pub daemon: bool,
    /// Where the daemon listens (with `/p2p/<peer id>`).
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: usize,
    /// Organization-log entries.
    pub org_entries: usize,
    /// Organization-log entries waiting for parents.
    pub org_waiting: usize,
    /// Blocks wanted and not yet received.
    pub blocks_pending: usize,
    /// Blocks in the store.
    pub blocks_stored: usize,
    /// Per workspace.
    pub workspaces: Vec<WorkspaceInfo>,
    /// Bytes sent by the engine.
    pub bytes_sent: u64,
    /// Bytes received by the engine.
    pub bytes_received: u64,
    /// Envelopes stored, all workspaces.
    #[serde(default)]
    pub envelopes: u64,
    /// Items refused from peers since the daemon started, by reason label.
    #[serde(default)]
    pub refused: std::collections::BTreeMap<String, u64>,
    /// The daemon's bandwidth limits and current rates (none without a daemon).
    #[serde(default)]
    pub bandwidth: Option<BandwidthInfo>,
}

/// A daemon's bandwidth limits (on file blocks) and its current rates (all sync messages, over
/// the last few seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthInfo {
    /// The send limit, in KiB/s (none: unlimited).
    pub max_send_kibps: Option<u64>,
    /// The receive limit, in KiB/s (none: unlimited).
    pub max_recv_kibps: Option<u64>,
    /// Bytes per second sent lately.
    pub send_bytes_per_s: u64,
    /// Bytes per second received lately.
    pub recv_bytes_per_s: u64,
    /// Block data waiting for the send limit, in bytes.
    pub send_queued: u64,
}

/// A peer, connected or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Device id (hex).
    pub device: String,
    /// Its label, if it is a device of our organization.
    pub label: Option<String>,
    /// Its user's name, if known.
    pub user: Option<String>,
    /// `connected`, `listening`, `refused`, or `remembered` (an address kept, its device not
    /// connected).
    pub state: String,
    /// Why it was refused.
    pub reason: Option<String>,
    /// Unix ms of the last change (for a `remembered` row: when the address was added).
    pub since_ms: u64,
    /// The addresses of it the daemon dials at start.
    #[serde(default)]
    pub remembered: Vec<RememberedAddr>,
}

/// An address the daemon dials at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedAddr {
    /// The multiaddress.
    pub addr: String,
    /// Daemon starts in a row at which its device did not connect (forgotten at
    /// `store::MAX_DIAL_FAILURES`).
    pub failures: u32,
}
