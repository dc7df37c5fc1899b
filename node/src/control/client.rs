//! The client side of the control socket (blocking): used by the `cloison` command.
//!
//! Invariant: [`Client::connect`] returns `None` only when no daemon listens (no socket file, or
//! nobody accepts on it); any other failure is an error, never a silent fall-back to opening
//! the store while a daemon holds it.

use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::wire::{self, WireError};
use super::{Frame, Progress, Request, RequestFrame, Response, SOCKET, VERSION};

/// A connection to a running daemon.
pub struct Client {
    stream: UnixStream,
}

/// What a daemon answered.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The daemon refused the request.
    #[error("{message}")]
    Refused {
        /// The error's label.
        kind: String,
        /// What went wrong.
        message: String,
    },
}

impl Client {
    /// Connects to the daemon of `home`, if one runs.
    pub fn connect(home: &Path) -> Result<Option<Client>, WireError> {
        match UnixStream::connect(home.join(SOCKET)) {
            Ok(stream) => Ok(Some(Client { stream })),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a request and waits for its answer, passing progress frames to `progress`.
    pub fn call(
        mut self,
        request: Request,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Response, ClientError> {
        wire::write_frame(
            &mut self.stream,
            &RequestFrame {
                v: VERSION,
                request,
            },
        )?;
        loop {
            match wire::read_frame::<Frame>(&mut self.stream)? {
                Frame::Progress { progress: p } => progress(p),
                Frame::Ok { response } => return Ok(*response),
                Frame::Err { kind, message } => return Err(ClientError::Refused { kind, message }),
            }
        }
    }
}
