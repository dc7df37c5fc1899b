//! `cloison-sim`: the deterministic simulator of many sync engines.
//!
//! Not built yet (see the sync-engine issue): it drives `node::sync`, which does not exist yet.
//! Until then the binary says so and exits non-zero.

fn main() -> std::process::ExitCode {
    eprintln!("cloison-sim: the simulator is not built yet; see ARCHITECTURE.md (simulations/)");
    std::process::ExitCode::from(2)
}
