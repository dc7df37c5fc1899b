//! Workspaces (sans-IO): the DAG of envelopes of one workspace, its access rules, roles and key
//! epochs.
//!
//! Principal type: [`WorkspaceLog`]: raw envelopes in (any order, any batch), a [`Report`] out
//! (admitted, duplicates, typed [`Refusal`]s); [`WorkspaceLog::state`] gives the effective
//! [`WorkspaceState`] (members, epochs, content order, heads) after revocation wins, given the
//! organization log. The relay runs the same admission: everything it checks is in clear headers
//! and clear access and key-distribution payloads; content stays sealed.
//!
//! **Architecture invariant:** like `trust`, this module never imports tokio, libp2p or redb,
//! never reads a clock and never draws randomness itself.

pub mod admission;
pub mod authority;
pub mod content;
pub mod envelope;
pub mod ids;
pub mod keyring;
pub mod log;
pub mod rejection;
pub mod state;

#[cfg(test)]
mod tests;

pub use envelope::{AccessChange, Envelope, EpochKeys, Header, Kind, SealedKeys};
pub use ids::{EnvelopeId, Role, WorkspaceId};
pub use log::{Report, WorkspaceLog};
pub use rejection::Refusal;
pub use state::{EpochInfo, WorkspaceState};
