#!/usr/bin/env bash
# The main job, for a new user: build `cloison` and run `cloison demo`, a whole team syncing on
# this machine (real daemons on loopback, mDNS off). Exits non-zero if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cloison-target}"
export CLOISON_MDNS=0
# The same build as scripts/test.sh (every binary of the workspace), so the two share it.
cargo build --quiet --workspace --bins --locked ${CARGO_OFFLINE:+--offline}
exec "$CARGO_TARGET_DIR/debug/cloison" demo "$@"
