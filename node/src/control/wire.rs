//! Control-socket framing: `u32` big-endian length, then JSON. Blocking (client) and async
//! (daemon) versions share the limits.
//!
//! Invariant: a length over [`MAX_FRAME`] is refused before anything is allocated.

use std::io::{Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::MAX_FRAME;

/// Framing failures.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// A frame over the limit.
    #[error("control frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// A frame that does not decode.
    #[error("control frame does not decode: {0}")]
    Malformed(String),
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, WireError> {
    let body = serde_json::to_vec(v).map_err(|e| WireError::Malformed(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(WireError::TooLarge(body.len()));
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    serde_json::from_slice(body).map_err(|e| WireError::Malformed(e.to_string()))
}

fn checked_len(b: [u8; 4]) -> Result<usize, WireError> {
    let n = u32::from_be_bytes(b) as usize;
    if n > MAX_FRAME {
        return Err(WireError::TooLarge(n));
    }
    Ok(n)
}

/// Writes one frame (blocking).
pub fn write_frame<T: Serialize>(w: &mut impl Write, v: &T) -> Result<(), WireError> {
    w.write_all(&encode(v)?)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame (blocking).
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<T, WireError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut body = vec![0u8; checked_len(len)?];
    r.read_exact(&mut body)?;
    decode(&body)
}

/// Reads one frame's raw body (async), to decode separately so a bad body can be answered.
pub async fn read_body(r: &mut (impl AsyncReadExt + Unpin)) -> Result<Vec<u8>, WireError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let mut body = vec![0u8; checked_len(len)?];
    r.read_exact(&mut body).await?;
    Ok(body)
}

/// Decodes a body read with [`read_body`].
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    decode(body)
}

/// Writes one frame (async).
pub async fn write_frame_async<T: Serialize>(
    w: &mut (impl AsyncWriteExt + Unpin),
    v: &T,
) -> Result<(), WireError> {
    w.write_all(&encode(v)?).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Request, RequestFrame, VERSION};

    #[test]
    fn frames_round_trip_and_oversized_lengths_are_refused() {
        let req = RequestFrame {
            v: VERSION,
            request: Request::Ls {
                ws: "Reports".into(),
                path: "/a".into(),
                recursive: true,
            },
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        let back: RequestFrame = read_frame(&mut buf.as_slice()).unwrap();
        assert_eq!(back, req);
        // A length over the limit is refused before allocating.
        let mut huge = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(matches!(
            read_frame::<RequestFrame>(&mut huge.as_slice()),
            Err(WireError::TooLarge(_))
        ));
        // Truncated and garbage bodies are typed errors.
        assert!(matches!(
            read_frame::<RequestFrame>(&mut &buf[..buf.len() - 1]),
            Err(WireError::Io(_))
        ));
        let mut junk = 3u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"{x}");
        assert!(matches!(
            read_frame::<RequestFrame>(&mut junk.as_slice()),
            Err(WireError::Malformed(_))
        ));
    }
}
