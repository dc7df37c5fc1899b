#!/usr/bin/env bash
# Fuzzes every decoder that takes outside bytes (fuzz/fuzz_targets/, one target per decoder) for
# SECONDS per target (default 60), or only the TARGETs named:
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# cargo-fuzz (libFuzzer) on the stable toolchain, without a sanitizer (`-s none`: Cloison has no
# unsafe code, so what a sanitizer would add is caught by Rust's own checks; debug assertions and
# overflow checks are on). Each target starts from its committed seeds (fuzz/seeds/, made by
# `cargo run --manifest-path fuzz/Cargo.toml --example seed`) plus what earlier runs found, kept
# in a working corpus outside the tree ($FUZZ_WORK, default $CARGO_TARGET_DIR/fuzz-work). A
# crash stops the script with a non-zero status; its input is in $FUZZ_WORK/artifacts/TARGET/,
# and `cargo fuzz run -s none TARGET FILE` replays it (FUZZ_KEEP_GOING=1: run the other targets
# first, then fail). Every crash fixed becomes a unit test.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cloison-target}"
fuzz_target_dir="$CARGO_TARGET_DIR/fuzz"
work="${FUZZ_WORK:-$CARGO_TARGET_DIR/fuzz-work}"
command -v cargo-fuzz >/dev/null || {
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 1
}
if [ $# -gt 0 ]; then
  targets=("$@")
else
  # FUZZ_SKIP: targets left out (space-separated), e.g. one whose known crash is still open.
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do
    t=$(basename "$f" .rs)
    [[ " ${FUZZ_SKIP:-} " == *" $t "* ]] || targets+=("$t")
  done
fi

start=$(date +%s)
echo "[fuzz] building ${#targets[@]} targets"
CARGO_TARGET_DIR="$fuzz_target_dir" cargo fuzz build -s none
echo "[fuzz] built in $(($(date +%s) - start)) s"

total=0
crashed=()
for t in "${targets[@]}"; do
  corpus="$work/corpus/$t"
  artifacts="$work/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  log="$work/$t.log"
  # -rss_limit_mb: a decoder that allocates what a hostile length says is a finding too.
  if ! CARGO_TARGET_DIR="$fuzz_target_dir" cargo fuzz run -s none "$t" "$corpus" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "[fuzz] $t: CRASH (input in $artifacts/, log $log)" >&2
    crashed+=("$t")
    [ -n "${FUZZ_KEEP_GOING:-}" ] && continue
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  total=$((total + ${runs:-0}))
  printf '[fuzz] %-18s %10s runs in %s s, corpus %s inputs\n' "$t" "${runs:-?}" "$secs" "$(ls "$corpus" | wc -l)"
done
if [ ${#crashed[@]} -gt 0 ]; then
  echo "[fuzz] crashes in: ${crashed[*]}" >&2
  exit 1
fi
echo "[fuzz] ${#targets[@]} targets, $total runs, no crash, $(($(date +%s) - start)) s in all"
