//! `cloison-bootstrap status`: a snapshot the relay's loop refreshes after every turn, served on
//! a Unix socket in the data directory (`relay.sock`, mode 0600): a client connects and reads
//! one frame (the control protocol's framing: `u32` big-endian length + JSON).
//!
//! Invariant: the snapshot holds counts and ids only (organization ids are public keys), never
//! anything a device wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;

use crate::control::wire::{self, WireError};

/// The socket's file name in the data directory.
pub const STATUS_SOCKET: &str = "relay.sock";

/// One organization served.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgStatus {
    /// The organization id (hex).
    pub org: String,
    /// Its active devices (per the log the relay holds).
    pub devices_active: usize,
    /// Its devices connected now.
    pub devices_connected: usize,
    /// Log entries stored.
    pub entries: usize,
    /// Workspaces stored.
    pub workspaces: usize,
    /// Envelopes stored.
    pub envelopes: u64,
    /// Blocks stored.
    pub blocks: u64,
    /// Bytes stored (envelopes and blocks).
    pub bytes: u64,
    /// The log the relay holds revokes it: the organization is no longer served (its devices
    /// are refused; what was stored is kept).
    #[serde(default)]
    pub revoked: bool,
}

/// The relay's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStatus {
    /// The relay's PeerId.
    pub peer_id: String,
    /// Full listen addresses (with `/p2p/<PeerId>`).
    pub listen: Vec<String>,
    /// Connections now (devices introduced or not).
    pub connections: usize,
    /// Organizations served.
    pub organizations: Vec<OrgStatus>,
    /// Refusals by reason label.
    pub refused: BTreeMap<String, u64>,
    /// Items and offers refused because a quota was reached.
    pub quota_refusals: u64,
    /// Introductions since start: `welcomed_at_once` (the device counted: no log sent),
    /// `log_asked` (a `LogWanted` sent), `log_entries_received` (entries in the answers).
    #[serde(default)]
    pub introductions: BTreeMap<String, u64>,
    /// Bytes stored in all.
    pub bytes_stored: u64,
    /// Time from a batch's arrival to its items persisted (`metrics::IngestTimer`).
    #[serde(default)]
    pub ingest: super::metrics::Histogram,
    /// Items (entries, envelopes, blocks) from devices that admission refused, by reason label.
    #[serde(default)]
    pub items_refused: BTreeMap<String, u64>,
}

/// The shared snapshot.
pub(crate) type Shared = Arc<Mutex<RelayStatus>>;

/// Binds the socket (a stale one is replaced, a live one means another relay runs:
/// `control::socket::bind_private`).
pub(crate) fn bind(dir: &Path) -> Result<UnixListener, std::io::Error> {
    crate::control::socket::bind_private(&dir.join(STATUS_SOCKET)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another relay runs on this data directory",
            )
        } else {
            e
        }
    })
}

/// Answers every connection with the current snapshot.
/// Only connections from `owner` (the uid owning the data directory) are answered.
pub(crate) async fn serve(listener: UnixListener, owner: u32, shared: Shared) {
    loop {
        match listener.accept().await {
            Ok((mut stream, _)) => {
                if !crate::control::socket::peer_is(&stream, owner) {
                    continue;
                }
                let snap = shared.lock().map(|s| s.clone()).unwrap_or_default();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        wire::write_frame_async(&mut stream, &snap),
                    )
                    .await;
                });
            }
            Err(e) => {
                tracing::warn!("status socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Asks the relay running on `dir` for its status.
pub fn query(dir: &Path) -> Result<RelayStatus, StatusError> {
    let path = dir.join(STATUS_SOCKET);
    let mut s =
        std::os::unix::net::UnixStream::connect(&path).map_err(|err| StatusError::NotRunning {
            path: path.clone(),
            err,
        })?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| StatusError::Wire(WireError::Io(e)))?;
    wire::read_frame(&mut s).map_err(StatusError::Wire)
}

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No relay answers on the socket.
    #[error("no relay runs on this data directory ({path}: {err})")]
    NotRunning {
        /// The socket.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The answer was malformed.
    #[error("status: {0}")]
    Wire(WireError),
}
