#!/usr/bin/env bash
# The whole test suite: formatting, lints, every Rust test (with the short reliability runs: 30
# kills, 6 fault-proxy schedules, the fuzz corpora; docs/reliability.md), the media tests again
# with blobs in S3 (moto), cargo deny, the Swift bindings check, the Kotlin API on the JVM (JUnit 5
# via Maven Surefire), the Python API (pytest) and the web dashboard end to end in headless Chromium.
# Usage: scripts/test.sh        (honours CARGO_TARGET_DIR; default ./target)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
bootstrap_binding_tools
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== object storage: blob store and media e2e tests against moto's S3 server (scripts/moto.sh)"
FENLEI_MOTO_SERVER=$(bash scripts/moto.sh path) FENLEI_TEST_S3=1 \
  cargo test -p fenlei-e2e --locked --test blobs_s3 --test media_sync --test media_instances -- --include-ignored
echo "== cargo deny: licenses, bans, sources (advisories need GitHub; docs/reliability.md)"
bash scripts/deny.sh
echo "== swift bindings: generated from the library and checked complete (no Swift compiler here)"
bash scripts/bindings.sh swift
python3 scripts/check-swift-bindings.py "$target_dir/debug/libfenlei_ffi.so" "$target_dir/bindings/swift"
echo "== kotlin bindings on the JVM"
bash scripts/test-kotlin.sh
echo "== python bindings"
bash scripts/test-python.sh
echo "== dashboard end to end in headless Chromium (screenshots in $target_dir/dashboard-screenshots)"
bash scripts/test-dashboard.sh
