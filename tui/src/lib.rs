//! `cloison-tui`: the admin terminal UI, a client of a running daemon's control API.
//!
//! Layout of the crate: [`event`] (the messages between screens, the loop and the worker),
//! [`worker`] (control calls off the UI thread: a poller refreshing live data every second and
//! one thread per action), [`theme`] (styles that keep the terminal's own colours),
//! [`widgets`] (help bar, confirmation dialog, line input, formatting), [`screens`] (one
//! tuirealm component per tab, each with its model), [`header`] (tabs and daemon state),
//! [`qr`] (QR codes for invitation tokens) and [`app`] (the tuirealm application and its loop,
//! generic over the terminal so tests run it on ratatui's `TestBackend`).
//!
//! Invariants: the UI thread never waits on the daemon; every screen draws a help bar on its
//! last line; nothing is drawn in a hard-coded background colour.

pub mod app;
pub mod event;
pub mod header;
pub mod qr;
pub mod screens;
pub mod theme;
pub mod widgets;
pub mod worker;
