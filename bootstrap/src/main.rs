//! `cloison-bootstrap`: the always-on blind relay.
//!
//! Not built yet (see the relay issue). Until then the binary says so and exits non-zero, so that
//! nothing mistakes it for a working relay.

fn main() -> std::process::ExitCode {
    eprintln!("cloison-bootstrap: the relay is not built yet; see ARCHITECTURE.md (bootstrap/)");
    std::process::ExitCode::from(2)
}
