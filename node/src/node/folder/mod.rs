//! A local folder mirrored to a workspace, both ways (`cloison sync`).
//!
//! Submodules: `plan` (the sans-IO planner: local scan × workspace tree × last-synced state →
//! actions), `scan` (the local scanner and ignore rules), `apply` (local writes: atomic downloads
//! that never clobber a change that arrived meanwhile), `round` (one reconciliation round on a
//! [`Node`](super::Node)), `registry` (the registered mirrors, in the store), `temps` (temporary
//! files of landings: their name, and removing those an interrupted landing left).

pub mod apply;
pub mod plan;
mod registry;
mod round;
pub mod scan;
pub mod temps;

pub use round::{Mirror, RoundReport};

#[cfg(test)]
mod tests;
