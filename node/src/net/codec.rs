//! The wire format of one-way messages: a request-response codec carrying opaque bytes.
//!
//! A request is `len: u32 big-endian || len bytes`, then the writer closes its half of the stream;
//! the response is a single ack byte `0x00`. The bytes are the sync engine's business; this codec
//! only frames them.
//!
//! Invariants: a request longer than the limit is refused *before* anything is allocated or read
//! past the prefix, on both sides (the writer refuses to send it, the reader to accept it); a
//! request with bytes after the announced length, or a bad ack, is an error. Every failure is an
//! `io::Error` wrapping a [`WireError`], so the driver can tell hostile input from a dropped
//! connection. A request that fails to read is counted and logged *here* ([`WireCounters`]):
//! libp2p does not report a failed `read_request` to the behaviour, only later failures. Nothing
//! here panics on peer input.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};

/// The protocol name of one-way messages.
pub const MESSAGE_PROTOCOL: StreamProtocol = StreamProtocol::new("/cloison/msg/1");

/// The one byte of a response.
const ACK: u8 = 0x00;

/// What was wrong with bytes a peer sent on the message protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The announced length exceeds the limit.
    #[error("message of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Announced length.
        len: u64,
        /// Our limit.
        limit: usize,
    },
    /// Bytes followed the announced length.
    #[error("trailing bytes after the message")]
    Trailing,
    /// The response was not the one-byte ack.
    #[error("bad ack")]
    BadAck,
}

impl WireError {
    /// A stable label for logs and counters.
    pub fn label(&self) -> &'static str {
        match self {
            WireError::TooLarge { .. } => "too_large",
            WireError::Trailing => "trailing",
            WireError::BadAck => "bad_ack",
        }
    }
}

/// The `WireError` inside an `io::Error`, if that is what it carries.
pub(crate) fn wire_error(e: &io::Error) -> Option<WireError> {
    e.get_ref()?.downcast_ref::<WireError>().copied()
}

fn invalid(e: WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Reads one request's framing from `io`: the `u32` length (refused over `max` before anything is
/// allocated), that many bytes, then the end of the stream (anything more is
/// [`WireError::Trailing`]). The codec's own reader, public so that the fuzz targets (`fuzz/`)
/// drive exactly what a peer's bytes meet.
pub async fn read_message<T>(io: &mut T, max: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix);
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    if n > max {
        return Err(invalid(WireError::TooLarge {
            len: u64::from(len),
            limit: max,
        }));
    }
    let mut buf = vec![0u8; n];
    io.read_exact(&mut buf).await?;
    let mut extra = [0u8; 1];
    if io.read(&mut extra).await? != 0 {
        return Err(invalid(WireError::Trailing));
    }
    Ok(buf)
}

/// Inbound requests dropped by the codec, shared by every connection's copy of it.
#[derive(Debug, Default)]
pub(crate) struct WireCounters {
    /// Announced length over the limit.
    pub(crate) oversized: AtomicU64,
    /// Truncated, trailing bytes, or otherwise undecodable.
    pub(crate) malformed: AtomicU64,
}

/// Length-prefixed opaque bytes, bounded by `max` on read and write.
#[derive(Debug, Clone)]
pub(crate) struct BytesCodec {
    max: usize,
    counters: Arc<WireCounters>,
}

impl BytesCodec {
    /// A codec accepting messages of at most `max` bytes (at most `u32::MAX`).
    pub(crate) fn new(max: usize, counters: Arc<WireCounters>) -> Self {
        BytesCodec {
            max: max.min(u32::MAX as usize),
            counters,
        }
    }

    /// Counts and logs a failed read (the connection task's span names the peer).
    fn count(&self, e: &io::Error) {
        let (counter, reason) = match wire_error(e) {
            Some(w @ WireError::TooLarge { .. }) => (&self.counters.oversized, w.label()),
            Some(w) => (&self.counters.malformed, w.label()),
            None if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
            ) =>
            {
                (&self.counters.malformed, "truncated")
            }
            None => {
                tracing::debug!(error = %e, "inbound message stream failed");
                return;
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason, error = %e, "inbound message dropped");
    }
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = ();

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let r = read_message(io, self.max).await;
        if let Err(e) = &r {
            self.count(e);
        }
        r
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<()>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut ack = [0u8; 1];
        io.read_exact(&mut ack).await?;
        if ack[0] != ACK {
            return Err(invalid(WireError::BadAck));
        }
        Ok(())
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let len = u32::try_from(req.len())
            .ok()
            .filter(|_| req.len() <= self.max)
            .ok_or_else(|| {
                invalid(WireError::TooLarge {
                    len: req.len() as u64,
                    limit: self.max,
                })
            })?;
        io.write_all(&len.to_be_bytes()).await?;
        io.write_all(&req).await?;
        io.flush().await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, (): ()) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&[ACK]).await?;
        io.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{executor::block_on, io::Cursor};
    use libp2p::request_response::Codec;

    fn codec(max: usize) -> BytesCodec {
        BytesCodec::new(max, Arc::default())
    }

    fn read(max: usize, bytes: Vec<u8>) -> io::Result<Vec<u8>> {
        block_on(codec(max).read_request(&MESSAGE_PROTOCOL, &mut Cursor::new(bytes)))
    }

    #[test]
    fn round_trip() {
        let mut out = Cursor::new(Vec::new());
        block_on(codec(16).write_request(&MESSAGE_PROTOCOL, &mut out, b"hello".to_vec())).unwrap();
        assert_eq!(out.get_ref()[..4], [0, 0, 0, 5]);
        assert_eq!(read(16, out.into_inner()).unwrap(), b"hello");
        assert_eq!(read(16, vec![0, 0, 0, 0]).unwrap(), b"");
    }

    #[test]
    fn hostile_requests_are_typed_errors() {
        let e = read(16, vec![0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert!(matches!(wire_error(&e), Some(WireError::TooLarge { .. })));
        let e = read(16, vec![0, 0, 0, 1, 7, 8]).unwrap_err();
        assert_eq!(wire_error(&e), Some(WireError::Trailing));
        // Truncated: an I/O error, not a wire error.
        let e = read(16, vec![0, 0, 0, 9, 1]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = read(16, vec![0, 0]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn failed_reads_are_counted() {
        let mut c = codec(16);
        for bytes in [
            vec![0xff; 4],
            vec![0, 0, 0, 1, 7, 8],
            vec![0, 0, 0, 9, 1],
            vec![],
        ] {
            let _ = block_on(c.read_request(&MESSAGE_PROTOCOL, &mut Cursor::new(bytes)));
        }
        assert_eq!(c.counters.oversized.load(Ordering::Relaxed), 1);
        assert_eq!(c.counters.malformed.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn the_writer_refuses_oversized_messages() {
        let mut out = Cursor::new(Vec::new());
        let e =
            block_on(codec(4).write_request(&MESSAGE_PROTOCOL, &mut out, vec![0; 5])).unwrap_err();
        assert!(matches!(
            wire_error(&e),
            Some(WireError::TooLarge { len: 5, limit: 4 })
        ));
        assert!(out.get_ref().is_empty());
    }

    #[test]
    fn acks() {
        let mut c = codec(4);
        assert!(block_on(c.read_response(&MESSAGE_PROTOCOL, &mut Cursor::new(vec![0]))).is_ok());
        let e =
            block_on(c.read_response(&MESSAGE_PROTOCOL, &mut Cursor::new(vec![1]))).unwrap_err();
        assert_eq!(wire_error(&e), Some(WireError::BadAck));
    }
}
