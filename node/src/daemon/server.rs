//! The control socket: binds `control.sock` in the home directory (mode 0600 from its first
//! moment, see `control::socket`) and turns each connection of the home's owner into one
//! [`Call`] for the daemon's task, streaming back its frames.
//!
//! Invariants: a socket file left by a dead daemon is replaced, one a live daemon answers on is
//! not (two daemons never share a store); a client that sends garbage gets a typed error frame
//! and cannot stall the daemon (each connection has its own task and a read timeout).

use std::path::Path;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::{Call, DaemonError};
use crate::control::socket;
use crate::control::wire::{self, WireError};
use crate::control::{Frame, RequestFrame, VERSION};

/// How long a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds the socket, replacing a stale one (`control::socket::bind_private`).
pub(super) fn bind(path: &Path) -> Result<UnixListener, DaemonError> {
    socket::bind_private(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AddrInUse {
            DaemonError::AlreadyRunning(path.to_owned())
        } else {
            DaemonError::Socket {
                path: path.to_owned(),
                err,
            }
        }
    })
}

/// Accepts connections until the daemon stops.
/// Only connections from the owner of the home (`owner`, a uid) are answered.
pub(super) async fn serve(listener: UnixListener, owner: u32, calls: mpsc::Sender<Call>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if socket::peer_is(&stream, owner) {
                    tokio::spawn(connection(stream, calls.clone()));
                }
            }
            Err(e) => {
                tracing::warn!("control socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(mut stream: UnixStream, calls: mpsc::Sender<Call>) {
    let body = match tokio::time::timeout(READ_TIMEOUT, wire::read_body(&mut stream)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let _ = refuse(&mut stream, "malformed", &e.to_string()).await;
            return;
        }
        Err(_) => return,
    };
    let req: RequestFrame = match wire::decode_body(&body) {
        Ok(r) => r,
        Err(e) => {
            let _ = refuse(&mut stream, "malformed", &e.to_string()).await;
            return;
        }
    };
    if req.v != VERSION {
        let _ = refuse(
            &mut stream,
            "version",
            &format!(
                "control protocol {} is not supported (this daemon speaks {VERSION})",
                req.v
            ),
        )
        .await;
        return;
    }
    let (tx, mut rx) = mpsc::channel(64);
    if calls.send((req.request, tx)).await.is_err() {
        let _ = refuse(&mut stream, "daemon", "the daemon is stopping").await;
        return;
    }
    while let Some(frame) = rx.recv().await {
        let last = !matches!(frame, Frame::Progress { .. });
        if wire::write_frame_async(&mut stream, &frame).await.is_err() || last {
            return;
        }
    }
}

async fn refuse(stream: &mut UnixStream, kind: &str, message: &str) -> Result<(), WireError> {
    tracing::warn!(kind, "control request refused: {message}");
    wire::write_frame_async(
        stream,
        &Frame::Err {
            kind: kind.to_owned(),
            message: message.to_owned(),
        },
    )
    .await
}
