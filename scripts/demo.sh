#!/usr/bin/env bash
# The main job, for a new user: build `cloison`, create an organization in a temporary home, and
# list its users and devices. (The multi-device demo over the network replaces this once the
# daemon exists; see ARCHITECTURE.md.) Exits non-zero if any step or check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cloison-target}"
export CLOISON_MDNS=0
cargo build --quiet --bin cloison ${CARGO_OFFLINE:+--offline}
bin="$CARGO_TARGET_DIR/debug/cloison"
home=$(mktemp -d -t cloison-demo-XXXXXX)
trap 'rm -rf "$home"' EXIT
export CLOISON_HOME="$home" CLOISON_PASSPHRASE="demo passphrase (not secret)"

step() { printf '\n== %s\n' "$*"; }
step "cloison init: a new organization; a fresh root key signs its genesis and is destroyed"
"$bin" init --org "Saint-Luc Hospital" --user "Ada Lovelace" --email ada@example.org --device ada-laptop
step "cloison users"
"$bin" users
step "cloison devices"
"$bin" devices
step "cloison org show"
"$bin" org show
step "checks"
json=$("$bin" users --json)
grep -q '"email": "ada@example.org"' <<<"$json" || { echo "FAIL: admin not listed"; exit 1; }
grep -q '"profile": "admin"' <<<"$json" || { echo "FAIL: admin profile"; exit 1; }
if CLOISON_PASSPHRASE="wrong" "$bin" users >/dev/null 2>&1; then
  echo "FAIL: a wrong passphrase opened the key file"; exit 1
fi
if grep -qa "Ada Lovelace" "$home"/store.redb "$home"/keys.cloison; then
  echo "FAIL: a name appears in clear in the home directory"; exit 1
fi
echo "ok: organization created, admin listed, wrong passphrase refused, no name in clear on disk"
