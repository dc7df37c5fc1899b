//! `/cloison/greet/1`: the enrolment protocol's transport, on a swarm of its own.
//!
//! The greeting swarm runs beside the main one, with the same device identity, and speaks
//! **only** this protocol: no identify, no gossip, no sync. It exists only while the daemon has
//! a live invitation (the daemon starts and stops it), so a peer that is not a member can reach
//! this one protocol and nothing else, and only then; what it can say without the token's
//! secret is a hello that fails the Noise PSK check (the enrolment core decides). The main
//! swarm's gate is untouched: strangers are still refused there before any protocol runs.
//!
//! Request-response of opaque packets (`u32` big-endian length + bytes, requests at most
//! [`MAX_GREET_REQUEST`], responses at most [`MAX_GREET_RESPONSE`], checked before
//! allocation). A request may wait for a person (the admin typing a code), hence the long
//! [`GREET_TIMEOUT`]; connections idle longer close.
//!
//! Invariants: bounded sizes, streams and timeouts; hostile bytes are an error on that stream,
//! never a panic; only this module (with the rest of `net`) imports libp2p.

use std::{collections::HashMap, io, time::Duration};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, SwarmBuilder, noise,
    request_response::{self, ProtocolSupport},
    swarm::{SwarmEvent, dial_opts::DialOpts},
    tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};

use super::NetError;
use super::ids::{device_id, keypair, peer_id};
use crate::trust::{DeviceId, DeviceKeys};

/// The protocol name.
pub const GREET_PROTOCOL: StreamProtocol = StreamProtocol::new("/cloison/greet/1");
/// Largest request.
pub const MAX_GREET_REQUEST: usize = 1 << 20;
/// Largest response (a welcome carries the organization log).
pub const MAX_GREET_RESPONSE: usize = 32 << 20;
/// How long a request may wait for its response (a person may be typing).
pub const GREET_TIMEOUT: Duration = Duration::from_secs(600);
/// Concurrent streams per connection.
const MAX_STREAMS: usize = 4;

/// What the greeting swarm reports.
#[derive(Debug)]
pub enum GreetEvent {
    /// Listening on this address.
    Listening(Multiaddr),
    /// A request; answer it with [`GreetNet::respond`] and its `id`.
    Request {
        /// The peer (authenticated by the transport).
        peer: DeviceId,
        /// Handle for the answer.
        id: u64,
        /// The packet.
        bytes: Vec<u8>,
    },
    /// The last connection to a peer closed.
    Gone(DeviceId),
}

enum Cmd {
    Call {
        peer: DeviceId,
        addrs: Vec<Multiaddr>,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    Respond {
        id: u64,
        bytes: Vec<u8>,
    },
    Close {
        peer: DeviceId,
    },
    Shutdown,
}

/// Handle on a greeting swarm.
#[derive(Clone)]
pub struct GreetNet {
    cmd: mpsc::Sender<Cmd>,
}

#[derive(Clone, Default)]
struct Codec;

async fn read_framed<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let n = u32::from_be_bytes(prefix) as usize;
    if n > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "greeting packet too large",
        ));
    }
    let mut buf = vec![0u8; n];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_framed<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    b: &[u8],
    max: usize,
) -> io::Result<()> {
    if b.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "greeting packet too large",
        ));
    }
    io.write_all(&(b.len() as u32).to_be_bytes()).await?;
    io.write_all(b).await?;
    io.flush().await
}

impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_framed(io, MAX_GREET_REQUEST).await
    }
    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_framed(io, MAX_GREET_RESPONSE).await
    }
    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: Vec<u8>,
    ) -> io::Result<()> {
        write_framed(io, &r, MAX_GREET_REQUEST).await
    }
    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: Vec<u8>,
    ) -> io::Result<()> {
        write_framed(io, &r, MAX_GREET_RESPONSE).await
    }
}

type Behaviour = request_response::Behaviour<Codec>;

