#!/usr/bin/env bash
# The tests, for a new user on a machine with only Rust: build the binaries that the end-to-end
# tests run as separate processes (`cloison`, `cloison-bootstrap`, `cloison-tui`), then run every
# test of the workspace, doc tests included. Shares its build directory with scripts/demo.sh.
# Extra arguments go to `cargo test` (a filter, `-- --nocapture`...).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cloison-target}"
export CLOISON_MDNS=0
offline=(${CARGO_OFFLINE:+--offline})
cargo build --workspace --bins --locked "${offline[@]}"
exec cargo test --workspace --locked "${offline[@]}" "$@"
