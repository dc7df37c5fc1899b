//! `cloison-sim`: a deterministic discrete-event simulator that drives many real
//! `cloison_node::sync::Engine`s over a modelled network.
//!
//! Principal type: [`sim::Simulator`]. A [`config::SimConfig`] (plain data) goes in;
//! [`world::World::build`] signs an organization (users, devices, an optional relay) and one
//! workspace per team; [`net`] lays a topology of LAN, WAN, relay and bundle links;
//! [`scenario::run`] plays a scenario and returns a [`report::Report`] (metrics, distributions),
//! which [`report`] writes as CSV and [`plot`] as SVG.
//!
//! **Invariants** (the simulation core: `config`, `world`, `net`, `sim`, `scenario`):
//! - deterministic: one seeded RNG, a virtual clock in microseconds, an event queue ordered by
//!   `(time, sequence number)`, no wall clock, no iteration over hash maps where order reaches
//!   the output; the same seed gives a byte-identical report;
//! - engines are driven by their drive contract only: every `handle_*` is followed by draining
//!   `poll_transmit` and `poll_event` and re-arming `handle_timeout` at `poll_timeout`;
//! - links are reliable and ordered while up (per-direction FIFO); loss is a connection loss,
//!   which the engines see as `handle_disconnected` / `handle_connected`.

pub mod config;
pub mod net;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod world;
