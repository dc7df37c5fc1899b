//! `node::relay`: the blind relay (`cloison-bootstrap`), built from the same parts as a device
//! but holding no key that decrypts anything: the network in its relay flavour (open gate,
//! circuit-relay v2 server for authorized devices), one keyless sync engine
//! (`sync::Config::relay`) per organization served, and a store per organization behind
//! [`storage::RelayStorage`].
//!
//! - [`wire`]: the relay's own messages (introduction, welcome or refusal, block offers, quota
//!   errors), beside the sync protocol on the same stream.
//! - `server`: the loop ([`run`]), how an organization becomes known, quotas.
//! - `server::intro`: introductions: welcome at once, or collect the part of the organization
//!   log the relay lacks and judge the device on it.
//! - [`status`]: the status snapshot and its socket.
//! - [`metrics`]: the same snapshot as Prometheus text over HTTP (`--metrics`), and the
//!   ingest latency histogram.
//!
//! **Invariant (nothing to read):** the relay stores and logs only what DESIGN §11 allows:
//! signed log entries (names and e-mails are sealed under the organization key it does not
//! have), envelopes with clear headers and sealed payloads, sealed blocks, and ids and counts.
//! The daemon's side of the protocol is `daemon::relays`.

pub mod metrics;
mod served;
mod server;
pub mod status;
pub mod storage;
pub mod wire;

pub use served::identity;
pub use server::{INTRO_TIMEOUT_MS, RelayConfig, RelayError, run};
pub use status::{OrgStatus, RelayStatus, StatusError, query};
