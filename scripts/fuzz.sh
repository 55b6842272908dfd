#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30), starting from the committed seeds in fuzz/seeds/
# and whatever fuzz/corpus/ has gathered. Stable toolchain, no sanitizer (coverage instrumentation only): a
# panic, an input that takes over 10 s, or one that needs over 2 GiB fails the run, and libFuzzer leaves the
# input in fuzz/artifacts/<target>/ — turn it into a regression test.
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
cargo fuzz build -s none -O
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  echo "== $target (${seconds} s)"
  log=$(mktemp)
  status=0
  cargo fuzz run -s none -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 >"$log" 2>&1 || status=$?
  grep -E '^Done|panicked|ERROR|SUMMARY|artifact' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log"
    exit "$status"
  fi
  rm -f "$log"
done