impl GreetNet {
    /// Starts a greeting swarm with the device's identity, listening on `listen` (may be
    /// empty: a claimer only dials).
    pub fn start(
        keys: &DeviceKeys,
        listen: Vec<Multiaddr>,
    ) -> Result<(GreetNet, mpsc::Receiver<GreetEvent>), NetError> {
        let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
        let mut swarm = SwarmBuilder::with_existing_identity(keypair(keys)?)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| setup(&e))?
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    Codec,
                    [(GREET_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(GREET_TIMEOUT)
                        .with_max_concurrent_streams(MAX_STREAMS),
                )
            })
            .map_err(|e| setup(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(GREET_TIMEOUT))
            .build();
        for a in listen {
            swarm.listen_on(a).map_err(|e| setup(&e))?;
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(256);
        tokio::spawn(drive(swarm, cmd_rx, ev_tx));
        Ok((GreetNet { cmd: cmd_tx }, ev_rx))
    }

    /// Sends a request to `peer` (dialling `addrs` if not connected) and waits for the answer.
    pub async fn call(
        &self,
        peer: DeviceId,
        addrs: Vec<Multiaddr>,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Call {
                peer,
                addrs,
                bytes,
                reply: tx,
            })
            .await
            .map_err(|_| NetError::Closed)?;
        rx.await
            .map_err(|_| NetError::Closed)?
            .map_err(NetError::Dial)
    }

    /// Answers request `id`.
    pub async fn respond(&self, id: u64, bytes: Vec<u8>) {
        let _ = self.cmd.send(Cmd::Respond { id, bytes }).await;
    }

    /// Closes every connection to `peer`.
    pub async fn close(&self, peer: DeviceId) {
        let _ = self.cmd.send(Cmd::Close { peer }).await;
    }

    /// Stops the swarm.
    pub async fn shutdown(&self) {
        let _ = self.cmd.send(Cmd::Shutdown).await;
    }
}

async fn drive(
    mut swarm: libp2p::Swarm<Behaviour>,
    mut cmds: mpsc::Receiver<Cmd>,
    events: mpsc::Sender<GreetEvent>,
) {
    let mut next_id = 0u64;
    let mut channels: HashMap<u64, request_response::ResponseChannel<Vec<u8>>> = HashMap::new();
    let mut calls: HashMap<
        request_response::OutboundRequestId,
        oneshot::Sender<Result<Vec<u8>, String>>,
    > = HashMap::new();
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None | Some(Cmd::Shutdown) => break,
                Some(Cmd::Call { peer, addrs, bytes, reply }) => {
                    let Some(pid) = peer_id(&peer) else {
                        let _ = reply.send(Err("not a device key".into()));
                        continue;
                    };
                    if !swarm.is_connected(&pid) && !addrs.is_empty() {
                        let opts = DialOpts::peer_id(pid).addresses(addrs).build();
                        if let Err(e) = swarm.dial(opts) {
                            let _ = reply.send(Err(format!("cannot dial the greeter: {e}")));
                            continue;
                        }
                    }
                    let id = swarm.behaviour_mut().send_request(&pid, bytes);
                    calls.insert(id, reply);
                }
                Some(Cmd::Respond { id, bytes }) => {
                    if let Some(ch) = channels.remove(&id) {
                        let _ = swarm.behaviour_mut().send_response(ch, bytes);
                    }
                }
                Some(Cmd::Close { peer }) => {
                    if let Some(pid) = peer_id(&peer) {
                        let _ = swarm.disconnect_peer_id(pid);
                    }
                }
            },
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::NewListenAddr { address, .. } => {
                    let _ = events.try_send(GreetEvent::Listening(address));
                }
                SwarmEvent::Behaviour(request_response::Event::Message { peer, message, .. }) => {
                    match message {
                        request_response::Message::Request { request, channel, .. } => {
                            let Some(d) = device_id(&peer) else { continue };
                            next_id += 1;
                            // Bound what a peer can leave waiting.
                            if channels.len() >= 64 {
                                tracing::warn!("too many greeting requests waiting; dropped");
                                continue;
                            }
                            channels.insert(next_id, channel);
                            if events
                                .try_send(GreetEvent::Request { peer: d, id: next_id, bytes: request })
                                .is_err()
                            {
                                channels.remove(&next_id);
                            }
                        }
                        request_response::Message::Response { request_id, response } => {
                            if let Some(r) = calls.remove(&request_id) {
                                let _ = r.send(Ok(response));
                            }
                        }
                    }
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure { request_id, error, .. }) => {
                    if let Some(r) = calls.remove(&request_id) {
                        let _ = r.send(Err(error.to_string()));
                    }
                }
                SwarmEvent::Behaviour(request_response::Event::InboundFailure { peer, error, .. }) => {
                    tracing::debug!(%peer, "greeting request failed: {error}");
                }
                SwarmEvent::ConnectionClosed { peer_id: p, num_established: 0, .. } => {
                    channels.retain(|_, ch| ch.is_open());
                    if let Some(d) = device_id(&p) {
                        let _ = events.try_send(GreetEvent::Gone(d));
                    }
                }
                _ => {}
            }
        }
    }
}

/// The peer id of a device, as text (for addresses in tokens).
pub fn peer_text(device: &DeviceId) -> Option<String> {
    peer_id(device).map(|p: PeerId| p.to_string())
}
