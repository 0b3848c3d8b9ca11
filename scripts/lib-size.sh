#!/usr/bin/env bash
# Builds the mobile library for this machine with the release-mobile profile and prints its size
# as built (unstripped, what bindings are generated from) and stripped (what ships).
# Usage: scripts/lib-size.sh [--target TRIPLE]   (cross targets need their linker, e.g. the NDK)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
args=()
dir=$target_dir/release-mobile
if [ "${1:-}" = "--target" ]; then
  args=(--target "$2")
  dir=$target_dir/$2/release-mobile
fi
cargo build --locked -q --profile release-mobile -p fenlei-ffi "${args[@]}"
so=$dir/libfenlei_ffi.so
stripped=$(mktemp)
cp "$so" "$stripped"
strip "$stripped" 2>/dev/null || llvm-strip "$stripped"
printf '%-28s %10s bytes\n' "unstripped .so" "$(stat -c %s "$so")" "stripped .so (ships)" "$(stat -c %s "$stripped")" \
  "stripped, gzip -9 (download)" "$(gzip -9 -c "$stripped" | wc -c)" "staticlib .a (iOS input)" "$(stat -c %s "$dir/libfenlei_ffi.a")"
rm -f "$stripped"
