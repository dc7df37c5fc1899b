//! cloison-node: the Cloison peer-to-peer node as a library; the `cloison` binary is its command
//! line.
//!
//! Layers, bottom up (ARCHITECTURE.md has the map):
//! - [`dag`], [`trust`]: sans-IO cores (no tokio, libp2p or redb; time and randomness are inputs);
//! - [`seal`], [`workspace`], [`sync`]: sans-IO too (sealing, workspace DAGs, the sync engine);
//! - [`store`]: redb persistence and block packs; [`keystore`]: the device key file; [`logs`]:
//!   the binaries' log output; [`manual`]: their completions and manual pages;
//! - [`net`]: the libp2p shell (the only module that imports libp2p);
//! - [`node`]: the one API; [`control`]: requests and their executor, the control socket's
//!   protocol; [`daemon`]: `cloison run`; [`bundle`]: the sneakernet formats;
//! - [`testkit`]: deterministic organizations for tests, benchmarks and the simulator.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bundle;
pub mod control;
pub mod daemon;
pub mod dag;
pub mod enroll;
pub mod keystore;
pub mod logs;
pub mod manual;
pub mod net;
pub mod node;
pub mod relay;
pub mod seal;
pub mod store;
pub mod sync;
pub mod testkit;
pub mod trust;
pub mod workspace;
