//! `cloison-tui`: the admin terminal UI.
//!
//! Not built yet (see the enrolment and TUI issue): it needs the daemon's control API. Until then
//! the binary says so and exits non-zero.

fn main() -> std::process::ExitCode {
    eprintln!("cloison-tui: the terminal UI is not built yet; see ARCHITECTURE.md (tui/)");
    std::process::ExitCode::from(2)
}
