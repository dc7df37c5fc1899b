//! The trust core (sans-IO): identities, certificates, the organization log and its admission
//! rules.
//!
//! Principal types: [`OrgLog`] takes raw entries in (any order, any batch) and answers with an
//! [`IngestReport`] (admitted, duplicates, typed [`Rejection`]s); [`OrgLog::state`] gives the
//! effective [`OrgState`] after *revocation wins*. Entries are written with
//! [`author::create_org`] and [`author::Writer`], then ingested like any received entry.
//!
//! **Architecture invariant:** this module never imports tokio, libp2p or redb, never reads a
//! clock and never draws randomness itself: time and RNG are parameters. That is what lets the
//! simulator replay any interleaving deterministically.

pub mod admission;
pub mod author;
pub mod entry;
pub mod future;
pub mod ids;
pub mod keys;
pub mod log;
pub mod org_keys;
pub mod pop;
pub mod rejection;
pub(crate) mod removal;
pub mod sigcheck;
pub mod state;
mod verdicts;

#[cfg(test)]
mod tests;

pub use entry::{Certificate, Entry, EntryBody};
pub use ids::{Clock, DeviceId, EntryId, Hlc, OrgId, Profile, UserId};
pub use keys::{DeviceKeys, OrgKey, UserSecret};
pub use log::{IngestReport, OrgLog};
pub use rejection::Rejection;
pub use state::OrgState;
