#!/usr/bin/env bash
# The main job, for a new user: build `cloison` and run `cloison demo`, a whole team syncing on
# this machine (real daemons on loopback, mDNS off). Exits non-zero if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cloison-target}"
export CLOISON_MDNS=0
cargo build --quiet --bin cloison ${CARGO_OFFLINE:+--offline}
exec "$CARGO_TARGET_DIR/debug/cloison" demo "$@"
