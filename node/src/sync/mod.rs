//! The sync engine (sans-IO): inputs are received messages, local writes and clock ticks;
//! outputs are messages to send and events (items admitted, peers to cut off).
//!
//! Principal type: [`Engine`] over a [`Replica`] (the organization log and the workspace DAGs).
//! The drive contract and the protocol are in [`engine`]'s doc; the wire format in [`msg`].
//!
//! **Architecture invariant:** never imports tokio, libp2p or redb, never reads a clock; the same
//! engine runs in the daemon, in the relay (keyless) and by the thousand in `simulations/`.

pub mod drain;
pub mod engine;
pub mod msg;
pub mod rate;
pub mod replica;

#[cfg(test)]
mod tests;

pub use drain::{BlockRequest, Drained};
pub use engine::{Config, Engine, Event, Stats, Transmit};
pub use msg::{DocId, Msg};
pub use replica::Replica;
